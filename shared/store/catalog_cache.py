"""The options forms offer (contract §12.5), cached per integration in `catalogcache`: one entity per (integration,
list, project[, type]), so a form that opens again costs no Azure DevOps request.

How long each list is kept, and why (a person who just changed one asks with `?refresh=true` instead of waiting):
- projects, work item types, states, a type's required fields: 1 hour. They change when an administrator creates
  a project or edits the process, which is rare and deliberate; the done states inbound and outbound sync read are
  this same list.
- areas, iterations: 10 minutes. Teams add sprints and areas during planning, often just before filing work
  into them, so a stale list would be noticed; ten minutes still answers a burst of forms from the cache.

Size: a list is stored as JSON (ASCII, `\\u` escapes for the rest, so a character is one UTF-16 code unit)
split over `Part0..PartN` of PART_CHARS each, under the 64 KiB a string property may hold; the lists are capped
at 1000 options upstream. A list that would still not fit in MAX_PARTS parts (an entity is at most 1 MiB) is not
cached: it is answered anyway, and read from Azure DevOps each time.
"""

from __future__ import annotations

import hashlib
import json
import logging

from shared.clock import SYSTEM, Clock
from shared.errors import StorageUnavailable, TooLargeToStore
from shared.store import base

log = logging.getLogger(__name__)

TABLE = "catalogcache"
HOUR, TEN_MINUTES = 3600.0, 600.0
TTL_SECONDS = {
    "projects": HOUR,
    "types": HOUR,
    "states": HOUR,
    "fields": HOUR,  # a type's required fields: process rules, edited as rarely as the types themselves
    "areas": TEN_MINUTES,
    "iterations": TEN_MINUTES,
}
PART_CHARS = 30_000  # 60 000 bytes in UTF-16: under the 64 KiB of one string property
MAX_PARTS = 16  # 16 x 60 000 bytes and the keys stay under the 1 MiB of one entity

Options = list[dict[str, str]]


def _row(kind: str, names: tuple[str, ...]) -> str:
    """`kind|<digest>`: project and type names may hold what a RowKey cannot (/ \\ # ?), or be long once quoted.
    Azure DevOps compares these names case-insensitively, and so does the key."""
    if not names:
        return kind
    digest = hashlib.sha256("\x1f".join(name.casefold() for name in names).encode()).hexdigest()[:40]
    return f"{kind}|{digest}"


class CatalogCache:
    def __init__(self, clock: Clock = SYSTEM) -> None:
        self.clock = clock

    def get(self, integration_id: str, kind: str, names: tuple[str, ...] = ()) -> Options | None:
        """The cached options, or None when there are none younger than the list's TTL. Raises StorageUnavailable."""
        entity = base.read_entity(TABLE, integration_id, _row(kind, names), "reading cached form options")
        if entity is None:
            return None
        age = self.clock.now() - float(entity.get("FetchedAt") or 0)
        if not 0 <= age <= TTL_SECONDS[kind]:
            return None
        try:
            parts = int(entity.get("Parts") or 0)
            options = json.loads("".join(str(entity.get(f"Part{i}", "")) for i in range(parts)))
        except (TypeError, ValueError):
            return None  # unreadable (e.g. written by another version): read the list again
        return options if isinstance(options, list) else None

    def put(self, integration_id: str, kind: str, names: tuple[str, ...], options: Options) -> bool:
        """Cache the options; False when they were not cached (too large, or storage failed: a cache only)."""
        text = json.dumps(options, separators=(",", ":"), ensure_ascii=True)
        parts = [text[i : i + PART_CHARS] for i in range(0, len(text), PART_CHARS)] or [""]
        if len(parts) > MAX_PARTS:
            log.warning("The %s list of integration %s is too large to cache", kind, integration_id)
            return False
        entity: dict[str, object] = {
            "PartitionKey": integration_id,
            "RowKey": _row(kind, names),
            "Kind": kind,
            "Names": json.dumps(names)[:1000],  # what the digest stands for, for whoever reads the table
            "FetchedAt": self.clock.now(),
            "Parts": len(parts),
            **{f"Part{i}": part for i, part in enumerate(parts)},
        }
        try:
            base.upsert(TABLE, entity, "caching form options")
        except (StorageUnavailable, TooLargeToStore):  # a cache: the next form reads the list again
            log.warning("Could not cache the %s list of integration %s", kind, integration_id)
            return False
        return True
