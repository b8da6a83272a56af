"""Idempotency records (`idempotency` table): what became of a request sent with an `Idempotency-Key`.

| PartitionKey        | RowKey                     | what                                                     |
|---------------------|----------------------------|----------------------------------------------------------|
| `org id|issue id`   | sha256 of the key (hex)    | State `creating` or `created`, the request's hash, the   |
|                     |                            | lease of the request at work, when it expires, the answer |

Keys are hashed: a key may hold characters a table key cannot (`/ \\ # ?`), and its hash has a fixed length.
Every write is conditional (insert, or replace/delete under the ETag read), so of two requests racing with one
key exactly one proceeds. A record past `ExpiresAt` counts as absent; the next claim of its key replaces it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError

from shared.store import base

TABLE = "idempotency"
CREATING = "creating"
CREATED = "created"


@dataclass(frozen=True)
class IdempotencyRecord:
    scope: str  # "org id|issue id"
    key_hash: str
    request_hash: str
    state: str
    lease_until: float  # while `creating`: no other request takes over before then
    expires_at: float
    answer: dict[str, Any] | None = None
    etag: str | None = None


def _entity(record: IdempotencyRecord) -> dict[str, Any]:
    entity: dict[str, Any] = {
        "PartitionKey": record.scope,
        "RowKey": record.key_hash,
        "RequestHash": record.request_hash,
        "State": record.state,
        "LeaseUntil": float(record.lease_until),
        "ExpiresAt": float(record.expires_at),
    }
    if record.answer is not None:
        entity["Answer"] = json.dumps(record.answer, separators=(",", ":"))
    return entity


def _record(entity: dict[str, Any]) -> IdempotencyRecord:
    answer = entity.get("Answer")
    return IdempotencyRecord(
        scope=entity["PartitionKey"],
        key_hash=entity["RowKey"],
        request_hash=str(entity.get("RequestHash", "")),
        state=str(entity.get("State", "")),
        lease_until=float(entity.get("LeaseUntil", 0)),
        expires_at=float(entity.get("ExpiresAt", 0)),
        answer=json.loads(answer) if answer else None,
        etag=entity.metadata.get("etag") if hasattr(entity, "metadata") else None,
    )


class IdempotencyStore:
    """Storage failures raise `StorageUnavailable`; a write that lost a race answers None or False."""

    def get(self, scope: str, key_hash: str, now: float) -> tuple[IdempotencyRecord | None, str | None]:
        """(the live record or None, the ETag of whatever is stored, expired records included)."""
        entity = base.read_entity(TABLE, scope, key_hash, "reading an idempotency record")
        if entity is None:
            return None, None
        record = _record(entity)
        return (record if record.expires_at > now else None), record.etag

    def claim(self, record: IdempotencyRecord, stored_etag: str | None) -> IdempotencyRecord | None:
        """Store `record` where nothing was (`stored_etag` None) or over the entity read with `stored_etag` (an
        expired record, or a `creating` one whose lease ran out); None when another request got there first."""
        client = base.table(TABLE)
        try:
            with base.storage_errors("saving an idempotency record"):
                if stored_etag is None:
                    meta = base.write(client, lambda t: t.create_entity(_entity(record)))
                    return replace(record, etag=meta.get("etag"))
                etag = base.replace_entity_if_unchanged(client, _entity(record), stored_etag)
        except ResourceExistsError:
            return None
        return replace(record, etag=etag) if etag is not None else None

    def finish(self, current: IdempotencyRecord, answer: dict[str, Any]) -> bool:
        """Mark the request done with its answer; False when the record changed meanwhile."""
        done = replace(current, state=CREATED, answer=answer)
        with base.storage_errors("saving an idempotency record"):
            return base.replace_entity_if_unchanged(base.table(TABLE), _entity(done), current.etag) is not None

    def release(self, current: IdempotencyRecord) -> None:
        """Forget a request that created nothing, so the same key may be sent again at once."""
        try:
            with base.storage_errors("removing an idempotency record"):
                base.table(TABLE).delete_entity(
                    current.scope, current.key_hash, etag=current.etag, match_condition=MatchConditions.IfNotModified
                )
        except (ResourceNotFoundError, ResourceModifiedError):
            pass  # gone already, or another request owns it now
