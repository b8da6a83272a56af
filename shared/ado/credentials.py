"""Credentials as an `Authorization` header (contract §7.2), without storage: `shared.connections.ado` adds the
stored integration and the once-across-instances OAuth refresh.

- `pat`: `Basic base64(":" + token)`.
- `oauth` (Azure DevOps OAuth, legacy): `Bearer` access token, refreshed when `oauth_expired`.
- `entra` (Microsoft Entra ID service principal): client credentials for the Azure DevOps scope through
  `azure-identity`, imported only when an integration uses it; tokens are cached in memory until expiry. With
  `AZURE_AUTHORITY_HOST` (azure-identity's own setting: a national cloud, Azure Stack) the token comes from that
  host, which is then trusted as it is (no instance discovery at login.microsoftonline.com, which knows no
  Azure Stack host).
"""

from __future__ import annotations

import base64
import hashlib
import re
from typing import Any

from shared.ado.client import AdoUnauthorized
from shared.caching import PerKey

ENTRA_SCOPE = "499b84ac-1321-427f-aa17-267ca6975798/.default"
EXPIRY_MARGIN_SECONDS = 60  # refresh a little early: a token must not expire between check and use

_entra: PerKey[Any] = PerKey()


class CredentialsInvalid(AdoUnauthorized):
    """The stored credentials cannot be used at all (missing fields, unknown type)."""


class EntraRefused(AdoUnauthorized):
    """Microsoft Entra ID refused the service principal; `code` is its AADSTS error code when it gave one
    (AADSTS90002, no such tenant, also when msal could not read the tenant's configuration at all)."""

    def __init__(self, message: str, code: str | None) -> None:
        super().__init__(message)
        self.code = code


def _aadsts_code(text: str) -> str | None:
    found = re.search(r"AADSTS\d+", text)
    if found:
        return found.group(0)
    return "AADSTS90002" if "Unable to get authority configuration" in text else None


def pat_header(token: str) -> str:
    return "Basic " + base64.b64encode(f":{token}".encode()).decode("ascii")


def oauth_expired(credentials: dict[str, Any], now: float) -> bool:
    expires_at = credentials.get("expires_at")
    return not isinstance(expires_at, (int, float)) or expires_at - EXPIRY_MARGIN_SECONDS <= now


def entra_token(credentials: dict[str, Any], authority_host: str | None = None) -> str:
    """An Entra ID access token for Azure DevOps, for a service principal (cached by azure-identity), from
    `authority_host` (the AZURE_AUTHORITY_HOST setting) or the public cloud."""
    from azure.core.exceptions import ClientAuthenticationError
    from azure.identity import ClientSecretCredential

    secret_hash = hashlib.sha256(credentials["client_secret"].encode()).hexdigest()
    key = (credentials["tenant_id"], credentials["client_id"], secret_hash, authority_host)
    tenant_id, client_id, secret = credentials["tenant_id"], credentials["client_id"], credentials["client_secret"]
    options: dict[str, Any] = {}
    if authority_host:
        options = {"authority": authority_host, "disable_instance_discovery": True}
    credential = _entra.get(key, lambda: ClientSecretCredential(tenant_id, client_id, secret, **options))
    try:
        return credential.get_token(ENTRA_SCOPE).token
    except ClientAuthenticationError as exc:
        code = _aadsts_code(str(exc))
        detail = f" ({code})" if code else ""
        raise EntraRefused(f"Microsoft Entra ID refused the service principal's credentials{detail}", code) from None
