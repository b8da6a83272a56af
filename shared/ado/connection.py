"""Checking an organization URL and a credential before they are saved (the setup page, contract §14).

`connectionData` answers, for whoever is signed in, the host's `instanceId`: for an organization (or an Azure
DevOps Server collection) URL that is the collection id, the key of an integration (the
`resourceContainers.collection.id` of its deliveries). It needs no particular scope, so a second call that needs
Work Items (Read), a WIQL query selecting nothing, tells a credential that may enter the organization but not read
its work items.
"""

from __future__ import annotations

import re
from typing import Any

from shared.ado.client import AdoClient, AdoError

CONNECTION_DATA_URL = "{base}_apis/connectionData"
PROBE_WIQL = "SELECT [System.Id] FROM WorkItems WHERE [System.Id] = 0"
_GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def organization_id(client: AdoClient) -> str:
    """The collection id of the client's organization, as connectionData answers it (lower-cased)."""
    answer: Any = client.call("GET", CONNECTION_DATA_URL.format(base=client.base_url))
    instance = answer.get("instanceId") if isinstance(answer, dict) else None
    if not isinstance(instance, str) or not _GUID.fullmatch(instance):
        raise AdoError("Azure DevOps answered connectionData without the organization's id")
    return instance.lower()


def probe_work_items(client: AdoClient) -> None:
    """Raises as the client does when the credential may not query work items."""
    client.query_work_item_ids(PROBE_WIQL)
