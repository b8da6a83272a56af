"""What the app accepted but has not applied (or sent) yet: one row per piece of work, in Table Storage
(docs/design.md, contract §16).

| table     | PartitionKey | RowKey                       | what                                               |
|-----------|--------------|------------------------------|----------------------------------------------------|
| `pending` | `pending`    | kind, `-`, sha256 of its key | the queue and message that wake it; when to wake it |

A row is written before (or together with) what it points to is stored, and deleted by the worker that applied
it, under the ETag it read before applying, so a row noted again meanwhile stays. Rows therefore live only as
long as work is in flight: the sweeper's query (`WakeAt lt now` in the one partition) reads the work in flight,
never the app's history.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import UpdateMode

from shared.store import base

log = logging.getLogger(__name__)

TABLE = "pending"
PARTITION = "pending"
MAX_MESSAGE_CHARS = 30_000  # a queue message holds 64 KiB of base64: well within one property (64 KiB UTF-16)

# The kinds of work, each woken by a message on its queue.
SENTRY_HOOK = "sentry-hook"  # a recorded Sentry webhook, applied by vsts-sentry-hooks
OUTBOUND = "outbound"  # a tracker-side status or assignee change, sent by vsts-outbound
COMMENT = "comment"  # a tracker-side comment (added, edited, deleted), sent by vsts-outbound
SENTRY_UPDATE = "sentry-update"  # a link made or removed outside Sentry, announced by vsts-sentry-updates


@dataclass(frozen=True)
class PendingRef:
    """Which piece of work: its kind and its key (unique within the kind)."""

    kind: str
    key: str

    @property
    def row_key(self) -> str:
        return f"{self.kind}-{hashlib.sha256(self.key.encode('utf-8', 'surrogatepass')).hexdigest()[:40]}"


@dataclass(frozen=True)
class Pending:
    """A stored row: the work, the message that wakes it on `queue`, when it may be woken next."""

    ref: PendingRef
    queue: str
    message: str
    noted_at: float
    wake_at: float
    wakes: int = 0  # how often the sweeper woke it
    etag: str | None = None


def _from_entity(entity: dict[str, Any]) -> Pending:
    return Pending(
        PendingRef(str(entity.get("Kind", "")), str(entity.get("Key", ""))),
        str(entity.get("Queue", "")),
        str(entity.get("Message", "")),
        float(entity.get("NotedAt") or 0.0),
        float(entity.get("WakeAt") or 0.0),
        int(entity.get("Wakes") or 0),
        entity.metadata.get("etag") if hasattr(entity, "metadata") else None,
    )


def note(ref: PendingRef, queue: str, message: str, *, now: float, grace: float) -> None:
    """Record the work (again): the sweeper wakes it `grace` seconds from now unless a worker applied it first.
    StorageUnavailable when storage did not take it."""
    if len(message) > MAX_MESSAGE_CHARS:
        raise ValueError("a pending message is larger than a queue message holds")
    entity = {
        "PartitionKey": PARTITION,
        "RowKey": ref.row_key,
        "Kind": ref.kind,
        "Key": ref.key,
        "Queue": queue,
        "Message": message,
        "NotedAt": float(now),
        "WakeAt": float(now + grace),
        "Wakes": 0,
    }
    with base.storage_errors(f"noting pending {ref.kind} work"):
        base.write(base.table(TABLE), lambda t: t.upsert_entity(entity, mode=UpdateMode.REPLACE))


def get(ref: PendingRef) -> Pending | None:
    """The row of `ref` (with its ETag), or None when nothing is pending for it."""
    entity = base.read_entity(TABLE, PARTITION, ref.row_key, f"reading pending {ref.kind} work")
    return _from_entity(entity) if entity is not None else None


def settle(row: Pending) -> bool:
    """The work was applied (or given up on for a person: poisoned): delete its row, unless it was noted again
    since `row` was read (then the newer note stays, and its message or the sweeper applies it). True when
    deleted; StorageUnavailable when storage failed (the sweeper wakes it again: applying twice is harmless)."""
    try:
        with base.storage_errors(f"settling pending {row.ref.kind} work"):
            base.table(TABLE).delete_entity(
                PARTITION, row.ref.row_key, etag=row.etag, match_condition=MatchConditions.IfNotModified
            )
        return True
    except (ResourceModifiedError, ResourceNotFoundError):
        return False


def postpone(row: Pending, *, wake_at: float, woken: bool = False) -> Pending | None:
    """Wake the work no earlier than `wake_at` (its message is delayed that long, or was just sent again), under
    the ETag: None when it was settled or noted again meanwhile."""
    entity = {
        "PartitionKey": PARTITION,
        "RowKey": row.ref.row_key,
        "WakeAt": float(wake_at),
        "Wakes": row.wakes + (1 if woken else 0),
    }
    try:
        with base.storage_errors(f"postponing pending {row.ref.kind} work"):
            meta = base.table(TABLE).update_entity(
                entity, mode=UpdateMode.MERGE, etag=row.etag, match_condition=MatchConditions.IfNotModified
            )
    except (ResourceModifiedError, ResourceNotFoundError):
        return None
    return Pending(row.ref, row.queue, row.message, row.noted_at, wake_at, entity["Wakes"], meta.get("etag"))


def due(*, now: float, limit: int) -> list[Pending]:
    """Up to `limit` rows whose wake time has passed, from the one partition (the work in flight)."""
    entities = base.query(
        TABLE,
        "PartitionKey eq @pk and WakeAt lt @now",
        {"pk": PARTITION, "now": float(now)},
        "finding pending work",
        results_per_page=min(limit, 1000),
        limit=limit,
    )
    return [_from_entity(entity) for entity in entities]


def count(*, limit: int = 1000) -> int:
    """How many rows are pending (at most `limit`; for tests and the status page)."""
    return len(base.query(TABLE, "PartitionKey eq @pk", {"pk": PARTITION}, "counting pending work", limit=limit))
