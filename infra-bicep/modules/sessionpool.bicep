// Azure Container Apps dynamic sessions: Hyper-V isolated Python sandboxes the router can use for the
// `maximum` isolation level. Sessions get no outbound network.

@description('Required. Session pool name.')
param name string

@description('Required. Azure region (must offer dynamic sessions).')
param location string

@description('Optional. Tags applied to the pool.')
param tags { *: string } = {}

@description('Optional. Upper bound on concurrent sessions.')
@minValue(1)
param maxConcurrentSessions int = 20

@description('Optional. Sessions kept warm and ready.')
@minValue(0)
param readySessionInstances int = 0

@description('Optional. Seconds an idle session lives before it is destroyed.')
@minValue(300)
@maxValue(3600)
param cooldownPeriodInSeconds int = 300

resource pool 'Microsoft.App/sessionPools@2026-01-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    poolManagementType: 'Dynamic'
    containerType: 'PythonLTS'
    scaleConfiguration: {
      maxConcurrentSessions: maxConcurrentSessions
      readySessionInstances: readySessionInstances
    }
    dynamicPoolConfiguration: {
      lifecycleConfiguration: {
        lifecycleType: 'Timed'
        cooldownPeriodInSeconds: cooldownPeriodInSeconds
      }
    }
    sessionNetworkConfiguration: {
      status: 'EgressDisabled'
    }
  }
}

@description('Resource id of the session pool.')
output id string = pool.id

@description('Name of the session pool.')
output name string = pool.name

@description('Pool management endpoint the app calls to run code in a session.')
output poolManagementEndpoint string = pool.properties.poolManagementEndpoint
