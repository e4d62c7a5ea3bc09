// The vault that holds every secret of the system. Access is Azure RBAC only (no access policies); soft delete and
// purge protection keep a deleted secret recoverable. The app and the SignalR service read secrets through their
// managed identities (Key Vault Secrets User); nobody gets a broader data-plane role from this template.

param location string
param vaultName string
param tags object
param workspaceId string

@description('Identities that read secrets: the Function App (Key Vault references) and SignalR (upstream URL key).')
param readerPrincipalIds array

@minValue(7)
@maxValue(90)
param softDeleteRetentionInDays int

// Key Vault Secrets User: read secret values, nothing else.
var keyVaultSecretsUser = '4633458b-17de-408a-b874-0445c86b69e6'

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: vaultName
  location: location
  tags: tags
  properties: {
    // checkov:skip=CKV_AZURE_109: no VNet in this design: the Flex workers and the SignalR service read references over the public endpoint; RBAC and Entra ID guard every read.
    // checkov:skip=CKV_AZURE_189: same reason as CKV_AZURE_109: public network access stays on, authorisation is RBAC-only.
    tenantId: subscription().tenantId
    sku: { family: 'A', name: 'standard' }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: softDeleteRetentionInDays
    enablePurgeProtection: true
    enabledForDeployment: false
    enabledForDiskEncryption: false
    enabledForTemplateDeployment: false
    publicNetworkAccess: 'Enabled'
    networkAcls: { defaultAction: 'Allow', bypass: 'AzureServices' }
  }
}

resource readers 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for principalId in readerPrincipalIds: {
  name: guid(vault.id, principalId, keyVaultSecretsUser)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultSecretsUser)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}]

// Who read which secret, and who was refused: the audit trail a vault exists for.
resource audit 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'audit-to-log-analytics'
  scope: vault
  properties: {
    workspaceId: workspaceId
    logs: [ { categoryGroup: 'audit', enabled: true } ]
    metrics: [ { category: 'AllMetrics', enabled: true } ]
  }
}

output name string = vault.name
output uri string = vault.properties.vaultUri
