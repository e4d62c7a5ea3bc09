// MesChain Realtime: everything one environment needs, in one resource group.
//
//   az deployment group create -g <rg> -f infra/main.bicep -p @infra/main.parameters.json
//
// Secrets: none is a parameter or appears in this file. The SignalR access key is copied by ARM from the
// service into Key Vault; the connection-events function key and the marketplace credentials are written to
// Key Vault by the operator (README, "Deploying"). The app reads them through Key Vault references.

targetScope = 'resourceGroup'

@description('Short name every resource name is built from: 3-11 lowercase letters and digits, starting with a letter.')
@minLength(3)
@maxLength(11)
param baseName string = 'meschain'

param location string = resourceGroup().location

@description('Region of the Static Web App (offered in a few regions only).')
@allowed([ 'westus2', 'centralus', 'eastus2', 'westeurope', 'eastasia' ])
param staticWebAppLocation string = 'westeurope'

@description('OpenID Connect issuer whose tokens negotiate accepts, e.g. https://login.microsoftonline.com/<tenant-id>/v2.0.')
param authOidcIssuer string

@description('Required audience (aud) of login tokens: the API application id or its URI.')
param authAudience string

@description('Client id of the dashboard (single-page app registration) the page signs in with.')
param dashboardClientId string

@description('Scopes the dashboard asks for: its access token must carry authAudience as aud.')
param dashboardScope string = 'openid profile offline_access ${authAudience}/.default'

@description('More browser origins allowed besides the dashboard, e.g. a custom domain. No wildcards.')
param extraAllowedOrigins array = []

@allowed([ 'Standard_S1', 'Premium_P1' ])
param signalRSku string = 'Standard_S1'

@minValue(1)
@maxValue(100)
param signalRCapacity int = 1

@minValue(60)
@maxValue(86400)
param signalRTokenLifetimeSeconds int = 3600

@description('Six-field NCRONTAB schedule of admin-broadcast.')
param adminBroadcastSchedule string = '*/5 * * * * *'

@description('Wire the store\'s catalogue (OpenCart\'s MySQL database): the Key Vault secret catalog-mysql-url, written by the operator first, holds mysql://reader:password@host:3306/database.')
param catalogEnabled bool = false

@description('Run the catalog-sync timer (changed-items stock and price syncs of every configured marketplace). Needs catalogEnabled.')
param catalogSyncEnabled bool = false

@description('NCRONTAB of the catalog-sync timer (six fields); the host needs a valid one even while the timer is off.')
param catalogSyncSchedule string = '0 */15 * * * *'

@description('Hosts an itemsUrl sync request may name (comma-separated; exact, or *.example.com). Empty: itemsUrl requests are refused.')
param itemsUrlAllowedHosts string = ''

@allowed([ 512, 2048, 4096 ])
param instanceMemoryMB int = 512

@minValue(40)
@maxValue(1000)
param maximumInstanceCount int = 40

param syncQueueName string = 'marketplace-sync'

@minValue(1)
@maxValue(100)
param syncMaxDeliveryCount int = 10

@description('Lock duration of the sync queue (ISO 8601, at most PT5M). The host renews it while the function runs.')
param syncLockDuration string = 'PT1M'

@description('Time to live of a sync request. Stock and price values are absolute: a request nobody ran within a day is dead-lettered rather than applied late.')
param syncMessageTimeToLive string = 'P1D'

param cosmosDatabaseName string = 'meschain'
param cosmosContainerName string = 'events'
param cosmosPartitionKeyPath string = '/pk'

@description('How long analytics events are kept (seconds): the container\'s default TTL, which events inherit; shared-state documents set ttl -1 and never expire (crates/store, cosmos.rs).')
@minValue(3600)
param analyticsTtlSeconds int = 2592000

@description('Trendyol seller id. Empty: no Trendyol credentials are wired (the secrets would not exist yet).')
param trendyolSellerId string = ''

@description('Hepsiburada merchant id (a GUID). Empty: no Hepsiburada credentials are wired (the service key secret would not exist yet).')
param hepsiburadaMerchantId string = ''
@description('The integrator user name Hepsiburada gave the integration, sent as User-Agent.')
param hepsiburadaIntegrator string = ''

@description('Wire the N11 app key and secret (Key Vault secrets n11-app-key and n11-app-secret, written by the operator first).')
param n11Enabled bool = false

