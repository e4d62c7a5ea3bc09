// Log Analytics workspace and the workspace-based Application Insights component the Function App reports to.
// Local (instrumentation-key) authentication is off: telemetry is accepted only from identities holding
// Monitoring Metrics Publisher on this component, so a leaked connection string cannot be used to write into it.

param location string
param workspaceName string
param appInsightsName string
param tags object

@description('Principal that sends telemetry (the Function App identity).')
param publisherPrincipalId string

@minValue(30)
@maxValue(730)
param retentionInDays int

// Monitoring Metrics Publisher: the only role that lets an identity ingest telemetry (Entra-authenticated ingestion).
var monitoringMetricsPublisher = '3913510d-42f4-4e42-8a64-420c390055eb'

resource workspace 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: workspaceName
  location: location
  tags: tags
  properties: {
    sku: { name: 'PerGB2018' }
    retentionInDays: retentionInDays
    features: { disableLocalAuth: true }
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

resource publisher 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(appInsights.id, publisherPrincipalId, monitoringMetricsPublisher)
  scope: appInsights
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', monitoringMetricsPublisher)
    principalId: publisherPrincipalId
    principalType: 'ServicePrincipal'
  }
}

output workspaceId string = workspace.id
output connectionString string = appInsights.properties.ConnectionString
