#!/bin/sh
# SECRETS_KEY, made once per azd environment: a Fernet key (32 random bytes, URL-safe base64).
set -eu
if ! azd env get-value SECRETS_KEY >/dev/null 2>&1; then
  key=$(python3 -c 'import base64, os; print(base64.urlsafe_b64encode(os.urandom(32)).decode())')
  azd env set SECRETS_KEY "$key"
  echo "Made a new SECRETS_KEY for this environment (kept in .azure/, written to Key Vault)."
fi
