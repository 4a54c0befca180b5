// Flex Consumption (FC1) plan and the Sandstorm function app. The app runs as the user-assigned identity:
// host storage, Key Vault references, Application Insights and the Sandstorm clients all use Entra ID tokens.
// Flex Consumption sets the runtime through functionAppConfig; FUNCTIONS_WORKER_RUNTIME and
// FUNCTIONS_EXTENSION_VERSION must not appear in app settings there (the deployment is rejected).

@description('Required. Function app name (becomes <name>.azurewebsites.net).')
param name string

@description('Required. Flex Consumption plan name.')
param planName string

@description('Required. Azure region (must offer Flex Consumption).')
param location string

@description('Optional. Tags applied to the plan and the app (the app also gets azd-service-name).')
param tags { *: string } = {}

@description('Required. azd service name, tagged on the app so `azd deploy` finds it.')
param serviceName string

@description('Required. Resource id of the user-assigned identity.')
param identityId string

@description('Required. Client id of the user-assigned identity.')
param identityClientId string

@description('Required. Storage account name (host storage and deployment package).')
param storageAccountName string

@description('Required. Blob container holding the deployment package.')
param deploymentContainerName string

@description('Required. Application Insights component name.')
param appInsightsName string

@description('Optional. Memory per instance in MB.')
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

@description('Optional. Upper bound on scale-out instances.')
@minValue(1)
@maxValue(1000)
param maximumInstanceCount int = 100

@description('Required. Data-plane URI of the Key Vault (ends with a slash).')
param keyVaultUri string

@description('Required. Name of the provenance signing key in the vault.')
param signingKeyName string

@description('Required. Fully qualified Service Bus namespace.')
param serviceBusNamespace string

@description('Required. Service Bus queue for batch submissions.')
param serviceBusBatchQueueName string

@description('Required. Storage queue carrying batch work items.')
param storageBatchQueueName string

@description('Required. Pool management endpoint of the dynamic sessions pool.')
param sessionPoolManagementEndpoint string

@description('Required. Base URLs of the sandbox providers.')
param providerBaseUrls {
  e2b: string
  daytona: string
  modal: string
}

@description('Required. Names of the Key Vault secrets holding provider credentials (the values are set out of band).')
param providerSecretNames {
  e2bApiKey: string
  daytonaApiKey: string
  modalTokenId: string
  modalTokenSecret: string
}

@description('Required. NCRONTAB schedule of the reoptimize timer.')
param reoptimizeSchedule string

@description('Required. Durable Functions task hub name.')
param durableHubName string

resource storage 'Microsoft.Storage/storageAccounts@2025-06-01' existing = {
  name: storageAccountName
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: appInsightsName
}

resource plan 'Microsoft.Web/serverfarms@2025-03-01' = {
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  properties: {
    reserved: true
  }
}

