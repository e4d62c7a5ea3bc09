// The Function App on a Linux Flex Consumption plan, runtime "custom": the host starts `handler` (host.json
// customHandler) and forwards invocations to it. It runs as one user-assigned identity, which reads Key Vault
// references, storage, Service Bus, Cosmos DB and SignalR; no connection string or key sits in its settings.
//
// On Flex, FUNCTIONS_WORKER_RUNTIME and WEBSITE_RUN_FROM_PACKAGE are left out (the runtime is declared in
// functionAppConfig and the package lives in the deployment container), and so is FUNCTIONS_EXTENSION_VERSION.

param location string
param planName string
param appName string
param tags object
param workspaceId string

@description('Resource id of the app identity.')
param identityId string

@description('Blob container URL of the deployment package (Flex one-deploy).')
param deploymentContainerUrl string

@allowed([ 512, 2048, 4096 ])
param instanceMemoryMB int

@minValue(40)
@maxValue(1000)
param maximumInstanceCount int

@description('App settings: the complete set (a deployment replaces settings set by hand).')
param appSettings object

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: { tier: 'FlexConsumption', name: 'FC1' }
  properties: {
    // checkov:skip=CKV_AZURE_225: zone redundancy on Flex Consumption is a per-region preview and doubles the always-ready cost; the app is stateless and rescheduled by the platform.
    reserved: true
  }
}

resource app 'Microsoft.Web/sites@2024-04-01' = {
  name: appName
  location: location
  tags: tags
  kind: 'functionapp,linux'
  identity: { type: 'UserAssigned', userAssignedIdentities: { '${identityId}': {} } }
  properties: {
    // checkov:skip=CKV_AZURE_17: browsers and the SignalR upstream cannot present client certificates; callers are authenticated by bearer token (negotiate) and function key plus upstream signature (connection-events).
    // checkov:skip=CKV_AZURE_222: the app is a public API: browsers call negotiate and SignalR calls the upstream over the internet.
    // checkov:skip=CKV_AZURE_213: Flex Consumption has no health-check probe setting; the host itself polls the handler (GET /) before sending work.
    // checkov:skip=CKV_AZURE_212: Flex Consumption scales out on demand; a fixed minimum instance count does not apply.
    serverFarmId: plan.id
    httpsOnly: true
    clientCertEnabled: false
    publicNetworkAccess: 'Enabled'
    keyVaultReferenceIdentity: identityId
    siteConfig: {
      minTlsVersion: '1.2'
      scmMinTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
      // The handler answers CORS itself (with credentials, for the listed origins); platform CORS would answer
      // preflights before the handler sees them.
      cors: { allowedOrigins: [] }
      appSettings: [for setting in items(appSettings): { name: setting.key, value: setting.value }]
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: deploymentContainerUrl
          authentication: { type: 'UserAssignedIdentity', userAssignedIdentityResourceId: identityId }
        }
      }
      scaleAndConcurrency: { maximumInstanceCount: maximumInstanceCount, instanceMemoryMB: instanceMemoryMB }
      runtime: { name: 'custom', version: '1.0' }
    }
  }
}

// Basic (publishing-credential) auth off for both deployment endpoints: deploys use Entra ID.
resource scmBasicAuth 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: app
  name: 'scm'
  properties: { allow: false }
}

resource ftpBasicAuth 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: app
  name: 'ftp'
  properties: { allow: false }
}

resource diagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'to-log-analytics'
  scope: app
  properties: {
    workspaceId: workspaceId
    logs: [ { category: 'FunctionAppLogs', enabled: true } ]
    metrics: [ { category: 'AllMetrics', enabled: true } ]
  }
}

output name string = app.name
output defaultHostName string = app.properties.defaultHostName
