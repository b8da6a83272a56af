// Key Vault (Azure RBAC) holding the app's secrets; app settings reference them (@Microsoft.KeyVault(...)), so no
// secret is an app setting's value. `azd down --purge` removes the vault for good (it is soft-deleted otherwise).
param name string
param location string
param tags object = {}

@secure()
param secretsKey string

@secure()
param sentryClientSecret string = ''

@secure()
param adoClientSecret string = ''

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    tenantId: subscription().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 7
    publicNetworkAccess: 'Enabled'
  }
}

resource secretsKeySecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  parent: vault
  name: 'SECRETS-KEY'
  properties: {
    value: secretsKey
  }
}

resource sentrySecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = if (!empty(sentryClientSecret)) {
  parent: vault
  name: 'SENTRY-CLIENT-SECRET'
  properties: {
    value: sentryClientSecret
  }
}

resource adoSecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = if (!empty(adoClientSecret)) {
  parent: vault
  name: 'ADO-CLIENT-SECRET'
  properties: {
    value: adoClientSecret
  }
}

output name string = vault.name
// Versionless URIs: a Key Vault reference then follows the secret's latest version.
output secretsKeyUri string = '${vault.properties.vaultUri}secrets/SECRETS-KEY'
output sentryClientSecretUri string = empty(sentryClientSecret) ? '' : '${vault.properties.vaultUri}secrets/SENTRY-CLIENT-SECRET'
output adoClientSecretUri string = empty(adoClientSecret) ? '' : '${vault.properties.vaultUri}secrets/ADO-CLIENT-SECRET'
