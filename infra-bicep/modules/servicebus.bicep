// Service Bus namespace with SAS (local) auth disabled and the queue that carries batch submissions.

@description('Required. Namespace name (6-50 characters).')
@minLength(6)
@maxLength(50)
param name string

@description('Required. Azure region.')
param location string

@description('Optional. Tags applied to the namespace.')
param tags { *: string } = {}

@description('Optional. Namespace tier.')
@allowed([
  'Standard'
  'Premium'
])
param skuName string = 'Standard'

@description('Required. Name of the batch queue.')
param batchQueueName string

@description('Optional. Deliveries before a message is dead-lettered.')
@minValue(1)
@maxValue(100)
param maxDeliveryCount int = 10

resource namespace 'Microsoft.ServiceBus/namespaces@2026-01-01' = {
  name: name
  location: location
  tags: tags
  sku: {
    name: skuName
    tier: skuName
  }
  properties: {
    disableLocalAuth: true
    minimumTlsVersion: '1.2'
    publicNetworkAccess: 'Enabled'
  }
}

resource batchQueue 'Microsoft.ServiceBus/namespaces/queues@2026-01-01' = {
  parent: namespace
  name: batchQueueName
  properties: {
    lockDuration: 'PT1M'
    maxDeliveryCount: maxDeliveryCount
    deadLetteringOnMessageExpiration: true
    defaultMessageTimeToLive: 'P7D'
    requiresDuplicateDetection: true
    duplicateDetectionHistoryTimeWindow: 'PT10M'
    enablePartitioning: false
  }
}

@description('Resource id of the namespace.')
output id string = namespace.id

@description('Name of the namespace.')
output name string = namespace.name

@description('Fully qualified namespace host name, e.g. sb-x.servicebus.windows.net.')
output fullyQualifiedNamespace string = split(split(namespace.properties.serviceBusEndpoint, '//')[1], ':')[0]

@description('Name of the batch queue.')
output batchQueueName string = batchQueue.name
