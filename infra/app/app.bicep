// The Function App on Flex Consumption (Python 3.11) and every app setting the app reads (shared/settings.py),
// with the contract's defaults (§10). Storage is reached with the user-assigned identity: the host's
// identity-based AzureWebJobsStorage settings, which the app's own table and queue clients read too. Secrets are
// Key Vault references, resolved with the same identity (keyVaultReferenceIdentity).
param name string
param location string
param tags object = {}
param planId string
param storageAccountName string
param deploymentContainerName string
param identityId string
param identityClientId string
param appInsightsName string
param secretsKeyUri string
param sentryClientSecretUri string = ''
param adoClientSecretUri string = ''
param sentryUrl string = 'https://sentry.io'
param sentryClientId string = ''
param instanceMemoryMB int = 2048
param maximumInstanceCount int = 100

resource storageAccount 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: appInsightsName
}

resource site 'Microsoft.Web/sites@2024-04-01' = {
  name: name
  location: location
  tags: union(tags, { 'azd-service-name': 'api' })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    serverFarmId: planId
    httpsOnly: true
    keyVaultReferenceIdentity: identityId
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storageAccount.properties.primaryEndpoints.blob}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        instanceMemoryMB: instanceMemoryMB
        maximumInstanceCount: maximumInstanceCount
      }
      runtime: {
        name: 'python'
        version: '3.11'
      }
    }
    siteConfig: {
      minTlsVersion: '1.2'
    }
  }
}

var keyVaultReference = '@Microsoft.KeyVault(SecretUri={0})'

// Secrets that are set only when given at `azd provision`.
var optionalSecrets = union(
  empty(sentryClientSecretUri) ? {} : { SENTRY_CLIENT_SECRET: format(keyVaultReference, sentryClientSecretUri) },
  empty(adoClientSecretUri) ? {} : { ADO_CLIENT_SECRET: format(keyVaultReference, adoClientSecretUri) }
)

resource appSettings 'Microsoft.Web/sites/config@2024-04-01' = {
  parent: site
  name: 'appsettings'
  properties: union(optionalSecrets, {
    // Storage: identity-based, no connection string (the app reads these too: contract §19).
    AzureWebJobsStorage__credential: 'managedidentity'
    AzureWebJobsStorage__clientId: identityClientId
    AzureWebJobsStorage__blobServiceUri: storageAccount.properties.primaryEndpoints.blob
    AzureWebJobsStorage__queueServiceUri: storageAccount.properties.primaryEndpoints.queue
    AzureWebJobsStorage__tableServiceUri: storageAccount.properties.primaryEndpoints.table
    // Application Insights, with identity-based ingestion.
    APPLICATIONINSIGHTS_CONNECTION_STRING: appInsights.properties.ConnectionString
    APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${identityClientId};Authorization=AAD'
    // The Python worker configures OpenTelemetry for the app's spans (host.json: telemetryMode OpenTelemetry).
    PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY: 'true'
    // The app's settings (contract §10), with their defaults.
    SECRETS_KEY: format(keyVaultReference, secretsKeyUri)
    WEBHOOK_PUBLIC_URL: 'https://${site.properties.defaultHostName}/api/vsts/issue-updated'
    TABLE_PREFIX: 'vsts'
    ADO_ACCOUNT_LOOKUP_URL: 'https://app.vssps.visualstudio.com/_apis/resourceareas/79134C72-4A58-4B42-976C-04E7115F32BF?hostId=%s'
    ADO_OAUTH_TOKEN_URL: 'https://app.vssps.visualstudio.com/oauth2/token'
    ADO_OAUTH_REDIRECT_URI: ''
    ADO_SEARCH_BASE_URL: '' // empty: derived from each organization's URL
    ADO_ALLOWED_ORIGINS: ''
    ADO_HTTP_TIMEOUT: '10'
    DOMAIN_CHECK_SCHEDULE: '0 0 * * * *'
    SUBSCRIPTION_CHECK_SCHEDULE: '0 0 */6 * * *'
    RECONCILE_SCHEDULE: '0 30 * * * *'
    CLEANUP_SCHEDULE: '0 45 3 * * *'
    SWEEP_SCHEDULE: '0 */2 * * * *'
    SWEEP_GRACE_SECONDS: '180'
    SENTRY_RECONCILE_SCHEDULE: '0 15 * * * *'
    TIMER_CONCURRENCY: '8'
    TIMER_BUDGET_SECONDS: '240'
    SECRET_GRACE_SECONDS: '86400'
    QUEUE_RETRY_BASE_SECONDS: '10'
    QUEUE_RETRY_MAX_SECONDS: '600'
    QUEUE_RETRY_WINDOW_SECONDS: '3600'
    SENTRY_URL: sentryUrl
    SENTRY_CLIENT_ID: sentryClientId
  })
}

output name string = site.name
output url string = 'https://${site.properties.defaultHostName}'
output webhookUrl string = 'https://${site.properties.defaultHostName}/api/vsts/issue-updated'
