"""Rows that carry their own expiry (`ExpiresAt`, epoch seconds) and are of no use after it: Sentry's recorded
webhooks, idempotency records, setup links, messages parked for an installation that never got a new token.
Each is already treated as absent once expired; this removes them, so the tables stay the size of their live
rows.

A query on a property that is not a key reads the whole table, which is why this runs from a daily timer, a
bounded number of rows at a time.
"""

from __future__ import annotations

from azure.core.exceptions import ResourceNotFoundError

from shared.store import base

EXPIRING_TABLES = ("sentrydeliveries", "idempotency", "setuplinks", "sentryparked")


def purge_expired(table: str, *, now: float, limit: int) -> int:
    """Delete up to `limit` rows of `table` whose `ExpiresAt` has passed; how many were deleted."""
    expired = base.query(
        table,
        "ExpiresAt lt @now",
        {"now": float(now)},
        f"finding expired rows of {table}",
        select=["PartitionKey", "RowKey"],
        results_per_page=min(limit, 1000),
        limit=limit,
    )
    client = base.table(table)
    deleted = 0
    for entity in expired:
        try:
            with base.storage_errors(f"deleting an expired row of {table}"):
                client.delete_entity(entity["PartitionKey"], entity["RowKey"])
            deleted += 1
        except ResourceNotFoundError:
            pass  # deleted meanwhile (another run, or the row's own code replacing it)
    return deleted
