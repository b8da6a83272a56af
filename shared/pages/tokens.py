"""Signed, short-lived values for the pages (contract §14): the session cookies and anti-forgery tokens, and the
checks on a form post's origin that every page's forms share.

A value is `<payload>.<signature>`: the payload is base64url JSON with its purpose and expiry, the signature an
HMAC-SHA256 over it with a key derived from SECRETS_KEY for pages alone (so a page token can never be taken for
anything else the key protects). Checks run in constant time and say only "valid" or "not".
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import json
import secrets
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from shared.settings import get_settings

MAX_TOKEN_CHARS = 4096


def _key() -> bytes:
    return hmac.new(get_settings().secrets_key.encode("utf-8"), b"pages-token-key", hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign(purpose: str, claims: dict[str, Any], *, now: float, lifetime: float) -> str:
    """A token for `purpose` carrying `claims`, valid for `lifetime` seconds from `now`."""
    body = {"p": purpose, "exp": int(now + lifetime), "n": secrets.token_hex(8), "c": claims}
    payload = _b64(json.dumps(body, separators=(",", ":"), sort_keys=True).encode("utf-8"))
    return f"{payload}.{_b64(hmac.new(_key(), payload.encode('ascii'), hashlib.sha256).digest())}"


def verify(token: object, purpose: str, *, now: float) -> dict[str, Any] | None:
    """The claims of a valid, unexpired token for `purpose`; None for anything else."""
    if not isinstance(token, str) or len(token) > MAX_TOKEN_CHARS or token.count(".") != 1 or not token.isascii():
        return None
    payload, signature = token.split(".")
    expected = _b64(hmac.new(_key(), payload.encode("ascii"), hashlib.sha256).digest())
    if not hmac.compare_digest(signature, expected):
        return None
    try:
        body = json.loads(_unb64(payload))
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(body, dict) or body.get("p") != purpose or not isinstance(body.get("exp"), int):
        return None
    if now >= body["exp"] or not isinstance(body.get("c"), dict):
        return None
    return {**body["c"], "_nonce": body.get("n")}


def form_token(session_nonce: str) -> str:
    """The anti-forgery token of a session's forms: bound to the session, so a page from another site (which
    cannot read the cookie or the page) cannot make one."""
    return _b64(hmac.new(_key(), f"form|{session_nonce}".encode(), hashlib.sha256).digest())


def form_token_matches(session_nonce: str, presented: object) -> bool:
    return isinstance(presented, str) and hmac.compare_digest(form_token(session_nonce), presented)


def session_cookie(name: str, value: str, *, path: str, max_age: int, secure: bool) -> str:
    """A Set-Cookie value for a page's session: `HttpOnly` (no script reads it), `SameSite=Strict` (no other
    site's page sends it), scoped to `path`, and `Secure` unless the page is served on loopback."""
    return f"{name}={value}; Path={path}; Max-Age={max_age}; HttpOnly; SameSite=Strict" + ("; Secure" if secure else "")


def cookie_value(header: str, name: str) -> str | None:
    """The value of cookie `name` in a request's Cookie header, or None."""
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
