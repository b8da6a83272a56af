"""Where a paged timer run stopped, so the next run resumes there (one entity per timer)."""

from __future__ import annotations

from azure.core.exceptions import AzureError
from azure.data.tables import UpdateMode

from shared import storage

TABLE = "state"
PARTITION = "cursor"


class CursorStore:
    def get(self, name: str) -> str:
        try:
            entity = storage.get_entity(storage.table(TABLE), PARTITION, name)
        except AzureError as exc:
            raise storage.StorageUnavailable(f"reading the {name} cursor failed") from exc
        return str(entity.get("After", "")) if entity else ""

    def set(self, name: str, after: str) -> None:
        entity = {"PartitionKey": PARTITION, "RowKey": name, "After": after}
        try:
            storage.write(storage.table(TABLE), lambda t: t.upsert_entity(entity, mode=UpdateMode.REPLACE))
        except AzureError as exc:
            raise storage.StorageUnavailable(f"saving the {name} cursor failed") from exc
