// Static hosting of the dashboard (web/dist). Free tier: the page is static files and talks to the Function App
// cross-origin (the handler answers CORS for this origin; SignalR allows it too). Content is deployed by the
// workflow with a deployment token read at deploy time, never stored.

@description('Static Web Apps is offered in a few regions only.')
@allowed([ 'westus2', 'centralus', 'eastus2', 'westeurope', 'eastasia' ])
param location string
param siteName string
param tags object

resource site 'Microsoft.Web/staticSites@2023-12-01' = {
  name: siteName
  location: location
  tags: tags
  sku: { name: 'Free', tier: 'Free' }
  properties: {
    allowConfigFileUpdates: true
    stagingEnvironmentPolicy: 'Disabled'
  }
}

output name string = site.name
output origin string = 'https://${site.properties.defaultHostname}'