@description('Ozon Client-Id. Empty: no Ozon credentials are wired (the API key secret would not exist yet).')
param ozonClientId string = ''
@description('The Ozon FBS warehouse whose stock syncs set (from Ozon\'s /v1/warehouse/list).')
param ozonWarehouseId string = ''
@description('The Ozon account\'s currency, sent with every price.')
@allowed(['RUB', 'BYN', 'KZT', 'EUR', 'USD', 'CNY'])
param ozonCurrency string = 'RUB'

@description('eBay application (client) id. Empty: no eBay credentials are wired (the secrets would not exist yet).')
param ebayClientId string = ''
@description('The eBay marketplace of the seller\'s offers.')
param ebayMarketplaceId string = 'EBAY_US'
@description('Currency of prices sent to eBay.')
param ebayCurrency string = 'USD'

@description('Amazon SP-API merchant token (selling partner id). Empty: no Amazon credentials are wired (the secrets would not exist yet).')
param amazonSellerId string = ''

@description('Amazon marketplace id the listings and orders belong to (Turkey by default).')
param amazonMarketplaceId string = 'A33AVAJ2PDY3EV'

@description('Login with Amazon client id of the SP-API application (not a secret; its client secret is in Key Vault).')
param amazonClientId string = ''

@minValue(30)
@maxValue(730)
param logRetentionInDays int = 30

param tags object = { application: 'meschain-realtime' }

var suffix = take(uniqueString(subscription().id, resourceGroup().id, baseName), 8)
var names = {
  appIdentity: 'id-${baseName}-app-${suffix}'
  signalRIdentity: 'id-${baseName}-sigr-${suffix}'
  workspace: 'log-${baseName}-${suffix}'
  appInsights: 'appi-${baseName}-${suffix}'
  storage: 'st${baseName}${suffix}'
  plan: 'plan-${baseName}-${suffix}'
  functionApp: 'func-${baseName}-${suffix}'
  keyVault: 'kv-${baseName}-${suffix}'
  signalR: 'sigr-${baseName}-${suffix}'
  serviceBus: 'sb-${baseName}-${suffix}'
  cosmos: 'cosmos-${baseName}-${suffix}'
  staticWebApp: 'stapp-${baseName}-${suffix}'
  deploymentContainer: 'app-package'
}

// Key Vault secret names. Written by: this template (signalRAccessKey), scripts/upstream-key.sh (upstreamKey),
// the operator (catalogMysqlUrl, trendyol*, hepsiburada*, n11*, ozon*, ebay*, amazon*).
var secretNames = {
  signalRAccessKey: 'signalr-access-key-connection-string'
  upstreamKey: 'signalr-upstream-key'
  trendyolApiKey: 'trendyol-api-key'
  trendyolApiSecret: 'trendyol-api-secret'
  catalogMysqlUrl: 'catalog-mysql-url'
  hepsiburadaServiceKey: 'hepsiburada-service-key'
  n11AppKey: 'n11-app-key'
  n11AppSecret: 'n11-app-secret'
  ozonApiKey: 'ozon-api-key'
  ebayClientSecret: 'ebay-client-secret'
  ebayRefreshToken: 'ebay-refresh-token'
  amazonClientSecret: 'amazon-client-secret'
  amazonRefreshToken: 'amazon-refresh-token'
}

var vaultUri = 'https://${names.keyVault}${environment().suffixes.keyvaultDns}/'
var signalRHost = '${names.signalR}.service.signalr.net'

resource appIdentity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: names.appIdentity
  location: location
  tags: tags
}

resource signalRIdentity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: names.signalRIdentity
  location: location
  tags: tags
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  params: {
    location: location
    workspaceName: names.workspace
    appInsightsName: names.appInsights
    tags: tags
    publisherPrincipalId: appIdentity.properties.principalId
    retentionInDays: logRetentionInDays
  }
}

module storage 'modules/storage.bicep' = {
  name: 'storage'
  params: {
    location: location
    storageName: names.storage
    tags: tags
    deploymentContainerName: names.deploymentContainer
    appPrincipalId: appIdentity.properties.principalId
  }
}

module keyVault 'modules/keyvault.bicep' = {
  name: 'keyvault'
  params: {
    location: location
    vaultName: names.keyVault
    tags: tags
    workspaceId: monitoring.outputs.workspaceId
    readerPrincipalIds: [ appIdentity.properties.principalId, signalRIdentity.properties.principalId ]
    softDeleteRetentionInDays: 90
  }
}

module serviceBus 'modules/servicebus.bicep' = {
  name: 'servicebus'
  params: {
    location: location
    namespaceName: names.serviceBus
    queueName: syncQueueName
    tags: tags
    workspaceId: monitoring.outputs.workspaceId
    appPrincipalId: appIdentity.properties.principalId
    maxDeliveryCount: syncMaxDeliveryCount
    lockDuration: syncLockDuration
    messageTimeToLive: syncMessageTimeToLive
  }
}

