// Sandstorm in one Azure subscription: a resource group holding the function app (Flex Consumption) and
// everything it talks to. Identity only: the app authenticates to every service with one user-assigned
// managed identity; shared keys, SAS and instrumentation-key auth are disabled wherever Azure allows it.
targetScope = 'subscription'

@description('Required. Environment name (azd environment); part of the resource group name and the resource name seed.')
@minLength(1)
@maxLength(40)
param environmentName string

@description('Required. Azure region for all resources (must offer Flex Consumption and Container Apps dynamic sessions).')
param location string

@description('Optional. Sizing profile: dev is small and cheap; prod is zone-redundant where it counts and scales further.')
@allowed([
  'dev'
  'prod'
])
param environmentType string = 'dev'

@description('Optional. Resource group name; defaults to rg-<environmentName>.')
param resourceGroupName string = ''

@description('Optional. Object id of the operator (user or group) allowed to manage provider secrets in Key Vault; empty for none.')
param operatorPrincipalId string = ''

@description('Optional. Principal type of operatorPrincipalId.')
@allowed([
  'User'
  'Group'
  'ServicePrincipal'
])
param operatorPrincipalType string = 'User'

@description('Optional. Name of the Key Vault key that signs provenance envelopes (ES256).')
param signingKeyName string = 'provenance-signing'

@description('Optional. Service Bus queue for batch submissions.')
param serviceBusBatchQueueName string = 'sandstorm-batches'

@description('Optional. Storage queue carrying batch work items to the function app.')
param storageBatchQueueName string = 'sandstorm-batches'

@description('Optional. Base URLs of the sandbox provider APIs.')
param providerBaseUrls {
  e2b: string
  daytona: string
  modal: string
} = {
  e2b: 'https://api.e2b.dev'
  daytona: 'https://app.daytona.io/api'
  modal: 'https://api.modal.com'
}

@description('Optional. Names of the Key Vault secrets holding provider credentials. Only names: operators set the values in the vault.')
param providerSecretNames {
  e2bApiKey: string
  daytonaApiKey: string
  modalTokenId: string
  modalTokenSecret: string
} = {
  e2bApiKey: 'e2b-api-key'
  daytonaApiKey: 'daytona-api-key'
  modalTokenId: 'modal-token-id'
  modalTokenSecret: 'modal-token-secret'
}

@description('Optional. NCRONTAB schedule of the reoptimize timer (six fields, seconds first).')
param reoptimizeSchedule string = '0 */30 * * * *'

@description('Optional. Durable Functions task hub name.')
param durableHubName string = 'SandstormHub'

var profiles = {
  dev: {
    storageSku: 'Standard_LRS'
    serviceBusSku: 'Standard'
    logRetentionInDays: 30
    keyVaultSoftDeleteDays: 7
    instanceMemoryMB: 2048
    maximumInstanceCount: 40
    maxConcurrentSessions: 10
    readySessionInstances: 0
  }
  prod: {
    storageSku: 'Standard_ZRS'
    serviceBusSku: 'Standard'
    logRetentionInDays: 90
    keyVaultSoftDeleteDays: 90
    instanceMemoryMB: 2048
    maximumInstanceCount: 200
    maxConcurrentSessions: 100
    readySessionInstances: 5
  }
}
var profile = profiles[environmentType]

// Globally unique, stable per subscription + environment + region.
var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = {
  'azd-env-name': environmentName
  application: 'sandstorm'
  environment: environmentType
}
var functionAppName = 'func-${resourceToken}'

resource rg 'Microsoft.Resources/resourceGroups@2025-04-01' = {
  name: empty(resourceGroupName) ? 'rg-${environmentName}' : resourceGroupName
  location: location
  tags: tags
}

module identity 'modules/identity.bicep' = {
  scope: rg
  params: {
    name: 'id-${resourceToken}'
    location: location
    tags: tags
  }
}

module storage 'modules/storage.bicep' = {
  scope: rg
  params: {
    name: 'st${resourceToken}'
    location: location
    tags: tags
    skuName: profile.storageSku
    deploymentContainerName: 'app-package-${functionAppName}'
    batchQueueName: storageBatchQueueName
  }
}

module monitoring 'modules/monitoring.bicep' = {
  scope: rg
  params: {
    workspaceName: 'log-${resourceToken}'
    appInsightsName: 'appi-${resourceToken}'
    location: location
    tags: tags
    retentionInDays: profile.logRetentionInDays
  }
}