resource app 'Microsoft.Web/sites@2025-03-01' = {
  name: name
  location: location
  tags: union(tags, { 'azd-service-name': serviceName })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    clientCertEnabled: false
    keyVaultReferenceIdentity: identityId
    siteConfig: {
      minTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
      // Host wiring: identity-based AzureWebJobsStorage (the Functions host and Durable Functions) and
      // Entra ID-authenticated telemetry. No connection string carries a key.
      // The Sandstorm__* names must match Sandstorm.Core.Configuration.SandstormSettings (a test checks both ways).
      appSettings: [
        {
          name: 'AzureWebJobsStorage__accountName'
          value: storage.name
        }
        {
          name: 'AzureWebJobsStorage__credential'
          value: 'managedidentity'
        }
        {
          name: 'AzureWebJobsStorage__clientId'
          value: identityClientId
        }
        {
          name: 'AzureWebJobsStorage__blobServiceUri'
          value: storage.properties.primaryEndpoints.blob
        }
        {
          name: 'AzureWebJobsStorage__queueServiceUri'
          value: storage.properties.primaryEndpoints.queue
        }
        {
          name: 'AzureWebJobsStorage__tableServiceUri'
          value: storage.properties.primaryEndpoints.table
        }
        {
          name: 'AZURE_CLIENT_ID'
          value: identityClientId
        }
        {
          name: 'APPLICATIONINSIGHTS_CONNECTION_STRING'
          value: appInsights.properties.ConnectionString
        }
        {
          name: 'APPLICATIONINSIGHTS_AUTHENTICATION_STRING'
          value: 'ClientId=${identityClientId};Authorization=AAD'
        }
        {
          name: 'Sandstorm__KeyVault__Uri'
          value: keyVaultUri
        }
        {
          name: 'Sandstorm__Signing__Signer'
          value: 'keyvault'
        }
        {
          name: 'Sandstorm__Signing__KeyName'
          value: signingKeyName
        }
        {
          name: 'Sandstorm__ServiceBus__FullyQualifiedNamespace'
          value: serviceBusNamespace
        }
        {
          name: 'Sandstorm__ServiceBus__BatchQueue'
          value: serviceBusBatchQueueName
        }
        {
          name: 'Sandstorm__Storage__BatchQueue'
          value: storageBatchQueueName
        }
        {
          name: 'Sandstorm__Providers__E2B__BaseUrl'
          value: providerBaseUrls.e2b
        }
        {
          name: 'Sandstorm__Providers__Daytona__BaseUrl'
          value: providerBaseUrls.daytona
        }
        {
          name: 'Sandstorm__Providers__Modal__BaseUrl'
          value: providerBaseUrls.modal
        }
        {
          name: 'Sandstorm__Providers__Aca__PoolManagementEndpoint'
          value: sessionPoolManagementEndpoint
        }
        {
          name: 'Sandstorm__Identity__ClientId'
          value: identityClientId
        }
        {
          name: 'Sandstorm__Reoptimize__Schedule'
          value: reoptimizeSchedule
        }
        {
          name: 'Sandstorm__Durable__HubName'
          value: durableHubName
        }
        // Provider credentials: Key Vault references, resolved by the platform with the app identity
        // (keyVaultReferenceIdentity). The template names the secrets; their values are set out of band.
        {
          name: 'Sandstorm__Providers__E2B__ApiKey'
          value: '@Microsoft.KeyVault(SecretUri=${keyVaultUri}secrets/${providerSecretNames.e2bApiKey}/)'
        }
        {
          name: 'Sandstorm__Providers__Daytona__ApiKey'
          value: '@Microsoft.KeyVault(SecretUri=${keyVaultUri}secrets/${providerSecretNames.daytonaApiKey}/)'
        }
        {
          name: 'Sandstorm__Providers__Modal__TokenId'
          value: '@Microsoft.KeyVault(SecretUri=${keyVaultUri}secrets/${providerSecretNames.modalTokenId}/)'
        }
        {
          name: 'Sandstorm__Providers__Modal__TokenSecret'
          value: '@Microsoft.KeyVault(SecretUri=${keyVaultUri}secrets/${providerSecretNames.modalTokenSecret}/)'
        }
      ]
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storage.properties.primaryEndpoints.blob}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        instanceMemoryMB: instanceMemoryMB
        maximumInstanceCount: maximumInstanceCount
      }
      runtime: {
        name: 'dotnet-isolated'
        version: '10.0'
      }
    }
  }
}

// Publishing credentials (basic auth) stay off: deployments authenticate with Entra ID.
resource scmBasicAuth 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2025-03-01' = {
  parent: app
  name: 'scm'
  properties: {
    allow: false
  }
}

resource ftpBasicAuth 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2025-03-01' = {
  parent: app
  name: 'ftp'
  properties: {
    allow: false
  }
}

@description('Resource id of the function app.')
output id string = app.id

@description('Name of the function app.')
output name string = app.name

@description('Resource id of the Flex Consumption plan.')
output planId string = plan.id

@description('HTTPS base URL of the function app.')
output uri string = 'https://${app.properties.defaultHostName}'
