"""Credentials of an integration as an `Authorization` header (contract §7.2).

- `pat`: `Basic base64(":" + token)`.
- `oauth` (Azure DevOps OAuth, legacy): `Bearer` access token; when it has expired it is refreshed once,
  for all instances: the refresher first claims the integration entity under its ETag, so a concurrent
  instance sees the claim, waits, and uses the winner's token instead of spending the (rotating) refresh
  token a second time.
- `entra` (Microsoft Entra ID service principal): client credentials for the Azure DevOps scope through
  `azure-identity`, imported only when an integration uses it; tokens are cached in memory until expiry.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from shared.ado_client import AdoUnauthorized, AdoUnavailable, refresh_oauth_token
from shared.integrations import Integration, IntegrationStore
from shared.settings import Settings

log = logging.getLogger(__name__)

ENTRA_SCOPE = "499b84ac-1321-427f-aa17-267ca6975798/.default"
EXPIRY_MARGIN_SECONDS = 60  # refresh a little early: a token must not expire between check and use
REFRESH_CLAIM_SECONDS = 30  # how long a refresher's claim holds other instances off
REFRESH_WAIT_SECONDS = 20  # how long an instance waits for another's refresh before giving up
POLL_SECONDS = 0.1

_local_locks: dict[str, threading.Lock] = {}
_local_locks_guard = threading.Lock()
_entra: dict[tuple[str, str, str], Any] = {}
_entra_guard = threading.Lock()


class CredentialsInvalid(AdoUnauthorized):
    """The stored credentials cannot be used at all (missing fields, unknown type)."""


def pat_header(token: str) -> str:
    return "Basic " + base64.b64encode(f":{token}".encode()).decode("ascii")


def oauth_expired(credentials: dict[str, Any], now: float) -> bool:
    expires_at = credentials.get("expires_at")
    return not isinstance(expires_at, (int, float)) or expires_at - EXPIRY_MARGIN_SECONDS <= now


def authorization_for(integration: Integration, store: IntegrationStore, settings: Settings) -> Callable[[], str]:
    """A function that returns the current Authorization header for the integration's requests."""
    credentials = integration.credentials
    kind = credentials.get("type")
    if kind == "pat" and isinstance(credentials.get("token"), str):
        header = pat_header(credentials["token"])
        return lambda: header
    if kind == "oauth" and isinstance(credentials.get("access_token"), str):
        state = {"integration": integration}

        def oauth() -> str:
            current: Integration = state["integration"]
            if oauth_expired(current.credentials, time.time()):
                current = refresh_oauth(store, current.id, settings)
                state["integration"] = current
            return f"Bearer {current.credentials['access_token']}"

        return oauth
    if kind == "entra" and all(
        isinstance(credentials.get(k), str) for k in ("tenant_id", "client_id", "client_secret")
    ):
        return lambda: f"Bearer {entra_token(credentials)}"
    raise CredentialsInvalid("the integration's stored credentials are incomplete")


def _local_lock(integration_id: str) -> threading.Lock:
    with _local_locks_guard:
        return _local_locks.setdefault(integration_id, threading.Lock())


def refresh_oauth(store: IntegrationStore, integration_id: str, settings: Settings) -> Integration:
    """The integration with a fresh OAuth access token: refreshed here, or by whoever got there first."""
    # Threads of this instance queue here; instances queue on the claim in the entity.
    with _local_lock(integration_id):
        deadline = time.monotonic() + REFRESH_WAIT_SECONDS
        while True:
            current = store.get(integration_id)
            if current is None:
                raise CredentialsInvalid("the integration no longer exists")
            now = time.time()
            if not oauth_expired(current.credentials, now):
                return current  # refreshed meanwhile, here or by another instance
            if (current.refresh_lock_until or 0) <= now:
                claimed = store.replace_if_unchanged(
                    current, replace(current, refresh_lock_until=now + REFRESH_CLAIM_SECONDS)
                )
                if claimed is not None:
                    return _refresh_claimed(store, claimed, settings)
            if time.monotonic() > deadline:
                raise AdoUnavailable("another instance is refreshing the OAuth token; try again shortly", 5.0)
            time.sleep(POLL_SECONDS)


def _refresh_claimed(store: IntegrationStore, claimed: Integration, settings: Settings) -> Integration:
    credentials = claimed.credentials
    try:
        answer = refresh_oauth_token(
            settings.oauth_token_url,
            refresh_token=str(credentials.get("refresh_token", "")),
            client_secret=settings.client_secret,
            redirect_uri=settings.oauth_redirect_uri,
            timeout=settings.http_timeout,
        )
    except Exception:
        store.replace_if_unchanged(claimed, replace(claimed, refresh_lock_until=None))
        raise
    expires_in = _seconds(answer.get("expires_in"))
    fresh = {
        **credentials,
        "access_token": answer["access_token"],
        # Azure DevOps rotates refresh tokens: the old one is spent, keep the new one.
        "refresh_token": answer.get("refresh_token") or credentials.get("refresh_token"),
        # No expires_in: assume an hour rather than leave the token "expired" and refresh on every call.
        "expires_at": time.time() + (expires_in if expires_in is not None else 3600),
    }
    updated = replace(claimed, credentials=fresh, refresh_lock_until=None, needs_reauth=False)
    saved = store.replace_if_unchanged(claimed, updated)
    if saved is None:
        # Someone wrote the entity while we held the claim (an admin update): keep their data, add the tokens.
        saved = store.update(
            claimed.id, lambda cur: replace(cur, credentials={**cur.credentials, **fresh}, refresh_lock_until=None)
        )
    log.info("Refreshed the OAuth token of integration %s", claimed.id)
    return saved or updated


def _seconds(value: Any) -> float | None:
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return None
    return seconds if seconds > 0 else None


def entra_token(credentials: dict[str, Any]) -> str:
    """An Entra ID access token for Azure DevOps, for a service principal (cached by azure-identity)."""
    from azure.core.exceptions import ClientAuthenticationError
    from azure.identity import ClientSecretCredential

    secret_hash = hashlib.sha256(credentials["client_secret"].encode()).hexdigest()
    key = (credentials["tenant_id"], credentials["client_id"], secret_hash)
    with _entra_guard:
        credential = _entra.get(key)
        if credential is None:
            credential = ClientSecretCredential(
                credentials["tenant_id"], credentials["client_id"], credentials["client_secret"]
            )
            _entra[key] = credential
    try:
        return credential.get_token(ENTRA_SCOPE).token
    except ClientAuthenticationError:
        raise AdoUnauthorized("Microsoft Entra ID refused the service principal's credentials") from None
