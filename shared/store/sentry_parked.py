"""Queue messages parked while a Sentry installation needs a new token (contract §15), in Table Storage.

| table          | PartitionKey           | RowKey                          | what                                    |
|----------------|------------------------|---------------------------------|-----------------------------------------|
| `sentryparked` | org id `sentry-<slug>` | sha256 of the queue and message | `Queue`, `Message`, `ExpiresAt` |

The key is the message's own hash, so parking one message twice keeps one row. Messages name things, not values
(an issue, a recorded webhook), so they stay small and apply the newest state whenever they are released. Rows
of an installation nobody re-authorises within PARKED_TTL_SECONDS are removed by `cleanup`.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

from azure.core.exceptions import ResourceNotFoundError

from shared.store import base

TABLE = "sentryparked"
MAX_PER_QUERY = 1000
# An installation nobody re-authorises for this long is abandoned: `cleanup` removes what it left parked.
PARKED_TTL_SECONDS = 30 * 24 * 3600


@dataclass(frozen=True)
class ParkedMessage:
    org_id: str
    key: str
    queue: str
    message: str


def _key(queue: str, message: str) -> str:
    return hashlib.sha256(f"{queue}\n{message}".encode()).hexdigest()


def park(org_id: str, queue: str, message: str, *, now: float | None = None) -> None:
    """Keep `message` of `queue` for the organization until it is released (StorageUnavailable when it fails)."""
    at = float(time.time() if now is None else now)
    entity = {
        "PartitionKey": org_id,
        "RowKey": _key(queue, message),
        "Queue": queue,
        "Message": message,
        "ParkedAt": at,
        "ExpiresAt": at + PARKED_TTL_SECONDS,
    }
    base.upsert(TABLE, entity, "parking a message")


def parked(org_id: str, limit: int = MAX_PER_QUERY, *, now: float | None = None) -> list[ParkedMessage]:
    """The organization's parked messages that have not expired (one single-partition query)."""
    entities = base.query(
        TABLE,
        "PartitionKey eq @pk and ExpiresAt gt @now",
        {"pk": org_id, "now": float(time.time() if now is None else now)},
        "reading parked messages",
        select=["RowKey", "Queue", "Message"],
        limit=limit,
    )
    return [ParkedMessage(org_id, e["RowKey"], str(e.get("Queue")), str(e.get("Message"))) for e in entities]


def unpark(message: ParkedMessage) -> None:
    try:
        with base.storage_errors("removing a parked message"):
            base.table(TABLE).delete_entity(message.org_id, message.key)
    except ResourceNotFoundError:
        pass  # released by another instance already
