// Analytics and shared state (presence, sync runs, marketplace status, counters) in Cosmos DB, serverless.
// Key-based access is off (data plane and metadata): the app uses Entra ID with the built-in Data Contributor
// role, a Cosmos DB SQL role assignment (data plane), not an Azure RBAC one. The database and the container are
// created here, because with local auth off an identity cannot create them through the data plane.

param location string
param accountName string
param databaseName string
param containerName string
param partitionKeyPath string
param tags object
param workspaceId string

@description('Default time to live of items in seconds (analytics events); documents that must not expire set ttl -1.')
param defaultTtl int

@description('Principal of the Function App identity (Cosmos DB Built-in Data Contributor on this account).')
param appPrincipalId string

// Cosmos DB Built-in Data Contributor (data plane: read and write items; no account or key management).
var cosmosDataContributor = '00000000-0000-0000-0000-000000000002'

resource account 'Microsoft.DocumentDB/databaseAccounts@2024-05-15' = {
  name: accountName
  location: location
  tags: tags
  kind: 'GlobalDocumentDB'
  properties: {
    // checkov:skip=CKV_AZURE_101: no VNet in this design: the Flex workers reach the account over the public endpoint; key auth is off, so only Entra-authorised identities get in.
    databaseAccountOfferType: 'Standard'
    locations: [ { locationName: location, failoverPriority: 0, isZoneRedundant: false } ]
    consistencyPolicy: { defaultConsistencyLevel: 'Session' }
    capabilities: [ { name: 'EnableServerless' } ]
    disableLocalAuth: true
    disableKeyBasedMetadataWriteAccess: true
    enableMultipleWriteLocations: false
    enableAutomaticFailover: false
    minimalTlsVersion: 'Tls12'
    publicNetworkAccess: 'Enabled'
    backupPolicy: { type: 'Continuous', continuousModeProperties: { tier: 'Continuous7Days' } }
  }
}

resource database 'Microsoft.DocumentDB/databaseAccounts/sqlDatabases@2024-05-15' = {
  parent: account
  name: databaseName
  properties: { resource: { id: databaseName } }
}

resource container 'Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers@2024-05-15' = {
  parent: database
  name: containerName
  properties: {
    resource: {
      id: containerName
      partitionKey: { paths: [ partitionKeyPath ], kind: 'Hash' }
      defaultTtl: defaultTtl
      // The store's own policy (crates/store, cosmos.rs): only what queries filter on is indexed, since every
      // indexed path adds to each write's RU cost; documents are read by id.
      indexingPolicy: {
        indexingMode: 'consistent'
        automatic: true
        includedPaths: [ { path: '/pk/?' }, { path: '/atMs/?' }, { path: '/kind/?' } ]
        excludedPaths: [ { path: '/*' } ]
      }
    }
  }
}

resource dataContributor 'Microsoft.DocumentDB/databaseAccounts/sqlRoleAssignments@2024-05-15' = {
  parent: account
  name: guid(account.id, appPrincipalId, cosmosDataContributor)
  properties: {
    roleDefinitionId: '${account.id}/sqlRoleDefinitions/${cosmosDataContributor}'
    principalId: appPrincipalId
    scope: account.id
  }
}

resource diagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'to-log-analytics'
  scope: account
  properties: {
    workspaceId: workspaceId
    logs: [ { categoryGroup: 'allLogs', enabled: true } ]
  }
}

output endpoint string = account.properties.documentEndpoint
