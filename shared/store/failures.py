"""Recent failures that a person should see (contract §14): `ado_failed` (Azure DevOps refused an outbound change,
not retried) and `sentry_failed` (Sentry refused an update), the last `KEEP` of them, newest first.

Table `status`, PartitionKey `failure`, RowKey `<inverted milliseconds>-<random>`, so the partition's own order
is newest first and the page reads the list with one query of `KEEP` entities. Recording is one insert; every
`PRUNE_EVERY`-th record of a process (and its first) also deletes what lies beyond the newest `KEEP` (one query
of keys and a batch delete), so the partition stays small without a counter every writer would contend on.
Recording is best effort: a failure to record a failure is logged, never raised into the path that failed.
"""

from __future__ import annotations

import itertools
import json
import logging
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from azure.core.exceptions import AzureError, ResourceNotFoundError

from shared.errors import StorageUnavailable
from shared.store import base

log = logging.getLogger(__name__)

TABLE = "status"
PARTITION = "failure"
KEEP = 50
PRUNE_EVERY = 10
PRUNE_SCAN = 200  # keys read past the newest KEEP by one prune
BATCH = 100  # Table Storage's limit of operations per transaction
MAX_TEXT = 300
_EPOCH_END_MS = 10**13  # year 2286: RowKeys stay 13 digits

_recorded = itertools.count()


@dataclass(frozen=True)
class Failure:
    kind: str  # ado_failed, sentry_failed
    subject: str  # what failed, e.g. "org/issue → work item 77"
    reason: str  # one sentence
    at: float
    advice: str | None = None  # what to do, when the recorder knows better than the kind's default
    details: dict[str, Any] = field(default_factory=dict)
    key: str = ""  # its RowKey: names it for `find_failure` and `forget_failure`


def _row_key(now: float) -> str:
    return f"{_EPOCH_END_MS - int(now * 1000):013d}-{secrets.token_hex(4)}"


def record_failure(
    kind: str,
    subject: str,
    reason: str,
    *,
    advice: str | None = None,
    details: dict[str, Any] | None = None,
    now: float | None = None,
) -> bool:
    """Add a failure to the recent list; True when it was stored. Never raises for storage."""
    now = time.time() if now is None else now
    entity: dict[str, Any] = {
        "PartitionKey": PARTITION,
        "RowKey": _row_key(now),
        "Kind": kind[:40],
        "Subject": subject[:MAX_TEXT],
        "Reason": reason[:MAX_TEXT],
        "At": float(now),
        "Details": json.dumps(details or {}, separators=(",", ":"), default=str)[:1000],
    }
    if advice:
        entity["Advice"] = advice[:MAX_TEXT]
    try:
        with base.storage_errors("recording a failure"):
            base.write(base.table(TABLE), lambda t: t.create_entity(entity))
        if next(_recorded) % PRUNE_EVERY == 0:
            prune()
    except (StorageUnavailable, AzureError) as exc:
        log.warning("Could not record a %s failure of %s: %s", kind, subject, type(exc).__name__)
        return False
    return True


def prune() -> int:
    """Delete what lies beyond the newest KEEP (at most PRUNE_SCAN of them); how many were deleted."""
    keys = base.query(
        TABLE,
        "PartitionKey eq @pk",
        {"pk": PARTITION},
        "reading failures to prune",
        select=["RowKey"],
        results_per_page=KEEP + PRUNE_SCAN,
        limit=KEEP + PRUNE_SCAN,
    )
    old = [e["RowKey"] for e in keys[KEEP:]]
    client = base.table(TABLE)
    for start in range(0, len(old), BATCH):
        operations = [("delete", {"PartitionKey": PARTITION, "RowKey": key}) for key in old[start : start + BATCH]]
        try:
            client.submit_transaction(operations)
        except AzureError as exc:  # another process pruned some of them first: the next prune finishes it
            log.info("Pruning failures: %s", type(exc).__name__)
    return len(old)


def recent_failures(limit: int = KEEP) -> list[Failure]:
    """The newest `limit` failures, newest first (one query)."""
    entities = base.query(
        TABLE, "PartitionKey eq @pk", {"pk": PARTITION}, "reading failures", results_per_page=limit, limit=limit
    )
    return [_failure(e) for e in entities]


def _failure(e: dict[str, Any]) -> Failure:
    try:
        details = json.loads(e.get("Details") or "{}")
    except ValueError:
        details = {}
    at = e.get("At")
    return Failure(
        kind=str(e.get("Kind", "")),
        subject=str(e.get("Subject", "")),
        reason=str(e.get("Reason", "")),
        at=float(at) if isinstance(at, (int, float)) else 0.0,
        advice=e.get("Advice") or None,
        details=details if isinstance(details, dict) else {},
        key=str(e.get("RowKey", "")),
    )


def find_failure(key: str) -> Failure | None:
    """One listed failure by its key; None when it is not (or no longer) listed."""
    if not base.is_valid_key(key):
        return None
    entity = base.read_entity(TABLE, PARTITION, key, "reading a failure")
    return None if entity is None else _failure(entity)


def forget_failure(key: str) -> None:
    """Take a failure off the list (a person acted on it); nothing when it is gone already."""
    with base.storage_errors("removing a failure"):
        try:
            base.table(TABLE).delete_entity(PARTITION, key)
        except ResourceNotFoundError:
            pass
