"""Sentry installations and the webhooks received from Sentry, in Table Storage (contract §13).

| table                 | PartitionKey         | RowKey          | what                                              |
|-----------------------|----------------------|-----------------|---------------------------------------------------|
| `sentryinstallations` | installation uuid    | `installation`  | organization, kind, status, tokens (encrypted)    |
| `sentryorgs`          | org id `sentry-<slug>` | `installation`| the uuid of the organization's current installation |
| `sentrydeliveries`    | installation uuid    | request id      | one webhook: its event (JSON), state, expiry      |

A delivery is claimed by a conditional insert, so a repeated `Request-ID` is seen as such by every instance,
and the insert holds the event the queue message points to (a queue message holds 64 KiB, a comment more).
Installations are updated read-modify-write under their ETag, so a token refresh and an uninstall racing
never lose either.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from azure.core.exceptions import ResourceExistsError
from azure.data.tables import UpdateMode

from shared.errors import TooLargeToStore
from shared.model.sentry import ACTIVE, PUBLIC, SentryInstallation, is_sentry_org
from shared.store import base, crypto

INSTALLATIONS = "sentryinstallations"
ORGS = "sentryorgs"
DELIVERIES = "sentrydeliveries"
ROW = "installation"
MAX_UPDATE_ATTEMPTS = 8
MAX_PROPERTY_BYTES = 64 * 1024  # a string property holds 64 KiB of UTF-16
DELIVERY_TTL_SECONDS = 7 * 24 * 3600  # Sentry does not send one webhook again after this long
RECEIVED = "received"
APPLIED = "applied"


def _entity(installation: SentryInstallation) -> dict[str, Any]:
    entity: dict[str, Any] = {
        "PartitionKey": installation.uuid,
        "RowKey": ROW,
        "Organization": installation.organization_slug,
        "Kind": installation.kind,
        "Status": installation.status,
        "NeedsReauth": installation.needs_reauth,
    }
    tokens = {"token": installation.token, "refresh_token": installation.refresh_token}
    if any(tokens.values()):
        entity["Tokens"] = crypto.encrypt_json(tokens)
    optional = {
        "AppUuid": installation.app_uuid,
        "ExpiresAt": installation.expires_at,
        "RefreshLockUntil": installation.refresh_lock_until,
        "CreatedAt": installation.created_at,
        "UpdatedAt": installation.updated_at,
        "GrantCodeHash": installation.grant_code_hash,
        "SetupClaimedAt": installation.setup_claimed_at,
    }
    entity.update({key: value for key, value in optional.items() if value is not None})
    return entity


def _from_entity(entity: dict[str, Any]) -> SentryInstallation:
    tokens = crypto.decrypt_json(entity["Tokens"]) if entity.get("Tokens") else {}
    return SentryInstallation(
        uuid=entity["PartitionKey"],
        organization_slug=entity.get("Organization", ""),
        kind=entity.get("Kind", PUBLIC),
        status=entity.get("Status", ACTIVE),
        app_uuid=entity.get("AppUuid") or None,
        token=tokens.get("token"),
        refresh_token=tokens.get("refresh_token"),
        expires_at=_float(entity.get("ExpiresAt")),
        refresh_lock_until=_float(entity.get("RefreshLockUntil")),
        needs_reauth=bool(entity.get("NeedsReauth")),
        created_at=_float(entity.get("CreatedAt")),
        updated_at=_float(entity.get("UpdatedAt")),
        etag=entity.metadata.get("etag") if hasattr(entity, "metadata") else None,
        grant_code_hash=entity.get("GrantCodeHash") or None,
        setup_claimed_at=_float(entity.get("SetupClaimedAt")),
    )


def _float(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


@dataclass(frozen=True)
class SentryInstallationSummary:
    """What the status page shows of an installation, read without decrypting anything: never a token, only
    whether one is stored."""

    uuid: str
    organization_slug: str
    kind: str
    status: str
    needs_reauth: bool
    token_set: bool
    expires_at: float | None
    updated_at: float | None


class SentryStore:
    """Installations and deliveries. Storage failures raise `StorageUnavailable`; a stored token that cannot be
    decrypted raises `shared.store.crypto.DecryptionError`."""

    # -- installations -------------------------------------------------------------------------------

    def get(self, uuid: str) -> SentryInstallation | None:
        """One point read; None for an unknown uuid (or one that cannot be a table key)."""
        if not base.is_valid_key(uuid):
            return None
        entity = base.read_entity(INSTALLATIONS, uuid, ROW, "reading a Sentry installation")
        return _from_entity(entity) if entity is not None else None

    def for_org(self, org_id: str) -> SentryInstallation | None:
        """The current installation of a tracker organization `sentry-<slug>` (two point reads), or None. An
        organization without an index (its write failed after the installation's) is found by a query of the
        installations and its index repaired."""
        if not is_sentry_org(org_id) or not base.is_valid_key(org_id):
            return None
        index = base.read_entity(ORGS, org_id, ROW, "reading a Sentry organization")
        if index is None:
            return self._repair_missing_index(org_id)
        uuid = index.get("Uuid")
        installation = self.get(uuid) if isinstance(uuid, str) else None
        return installation if installation is not None and installation.org_id == org_id else None

    def _repair_missing_index(self, org_id: str) -> SentryInstallation | None:
        slug = org_id.removeprefix("sentry-")
        found = base.query(
            INSTALLATIONS,
            "Organization eq @slug and Status eq @active",
            {"slug": slug, "active": ACTIVE},
            "finding a Sentry organization's installation",
            limit=50,
        )
        installations = [_from_entity(entity) for entity in found if entity.get("RowKey") == ROW]
        if not installations:
            return None
        newest = max(installations, key=lambda i: i.created_at or 0.0)
        self.repair_org_index(newest)
        return newest

    def repair_org_index(self, installation: SentryInstallation) -> None:
        """Make `installation` its organization's current one unless a newer active installation already is (the
        index write of `put` failed, or never happened)."""
        index = base.read_entity(ORGS, installation.org_id, ROW, "reading a Sentry organization")
        uuid = index.get("Uuid") if index is not None else None
        if uuid == installation.uuid:
            return
        current = self.get(uuid) if isinstance(uuid, str) else None
        if current is not None and current.active and (current.created_at or 0.0) > (installation.created_at or 0.0):
            return
        entry = {"PartitionKey": installation.org_id, "RowKey": ROW, "Uuid": installation.uuid}
        base.upsert(ORGS, entry, "repairing a Sentry organization's index")

    def put(self, installation: SentryInstallation) -> SentryInstallation:
        """Create or replace the installation, and make it its organization's current one."""
        now = time.time()
        installation = replace(installation, created_at=installation.created_at or now, updated_at=now)
        base.upsert(INSTALLATIONS, _entity(installation), "saving a Sentry installation")
        index = {"PartitionKey": installation.org_id, "RowKey": ROW, "Uuid": installation.uuid}
        base.upsert(ORGS, index, "saving a Sentry organization")
        return self.get(installation.uuid) or installation

    def update(
        self, uuid: str, change: Callable[[SentryInstallation], SentryInstallation | None]
    ) -> SentryInstallation | None:
        """Apply `change` under the ETag, re-applying it when another writer won; None when there is none."""
        return base.update_with_etag(
            lambda: self.get(uuid), change, self.replace_if_unchanged, attempts=MAX_UPDATE_ATTEMPTS, what=f"{uuid}"
        )

    def replace_if_unchanged(
        self, expected: SentryInstallation, updated: SentryInstallation
    ) -> SentryInstallation | None:
        updated = replace(updated, uuid=expected.uuid, updated_at=time.time())
        with base.storage_errors("updating a Sentry installation"):
            etag = base.replace_entity_if_unchanged(base.table(INSTALLATIONS), _entity(updated), expected.etag)
        return replace(updated, etag=etag) if etag is not None else None

    def list_installations(self, limit: int) -> list[SentryInstallationSummary]:
        """Up to `limit` installations, active and disabled, in uuid order (one query; for the status page)."""
        entities = base.query(
            INSTALLATIONS,
            "RowKey eq @row",
            {"row": ROW},
            "listing Sentry installations",
            select=[
                "PartitionKey",
                "Organization",
                "Kind",
                "Status",
                "NeedsReauth",
                "Tokens",
                "ExpiresAt",
                "UpdatedAt",
            ],
            results_per_page=min(limit, 1000),
            limit=limit,
        )
        return [
            SentryInstallationSummary(
                uuid=e["PartitionKey"],
                organization_slug=e.get("Organization") or "",
                kind=e.get("Kind") or PUBLIC,
                status=e.get("Status") or ACTIVE,
                needs_reauth=bool(e.get("NeedsReauth")),
                token_set=bool(e.get("Tokens")),
                expires_at=_float(e.get("ExpiresAt")),
                updated_at=_float(e.get("UpdatedAt")),
            )
            for e in entities
        ]

    def organizations(self, after: str, limit: int) -> list[tuple[str, str]]:
        """(org id, uuid of its current installation) for up to `limit` organizations after `after`, in org id
        order (one query of the organization index; for the `sentry_reconcile` timer)."""
        entities = base.query(
            ORGS,
            "PartitionKey gt @after and RowKey eq @row",
            {"after": after, "row": ROW},
            "listing Sentry organizations",
            select=["PartitionKey", "Uuid"],
            results_per_page=limit,
            limit=limit,
        )
        return [(e["PartitionKey"], str(e.get("Uuid") or "")) for e in entities]

    # -- deliveries ------------------------------------------------------------------------------------

    def claim_delivery(self, uuid: str, request_id: str, event: dict[str, Any], *, now: float) -> bool:
        """Record a webhook's event under its request id: False when that request id was recorded already.
        TooLargeToStore, before anything is written, for an event larger than a property holds."""
        text = json.dumps(event, separators=(",", ":"), ensure_ascii=False)  # escapes would take 6 units a character
        if len(text.encode("utf-16-le", "surrogatepass")) > MAX_PROPERTY_BYTES:
            raise TooLargeToStore("recording a Sentry webhook failed: its event is larger than Table Storage holds.")
        entity = {
            "PartitionKey": uuid,
            "RowKey": request_id,
            "Event": text,
            "State": RECEIVED,
            "ExpiresAt": float(now + DELIVERY_TTL_SECONDS),
        }
        try:
            with base.storage_errors("recording a Sentry webhook"):
                base.write(base.table(DELIVERIES), lambda t: t.create_entity(entity))
        except ResourceExistsError:
            return False
        return True

    def get_delivery(self, uuid: str, request_id: str) -> tuple[dict[str, Any], str] | None:
        """The event of a recorded delivery and its state (`received` or `applied`), or None."""
        if not base.is_valid_key(uuid) or not base.is_valid_key(request_id):
            return None
        entity = base.read_entity(DELIVERIES, uuid, request_id, "reading a Sentry webhook")
        if entity is None:
            return None
        return json.loads(entity.get("Event") or "{}"), str(entity.get("State", RECEIVED))

    def mark_applied(self, uuid: str, request_id: str) -> None:
        """The delivery's event was applied: a queue message delivered twice applies nothing the second time."""
        entity = {"PartitionKey": uuid, "RowKey": request_id, "State": APPLIED}
        with base.storage_errors("recording a Sentry webhook"):
            base.write(base.table(DELIVERIES), lambda t: t.upsert_entity(entity, mode=UpdateMode.MERGE))
