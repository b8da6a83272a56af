"""An integration's stored credentials as a live `Authorization` header (contract §7.2).

A legacy OAuth token that has expired is refreshed once, for all instances (`shared.connections.refresh`): a
concurrent instance waits and uses the winner's token instead of spending the rotating refresh token again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from shared.ado.client import AdoUnavailable, refresh_oauth_token
from shared.ado.credentials import CredentialsInvalid, entra_token, oauth_expired, pat_header
from shared.clock import SYSTEM, Clock
from shared.connections.obtained import save_obtained
from shared.connections.refresh import refresh_once
from shared.settings import Settings
from shared.store.integrations import Integration, IntegrationStore

log = logging.getLogger(__name__)


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
        return lambda: f"Bearer {entra_token(credentials, settings.entra_authority_host)}"
    raise CredentialsInvalid("the integration's stored credentials are incomplete")


def refresh_oauth(
    store: IntegrationStore, integration_id: str, settings: Settings, clock: Clock = SYSTEM
) -> Integration:
    """The integration with a fresh OAuth access token: refreshed here, or by whoever got there first."""

    def read() -> Integration:
        current = store.get(integration_id)
        if current is None:
            raise CredentialsInvalid("the integration no longer exists")
        return current

    return refresh_once(
        ("ado", integration_id),
        read=read,
        due=lambda current, now: oauth_expired(current.credentials, now),
        replace_if_unchanged=store.replace_if_unchanged,
        refresh_claimed=lambda claimed: _refresh_claimed(store, claimed, settings, clock),
        busy=lambda: AdoUnavailable("another instance is refreshing the OAuth token; try again shortly", 5.0),
        now=time.time,
        clock=clock,
    )


def _refresh_claimed(store: IntegrationStore, claimed: Integration, settings: Settings, clock: Clock) -> Integration:
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

    def keep_theirs(current: Integration) -> Integration:
        # Someone wrote the entity while we held the claim, or an earlier attempt of this save did. Keep what they
        # wrote; the refreshed tokens belong in it only while it still holds the credentials that were refreshed
        # (an admin PUT of new credentials wins).
        if current.credentials == credentials:
            return replace(current, credentials=fresh, refresh_lock_until=None, needs_reauth=False)
        return replace(current, refresh_lock_until=None)

    def save() -> Integration | None:
        return store.replace_if_unchanged(claimed, updated) or store.update(claimed.id, keep_theirs)

    # Azure DevOps rotated the refresh token: the new one is saved before anything else can fail, and tried again.
    saved = save_obtained(save, f"The refreshed OAuth token of integration {claimed.id}", clock=clock)
    log.info("Refreshed the OAuth token of integration %s", claimed.id)
    # The request under way uses the token it refreshed, even when new credentials replaced it meanwhile.
    return saved if saved is not None and saved.credentials == fresh else updated


def _seconds(value: Any) -> float | None:
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return None
    return seconds if seconds > 0 else None
