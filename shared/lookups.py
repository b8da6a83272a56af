"""Lookups on an integration's organization: the seed's flow, made safe (contract §4, §8).

`get_issue` -> `get_client` -> `check_domain_name` (only when `domain_name` is not well-formed) ->
`get_base_url` -> save -> `get_work_item`. With a well-formed `domain_name` and a valid token, a lookup
costs one point read of the integration and one request to Azure DevOps.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any, TypeVar

from shared.ado_client import AdoClient, AdoError, AdoUnauthorized, get_base_url
from shared.auth import authorization_for
from shared.domains import is_well_formed, normalize_location, search_base_url
from shared.integrations import Integration, IntegrationStore
from shared.settings import Settings, get_settings

log = logging.getLogger(__name__)

T = TypeVar("T")
DEFAULT_SEARCH_TOP = 100
MAX_SEARCH_TOP = 1000


class DomainRepairFailed(AdoError):
    """`domain_name` was malformed and could not be repaired; nothing was saved."""


def check_domain_name(
    store: IntegrationStore, integration: Integration, settings: Settings, *, timeout: float | None = None
) -> Integration:
    """Repair a malformed `domain_name` from the account lookup and save it (contract §8).

    The answer must be on an allowed origin: a lookup that points anywhere else is refused, nothing is
    saved, and no credential is ever sent there (the lookup itself is made without credentials).
    """
    try:
        location = get_base_url(
            settings.account_lookup_url,
            integration.id,
            allowed_origins=settings.allowed_origins,
            timeout=timeout or settings.http_timeout,
        )
    except AdoError as exc:
        raise DomainRepairFailed(f"the organization URL lookup failed: {exc}") from exc
    base_url = normalize_location(location, settings.allowed_origins)
    if base_url is None:
        raise DomainRepairFailed("the organization URL lookup answered with a URL that is not an Azure DevOps origin")

    def repair(current: Integration) -> Integration | None:
        if is_well_formed(current.domain_name, settings.allowed_origins):
            return None  # repaired meanwhile: keep what is there
        return replace(current, domain_name=base_url, domain_checked_at=time.time())

    saved = store.update(integration.id, repair)
    log.info("Repaired the domain of integration %s", integration.id)
    return saved if saved is not None else replace(integration, domain_name=base_url)


def get_client(
    integration_id: str, *, store: IntegrationStore | None = None, settings: Settings | None = None
) -> tuple[Integration, AdoClient]:
    """The active integration and a client for its organization. Raises IntegrationNotFound."""
    settings = settings or get_settings()
    store = store or IntegrationStore()
    integration = store.get_active(integration_id)
    if not is_well_formed(integration.domain_name, settings.allowed_origins):
        integration = check_domain_name(store, integration, settings)
    client = AdoClient(
        integration.domain_name,
        authorization_for(integration, store, settings),
        allowed_origins=settings.allowed_origins,
        timeout=settings.http_timeout,
        search_base_url=search_base_url(integration.domain_name, integration.name, settings.search_base_url),
    )
    return integration, client


def call_tracking_reauth(store: IntegrationStore, integration: Integration, call: Callable[[], T]) -> T:
    """Run an Azure DevOps call; refused credentials mark the integration as needing re-authorization,
    and a success clears that mark."""
    try:
        result = call()
    except AdoUnauthorized:
        store.update(integration.id, lambda cur: None if cur.needs_reauth else replace(cur, needs_reauth=True))
        log.warning("Azure DevOps refused the credentials of integration %s", integration.id)
        raise
    if integration.needs_reauth:
        store.update(integration.id, lambda cur: replace(cur, needs_reauth=False) if cur.needs_reauth else None)
    return result


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
