"""Azure Repos (Git) through the REST API (MicrosoftDocs/vsts-rest-api-specs, `specification/git/`, excerpted in
devtools/specs/): a project's repositories (`Repositories_List`) and whether a file is on a branch (`Items_Get`,
its metadata only). Released operations: `7.1`, Azure DevOps Server 2022 `7.0` (the client's level)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from shared.ado.client import AdoClient, AdoError, AdoNotFound

REPOSITORIES_URL = "{base}{project}/_apis/git/repositories"
ITEMS_URL = "{base}{project}/_apis/git/repositories/{repository}/items"
MAX_REPOSITORIES = 1000


def _segment(name: str) -> str:
    return quote(name, safe="")


def list_repositories(client: AdoClient, project: str) -> list[dict[str, str]]:
    """A project's enabled repositories as options `[{"label", "value"}]` (by name), sorted."""
    answer: Any = client.call("GET", REPOSITORIES_URL.format(base=client.base_url, project=_segment(project)))
    values = answer.get("value") if isinstance(answer, dict) else None
    if not isinstance(values, list):
        raise AdoError("Azure DevOps answered the repositories request without a value list")
    names = {
        entry["name"]
        for entry in values
        if isinstance(entry, dict) and isinstance(entry.get("name"), str) and not entry.get("isDisabled")
    }
    return [{"label": name, "value": name} for name in sorted(names, key=str.casefold)[:MAX_REPOSITORIES]]


def file_exists(client: AdoClient, project: str, repository: str, branch: str, path: str) -> bool:
    """Whether `path` is a file on `branch` of the repository. False when Azure DevOps answers 404 (no such
    item, branch or repository: the link cannot land on it either way); other failures raise."""
    url = ITEMS_URL.format(base=client.base_url, project=_segment(project), repository=_segment(repository))
    params = {
        "path": path,
        "versionDescriptor.version": branch,
        "versionDescriptor.versionType": "branch",
        "$format": "json",
    }
    try:
        item = client.call("GET", url, params=params)
    except AdoNotFound:
        return False
    return isinstance(item, dict) and item.get("gitObjectType", "blob") == "blob"
