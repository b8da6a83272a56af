"""What forms need (contract §12.5): an integration's projects, a project's work item types, a type's states, and
a project's area and iteration paths, each as `[{"label", "value"}]` and cached (`shared.store.catalog_cache`).

The integration is read on every call, so a disabled integration is 404 even while its lists are cached. A warm
call then costs one cache read and no Azure DevOps request; `refresh` skips the cache read and replaces the entry.
A cache that cannot be read or written only costs the Azure DevOps requests: the answer never depends on it.
"""

from __future__ import annotations

import logging
import unicodedata
from collections.abc import Callable

from shared.ado import catalog
from shared.ado.client import AdoClient
from shared.clock import SYSTEM, Clock
from shared.connections.ado import call_tracking_reauth, client_for, usable_by
from shared.errors import InvalidInput, StorageUnavailable
from shared.store.catalog_cache import CatalogCache, Options
from shared.store.integrations import IntegrationStore
from shared.store.tracker import TrackerStore

log = logging.getLogger(__name__)

MAX_NAME_CHARS = 128  # Azure DevOps' limit for a work item type's name; project names are shorter (64)


def check_name(value: object, what: str) -> str:
    """A project or work item type name from a route: non-blank, at most MAX_NAME_CHARS, no control or lone
    surrogate characters, and not `.` or `..` (which a URL would read as a path step, not a name)."""
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_NAME_CHARS:
        raise InvalidInput(f"The {what} must be a non-blank name of at most {MAX_NAME_CHARS} characters.")
    if any(unicodedata.category(ch) in ("Cc", "Cs") for ch in value):
        raise InvalidInput(f"The {what} must not contain control characters.")
    if value.strip(".") == "":
        raise InvalidInput(f"The {what} must be a name, not dots.")
    return value


class Forms:
    def __init__(
        self, integrations: IntegrationStore | None = None, cache: CatalogCache | None = None, clock: Clock = SYSTEM
    ) -> None:
        self.integrations = integrations or IntegrationStore()
        self.cache = cache or CatalogCache(clock)

    def projects(self, integration_id: str, *, refresh: bool = False, org_id: str | None = None) -> Options:
        return self._cached(integration_id, "projects", (), catalog.list_projects, refresh, org_id)

    def work_item_types(
        self, integration_id: str, project: str, *, refresh: bool = False, org_id: str | None = None
    ) -> Options:
        project = check_name(project, "project")
        return self._cached(
            integration_id, "types", (project,), lambda c: catalog.list_work_item_types(c, project), refresh, org_id
        )

    def required_fields(
        self,
        integration_id: str,
        project: str,
        work_item_type: str,
        *,
        refresh: bool = False,
        org_id: str | None = None,
    ) -> Options:
        """The fields the type requires, each with its allowed values (`catalog.list_required_fields`)."""
        project = check_name(project, "project")
        work_item_type = check_name(work_item_type, "work item type")
        return self._cached(
            integration_id,
            "fields",
            (project, work_item_type),
            lambda c: catalog.list_required_fields(c, project, work_item_type),
            refresh,
            org_id,
        )

    def states(
        self,
        integration_id: str,
        project: str,
        work_item_type: str,
        *,
        refresh: bool = False,
        org_id: str | None = None,
    ) -> Options:
        project, work_item_type = check_name(project, "project"), check_name(work_item_type, "work item type")
        return self._cached(
            integration_id,
            "states",
            (project, work_item_type),
            lambda c: catalog.list_states(c, project, work_item_type),
            refresh,
            org_id,
        )

    def paths(
        self, integration_id: str, project: str, structure: str, *, refresh: bool = False, org_id: str | None = None
    ) -> Options:
        """`structure` "areas" or "iterations"."""
        project = check_name(project, "project")
        return self._cached(
            integration_id, structure, (project,), lambda c: catalog.list_paths(c, project, structure), refresh, org_id
        )

    def _cached(
        self,
        integration_id: str,
        kind: str,
        names: tuple[str, ...],
        fetch: Callable[[AdoClient], Options],
        refresh: bool,
        org_id: str | None,
    ) -> Options:
        """For a tracker organization (`org_id`), with the credentials it may use (contract §16), and cached apart
        when they are its own: what another organization's credentials can see is not shown to it."""
        integration = self.integrations.get_active(integration_id)  # IntegrationNotFound: 404
        if org_id is not None:
            integration = usable_by(integration, TrackerStore().get_installation(integration.id, org_id))
        scope = f"{integration.id}|{org_id}" if integration.borrowed else integration.id
        if not refresh:
            try:
                cached = self.cache.get(scope, kind, names)
            except StorageUnavailable as exc:
                log.warning("Could not read cached form options: %s", exc)
                cached = None
            if cached is not None:
                return cached
        integration, client = client_for(integration, store=self.integrations)
        options = call_tracking_reauth(self.integrations, integration, lambda: fetch(client))
        self.cache.put(scope, kind, names, options)
        return options
