"""The only code that speaks HTTP to Azure DevOps: `client` (requests, retries, typed errors), `domains` (which
URLs may receive credentials), `credentials` (Authorization headers), `subscriptions` (service hooks)."""
