// Log Analytics + workspace-based Application Insights. Local (instrumentation-key) auth is off, so
// telemetry is accepted only with an Entra ID token (the app identity holds Monitoring Metrics Publisher).

@description('Required. Log Analytics workspace name.')
param workspaceName string

@description('Required. Application Insights component name.')
param appInsightsName string

@description('Required. Azure region.')
param location string

@description('Optional. Tags applied to both resources.')
param tags { *: string } = {}

@description('Optional. Days logs are retained.')
@minValue(30)
@maxValue(730)
param retentionInDays int = 30

resource workspace 'Microsoft.OperationalInsights/workspaces@2025-02-01' = {
  name: workspaceName
  location: location
  tags: tags
  properties: {
    sku: {
      name: 'PerGB2018'
    }
    retentionInDays: retentionInDays
    features: {
      disableLocalAuth: true
      enableLogAccessUsingOnlyResourcePermissions: true
    }
  }
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' = {
  name: appInsightsName
  location: location
  tags: tags
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: workspace.id
    DisableLocalAuth: true
    IngestionMode: 'LogAnalytics'
  }
}

@description('Resource id of the Log Analytics workspace.')
output workspaceId string = workspace.id

@description('Resource id of the Application Insights component.')
output appInsightsId string = appInsights.id

@description('Name of the Application Insights component.')
output appInsightsName string = appInsights.name
