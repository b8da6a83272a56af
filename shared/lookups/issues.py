"""Lookups on an integration's organization (contract §4): a work item as an external issue, and work item
search. A warm lookup costs one point read of the integration and one request to Azure DevOps."""

from __future__ import annotations

from typing import Any

from shared.ado.client import AdoError
from shared.connections.ado import call_tracking_reauth, get_client
from shared.store.integrations import IntegrationStore

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


def get_issue(integration_id: str, work_item_id: int) -> dict[str, Any]:
    store = IntegrationStore()
    integration, client = get_client(integration_id, store=store)
    work_item = call_tracking_reauth(store, integration, lambda: client.get_work_item(work_item_id))
    if not isinstance(work_item, dict) or "id" not in work_item:
        raise AdoError("Azure DevOps answered with something that is not a work item")
    return format_issue(work_item)


def search_issues(integration_id: str, text: str, top: int = DEFAULT_SEARCH_TOP) -> list[dict[str, str]]:
    store = IntegrationStore()
    integration, client = get_client(integration_id, store=store)
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
