"""Code mappings per tracker organization (contract §18), and the cache of which files exist in Azure Repos.

Mappings: one entity per organization in `codemappings` (PartitionKey the org id, RowKey `mappings`), the list
as JSON (at most 50 mappings of short strings: well under the 64 KiB of one property), so a stack frame link
costs one point read.

File checks: `repofiles`, one entity per (integration, project, repository, branch, path), keyed by a digest
(paths hold what a RowKey cannot). A file found is kept an hour (files rarely move); one not found ten minutes
(it may be pushed soon). A cache only: a failure to read or write it costs a lookup, never the answer.
"""

from __future__ import annotations

import hashlib
import json
import logging

from shared.clock import SYSTEM, Clock
from shared.errors import StorageUnavailable, TooLargeToStore
from shared.model.code_mappings import CodeMapping
from shared.store import base

log = logging.getLogger(__name__)

TABLE = "codemappings"
ROW = "mappings"
FILES_TABLE = "repofiles"
FOUND_TTL_SECONDS = 3600.0
MISSING_TTL_SECONDS = 600.0


class CodeMappingStore:
    def get(self, org_id: str) -> tuple[CodeMapping, ...]:
        entity = base.read_entity(TABLE, org_id, ROW, "reading code mappings")
        if not entity:
            return ()
        try:
            return tuple(CodeMapping(**entry) for entry in json.loads(str(entity.get("Mappings") or "[]")))
        except (TypeError, ValueError):
            log.error("The code mappings of %s are unreadable", org_id)
            return ()

    def put(self, org_id: str, mappings: tuple[CodeMapping, ...]) -> None:
        text = json.dumps([m.public() for m in mappings], separators=(",", ":"), ensure_ascii=True)
        base.upsert(TABLE, {"PartitionKey": org_id, "RowKey": ROW, "Mappings": text}, "saving code mappings")


def _file_row(mapping: CodeMapping, path: str) -> str:
    names = (mapping.project.casefold(), mapping.repository.casefold(), mapping.branch, path)
    return hashlib.sha256("\x1f".join(names).encode()).hexdigest()[:48]


class RepoFileCache:
    def __init__(self, clock: Clock = SYSTEM) -> None:
        self.clock = clock

    def get(self, mapping: CodeMapping, path: str) -> bool | None:
        """Whether the file was there when last checked, or None when that is not known (or too old)."""
        try:
            entity = base.read_entity(FILES_TABLE, mapping.integration_id, _file_row(mapping, path), "reading files")
        except StorageUnavailable:
            return None
        if not entity:
            return None
        exists = bool(entity.get("Exists"))
        age = self.clock.now() - float(entity.get("CheckedAt") or 0)
        return exists if 0 <= age <= (FOUND_TTL_SECONDS if exists else MISSING_TTL_SECONDS) else None

    def put(self, mapping: CodeMapping, path: str, exists: bool) -> None:
        entity = {
            "PartitionKey": mapping.integration_id,
            "RowKey": _file_row(mapping, path),
            "Exists": exists,
            "CheckedAt": self.clock.now(),
        }
        try:
            base.upsert(FILES_TABLE, entity, "caching a file check")
        except (StorageUnavailable, TooLargeToStore):
            log.warning("Could not cache a file check of integration %s", mapping.integration_id)