module cosmos 'modules/cosmos.bicep' = {
  name: 'cosmos'
  params: {
    location: location
    accountName: names.cosmos
    databaseName: cosmosDatabaseName
    containerName: cosmosContainerName
    partitionKeyPath: cosmosPartitionKeyPath
    defaultTtl: analyticsTtlSeconds
    tags: tags
    workspaceId: monitoring.outputs.workspaceId
    appPrincipalId: appIdentity.properties.principalId
  }
}

module staticWeb 'modules/staticweb.bicep' = {
  name: 'staticweb'
  params: {
    location: staticWebAppLocation
    siteName: names.staticWebApp
    tags: tags
  }
}

var allowedOrigins = concat([ staticWeb.outputs.origin ], extraAllowedOrigins)

var keyVaultReference = '@Microsoft.KeyVault(SecretUri=${vaultUri}secrets/'

// Identity-based connections: <connection>__fullyQualifiedNamespace / __accountName with the user-assigned
// identity's client id. The prefixes are the `connection` values in the function.json files.
var connectionSettings = {
  AzureWebJobsStorage__accountName: names.storage
  AzureWebJobsStorage__credential: 'managedidentity'
  AzureWebJobsStorage__clientId: appIdentity.properties.clientId
  ServiceBusConnection__fullyQualifiedNamespace: '${names.serviceBus}.servicebus.windows.net'
  ServiceBusConnection__credential: 'managedidentity'
  ServiceBusConnection__clientId: appIdentity.properties.clientId
  APPLICATIONINSIGHTS_CONNECTION_STRING: monitoring.outputs.connectionString
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${appIdentity.properties.clientId};Authorization=AAD'
  // azure_identity's ManagedIdentityCredential picks the user-assigned identity by this client id.
  AZURE_CLIENT_ID: appIdentity.properties.clientId
}

var handlerSettings = {
  // REST calls and client tokens with Entra ID (SignalR Service Owner); no key in the setting.
  AzureSignalRConnectionString: 'Endpoint=https://${signalRHost};AuthType=azure.msi;ClientId=${appIdentity.properties.clientId};Version=1.0;'
  // An access key of the same instance, only to verify the signatures of upstream requests.
  AzureSignalRSecondaryConnectionString: '${keyVaultReference}${secretNames.signalRAccessKey}/)'
  AUTH_OIDC_ISSUER: authOidcIssuer
  AUTH_ISSUER: authOidcIssuer
  AUTH_AUDIENCE: authAudience
  AUTH_TRUST_EASY_AUTH: 'false'
  CORS_ALLOWED_ORIGINS: join(allowedOrigins, ',')
  SIGNALR_TOKEN_LIFETIME_SECONDS: string(signalRTokenLifetimeSeconds)
  ADMIN_BROADCAST_SCHEDULE: adminBroadcastSchedule
  SYNC_QUEUE_NAME: syncQueueName
  COSMOS_ENDPOINT: cosmos.outputs.endpoint
  COSMOS_DATABASE: cosmosDatabaseName
  COSMOS_CONTAINER: cosmosContainerName
  // The database and container are provisioned here; with local auth off the app could not create them anyway.
  COSMOS_CREATE_IF_MISSING: 'false'
  ANALYTICS_TTL_SECONDS: string(analyticsTtlSeconds)
  // Key Vault references the handler resolves itself (and refreshes), with the app identity (AZURE_CLIENT_ID).
  SECRETS_CREDENTIAL: 'managed-identity'
  SECRETS_REFRESH_SECONDS: '300'
  // A sync checkpoints and continues on the queue before host.json's functionTimeout (5 min) cuts it off.
  SYNC_TIME_BUDGET_SECONDS: '240'
  // The Functions host switch for one function: the timer stays off until the operator turns it on.
  'AzureWebJobs.catalog-sync.Disabled': catalogEnabled && catalogSyncEnabled ? 'false' : 'true'
  ITEMS_URL_ALLOWED_HOSTS: itemsUrlAllowedHosts
  CATALOG_SYNC_SCHEDULE: catalogSyncSchedule
  RUST_LOG: 'info'
}

var catalogSettings = catalogEnabled ? {
  CATALOG_MYSQL_URL: '${keyVaultReference}${secretNames.catalogMysqlUrl}/)'
} : {}

