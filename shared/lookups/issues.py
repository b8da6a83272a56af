"""Lookups on an integration's organization (contract §4): a work item as an external issue, and work item
search. A warm lookup costs one point read of the integration and one request to Azure DevOps."""

from __future__ import annotations

from typing import Any

from shared.ado.client import AdoClient, AdoError
from shared.connections.ado import call_tracking_reauth, get_client, get_client_for_org
from shared.store.integrations import Integration, IntegrationStore

DEFAULT_SEARCH_TOP = 100
MAX_SEARCH_TOP = 1000


def format_issue(work_item: dict[str, Any]) -> dict[str, Any]:
    """A work item as an external issue, in the seed's shape."""
    fields = work_item.get("fields") if isinstance(work_item.get("fields"), dict) else {}
    key = str(work_item.get("id"))
    return {
        "key": key,
        "title": fields.get("System.Title"),
        "description": fields.get("System.Description"),
        "metadata": {"display_name": f"{fields.get('System.AreaPath', '')}#{key}"},
    }


def _client(integration_id: str, org_id: str | None, store: IntegrationStore) -> tuple[Integration, AdoClient]:
    """For a tracker organization (Sentry's forms), the credentials it may use; without one (the function key's
    lookups, an operator's), the integration's."""
    if org_id is None:
        return get_client(integration_id, store=store)
    return get_client_for_org(integration_id, org_id, store=store)


def get_issue(integration_id: str, work_item_id: int, org_id: str | None = None) -> dict[str, Any]:
    store = IntegrationStore()
    integration, client = _client(integration_id, org_id, store)
    work_item = call_tracking_reauth(store, integration, lambda: client.get_work_item(work_item_id))
    if not isinstance(work_item, dict) or "id" not in work_item:
        raise AdoError("Azure DevOps answered with something that is not a work item")
    return format_issue(work_item)


def search_issues(
    integration_id: str, text: str, top: int = DEFAULT_SEARCH_TOP, org_id: str | None = None
) -> list[dict[str, str]]:
    store = IntegrationStore()
    integration, client = _client(integration_id, org_id, store)
    answer = call_tracking_reauth(store, integration, lambda: client.search_work_items(text, top))
    results = answer.get("results") if isinstance(answer, dict) else None
    found = []
    for result in results if isinstance(results, list) else []:
        fields = result.get("fields") if isinstance(result, dict) else None
        if not isinstance(fields, dict) or fields.get("system.id") is None:
            continue
        work_item_id = str(fields["system.id"])
        found.append({"label": f"({work_item_id}) {fields.get('system.title', '')}", "value": work_item_id})
    return found
