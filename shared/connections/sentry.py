"""A Sentry installation's stored tokens as a live client (contract §13.2).

A public integration's token expires after 8 hours. It is refreshed before `expires_at`, once for all
instances (`shared.connections.refresh`): a concurrent instance waits and uses the winner's token instead of
spending the single-use refresh token again.
An internal integration's token never expires. A token Sentry refuses (401) before its expiry (revoked, or the
clocks apart) is refreshed the same way, once, and the call sent again; a refused refresh marks the installation
`needs_reauth`. A 403 is a permission, not the token: it is never refreshed (`SentryForbidden`). An installation
marked `needs_reauth` makes no call at all (neither the API nor the token endpoint) until a new token or a
reinstall clears the mark: its messages are parked (`shared.sentryapp.parking`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from shared.clock import SYSTEM, Clock
from shared.connections.obtained import save_obtained
from shared.connections.refresh import refresh_once
from shared.model.sentry import SentryInstallation
from shared.sentry.client import DEFAULT_TIMEOUT_SECONDS, SentryClient, SentryUnauthorized, SentryUnavailable
from shared.sentry.tokens import TokenGrant, obtain_tokens, token_expired
from shared.settings import get_settings
from shared.store.sentry import SentryStore

log = logging.getLogger(__name__)


class InstallationUnusable(SentryUnauthorized):
    """The installation is disabled, has no token, or needs to be installed again: no call can be made."""


def client_for(
    installation: SentryInstallation,
    *,
    store: SentryStore | None = None,
    timeout: float | Callable[[], float] = DEFAULT_TIMEOUT_SECONDS,
    clock: Clock = SYSTEM,
) -> SentryClient:
    """A client on the installation's behalf whose token is refreshed (once, for all instances) when due, and
    whose refused token marks the installation `needs_reauth`."""
    if not installation.active or not installation.token:
        raise InstallationUnusable("the Sentry installation is disabled or has no token")
    return _InstallationClient(installation, store or SentryStore(), timeout, clock)


class _InstallationClient(SentryClient):
    """A SentryClient whose token is the installation's current one: refreshed when due, and once more when
    Sentry refuses it early (then the call is sent again, once: Sentry did nothing with a refused request)."""

    def __init__(
        self,
        installation: SentryInstallation,
        store: SentryStore,
        timeout: float | Callable[[], float],
        clock: Clock,
    ) -> None:
        super().__init__(get_settings().sentry_url, self._token, timeout=timeout, clock=clock)
        self._installation = installation
        self._store = store

    def _token(self) -> str:
        if token_expired(self._installation.expires_at, self._clock.now()):
            self._installation = refresh(self._store, self._installation.uuid, clock=self._clock)
        assert self._installation.token is not None
        return self._installation.token

    def call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, str] | None = None,
        scope: str | None = None,
    ) -> Any:
        if self._installation.needs_reauth:  # parked: Sentry refused its tokens, so nothing is sent until new ones
            raise InstallationUnusable("the Sentry installation needs a new token (needs_reauth)")
        try:
            return super().call(method, path, json=json, params=params, scope=scope)
        except InstallationUnusable:
            raise
        except SentryUnauthorized:
            refused = self._installation
            if not refused.refresh_token:
                raise  # an internal integration's token: only a new one entered by an admin helps
            self._installation = refresh(self._store, refused.uuid, clock=self._clock, refused=refused.token)
            return super().call(method, path, json=json, params=params, scope=scope)


def mark_needs_reauth(store: SentryStore, uuid: str) -> None:
    """Sentry refused the installation's token: say so (the status page and the admin GET show it)."""
    store.update(uuid, lambda current: None if current.needs_reauth else replace(current, needs_reauth=True))


def refresh(store: SentryStore, uuid: str, *, clock: Clock = SYSTEM, refused: str | None = None) -> SentryInstallation:
    """The installation with a token that is not due (nor the `refused` one): refreshed here, or by whoever got
    there first."""

    def read() -> SentryInstallation:
        current = store.get(uuid)
        if current is None or not current.active or not current.token:
            raise InstallationUnusable("the Sentry installation is gone, disabled or has no token")
        return current

    def due(current: SentryInstallation, now: float) -> bool:
        if not token_expired(current.expires_at, now) and (refused is None or current.token != refused):
            return False
        if not current.refresh_token:
            mark_needs_reauth(store, uuid)
            raise InstallationUnusable("the Sentry token expired and there is no refresh token; install again")
        return True

    return refresh_once(
        ("sentry", uuid),
        read=read,
        due=due,
        replace_if_unchanged=store.replace_if_unchanged,
        refresh_claimed=lambda claimed: _refresh_claimed(store, claimed, clock),
        busy=lambda: SentryUnavailable(
            "another instance is refreshing the Sentry token; try again shortly", retry_after=5.0
        ),
        now=clock.now,
        clock=clock,
    )


def tokens_for(
    uuid: str, *, code: str | None = None, refresh_token: str | None = None, clock: Clock = SYSTEM
) -> TokenGrant:
    """The installation's tokens from Sentry, for the grant code of `installation.created` or a refresh token,
    with the app's client id and secret from the settings."""
    settings = get_settings()
    return obtain_tokens(
        settings.sentry_url,
        uuid,
        client_id=settings.sentry_client_id,
        client_secret=settings.sentry_client_secret,
        code=code,
        refresh_token=refresh_token,
        clock=clock,
    )


def _refresh_claimed(store: SentryStore, claimed: SentryInstallation, clock: Clock) -> SentryInstallation:
    try:
        grant = tokens_for(claimed.uuid, refresh_token=claimed.refresh_token, clock=clock)
    except SentryUnauthorized:
        store.replace_if_unchanged(claimed, replace(claimed, refresh_lock_until=None, needs_reauth=True))
        raise
    except Exception:
        store.replace_if_unchanged(claimed, replace(claimed, refresh_lock_until=None))
        raise
    fresh = {"token": grant.token, "refresh_token": grant.refresh_token or claimed.refresh_token}
    updated = replace(claimed, **fresh, expires_at=grant.expires_at, refresh_lock_until=None, needs_reauth=False)

    def keep_theirs(current: SentryInstallation) -> SentryInstallation:
        # Someone wrote the entity while we held the claim (an uninstall, a new token), or an earlier attempt of
        # this save did: the refreshed tokens belong in it only while it holds the tokens that were refreshed.
        if (current.token, current.refresh_token) == (claimed.token, claimed.refresh_token):
            return replace(current, **fresh, expires_at=grant.expires_at, refresh_lock_until=None)
        return replace(current, refresh_lock_until=None)

    def save() -> SentryInstallation | None:
        return store.replace_if_unchanged(claimed, updated) or store.update(claimed.uuid, keep_theirs)

    # The old refresh token is spent: the new pair is saved before anything else can fail, and tried again.
    saved = save_obtained(save, f"The refreshed Sentry tokens of installation {claimed.uuid}", clock=clock)
    log.info("Refreshed the Sentry token of installation %s", claimed.uuid)
    return saved if saved is not None and saved.token == grant.token else updated


def installation_for_org(org_id: str, store: SentryStore | None = None) -> SentryInstallation | None:
    """The active installation of a tracker organization `sentry-<slug>`, or None."""
    installation = (store or SentryStore()).for_org(org_id)
    return installation if installation is not None and installation.active else None
