"""The setup page's session (contract §14): a signed, short-lived cookie for one tracker organization, and the
checks every form post passes before it may change anything.

The cookie is `HttpOnly` (no script reads it), `SameSite=Strict` (no other site's page sends it), `Secure`
unless the page is served on loopback, and scoped to `/api/setup`. A form post must carry the anti-forgery
token of the session (`tokens.form_token` of its id, rendered into the session's own pages), and, where the
browser says where the post came from (`Origin`, `Sec-Fetch-Site`), come from this very origin.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass, replace

from shared.pages import tokens

COOKIE = "setup_session"
COOKIE_PATH = "/api/setup"
PURPOSE = "setup-session"
SESSION_SECONDS = 30 * 60


@dataclass(frozen=True)
class Session:
    org_id: str
    sid: str  # the session's id: its forms' anti-forgery token is derived from it
    until: float
    integration_id: str | None = None  # the Azure DevOps organization connected in this session

    @property
    def form_token(self) -> str:
        return tokens.form_token(self.sid)


def open_session(org_id: str, *, now: float) -> Session:
    return Session(org_id, secrets.token_urlsafe(16), now + SESSION_SECONDS)


def with_integration(session: Session, integration_id: str) -> Session:
    return replace(session, integration_id=integration_id)


def cookie_header(session: Session, *, now: float, secure: bool) -> str:
    """The Set-Cookie value; the session keeps the end it was opened with, whichever step re-issues it."""
    claims = {"org": session.org_id, "sid": session.sid, "until": session.until, "int": session.integration_id}
    value = tokens.sign(PURPOSE, claims, now=now, lifetime=max(0.0, session.until - now))
    seconds = max(0, int(session.until - now))
    return tokens.session_cookie(COOKIE, value, path=COOKIE_PATH, max_age=seconds, secure=secure)


def cleared_cookie(*, secure: bool) -> str:
    return tokens.session_cookie(COOKIE, "", path=COOKIE_PATH, max_age=0, secure=secure)


def read_session(cookie: str | None, *, now: float) -> Session | None:
    """The session of a request's Cookie header, or None (none, forged, expired)."""
    value = tokens.cookie_value(cookie or "", COOKIE)
    claims = tokens.verify(value, PURPOSE, now=now) if value else None
    if claims is None:
        return None
    org, sid, until, integration = claims.get("org"), claims.get("sid"), claims.get("until"), claims.get("int")
    if not isinstance(org, str) or not isinstance(sid, str) or not isinstance(until, (int, float)) or until <= now:
        return None
    return Session(org, sid, float(until), integration if isinstance(integration, str) else None)


def form_allowed(session: Session | None, presented: object, headers: Mapping[str, str], host: str) -> bool:
    """Every check a form post passes before it may change anything."""
    return (
        session is not None
        and tokens.from_this_origin(headers, host)
        and tokens.form_token_matches(session.sid, presented)
    )
