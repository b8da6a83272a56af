# What to do next, from the deployment's outputs.
$values = @{}
azd env get-values | ForEach-Object { if ($_ -match '^([A-Z_]+)="?(.*?)"?$') { $values[$Matches[1]] = $Matches[2] } }
Write-Host "App:     $($values.APP_URL)  (health: $($values.APP_URL)/api/health)"
Write-Host "Webhook: $($values.WEBHOOK_URL)  (what the Azure DevOps service hook calls)"
Write-Host "Function key (for the admin API and /api/status?code=...): $($values.FUNCTION_KEY_COMMAND)"
