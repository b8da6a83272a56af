// `azd up`: the app in a resource group of its own, keyless (contract §19). Modelled on Azure-Samples'
// functions-quickstart-python-http-azd: Flex Consumption, a user-assigned managed identity for storage,
// Application Insights and Key Vault; storage with shared-key access disabled.
targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('Name of the azd environment; it names the resource group and seeds every resource name.')
param environmentName string

@minLength(1)
@description('Region of every resource (one that offers Flex Consumption: az functionapp list-flexconsumption-locations).')
@metadata({ azd: { type: 'location' } })
param location string

@secure()
@description('SECRETS_KEY (a Fernet key): made once by the preprovision hook and kept in the azd environment.')
param secretsKey string

@description('SENTRY_URL: the origin of the Sentry the app is installed in.')
param sentryUrl string = 'https://sentry.io'

@description('SENTRY_CLIENT_ID of the Sentry App (empty: the Sentry routes stay off until it is set).')
param sentryClientId string = ''

@secure()
@description('SENTRY_CLIENT_SECRET of the Sentry App; stored in Key Vault (empty: not set).')
param sentryClientSecret string = ''

@secure()
@description('ADO_CLIENT_SECRET, only for legacy Azure DevOps OAuth credentials; stored in Key Vault (empty: not set).')
param adoClientSecret string = ''

var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = { 'azd-env-name': environmentName }
var functionAppName = 'func-${resourceToken}'
var deploymentContainerName = 'app-package-${take(functionAppName, 32)}-${take(toLower(uniqueString(functionAppName, resourceToken)), 7)}'

resource rg 'Microsoft.Resources/resourceGroups@2021-04-01' = {
  name: 'rg-${environmentName}'
  location: location
  tags: tags
}

// The one identity of the app: the Functions host and the app's own clients use it for storage (the host's
// identity-based AzureWebJobsStorage settings), Application Insights ingestion and Key Vault references.
module identity 'br/public:avm/res/managed-identity/user-assigned-identity:0.4.1' = {
  name: 'identity'
  scope: rg
  params: {
    name: 'id-${resourceToken}'
    location: location
    tags: tags
  }
}

module plan 'br/public:avm/res/web/serverfarm:0.1.1' = {
  name: 'plan'
  scope: rg
  params: {
    name: 'plan-${resourceToken}'
    sku: {
      name: 'FC1'
      tier: 'FlexConsumption'
    }
    reserved: true
    location: location
    tags: tags
  }
}

module storage 'br/public:avm/res/storage/storage-account:0.8.3' = {
  name: 'storage'
  scope: rg
  params: {
    name: 'st${resourceToken}'
    allowBlobPublicAccess: false
    allowSharedKeyAccess: false // no account key: every client uses the managed identity
    dnsEndpointType: 'Standard'
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
    blobServices: {
      containers: [ { name: deploymentContainerName } ]
    }
    minimumTlsVersion: 'TLS1_2'
    location: location
    tags: tags
  }
}

module logAnalytics 'br/public:avm/res/operational-insights/workspace:0.7.0' = {
  name: 'logAnalytics'
  scope: rg
  params: {
    name: 'log-${resourceToken}'
    location: location
    tags: tags
    dataRetention: 30
  }
}

module monitoring 'br/public:avm/res/insights/component:0.4.1' = {
  name: 'appInsights'
  scope: rg
  params: {
    name: 'appi-${resourceToken}'
    location: location
    tags: tags
    workspaceResourceId: logAnalytics.outputs.resourceId
    disableLocalAuth: true // ingestion with the identity only (Monitoring Metrics Publisher, in rbac.bicep)
  }
}

module vault 'app/keyvault.bicep' = {
  name: 'keyVault'
  scope: rg
  params: {
    name: 'kv-${resourceToken}'
    location: location
    tags: tags
    secretsKey: secretsKey
    sentryClientSecret: sentryClientSecret
    adoClientSecret: adoClientSecret
  }
}

module rbac 'app/rbac.bicep' = {
  name: 'rbac'
  scope: rg
  params: {
    storageAccountName: storage.outputs.name
    appInsightsName: monitoring.outputs.name
    keyVaultName: vault.outputs.name
    principalId: identity.outputs.principalId
  }
}

module app 'app/app.bicep' = {
  name: 'app'
  scope: rg
  dependsOn: [ rbac ] // the host reaches storage with the identity from its first start
  params: {
    name: functionAppName
    location: location
    tags: tags
    planId: plan.outputs.resourceId
    storageAccountName: storage.outputs.name
    deploymentContainerName: deploymentContainerName
    identityId: identity.outputs.resourceId
    identityClientId: identity.outputs.clientId
    appInsightsName: monitoring.outputs.name
    secretsKeyUri: vault.outputs.secretsKeyUri
    sentryClientSecretUri: vault.outputs.sentryClientSecretUri
    adoClientSecretUri: vault.outputs.adoClientSecretUri
    sentryUrl: sentryUrl
    sentryClientId: sentryClientId
  }
}

output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_NAME string = app.outputs.name
output APP_URL string = app.outputs.url
output WEBHOOK_URL string = app.outputs.webhookUrl
output STATUS_URL string = '${app.outputs.url}/api/status'
// The key itself is not an output (outputs are stored in plain text in .azure/): this command prints it.
output FUNCTION_KEY_COMMAND string = 'az functionapp keys list -g ${rg.name} -n ${app.outputs.name} --query functionKeys.default -o tsv'
