// Key Vault holding the provenance signing key (EC P-256, sign/verify only: the private key never leaves
// the vault) and the provider API keys the app reads as Key Vault references. Access is RBAC-only.

@description('Required. Key Vault name (3-24 characters).')
@minLength(3)
@maxLength(24)
param name string

@description('Required. Azure region.')
param location string

@description('Optional. Tags applied to the vault.')
param tags { *: string } = {}

@description('Required. Name of the ES256 signing key.')
param signingKeyName string

@description('Optional. How long after creation a signing key version is rotated (ISO 8601 duration).')
param signingKeyRotateAfter string = 'P90D'

@description('Optional. How long a signing key version stays valid (ISO 8601 duration); must exceed the rotation period.')
param signingKeyExpiresAfter string = 'P1Y'

@description('Optional. Days a deleted vault or object can be recovered.')
@minValue(7)
@maxValue(90)
param softDeleteRetentionInDays int = 90

resource vault 'Microsoft.KeyVault/vaults@2026-02-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    tenantId: tenant().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enablePurgeProtection: true
    enableSoftDelete: true
    softDeleteRetentionInDays: softDeleteRetentionInDays
    enabledForDeployment: false
    enabledForDiskEncryption: false
    enabledForTemplateDeployment: false
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: 'Allow'
    }
  }
}

// ARM creates the first version; later versions come from the rotation policy (or `az keyvault key rotate`).
// Verifiers look keys up by key id (which names the version), so bundles signed with an old version still verify.
resource signingKey 'Microsoft.KeyVault/vaults/keys@2026-02-01' = {
  parent: vault
  name: signingKeyName
  properties: {
    kty: 'EC'
    curveName: 'P-256'
    keyOps: [
      'sign'
      'verify'
    ]
    attributes: {
      enabled: true
      exportable: false
    }
    rotationPolicy: {
      attributes: {
        expiryTime: signingKeyExpiresAfter
      }
      lifetimeActions: [
        {
          action: {
            type: 'rotate'
          }
          trigger: {
            timeAfterCreate: signingKeyRotateAfter
          }
        }
        {
          action: {
            type: 'notify'
          }
          trigger: {
            timeBeforeExpiry: 'P30D'
          }
        }
      ]
    }
  }
}

@description('Resource id of the vault.')
output id string = vault.id

@description('Name of the vault.')
output name string = vault.name

@description('Data-plane URI of the vault.')
output uri string = vault.properties.vaultUri

@description('Name of the signing key.')
output signingKeyName string = signingKey.name

@description('Versionless URI of the signing key (public key lookups and signing go through the latest version).')
output signingKeyUri string = signingKey.properties.keyUri
