"""The done states of a work item's type (contract §5.2): those whose category is Resolved or Completed in
Azure DevOps, from the list the forms show too (cached an hour in `shared.store.catalog_cache`). When they cannot
be read the update is retried later (`RetryLater`), never guessed."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from shared.ado import catalog
from shared.ado.client import AdoClient, AdoError
from shared.clock import Deadline
from shared.connections.ado import call_tracking_reauth, client_for
from shared.errors import RetryLater, StorageUnavailable
from shared.model.changes import WorkItemUpdate
from shared.store.catalog_cache import CatalogCache
from shared.store.integrations import Integration, IntegrationStore
from shared.sync.rules import done_states_from_categories

T = TypeVar("T")
States = tuple[tuple[str, str], ...]  # (state name, category), in Azure DevOps' order


class DoneStates:
    """Done state names per (integration, project, work item type)."""

    def __init__(
        self,
        integrations: IntegrationStore | None = None,
        cache: CatalogCache | None = None,
        *,
        deadline: Deadline | None = None,  # a timer's budget, which cuts each request's timeout
    ) -> None:
        self.integrations = integrations or IntegrationStore()
        self.cache = cache or CatalogCache()
        self.deadline = deadline

    def for_update(self, update: WorkItemUpdate, integration: Integration) -> frozenset[str]:
        """The category-done states of the work item's type; raises RetryLater when they cannot be read."""
        connected: list[tuple[Integration, AdoClient]] = []

        def call(request: Callable[[AdoClient], T]) -> T:
            if not connected:  # one client for every request made here
                connected.append(client_for(integration, store=self.integrations, deadline=self.deadline))
            current, client = connected[0]
            return call_tracking_reauth(self.integrations, current, lambda: request(client))

        try:
            project, kind = update.project_id, update.work_item_type
            if not project or not kind:
                project, kind = self._type_of(update, call(lambda client: client.get_work_item(update.work_item_id)))
            states = type_states(self.cache, update.integration_id, project, kind, call)
        except (AdoError, StorageUnavailable) as exc:
            raise RetryLater(f"the done states could not be read: {exc}", getattr(exc, "retry_after", None)) from exc
        return done_states_from_categories({"name": name, "category": category} for name, category in states)

    @staticmethod
    def _type_of(update: WorkItemUpdate, item: object) -> tuple[str, str]:
        """The project and type of the update, completed from the work item as Azure DevOps answered it."""
        fields = item.get("fields") if isinstance(item, dict) else None
        fields = fields if isinstance(fields, dict) else {}
        project = update.project_id or fields.get("System.TeamProject")
        kind = update.work_item_type or fields.get("System.WorkItemType")
        if not isinstance(project, str) or not isinstance(kind, str) or not project or not kind:
            raise RetryLater("the work item's type or project could not be read")
        return project, kind


def type_states(
    cache: CatalogCache, integration_id: str, project: str, kind: str, call: Callable[[Callable[[AdoClient], T]], T]
) -> States:
    """A work item type's states with their categories: the list the forms cache (`Forms.states`), else read
    from Azure DevOps (then cached for both). Raises RetryLater when Azure DevOps lists none. A cache that cannot
    be read only costs the request."""
    names = (project, kind)
    try:
        options = cache.get(integration_id, "states", names)
    except StorageUnavailable:
        options = None
    if not options:
        options = call(lambda client: catalog.list_states(client, project, kind))
        if options:
            cache.put(integration_id, "states", names, options)
    states = tuple(
        (option["value"], option["category"])
        for option in options or []
        if isinstance(option.get("value"), str) and isinstance(option.get("category"), str) and option["category"]
    )
    if not states:
        raise RetryLater(f"Azure DevOps listed no states for {kind!r}")
    return states
