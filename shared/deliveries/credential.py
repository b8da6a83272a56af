"""The credential a delivery presents, and its constant-time check against the accepted secrets (§5.1)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping, Sequence


def _header(headers: Mapping[str, str], name: str) -> str | None:
    """A header value by case-insensitive name; works for plain dicts as well as case-insensitive mappings."""
    for key, value in headers.items():
        if isinstance(key, str) and key.lower() == name and isinstance(value, str):
            return value
    return None


def extract_credential(headers: Mapping[str, str]) -> str | None:
    """The secret a delivery presents: header Shared-Secret, else the password of HTTP Basic auth; None if none."""
    shared = _header(headers, "shared-secret")
    if shared is not None and shared.strip():
        return shared.strip()
    authorization = _header(headers, "authorization")
    if authorization is None:
        return None
    parts = authorization.strip().split(None, 1)
    if len(parts) != 2 or parts[0].lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(parts[1].strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):  # bad base64, non-ASCII header text, or bytes that are not UTF-8
        return None
    _user, sep, password = decoded.partition(":")
    return password if sep and password else None


def _digest(secret: object) -> bytes:
    text = secret if isinstance(secret, str) else ""
    # surrogatepass: a lone surrogate from a header must hash, not raise.
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()


def secret_matches(presented: str | None, accepted: Sequence[str]) -> bool:
    """Whether `presented` equals one of `accepted`, in time that reveals neither which one nor how many match.

    Comparing fixed-length SHA-256 digests hides the secrets' lengths; every accepted secret is compared (no early
    exit), and a missing credential costs the same work.
    """
    present = isinstance(presented, str) and presented != ""
    mine = _digest(presented if present else "")
    matched = False
    for candidate in accepted:
        matched |= hmac.compare_digest(mine, _digest(candidate))
    return matched and present
