"""Encryption at rest for credentials and webhook secrets (Fernet, key from `SECRETS_KEY`).

`cryptography` is imported on first use, not at module import, so it does not add to every cold start.
"""

from __future__ import annotations

import json
from typing import Any

from shared.caching import PerKey
from shared.settings import get_settings

_fernets: PerKey[Any] = PerKey()


class DecryptionError(Exception):
    """A stored value could not be decrypted: SECRETS_KEY changed, or the value was tampered with."""


def _fernet() -> Any:
    key = get_settings().secrets_key

    def make() -> Any:
        from cryptography.fernet import Fernet

        return Fernet(key.encode("ascii"))

    return _fernets.get(key, make)


def encrypt(plaintext: str) -> str:
    return _fernet().encrypt(plaintext.encode("utf-8")).decode("ascii")


def decrypt(token: str) -> str:
    from cryptography.fernet import InvalidToken

    try:
        return _fernet().decrypt(token.encode("ascii")).decode("utf-8")
    except (InvalidToken, ValueError, UnicodeError):
        raise DecryptionError("a stored secret could not be decrypted with SECRETS_KEY") from None


def encrypt_json(value: Any) -> str:
    return encrypt(json.dumps(value, separators=(",", ":")))


def decrypt_json(token: str) -> Any:
    return json.loads(decrypt(token))
