"""Integrations (one per Azure DevOps organization) in Table Storage, with their credentials and secrets.

One entity per integration: PartitionKey = the organization's collection id (lower-cased), RowKey
`integration`, so every request path reads it with one point read. Credentials and webhook secrets are
Fernet-encrypted (`shared.store.crypto`) and never logged or returned. Every update is a read-modify-write
guarded by the entity's ETag: when another instance wrote first (412), the change is re-applied to the
newer entity, so no instance ever overwrites newer data.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from azure.core.exceptions import ResourceExistsError
from azure.data.tables import TableClient

from shared.model.integration import (
    ACTIVE,
    DISABLED,
    Integration,
    IntegrationNotFound,
    IntegrationSummary,
    normalize_id,
)
from shared.store import base, crypto

__all__ = [
    "ACTIVE",
    "DISABLED",
    "Integration",
    "IntegrationNotFound",
    "IntegrationStore",
    "IntegrationSummary",
    "ResourceExistsError",
    "normalize_id",
]

log = logging.getLogger(__name__)

TABLE = "integrations"
ROW = "integration"
MAX_UPDATE_ATTEMPTS = 8


def _to_entity(integration: Integration) -> dict[str, Any]:
    entity: dict[str, Any] = {
        "PartitionKey": integration.id,
        "RowKey": ROW,
        "Name": integration.name,
        "DomainName": integration.domain_name,
        "Status": integration.status,
        "NeedsReauth": integration.needs_reauth,
        "Credentials": crypto.encrypt_json(integration.credentials)
        if integration.credentials
        else integration.sealed.get("Credentials", ""),
    }
    optional = {
        "WebhookSecret": crypto.encrypt(integration.webhook_secret)
        if integration.webhook_secret
        else integration.sealed.get("WebhookSecret"),
        "PreviousWebhookSecret": crypto.encrypt(integration.previous_webhook_secret)
        if integration.previous_webhook_secret
        else integration.sealed.get("PreviousWebhookSecret"),
        "PreviousSecretExpiresAt": integration.previous_secret_expires_at,
        "SubscriptionId": integration.subscription_id,
        "SubscriptionStatus": integration.subscription_status,
        "SubscriptionCheckedAt": integration.subscription_checked_at,
        "CommentsSubscriptionId": integration.comments_subscription_id,
        "CommentsSubscriptionStatus": integration.comments_subscription_status,
        "DomainCheckedAt": integration.domain_checked_at,
        "RefreshLockUntil": integration.refresh_lock_until,
        "CredentialOwner": integration.credential_owner or None,
        "ApiLevel": integration.api_level,
        "CreatedAt": integration.created_at,
        "UpdatedAt": integration.updated_at,
    }
    entity.update({k: v for k, v in optional.items() if v is not None})
    return entity


def _float(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) else None


def _from_entity(entity: dict[str, Any]) -> Integration:
    sealed: dict[str, str] = {}

    def open_field(name: str) -> str | None:
        value = entity.get(name)
        if not value:
            return None
        try:
            return crypto.decrypt(value)
        except crypto.DecryptionError:
            # SECRETS_KEY changed (or the value was tampered with). The value is kept as it is, so restoring
            # the old key restores it; meanwhile lookups answer 502 (re-authorization) and deliveries 401,
            # and a PUT can enter new credentials.
            sealed[name] = value
            return None

    credentials = open_field("Credentials")
    if sealed:
        log.error("Integration %s: %s cannot be decrypted with SECRETS_KEY", entity["PartitionKey"], ", ".join(sealed))
    return Integration(
        id=entity["PartitionKey"],
        name=entity.get("Name", ""),
        domain_name=entity.get("DomainName", ""),
        status=entity.get("Status", ACTIVE),
        credentials=json.loads(credentials) if credentials else {},
        webhook_secret=open_field("WebhookSecret"),
        previous_webhook_secret=open_field("PreviousWebhookSecret"),
        previous_secret_expires_at=_float(entity.get("PreviousSecretExpiresAt")),
        needs_reauth=bool(entity.get("NeedsReauth", False)) or "Credentials" in sealed,
        subscription_id=entity.get("SubscriptionId"),
        subscription_status=entity.get("SubscriptionStatus"),
        subscription_checked_at=_float(entity.get("SubscriptionCheckedAt")),
        comments_subscription_id=entity.get("CommentsSubscriptionId"),
        comments_subscription_status=entity.get("CommentsSubscriptionStatus"),
        domain_checked_at=_float(entity.get("DomainCheckedAt")),
        refresh_lock_until=_float(entity.get("RefreshLockUntil")),
        credential_owner=entity.get("CredentialOwner") or "",
        api_level=entity.get("ApiLevel") or None,
        created_at=_float(entity.get("CreatedAt")),
        updated_at=_float(entity.get("UpdatedAt")),
        etag=entity.metadata.get("etag") if hasattr(entity, "metadata") else None,
        sealed=sealed,
    )


class _RecentlyRead:
    """Integrations this process read or wrote lately, by id, with when (monotonic); bounded in size."""

    MAX_ENTRIES = 10_000

    def __init__(self) -> None:
        self._entries: dict[str, tuple[float, Integration]] = {}
        self._lock = threading.Lock()

    def put(self, integration: Integration) -> None:
        with self._lock:
            if len(self._entries) >= self.MAX_ENTRIES:
                self._entries.clear()
            self._entries[integration.id] = (time.monotonic(), integration)

    def get(self, integration_id: str, max_age_seconds: float) -> Integration | None:
        entry = self._entries.get(integration_id)
        if entry is None or time.monotonic() - entry[0] > max_age_seconds:
            return None
        return entry[1]

    def forget(self, integration_id: str) -> None:
        with self._lock:
            self._entries.pop(integration_id, None)


_recent = _RecentlyRead()


class IntegrationStore:
    """Integrations in Table Storage. Storage failures surface as `StorageUnavailable`."""

    @property
    def table(self) -> TableClient:
        return base.table(TABLE)

    def get(self, integration_id: str) -> Integration | None:
        """One point read; None when the id is unknown or cannot be a table key."""
        integration_id = normalize_id(integration_id)
        if not base.is_valid_key(integration_id):
            return None
        with base.storage_errors("reading an integration"):
            entity = base.get_entity(self.table, integration_id, ROW)
        integration = _from_entity(entity) if entity is not None else None
        if integration is not None:
            _recent.put(integration)
        return integration

    def recently_read(self, integration_id: str, max_age_seconds: float) -> Integration | None:
        """The integration as this process read or wrote it at most `max_age_seconds` ago, or None: no I/O.

        For the webhook's hot path only (bounded staleness). Only found integrations are remembered, so an
        unknown id always costs a read, and every write through a store in this process refreshes the entry.
        """
        return _recent.get(normalize_id(integration_id), max_age_seconds)

    def get_active(self, integration_id: str) -> Integration:
        integration = self.get(integration_id)
        if integration is None or not integration.active:
            raise IntegrationNotFound(integration_id)
        return integration

    def create(self, integration: Integration) -> Integration:
        """Insert a new integration; raises ResourceExistsError when one with that id exists."""
        now = time.time()
        integration = replace(integration, id=normalize_id(integration.id), created_at=now, updated_at=now)
        with base.storage_errors("creating an integration"):
            meta = base.write(self.table, lambda t: t.create_entity(_to_entity(integration)))
        created = replace(integration, etag=meta.get("etag"))
        _recent.put(created)
        return created

    def update(self, integration_id: str, change: Callable[[Integration], Integration | None]) -> Integration | None:
        """Apply `change` to the stored integration under its ETag, re-reading and re-applying on conflict.

        `change` returns the new integration, or None to leave it as it is. Returns what is stored at the end,
        or None when there is no such integration.
        """
        return base.update_with_etag(
            lambda: self.get(integration_id),
            change,
            self.replace_if_unchanged,
            attempts=MAX_UPDATE_ATTEMPTS,
            what=f"integration {integration_id}",
        )

    def replace_if_unchanged(self, expected: Integration, updated: Integration) -> Integration | None:
        """Write `updated` only if the stored entity still has `expected.etag`; None when someone wrote first."""
        updated = replace(updated, id=expected.id, updated_at=time.time())
        with base.storage_errors("updating an integration"):
            etag = base.replace_entity_if_unchanged(self.table, _to_entity(updated), expected.etag)
        if etag is None:
            _recent.forget(expected.id)
            return None
        saved = replace(updated, etag=etag)
        _recent.put(saved)
        return saved

    def list_active(self, after: str = "", limit: int = 100) -> list[IntegrationSummary]:
        """Up to `limit` active integrations with ids after `after`, in id order, without decrypting anything.

        For the timers: a cursor of the last id visited lets a run resume where the previous one stopped.
        """
        entities = base.query(
            TABLE,
            "RowKey eq @row and Status eq @status and PartitionKey gt @after",
            {"row": ROW, "status": ACTIVE, "after": after},
            "listing integrations",
            select=["PartitionKey", "Name", "DomainName", "SubscriptionId"],
            results_per_page=min(limit, 1000),
            limit=limit,
        )
        return [
            IntegrationSummary(e["PartitionKey"], e.get("Name", ""), e.get("DomainName", ""), e.get("SubscriptionId"))
            for e in entities
        ]

    def list_all(self, limit: int) -> list[Integration]:
        """Up to `limit` integrations, active and disabled, in id order (one query; for the status page).
        Credentials are decrypted as by `get` (so an unreadable one shows as needing re-authorization)."""
        entities = base.query(
            TABLE,
            "RowKey eq @row",
            {"row": ROW},
            "listing integrations",
            results_per_page=min(limit, 1000),
            limit=limit,
        )
        return [_from_entity(e) for e in entities]
