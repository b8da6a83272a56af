#!/bin/sh
# What to do next, from the deployment's outputs.
set -eu
eval "$(azd env get-values | grep -E '^(APP_URL|WEBHOOK_URL|FUNCTION_KEY_COMMAND)=')"
echo "App:     $APP_URL  (health: $APP_URL/api/health)"
echo "Webhook: $WEBHOOK_URL  (what the Azure DevOps service hook calls)"
echo "Function key (for the admin API and /api/status?code=...): $FUNCTION_KEY_COMMAND"
