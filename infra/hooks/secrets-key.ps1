# SECRETS_KEY, made once per azd environment: a Fernet key (32 random bytes, URL-safe base64).
azd env get-value SECRETS_KEY *> $null
if ($LASTEXITCODE -ne 0) {
  $bytes = New-Object byte[] 32
  [System.Security.Cryptography.RandomNumberGenerator]::Create().GetBytes($bytes)
  $key = [Convert]::ToBase64String($bytes).Replace('+', '-').Replace('/', '_')
  azd env set SECRETS_KEY $key
  Write-Host "Made a new SECRETS_KEY for this environment (kept in .azure/, written to Key Vault)."
}
