"""Counts for the status page (contract §18: comments synced each way), best effort.

Table `status`, PartitionKey `count`, RowKey the counter's name (`comments_from_ado`, `comments_to_sentry`,
`comments_to_ado`), `Value`. An increment is a read and a write under the ETag, retried a few times when another
writer won; a failure is logged and forgotten: a count is a gauge for people, never a reason to fail a sync.
"""

from __future__ import annotations

import logging
from typing import Any

from azure.core.exceptions import ResourceExistsError

from shared.store import base
from shared.store.deadline import storage_deadline

log = logging.getLogger(__name__)

TABLE = "status"
PARTITION = "count"
ATTEMPTS = 5
WRITE_SECONDS = 0.5
NAMES = ("comments_from_ado", "comments_to_sentry", "comments_to_ado")


def add(org_id: str, name: str, amount: int = 1) -> None:
    """Add to the counter `name` (`org_id` is for the log only: the status page shows the app's totals). Bounded
    to WRITE_SECONDS in all, so storage in trouble never holds the sync that counts."""
    try:
        with storage_deadline(WRITE_SECONDS):
            _add(org_id, name, amount)
    except Exception as exc:  # a gauge never fails the work it counts (StorageUnavailable, or anything else)
        log.warning("Counter %s could not be updated: %s", name, exc)


def _add(org_id: str, name: str, amount: int) -> None:
    for _ in range(ATTEMPTS):
        client = base.table(TABLE)
        entity = base.get_entity(client, PARTITION, name)
        if entity is None:
            try:
                base.write(client, lambda t: t.create_entity({"PartitionKey": PARTITION, "RowKey": name,
                                                              "Value": amount}))  # fmt: skip
                return
            except ResourceExistsError:
                continue
        updated: dict[str, Any] = {"PartitionKey": PARTITION, "RowKey": name,
                                   "Value": int(entity.get("Value") or 0) + amount}  # fmt: skip
        if base.replace_entity_if_unchanged(client, updated, entity.metadata.get("etag")) is not None:
            return
    log.info("Counter %s kept changing; %s not counted", name, org_id)


def read_all() -> dict[str, int]:
    """Every counter, 0 for one never written."""
    counts = dict.fromkeys(NAMES, 0)
    for entity in base.query(TABLE, "PartitionKey eq @pk", {"pk": PARTITION}, "reading counters", limit=100):
        if entity["RowKey"] in counts:
            counts[entity["RowKey"]] = int(entity.get("Value") or 0)
    return counts
