"""Checking an organization URL and a credential before they are saved (the setup page, contract §14).

`connectionData` answers, for whoever is signed in, the host's `instanceId`: for an organization (or an Azure
DevOps Server collection) URL that is the collection id, the key of an integration (the
`resourceContainers.collection.id` of its deliveries). It needs no particular scope, so a second call that needs
Work Items (Read), a WIQL query selecting nothing, tells a credential that may enter the organization but not read
its work items.

`api_level` learns which Azure DevOps a URL is (`shared.ado.versions`): Azure DevOps Services hosts are 7.1
without asking; any other host (an Azure DevOps Server collection) is asked `OPTIONS {collection}/_apis/`, the
resource locations with the versions it has, as the official clients do.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from shared.ado import versions
from shared.ado.client import AdoClient, AdoError

CONNECTION_DATA_URL = "{base}_apis/connectionData"
LOCATIONS_URL = "{base}_apis"  # as Microsoft's clients ask it
SERVICES_HOSTS = ("dev.azure.com", ".visualstudio.com")
PROBE_WIQL = "SELECT [System.Id] FROM WorkItems WHERE [System.Id] = 0"
_GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def organization_id(client: AdoClient) -> str:
    """The collection id of the client's organization, as connectionData answers it (lower-cased)."""
    answer: Any = client.call("GET", CONNECTION_DATA_URL.format(base=client.base_url), preview=versions.CONNECTION_DATA)
    instance = answer.get("instanceId") if isinstance(answer, dict) else None
    if not isinstance(instance, str) or not _GUID.fullmatch(instance):
        raise AdoError("Azure DevOps answered connectionData without the organization's id")
    return instance.lower()


def probe_work_items(client: AdoClient) -> None:
    """Raises as the client does when the credential may not query work items."""
    client.query_work_item_ids(PROBE_WIQL)


def is_services(domain_name: str) -> bool:
    """Whether the URL is Azure DevOps Services (`dev.azure.com`, `*.visualstudio.com`), which is 7.1."""
    host = (urlsplit(domain_name).hostname or "").lower()
    return host == SERVICES_HOSTS[0] or host.endswith(SERVICES_HOSTS[1])


def api_level(client: AdoClient) -> str:
    """The API level of the client's server: 7.1 for Azure DevOps Services, else what its resource locations
    (`OPTIONS {collection}/_apis/`) say, 7.0 for Azure DevOps Server 2022."""
    if is_services(client.base_url):
        return versions.SERVICES
    # The listing has no api-version of its own: none is sent, so no version can be out of range.
    answer: Any = client.call(
        "OPTIONS", LOCATIONS_URL.format(base=client.base_url), headers={"Accept": "application/json"}
    )
    locations = answer.get("value") if isinstance(answer, dict) else None
    maxima = [item.get("maxVersion") for item in locations or [] if isinstance(item, dict)]
    level = versions.level_of(maxima)
    if level is None:
        raise AdoError(
            "this Azure DevOps Server is older than Azure DevOps Server 2022 (REST API 7.0), which the app needs"
        )
    return level
