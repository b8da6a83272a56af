"""An installation's tokens (contract §13.2): the grant exchange and refresh, and when a token is due.

The refresh itself needs the stored tokens, so it lives with them (connections/); what is here is pure, apart
from the two calls, which go through `shared.sentry.client.send` like every Sentry call.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from shared.clock import SYSTEM, Clock
from shared.sentry.client import DEFAULT_TIMEOUT_SECONDS, SentryError, SentryRejected, SentryUnauthorized, segment, send

AUTHORIZATIONS_PATH = "/api/0/sentry-app-installations/{uuid}/authorizations/"


@dataclass(frozen=True)
class TokenGrant:
    """An installation's tokens. `expires_at` is epoch seconds; None for an internal integration's token."""

    token: str = field(repr=False)
    refresh_token: str | None = field(repr=False)
    expires_at: float | None


def token_expired(expires_at: float | None, now: float, margin: float = 300.0) -> bool:
    """Whether a token expiring at `expires_at` must be refreshed before use at `now` (both epoch seconds).
    `margin` covers the clock skew and the call in flight; a token without expiry (internal) never expires."""
    return expires_at is not None and now >= expires_at - margin


def parse_expires_at(value: object) -> float | None:
    """Sentry's `expiresAt` (ISO 8601, e.g. `2026-01-01T08:00:00.123456Z`) as epoch seconds; None when absent."""
    if value is None:
        return None
    try:
        when = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        when = None
    if when is None or when.tzinfo is None:  # a time without a zone cannot be placed: refuse, never guess
        raise SentryError("Sentry answered an expiresAt that is not an ISO 8601 time with a zone")
    return when.timestamp()


def _grant(origin: str, installation_uuid: str, body: dict[str, str], timeout: float, clock: Clock) -> TokenGrant:
    url = origin + AUTHORIZATIONS_PATH.format(uuid=segment(installation_uuid))
    try:
        answer = send("POST", url, origin=origin, timeout=timeout, json=body, clock=clock)
    except SentryRejected as exc:  # an expired or used grant, a wrong client: only installing again helps
        raise SentryUnauthorized(f"Sentry refused the token exchange ({exc.status})", status=exc.status) from None
    token = answer.get("token") if isinstance(answer, dict) else None
    if not isinstance(token, str) or not token:
        raise SentryError("Sentry answered the token exchange without a token")
    refresh = answer.get("refreshToken")
    return TokenGrant(
        token, refresh if isinstance(refresh, str) and refresh else None, parse_expires_at(answer.get("expiresAt"))
    )


def obtain_tokens(
    origin: str,
    installation_uuid: str,
    *,
    client_id: str,
    client_secret: str,
    code: str | None = None,
    refresh_token: str | None = None,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
    clock: Clock = SYSTEM,
) -> TokenGrant:
    """The installation's tokens for either the grant `code` of `installation.created` (authorization_code) or
    its `refresh_token` (Sentry's tokens expire after 8 hours; the old refresh token is used up)."""
    if (code is None) == (refresh_token is None):
        raise ValueError("give either a code or a refresh_token")
    body = {"client_id": client_id, "client_secret": client_secret}
    if code is not None:
        body.update(grant_type="authorization_code", code=code)
    else:
        body.update(grant_type="refresh_token", refresh_token=str(refresh_token))
    return _grant(origin, installation_uuid, body, timeout, clock)
