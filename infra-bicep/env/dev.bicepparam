// Development: small, cheap, short retention. Deploy with
//   az deployment sub create --location <region> --template-file infra-bicep/main.bicep --parameters infra-bicep/env/dev.bicepparam
using '../main.bicep'

param environmentName = 'sandstorm-dev'
param location = readEnvironmentVariable('AZURE_LOCATION', 'eastus2')
param environmentType = 'dev'

// Object id of the developer or group that manages provider secrets (az ad signed-in-user show --query id -o tsv).
param operatorPrincipalId = readEnvironmentVariable('AZURE_PRINCIPAL_ID', '')

// Reoptimize less often in dev to keep the bill down.
param reoptimizeSchedule = '0 0 * * * *'
