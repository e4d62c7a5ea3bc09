// The Function App's own storage: host state (timer leases, keys) and the Flex Consumption deployment container.
// Shared keys are disabled: the app reaches it only with its managed identity (identity-based AzureWebJobsStorage).

param location string
param storageName string
param tags object
param deploymentContainerName string

@description('Principal of the Function App identity (Storage Blob Data Owner: host leases, keys and the package).')
param appPrincipalId string

// Storage Blob Data Owner: the host takes blob leases (timer singleton) and writes its keys; Flex reads the package.
var storageBlobDataOwner = 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: storageName
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: { name: 'Standard_ZRS' }
  properties: {
    // checkov:skip=CKV_AZURE_43: the name is built in main.bicep ('st' + baseName + an 8-character suffix: 13-21 lowercase letters and digits), which this check cannot evaluate; infra/tests checks it against the 3-24 limit.
    // checkov:skip=CKV_AZURE_59: Flex Consumption without VNet integration reaches its storage over the public endpoint; shared keys are off, so only Entra-authorised identities get in.
    // checkov:skip=CKV_AZURE_35: same reason: a default-deny firewall would lock out the Flex workers, which have no fixed addresses without VNet integration.
    // checkov:skip=CKV_AZURE_206: ZRS is enough for host state and a package that CI can re-upload; geo-replication would only add cost.
    accessTier: 'Hot'
    allowBlobPublicAccess: false
    allowSharedKeyAccess: false
    allowCrossTenantReplication: false
    defaultToOAuthAuthentication: true
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    publicNetworkAccess: 'Enabled'
    networkAcls: { defaultAction: 'Allow', bypass: 'AzureServices' }
    encryption: {
      keySource: 'Microsoft.Storage'
      requireInfrastructureEncryption: true
      services: {
        blob: { enabled: true, keyType: 'Account' }
        file: { enabled: true, keyType: 'Account' }
      }
    }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: storage
  name: 'default'
  properties: {
    deleteRetentionPolicy: { enabled: true, days: 7 }
    containerDeleteRetentionPolicy: { enabled: true, days: 7 }
  }
}

resource deploymentContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: deploymentContainerName
  properties: { publicAccess: 'None' }
}

resource blobOwner 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, appPrincipalId, storageBlobDataOwner)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataOwner)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

output deploymentContainerUrl string = '${storage.properties.primaryEndpoints.blob}${deploymentContainer.name}'
