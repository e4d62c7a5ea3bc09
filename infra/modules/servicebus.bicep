// The sync queue. Local (SAS) authentication is off: senders and the trigger use Entra ID.
//
// Lock duration: the Functions host renews the lock while the function runs (host.json
// extensions.serviceBus.maxAutoLockRenewalDuration, 5 min = functionTimeout), so the lock itself stays short:
// when an instance dies mid-message, the message is redelivered after one lock period, not after five minutes.

param location string
param namespaceName string
param queueName string
param tags object
param workspaceId string

@description('Principal of the Function App identity: receives (trigger) and sends (connection-events, continuations).')
param appPrincipalId string

@minValue(1)
@maxValue(100)
param maxDeliveryCount int

@description('ISO 8601 lock duration, at most PT5M (the service maximum).')
param lockDuration string

@description('ISO 8601 time to live of a sync request; expired requests go to the dead-letter queue.')
param messageTimeToLive string

var serviceBusDataReceiver = '4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0'
var serviceBusDataSender = '69a216fc-b8fb-44d8-bc22-1f3c2cd27a39'

resource namespace 'Microsoft.ServiceBus/namespaces@2024-01-01' = {
  name: namespaceName
  location: location
  tags: tags
  sku: { name: 'Standard', tier: 'Standard' }
  properties: {
    disableLocalAuth: true
    minimumTlsVersion: '1.2'
    publicNetworkAccess: 'Enabled'
  }
}

resource queue 'Microsoft.ServiceBus/namespaces/queues@2024-01-01' = {
  parent: namespace
  name: queueName
  properties: {
    maxDeliveryCount: maxDeliveryCount
    lockDuration: lockDuration
    deadLetteringOnMessageExpiration: true
    defaultMessageTimeToLive: messageTimeToLive
    enableBatchedOperations: true
    maxSizeInMegabytes: 1024
    requiresSession: false
    // Not enabled: the handler already makes a redelivered or repeated request idempotent (sync id in the store),
    // and broker-side duplicate detection cannot be turned off again once the queue exists.
    requiresDuplicateDetection: false
  }
}

resource receiver 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(queue.id, appPrincipalId, serviceBusDataReceiver)
  scope: queue
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', serviceBusDataReceiver)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource sender 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(queue.id, appPrincipalId, serviceBusDataSender)
  scope: queue
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', serviceBusDataSender)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource diagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'to-log-analytics'
  scope: namespace
  properties: {
    workspaceId: workspaceId
    logs: [ { categoryGroup: 'allLogs', enabled: true } ]
    metrics: [ { category: 'AllMetrics', enabled: true } ]
  }
}

output fullyQualifiedNamespace string = '${namespace.name}.servicebus.windows.net'
output queueName string = queue.name
