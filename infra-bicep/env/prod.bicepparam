// Production: zone-redundant storage, longer retention and soft delete, more scale-out and warm sessions.
//   az deployment sub create --location <region> --template-file infra-bicep/main.bicep --parameters infra-bicep/env/prod.bicepparam
using '../main.bicep'

param environmentName = 'sandstorm-prod'
param location = readEnvironmentVariable('AZURE_LOCATION', 'eastus2')
param environmentType = 'prod'

// A group, not a person, holds secret management in production.
param operatorPrincipalId = readEnvironmentVariable('SANDSTORM_OPERATORS_GROUP_ID', '')
param operatorPrincipalType = 'Group'

param reoptimizeSchedule = '0 */30 * * * *'
