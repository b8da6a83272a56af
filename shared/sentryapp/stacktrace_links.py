"""The `stacktrace-link` component (contract §18): from a stack frame in Sentry to the line in Azure Repos.

Sentry opens `<webhook host>/api/sentry/stacktrace-link?installationId=…&projectSlug=…&filename=…&lineNo=…` in
a person's browser. Nothing is signed, so anyone can send any values: the answer only ever redirects to a file
the organization's own mappings name (in a repository its credentials can read), or says nothing was found.
It never shows a stored value beyond what the request itself carried.

Cost, bounded: one point read of the installation and one of the organization's mappings; per integration the
mappings name, its organization's installation and the integration (once per click); per candidate mapping
(longest stack root first, at most MAX_CANDIDATES) the file check from the cache, or an Items API request, at
most MAX_LOOKUPS in all, within LINK_BUDGET_SECONDS.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

from shared.ado.client import AdoError
from shared.ado.repos import file_exists
from shared.clock import SYSTEM, Clock, Deadline
from shared.connections.ado import client_for, usable_by
from shared.errors import StorageUnavailable
from shared.model.code_mappings import CodeMapping, candidates, file_url, frame_path
from shared.model.integration import Integration, IntegrationNotFound
from shared.store.base import is_valid_key
from shared.store.code_mappings import CodeMappingStore, RepoFileCache
from shared.store.integrations import IntegrationStore
from shared.store.sentry import SentryStore
from shared.store.tracker import TrackerStore
from shared.validation import positive_int

log = logging.getLogger(__name__)

URI = "/api/sentry/stacktrace-link"
MAX_CANDIDATES = 5  # mappings tried per frame
MAX_LOOKUPS = 3  # Items API requests per frame (the rest come from the cache or are not tried)
LINK_BUDGET_SECONDS = 8.0  # a person is waiting on a new tab
MAX_LINE = 10_000_000

NOT_INSTALLED = "This Sentry installation is not known to the app, or it was uninstalled."
NO_MAPPING = "No code mapping of this organization matches this file."
NO_FILE = "The file is not in the repositories the matching code mappings name."
NOT_CHECKED = "Azure DevOps could not be asked whether the file exists; try again in a minute."


@dataclass(frozen=True)
class LinkRequest:
    installation_uuid: str
    project_slug: str
    filename: str
    line: int | None


@dataclass(frozen=True)
class Found:
    url: str


@dataclass(frozen=True)
class NotFound:
    reason: str
    filename: str = ""
    line: int | None = None
    tried: int = 0  # mapped places looked in (not named: the page must not reveal the organization's repositories)


def link_request(params: Mapping[str, str]) -> LinkRequest:
    """The query Sentry's frontend builds; missing or odd values give a request that finds nothing."""
    filename = params.get("filename") or ""
    return LinkRequest(
        installation_uuid=(params.get("installationId") or "")[:100],
        project_slug=(params.get("projectSlug") or "")[:100],
        filename=filename if frame_path(filename) is not None else "",
        line=positive_int(params.get("lineNo") or "", MAX_LINE),
    )


def _usable(mapping: CodeMapping, org_id: str, integrations: IntegrationStore) -> Integration | None:
    """The mapping's integration with the credentials the organization may use, or None (gone, disabled, or
    not installed by the organization: a mapping never borrows another organization's access)."""
    installation = TrackerStore().get_installation(mapping.integration_id, org_id)
    if installation is None:
        return None
    try:
        return usable_by(integrations.get_active(mapping.integration_id), installation)
    except IntegrationNotFound:
        return None


def resolve(request: LinkRequest, *, clock: Clock = SYSTEM) -> Found | NotFound:
    known = is_valid_key(request.installation_uuid)
    installation = SentryStore().get(request.installation_uuid) if known else None
    if installation is None or not installation.active:
        return NotFound(NOT_INSTALLED, request.filename, request.line)
    mappings = CodeMappingStore().get(installation.org_id)
    chosen = candidates(mappings, request.project_slug, request.filename)[:MAX_CANDIDATES]
    if not chosen:
        return NotFound(NO_MAPPING, request.filename, request.line)
    integrations, cache = IntegrationStore(), RepoFileCache(clock)
    deadline = Deadline(LINK_BUDGET_SECONDS, clock.monotonic)
    lookups, unchecked, tried = 0, False, 0
    usable: dict[str, Integration | None] = {}  # per integration: read once per click
    for mapping, path in chosen:
        if mapping.integration_id not in usable:
            usable[mapping.integration_id] = _usable(mapping, installation.org_id, integrations)
        integration = usable[mapping.integration_id]
        if integration is None:
            continue
        tried += 1
        exists = cache.get(mapping, path)
        if exists is None:
            if lookups >= MAX_LOOKUPS or deadline.left() <= 0:
                unchecked = True  # not asked; a shorter root's answer may still be in the cache
                continue
            lookups += 1
            try:
                integration, client = client_for(integration, store=integrations, deadline=deadline)
                usable[mapping.integration_id] = integration
                exists = file_exists(client, mapping.project, mapping.repository, mapping.branch, path)
            except (AdoError, IntegrationNotFound, StorageUnavailable) as exc:
                log.warning("Could not check a file for a stack frame link: %s", type(exc).__name__)
                unchecked = True
                continue
            cache.put(mapping, path, exists)
        if exists:
            return Found(file_url(integration.domain_name, mapping, path, request.line))
    reason = NOT_CHECKED if unchecked else (NO_FILE if tried else NO_MAPPING)
    return NotFound(reason, request.filename, request.line, tried)
