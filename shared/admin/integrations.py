"""Creating, updating and disabling integrations (contract §6, `vsts/integrations/...`).

Input is validated completely before anything is written: bad input changes nothing. A webhook secret is
generated when none is given at creation and returned once, in that response only.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
from dataclasses import dataclass, replace
from typing import Any

from shared.errors import InvalidInput
from shared.store.base import is_valid_key
from shared.store.integrations import (
    ACTIVE,
    DISABLED,
    Integration,
    IntegrationStore,
    ResourceExistsError,
    normalize_id,
)
from shared.validation import check_fields, is_valid_id, require_text

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_SECRET = re.compile(r"[\x21-\x7e]{16,256}")  # printable, no spaces: it travels in an HTTP header
MAX_TEXT = 4096
CREDENTIAL_FIELDS = {
    "pat": ("token",),
    "oauth": ("access_token", "refresh_token", "expires_at"),
    "entra": ("tenant_id", "client_id", "client_secret"),
}


class NotTheOwner(Exception):
    """A tracker organization tried to replace credentials that another organization, or an operator, entered."""


@dataclass(frozen=True)
class PutResult:
    integration: Integration
    created: bool
    generated_secret: str | None


def valid_integration_id(integration_id: str) -> str:
    normalized = normalize_id(integration_id)
    if not is_valid_id(normalized):
        raise InvalidInput("The integration id must be 1-128 letters, digits, '.', '_', ':' or '-'.")
    return normalized


def _text(body: dict[str, Any], key: str, *, pattern: re.Pattern[str] | None = None, what: str = "") -> str:
    return require_text(body, key, MAX_TEXT, pattern=pattern, what=what)


def _expires_at(value: Any) -> float:
    if isinstance(value, bool):
        raise InvalidInput("credentials.expires_at must be a Unix time in seconds or an ISO 8601 date.")
    if isinstance(value, (int, float)) and 0 <= value < 2**40:
        return float(value)
    if isinstance(value, str):
        try:
            when = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            pass
        else:
            return (when if when.tzinfo else when.replace(tzinfo=dt.UTC)).timestamp()
    raise InvalidInput("credentials.expires_at must be a Unix time in seconds or an ISO 8601 date.")


def parse_credentials(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidInput("credentials must be an object with a type of pat, oauth or entra.")
    kind = value.get("type")
    if kind not in CREDENTIAL_FIELDS:
        raise InvalidInput("credentials.type must be pat, oauth or entra.")
    unknown = set(value) - {"type", *CREDENTIAL_FIELDS[kind]}
    if unknown:
        raise InvalidInput(f"credentials of type {kind} take only {', '.join(CREDENTIAL_FIELDS[kind])}.")
    credentials: dict[str, Any] = {"type": kind}
    for key in CREDENTIAL_FIELDS[kind]:
        if key == "expires_at":
            credentials[key] = _expires_at(value.get(key))
        else:
            try:
                credentials[key] = _text(value, key)
            except InvalidInput:
                raise InvalidInput(f"credentials.{key} must be a non-empty string.") from None
    return credentials


def put_integration(
    integration_id: str, body: dict[str, Any], store: IntegrationStore | None = None, *, owner: str | None = None
) -> PutResult:
    """Create the integration, or update the fields given; everything is validated before any write.

    `owner` None is an operator (the function key): the credentials become the operator's, and an update enables
    the integration. A tracker organization's setup page passes its id: it may create the integration (its
    credentials then belong to it) or replace credentials it entered itself, never another's (NotTheOwner), and
    never enables an integration an operator disabled (contract §16)."""
    store = store or IntegrationStore()
    integration_id = valid_integration_id(integration_id)
    check_fields(body, {"name", "domain_name", "credentials", "webhook_secret"})
    changes: dict[str, Any] = {}
    if "name" in body:
        changes["name"] = _text(body, "name", pattern=_NAME, what="an Azure DevOps organization name")
    if "domain_name" in body:
        # Kept as given: a malformed value is repaired from the account lookup on first use (contract §8).
        changes["domain_name"] = _text(body, "domain_name").strip()
    if "credentials" in body:
        changes["credentials"] = parse_credentials(body["credentials"])
    if "webhook_secret" in body:
        changes["webhook_secret"] = _text(
            body, "webhook_secret", pattern=_SECRET, what="16-256 printable characters without spaces"
        )

    existing = store.get(integration_id)
    if existing is None:
        if "name" not in changes or "credentials" not in changes:
            raise InvalidInput("A new integration needs name and credentials.")
        generated = None if "webhook_secret" in changes else secrets.token_hex(32)
        new = Integration(
            id=integration_id,
            name=changes["name"],
            domain_name=changes.get("domain_name", ""),
            credentials=changes["credentials"],
            webhook_secret=changes.get("webhook_secret", generated),
            credential_owner=owner or "",
        )
        try:
            return PutResult(store.create(new), True, generated)
        except ResourceExistsError:
            pass  # created concurrently: apply this as an update instead

    def apply(current: Integration) -> Integration:
        if owner is not None and current.credential_owner != owner:
            raise NotTheOwner(f"integration {current.id}'s credentials belong to another organization or an operator")
        updated = replace(current, **changes) if owner is not None else replace(current, status=ACTIVE, **changes)
        if "credentials" in changes:
            updated = replace(updated, needs_reauth=False, refresh_lock_until=None, credential_owner=owner or "")
        if "domain_name" in changes:
            updated = replace(updated, domain_checked_at=None, api_level=None)  # learnt again on first use
        return updated

    saved = store.update(integration_id, apply)
    if saved is None:  # deleted between the read and the update: nothing sensible to update
        raise InvalidInput("The integration disappeared during the update; send the request again.")
    return PutResult(saved, False, None)


def disable_integration(integration_id: str, store: IntegrationStore | None = None) -> Integration | None:
    store = store or IntegrationStore()
    if not is_valid_key(normalize_id(integration_id)):
        return None
    return store.update(integration_id, lambda cur: None if cur.status == DISABLED else replace(cur, status=DISABLED))
