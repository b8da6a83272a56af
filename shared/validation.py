"""Checks of untrusted input shared by every entry point: one of each, so every route agrees.

Pure functions; each says in one sentence what is wrong (`InvalidInput`) and never echoes the input.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from collections.abc import Collection, Mapping
from typing import Any

from shared.errors import InvalidInput

MAX_INT32 = 2**31 - 1  # Azure DevOps ids and revisions are int32
MAX_EMAIL_CHARS = 254  # RFC 5321 path limit
# Python's default int-from-string limit, enforced whatever sys.set_int_max_str_digits says, so parsing a long
# run of digits can never become quadratic.
_MAX_INT_DIGITS = 4300
_DIGITS = re.compile(r"[0-9]{1,20}")
# A plausible address: one "@", no whitespace, none of the characters of a display form, a quoted local part or
# a DOMAIN\user name, none that a table key cannot hold (/ \ # ?) or that the links table uses (|); non-empty
# dot-separated domain labels (an on-premises "user@corp" is an address too).
_EMAIL = re.compile(r'[^\s@<>()\[\]\\,;:"/#?|]+@[^\s@<>()\[\]\\,;:"./#?|]+(?:\.[^\s@<>()\[\]\\,;:"./#?|]+)*')


# Ids of integrations, organizations and issues: safe table keys that never hold the `|` the links table
# uses between two ids.
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}")


def is_valid_id(value: object) -> bool:
    """An integration, organization or issue id: 1-128 letters, digits and `._:-`, starting with a letter or digit."""
    return isinstance(value, str) and bool(_ID.fullmatch(value))


def require_id(value: object, what: str) -> str:
    """An integration, organization or issue id from a route, or InvalidInput naming `what`."""
    if not is_valid_id(value):
        raise InvalidInput(
            f"The {what} must be 1-128 letters, digits, '.', '_', ':' or '-', starting with a letter or digit."
        )
    assert isinstance(value, str)
    return value


def positive_int(value: object, maximum: int = MAX_INT32) -> int | None:
    """An int in 1..maximum from an int (not a bool) or a string of ASCII digits; else None."""
    if isinstance(value, str):
        # ASCII digits only: int() would also take "1_000", " ５" and other forms nobody sends on purpose.
        value = int(value) if _DIGITS.fullmatch(value) else None
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value <= maximum:
        return value
    return None


def normalize_email(value: object) -> str | None:
    """The lower-cased email, or None when it is not a plausible address. The one normalizer: members are
    stored under it and delivered assignees are matched with it."""
    if not isinstance(value, str):
        return None
    # Lower-case first: lower() can lengthen a string ("İ" -> "i̇"), and the checks must hold for the result.
    email = value.strip().lower()
    if not email or len(email) > MAX_EMAIL_CHARS or not _EMAIL.fullmatch(email):
        return None
    if any(unicodedata.category(ch)[0] in ("C", "Z") for ch in email):
        return None
    return email


def check_fields(body: Mapping[str, Any], allowed: Collection[str]) -> None:
    unknown = sorted(set(body) - set(allowed))
    if unknown:
        raise InvalidInput(f"Unknown field {unknown[0][:40]!r}; the fields are {', '.join(sorted(allowed))}.")


def has_control_characters(text: str) -> bool:
    """C0 and C1 controls and DEL, except the tab that free text may hold."""
    return any(unicodedata.category(ch) == "Cc" and ch != "\t" for ch in text)


def require_text(
    body: Mapping[str, Any], key: str, limit: int, *, pattern: re.Pattern[str] | None = None, what: str = ""
) -> str:
    """`body[key]`: a non-blank string of at most `limit` characters without control characters, and matching
    `pattern` (described as `what`) when one is given."""
    value = body.get(key)
    if not isinstance(value, str) or not value.strip() or len(value) > limit:
        raise InvalidInput(f"{key} must be a non-empty string of at most {limit} characters.")
    if has_control_characters(value):
        raise InvalidInput(f"{key} must not contain control characters.")
    if pattern is not None and not pattern.fullmatch(value):
        raise InvalidInput(f"{key} must be {what}.")
    return value


def require_bool(body: Mapping[str, Any], key: str) -> bool:
    value = body.get(key)
    if not isinstance(value, bool):
        raise InvalidInput(f"{key} must be true or false.")
    return value


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _parse_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e999: valid syntax, but it would break any strict re-serialisation
        raise ValueError("number out of range")
    return value


def _parse_int(text: str) -> int:
    if len(text) > _MAX_INT_DIGITS:
        raise ValueError("integer too long")
    return int(text)


def parse_json(text: str) -> Any:
    """json.loads, strict: no NaN or Infinity, no infinite floats, no giant ints. Every failure, deep nesting
    included, raises ValueError."""
    try:
        return json.loads(text, parse_constant=_reject_constant, parse_float=_parse_float, parse_int=_parse_int)
    except RecursionError:
        raise ValueError("nested too deeply") from None