var trendyolSettings = empty(trendyolSellerId) ? {} : {
  TRENDYOL_SELLER_ID: trendyolSellerId
  TRENDYOL_API_KEY: '${keyVaultReference}${secretNames.trendyolApiKey}/)'
  TRENDYOL_API_SECRET: '${keyVaultReference}${secretNames.trendyolApiSecret}/)'
}

var hepsiburadaSettings = empty(hepsiburadaMerchantId) ? {} : {
  HEPSIBURADA_MERCHANT_ID: hepsiburadaMerchantId
  HEPSIBURADA_INTEGRATOR: hepsiburadaIntegrator
  HEPSIBURADA_SERVICE_KEY: '${keyVaultReference}${secretNames.hepsiburadaServiceKey}/)'
}

var n11Settings = n11Enabled ? {
  N11_APP_KEY: '${keyVaultReference}${secretNames.n11AppKey}/)'
  N11_APP_SECRET: '${keyVaultReference}${secretNames.n11AppSecret}/)'
} : {}

var ozonSettings = empty(ozonClientId) ? {} : {
  OZON_CLIENT_ID: ozonClientId
  OZON_WAREHOUSE_ID: ozonWarehouseId
  OZON_CURRENCY: ozonCurrency
  OZON_API_KEY: '${keyVaultReference}${secretNames.ozonApiKey}/)'
}

var ebaySettings = empty(ebayClientId) ? {} : {
  EBAY_CLIENT_ID: ebayClientId
  EBAY_MARKETPLACE_ID: ebayMarketplaceId
  EBAY_CURRENCY: ebayCurrency
  EBAY_CLIENT_SECRET: '${keyVaultReference}${secretNames.ebayClientSecret}/)'
  EBAY_REFRESH_TOKEN: '${keyVaultReference}${secretNames.ebayRefreshToken}/)'
}

var amazonSettings = empty(amazonSellerId) ? {} : {
  AMAZON_SELLER_ID: amazonSellerId
  AMAZON_MARKETPLACE_ID: amazonMarketplaceId
  AMAZON_CLIENT_ID: amazonClientId
  AMAZON_CLIENT_SECRET: '${keyVaultReference}${secretNames.amazonClientSecret}/)'
  AMAZON_REFRESH_TOKEN: '${keyVaultReference}${secretNames.amazonRefreshToken}/)'
}

module functionApp 'modules/functionapp.bicep' = {
  name: 'functionapp'
  params: {
    location: location
    planName: names.plan
    appName: names.functionApp
    tags: tags
    workspaceId: monitoring.outputs.workspaceId
    identityId: appIdentity.id
    deploymentContainerUrl: storage.outputs.deploymentContainerUrl
    instanceMemoryMB: instanceMemoryMB
    maximumInstanceCount: maximumInstanceCount
    appSettings: union(connectionSettings, handlerSettings, catalogSettings, trendyolSettings, hepsiburadaSettings, n11Settings, ozonSettings, ebaySettings, amazonSettings)
  }
}

module signalR 'modules/signalr.bicep' = {
  name: 'signalr'
  params: {
    location: location
    signalRName: names.signalR
    tags: tags
    workspaceId: monitoring.outputs.workspaceId
    sku: signalRSku
    capacity: signalRCapacity
    allowedOrigins: allowedOrigins
    upstreamHost: functionApp.outputs.defaultHostName
    identityId: signalRIdentity.id
    appPrincipalId: appIdentity.properties.principalId
    vaultName: keyVault.outputs.name
    vaultUri: keyVault.outputs.uri
    upstreamKeySecretName: secretNames.upstreamKey
    accessKeySecretName: secretNames.signalRAccessKey
  }
}

var apiBaseUrl = 'https://${functionApp.outputs.defaultHostName}/api'

output functionAppName string = functionApp.outputs.name
output negotiateUrl string = '${apiBaseUrl}/negotiate'
output dashboardUrl string = '${staticWeb.outputs.origin}/'
output staticWebAppName string = staticWeb.outputs.name
output signalREndpoint string = signalR.outputs.endpoint
output syncQueueName string = serviceBus.outputs.queueName
output serviceBusNamespace string = serviceBus.outputs.fullyQualifiedNamespace
output keyVaultName string = keyVault.outputs.name
output upstreamKeySecretName string = secretNames.upstreamKey
output cosmosEndpoint string = cosmos.outputs.endpoint

@description('The dashboard page\'s config.json (web/src/lib/auth.js parseConfig): where the API is and how to sign in.')
output dashboardConfig object = {
  apiBase: apiBaseUrl
  oidc: {
    authority: authOidcIssuer
    clientId: dashboardClientId
    scope: dashboardScope
  }
}