module keyVault 'modules/keyvault.bicep' = {
  scope: rg
  params: {
    name: 'kv-${resourceToken}'
    location: location
    tags: tags
    signingKeyName: signingKeyName
    softDeleteRetentionInDays: profile.keyVaultSoftDeleteDays
  }
}

module serviceBus 'modules/servicebus.bicep' = {
  scope: rg
  params: {
    name: 'sb-${resourceToken}'
    location: location
    tags: tags
    skuName: profile.serviceBusSku
    batchQueueName: serviceBusBatchQueueName
  }
}

module sessionPool 'modules/sessionpool.bicep' = {
  scope: rg
  params: {
    name: 'sp-${resourceToken}'
    location: location
    tags: tags
    maxConcurrentSessions: profile.maxConcurrentSessions
    readySessionInstances: profile.readySessionInstances
  }
}

// Roles first: the app starts as soon as it exists and its host reads storage with these permissions.
module roles 'modules/roles.bicep' = {
  scope: rg
  params: {
    principalId: identity.outputs.principalId
    storageAccountName: storage.outputs.name
    keyVaultName: keyVault.outputs.name
    serviceBusNamespaceName: serviceBus.outputs.name
    appInsightsName: monitoring.outputs.appInsightsName
    sessionPoolName: sessionPool.outputs.name
    operatorPrincipalId: operatorPrincipalId
    operatorPrincipalType: operatorPrincipalType
  }
}

module functionApp 'modules/functionapp.bicep' = {
  scope: rg
  dependsOn: [
    roles
  ]
  params: {
    name: functionAppName
    planName: 'plan-${resourceToken}'
    location: location
    tags: tags
    serviceName: 'api'
    identityId: identity.outputs.id
    identityClientId: identity.outputs.clientId
    storageAccountName: storage.outputs.name
    deploymentContainerName: storage.outputs.deploymentContainerName
    appInsightsName: monitoring.outputs.appInsightsName
    instanceMemoryMB: profile.instanceMemoryMB
    maximumInstanceCount: profile.maximumInstanceCount
    keyVaultUri: keyVault.outputs.uri
    signingKeyName: keyVault.outputs.signingKeyName
    serviceBusNamespace: serviceBus.outputs.fullyQualifiedNamespace
    serviceBusBatchQueueName: serviceBus.outputs.batchQueueName
    storageBatchQueueName: storage.outputs.batchQueueName
    sessionPoolManagementEndpoint: sessionPool.outputs.poolManagementEndpoint
    providerBaseUrls: providerBaseUrls
    providerSecretNames: providerSecretNames
    reoptimizeSchedule: reoptimizeSchedule
    durableHubName: durableHubName
  }
}

// Outputs become azd environment values. Ids, names and URIs only.
@description('Region of the deployment.')
output AZURE_LOCATION string = location

@description('Resource group holding Sandstorm.')
output AZURE_RESOURCE_GROUP string = rg.name

@description('Name of the function app.')
output AZURE_FUNCTION_APP_NAME string = functionApp.outputs.name

@description('Base URL to give `sandstorm --control-plane` and `sandstorm-edge init --control-plane`.')
output SANDSTORM_CONTROL_PLANE_URL string = functionApp.outputs.uri

@description('Client id of the app identity.')
output AZURE_CLIENT_ID string = identity.outputs.clientId

@description('Resource id of the app identity.')
output AZURE_IDENTITY_ID string = identity.outputs.id

@description('Name of the storage account.')
output AZURE_STORAGE_ACCOUNT_NAME string = storage.outputs.name

@description('Name of the Key Vault.')
output AZURE_KEY_VAULT_NAME string = keyVault.outputs.name

@description('Data-plane URI of the Key Vault.')
output AZURE_KEY_VAULT_URI string = keyVault.outputs.uri

@description('Name of the provenance signing key.')
output SANDSTORM_SIGNING_KEY_NAME string = keyVault.outputs.signingKeyName

@description('Fully qualified Service Bus namespace.')
output AZURE_SERVICE_BUS_NAMESPACE string = serviceBus.outputs.fullyQualifiedNamespace

@description('Pool management endpoint of the dynamic sessions pool.')
output AZURE_SESSION_POOL_ENDPOINT string = sessionPool.outputs.poolManagementEndpoint

@description('Resource id of the Application Insights component.')
output AZURE_APP_INSIGHTS_ID string = monitoring.outputs.appInsightsId
