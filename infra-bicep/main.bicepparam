// Parameters for `azd up` / `azd provision`: azd sets AZURE_ENV_NAME, AZURE_LOCATION and AZURE_PRINCIPAL_ID
// from the selected azd environment. Choose the sizing profile with `azd env set SANDSTORM_ENVIRONMENT_TYPE prod`.
// For deployments without azd, see env/dev.bicepparam and env/prod.bicepparam.
using 'main.bicep'

param environmentName = readEnvironmentVariable('AZURE_ENV_NAME')
param location = readEnvironmentVariable('AZURE_LOCATION')
param environmentType = readEnvironmentVariable('SANDSTORM_ENVIRONMENT_TYPE', 'dev')

// The signed-in user may then store provider API keys in the vault (az keyvault secret set).
param operatorPrincipalId = readEnvironmentVariable('AZURE_PRINCIPAL_ID', '')
param operatorPrincipalType = readEnvironmentVariable('AZURE_PRINCIPAL_TYPE', 'User')
