// Azure SignalR Service in Serverless mode.
//
// - Upstream: every hub, category and event goes to the connection-events function (route api/signalr/upstream).
//   Its function key is not in this template: the URL carries a Key Vault reference that the service resolves
//   with its own managed identity (re-read every 30 minutes), so rotating the key is a Key Vault write.
// - Access keys stay enabled because the service signs every upstream request with them (X-ASRS-Signature) and
//   the handler refuses unsigned ones; the key the handler checks with is written to Key Vault here, never output.
//   The app itself talks to the service with Entra ID (SignalR Service Owner), not with the key.

param location string
param signalRName string
param tags object
param workspaceId string

@allowed([ 'Standard_S1', 'Premium_P1' ])
param sku string

@minValue(1)
param capacity int

@description('Origins browsers connect from (the dashboard).')
param allowedOrigins array

@description('Host name of the Function App that receives upstream calls.')
param upstreamHost string

@description('Resource id of the identity SignalR uses to read the upstream key from Key Vault.')
param identityId string

@description('Principal of the Function App identity (SignalR Service Owner: REST calls and client tokens).')
param appPrincipalId string

param vaultName string
param vaultUri string

@description('Name of the Key Vault secret that holds the connection-events function key (written after publish).')
param upstreamKeySecretName string

@description('Name of the Key Vault secret this template writes: the access-key connection string for upstream signatures.')
param accessKeySecretName string

// SignalR Service Owner: REST API (send, groups) and minting client tokens through the service-issued key.
// SignalR REST API Owner would not let the app sign client tokens for negotiate.
var signalRServiceOwner = '7e4f1700-ea5a-4f59-8f37-079cfe29dce3'

var upstreamKeyReference = '{@Microsoft.KeyVault(SecretUri=${vaultUri}secrets/${upstreamKeySecretName}/)}'

resource signalR 'Microsoft.SignalRService/signalR@2023-02-01' = {
  name: signalRName
  location: location
  tags: tags
  kind: 'SignalR'
  sku: { name: sku, capacity: capacity }
  identity: { type: 'UserAssigned', userAssignedIdentities: { '${identityId}': {} } }
  properties: {
    features: [
      { flag: 'ServiceMode', value: 'Serverless' }
      { flag: 'EnableConnectivityLogs', value: 'True' }
      { flag: 'EnableMessagingLogs', value: 'False' }
    ]
    cors: { allowedOrigins: allowedOrigins }
    upstream: {
      templates: [
        {
          hubPattern: '*'
          categoryPattern: '*'
          eventPattern: '*'
          urlTemplate: 'https://${upstreamHost}/api/signalr/upstream?code=${upstreamKeyReference}'
        }
      ]
    }
    // Access keys sign upstream requests (see above); Entra ID stays on for the app.
    disableLocalAuth: false
    disableAadAuth: false
    publicNetworkAccess: 'Enabled'
    tls: { clientCertEnabled: false }
  }
}

resource owner 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(signalR.id, appPrincipalId, signalRServiceOwner)
  scope: signalR
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', signalRServiceOwner)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: vaultName
}

// Re-written on every deployment, so after `az signalr key renew` a redeploy (or the workflow) brings the vault
// up to date; the handler picks the new value up on its next refresh.
resource accessKeySecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  parent: vault
  name: accessKeySecretName
  properties: {
    // checkov:skip=CKV_AZURE_41: the value mirrors the SignalR access key and is rewritten on every deployment; an expiry date would stop the app on a date unrelated to the key's life (rotate with az signalr key renew, then redeploy).
    contentType: 'text/plain; azure-signalr-connection-string'
    value: signalR.listKeys().primaryConnectionString
  }
}

resource diagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'to-log-analytics'
  scope: signalR
  properties: {
    workspaceId: workspaceId
    logs: [ { categoryGroup: 'allLogs', enabled: true } ]
    metrics: [ { category: 'AllMetrics', enabled: true } ]
  }
}

output endpoint string = 'https://${signalR.properties.hostName}'
