"""Where a paged timer run stopped, so the next run resumes there (one entity per timer)."""

from __future__ import annotations

from shared.store import base

TABLE = "state"
PARTITION = "cursor"


class CursorStore:
    def get(self, name: str) -> str:
        entity = base.read_entity(TABLE, PARTITION, name, f"reading the {name} cursor")
        return str(entity.get("After", "")) if entity else ""

    def set(self, name: str, after: str) -> None:
        base.upsert(TABLE, {"PartitionKey": PARTITION, "RowKey": name, "After": after}, f"saving the {name} cursor")
