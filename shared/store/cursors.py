"""Where a paged timer run stopped, so the next run resumes there (one entity per timer, or per timer and
integration), with an optional short list of ids to look at again next run (`Retry`, comma-separated)."""

from __future__ import annotations

from dataclasses import dataclass

from shared.store import base

TABLE = "state"
PARTITION = "cursor"


@dataclass(frozen=True)
class Cursor:
    after: str = ""
    retry: tuple[int, ...] = ()


class CursorStore:
    def get(self, name: str) -> str:
        return self.read(name).after

    def set(self, name: str, after: str) -> None:
        self.write(name, Cursor(after))

    def read(self, name: str) -> Cursor:
        entity = base.read_entity(TABLE, PARTITION, name, f"reading the {name} cursor")
        if not entity:
            return Cursor()
        retry = tuple(int(i) for i in str(entity.get("Retry", "")).split(",") if i.strip().isdigit())
        return Cursor(str(entity.get("After", "")), retry)

    def write(self, name: str, cursor: Cursor) -> None:
        entity = {"PartitionKey": PARTITION, "RowKey": name, "After": cursor.after}
        if cursor.retry:
            entity["Retry"] = ",".join(str(i) for i in cursor.retry)
        base.upsert(TABLE, entity, f"saving the {name} cursor")
