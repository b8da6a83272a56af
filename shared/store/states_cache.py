"""The states of each work item type with their categories, cached per integration (`statescache`): a type's
states change rarely, and reading them on every delivery or outbound change would double the requests."""

from __future__ import annotations

import json
import logging
import time
from urllib.parse import quote

from shared.errors import StorageUnavailable
from shared.store import base

log = logging.getLogger(__name__)

TABLE = "statescache"
TTL_SECONDS = 3600


def _row(project: str, work_item_type: str) -> str:
    return f"{quote(project, safe='')}|{quote(work_item_type, safe='')}"


States = tuple[tuple[str, str], ...]  # (state name, category), in Azure DevOps' order


class StatesCache:
    def get(self, integration_id: str, project: str, work_item_type: str) -> States | None:
        """The cached states, or None when there are none younger than TTL_SECONDS."""
        entity = base.read_entity(TABLE, integration_id, _row(project, work_item_type), "reading cached states")
        if entity is None or "States" not in entity or time.time() - float(entity.get("FetchedAt", 0)) > TTL_SECONDS:
            return None
        return tuple((str(name), str(category)) for name, category in json.loads(entity["States"]))

    def put(self, integration_id: str, project: str, work_item_type: str, states: States) -> None:
        entity = {
            "PartitionKey": integration_id,
            "RowKey": _row(project, work_item_type),
            "States": json.dumps([list(state) for state in states]),
            "FetchedAt": time.time(),
        }
        try:
            base.upsert(TABLE, entity, "caching done states")
        except StorageUnavailable:  # a cache: the next delivery reads the states again
            log.warning("Could not cache the done states of integration %s", integration_id)
