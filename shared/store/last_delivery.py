"""When each integration's last service hook delivery was queued, for the status page (contract §14).

Written by the webhook after the delivery is durably queued, at most once per `EVERY_SECONDS` per integration
per process, and best effort: one upsert, bounded to `WRITE_SECONDS`, whose failure is logged and forgotten.
So nearly every acknowledgement costs nothing more, the one that writes costs one round trip (never more than
`WRITE_SECONDS`), and the time shown may be up to `EVERY_SECONDS` old. The queue worker does not write it, so
the storage round trips of applying a delivery are unchanged.

Table `status`, PartitionKey `delivery`, RowKey the integration id, `At` (epoch seconds).
"""

from __future__ import annotations

import logging
import threading
import time

from shared.errors import StorageUnavailable
from shared.store import base
from shared.store.deadline import storage_deadline

log = logging.getLogger(__name__)

TABLE = "status"
PARTITION = "delivery"
EVERY_SECONDS = 300.0
WRITE_SECONDS = 0.5
MAX_REMEMBERED = 10_000  # integrations this process remembers writing for (cleared when full)

_written: dict[str, float] = {}  # integration id -> when this process last wrote it (monotonic)
_lock = threading.Lock()


def _due(integration_id: str, monotonic: float) -> bool:
    """Whether this process should write now; claims the write, so concurrent deliveries write once."""
    with _lock:
        last = _written.get(integration_id)
        if last is not None and monotonic - last < EVERY_SECONDS:
            return False
        if len(_written) >= MAX_REMEMBERED:
            _written.clear()
        _written[integration_id] = monotonic
        return True


def note_delivery(integration_id: str, *, now: float | None = None, monotonic: float | None = None) -> bool:
    """Record that a delivery for `integration_id` was queued, if this process has not in the last few minutes.
    True when it wrote. Never raises for storage: a status that is a little stale is better than a lost delivery.
    A failed write is not retried before `EVERY_SECONDS` either, so a struggling storage is not asked again on
    every delivery."""
    if not _due(integration_id, time.monotonic() if monotonic is None else monotonic):
        return False
    entity = {"PartitionKey": PARTITION, "RowKey": integration_id, "At": float(time.time() if now is None else now)}
    try:
        with storage_deadline(WRITE_SECONDS):
            base.upsert(TABLE, entity, "recording the last delivery")
    except StorageUnavailable as exc:
        log.warning("Could not record the last delivery of integration %s: %s", integration_id, exc)
        return False
    return True


def last_deliveries(limit: int) -> dict[str, float]:
    """Integration id -> when its last delivery was recorded, for at most `limit` integrations (one query)."""
    entities = base.query(
        TABLE,
        "PartitionKey eq @pk",
        {"pk": PARTITION},
        "reading the last deliveries",
        select=["RowKey", "At"],
        results_per_page=min(limit, 1000),
        limit=limit,
    )
    return {e["RowKey"]: float(e["At"]) for e in entities if isinstance(e.get("At"), (int, float))}


def forget_this_process() -> None:
    """Forget what this process wrote (tests), so the next delivery of each integration writes again."""
    with _lock:
        _written.clear()
