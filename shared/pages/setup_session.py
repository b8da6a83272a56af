"""The setup page's session (contract §14): a signed, short-lived cookie for one tracker organization, and the
checks every form post passes before it may change anything.

The cookie is `HttpOnly` (no script reads it), `SameSite=Strict` (no other site's page sends it), `Secure`
unless the page is served on loopback, and scoped to `/api/setup`. A form post must carry the anti-forgery
token of the session (`tokens.form_token` of its id, rendered into the session's own pages), and, where the
browser says where the post came from (`Origin`, `Sec-Fetch-Site`), come from this very origin.
"""

from __future__ import annotations

import ipaddress
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, replace
from urllib.parse import urlsplit

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
    flags = f"Path={COOKIE_PATH}; Max-Age={seconds}; HttpOnly; SameSite=Strict" + ("; Secure" if secure else "")
    return f"{COOKIE}={value}; {flags}"


def cleared_cookie(*, secure: bool) -> str:
    return f"{COOKIE}=; Path={COOKIE_PATH}; Max-Age=0; HttpOnly; SameSite=Strict" + ("; Secure" if secure else "")


def read_session(cookie: str | None, *, now: float) -> Session | None:
    """The session of a request's Cookie header, or None (none, forged, expired)."""
    value = _cookie_value(cookie or "", COOKIE)
    claims = tokens.verify(value, PURPOSE, now=now) if value else None
    if claims is None:
        return None
    org, sid, until, integration = claims.get("org"), claims.get("sid"), claims.get("until"), claims.get("int")
    if not isinstance(org, str) or not isinstance(sid, str) or not isinstance(until, (int, float)) or until <= now:
        return None
    return Session(org, sid, float(until), integration if isinstance(integration, str) else None)


def _cookie_value(header: str, name: str) -> str | None:
    for part in header.split(";"):
        key, sep, value = part.strip().partition("=")
        if sep and key == name:
            return value.strip().strip('"')
    return None


def is_loopback(host: str) -> bool:
    """Whether a request's host (`name[:port]`) is this machine: only there may the cookie go without TLS."""
    try:
        hostname = (urlsplit(f"//{host}").hostname or "").lower()
    except ValueError:
        return False
    if hostname == "localhost":
        return True
    try:
        return ipaddress.ip_address(hostname).is_loopback
    except ValueError:
        return False


def from_this_origin(headers: Mapping[str, str], host: str) -> bool:
    """False when the browser says the post came from another site or origin. Headers are lower-cased.

    `Sec-Fetch-Site` must say `same-origin` where a browser sends it (every current one does), and `Origin` must
    be this origin where it names one: under the pages' `Referrer-Policy: no-referrer` Chromium sends
    `Origin: null` even for the page's own forms, so "null" alone proves nothing either way, and the anti-forgery
    token still has to match.
    """
    site = headers.get("sec-fetch-site")
    if site is not None and site.strip().lower() != "same-origin":
        return False
    origin = (headers.get("origin") or "null").strip()
    if origin == "null":
        return True
    try:
        return urlsplit(origin).netloc.lower() == host.lower()
    except ValueError:
        return False


def form_allowed(session: Session | None, presented: object, headers: Mapping[str, str], host: str) -> bool:
    """Every check a form post passes before it may change anything."""
    return session is not None and from_this_origin(headers, host) and tokens.form_token_matches(session.sid, presented)
