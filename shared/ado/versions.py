"""Which `api-version` each Azure DevOps operation is called with, per server (contract §15).

From Microsoft's published specification (MicrosoftDocs/vsts-rest-api-specs, the copy in the team's
`specs/azure-devops/`): every released operation the app uses has the server's version, `7.1` on Azure DevOps
Services and Azure DevOps Server 2022.1 and later, `7.0` on Azure DevOps Server 2022. Preview operations need
`-preview.N` with their resource version: the work item Comments API (`7.1-preview.4`, Server 2022
`7.0-preview.3`), and, outside the specification, `connectionData` and the account lookup (`resourceareas`),
which Microsoft's own client (azure-devops-python-api) calls with `-preview.1`.

A server's level is learnt from `OPTIONS {collection}/_apis/` (the resource locations, with their `maxVersion`),
as the official clients do, and kept on the integration (`shared.ado.connection.api_level`).
"""

from __future__ import annotations

import re

SERVICES = "7.1"  # Azure DevOps Services, and Azure DevOps Server 2022.1 and later
SERVER_2022 = "7.0"  # Azure DevOps Server 2022
LEVELS = (SERVER_2022, SERVICES)

COMMENTS = "comments"
CONNECTION_DATA = "connectionData"
RESOURCE_AREAS = "resourceAreas"
# Preview operations: their resource version on each level.
PREVIEW = {
    COMMENTS: {SERVER_2022: 3, SERVICES: 4},
    CONNECTION_DATA: {SERVER_2022: 1, SERVICES: 1},
    RESOURCE_AREAS: {SERVICES: 1},
}
_LEVEL = re.compile(r"(\d+)\.(\d+)")


def api_version(level: str, preview: str | None = None) -> str:
    """The api-version of an operation (`preview`: one of PREVIEW's keys, None for a released one) on `level`."""
    if level not in LEVELS:
        raise ValueError(f"unknown Azure DevOps API level {level!r}")
    if preview is None:
        return level
    return f"{level}-preview.{PREVIEW[preview][level]}"


def accept(version: str) -> str:
    return f"application/json;api-version={version}"


def level_of(max_versions: list[object]) -> str | None:
    """The level a server supports, from the `maxVersion`s of its resource locations: the highest, capped at what
    the app speaks (`7.1`); None when none is a version or the server is older than Azure DevOps Server 2022."""
    highest: tuple[int, int] | None = None
    for value in max_versions:
        found = _LEVEL.match(value) if isinstance(value, str) else None
        if found:
            version = (int(found.group(1)), int(found.group(2)))
            highest = version if highest is None or version > highest else highest
    if highest is None or highest < (7, 0):
        return None
    return SERVICES if highest >= (7, 1) else SERVER_2022


def markdown_comments(level: str) -> bool:
    """Whether the Comments API takes `format=markdown` (7.1-preview.4); Server 2022's (7.0-preview.3) takes HTML."""
    return level != SERVER_2022
