"""A stored integration as a ready Azure DevOps client: the seed's `get_client`, made safe (contract §4, §8).

`get_client` -> `check_domain_name` (only when `domain_name` is not well-formed) -> `get_base_url` -> save.
With a well-formed `domain_name` and a valid token, this costs one point read of the integration.
`call_tracking_reauth` marks an integration whose credentials Azure DevOps refuses.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import replace
from typing import TypeVar
from urllib.parse import urlsplit

from shared.ado import versions
from shared.ado.client import AdoClient, AdoError, AdoTimeout, AdoUnauthorized, get_base_url
from shared.ado.connection import api_level, is_services
from shared.ado.domains import is_well_formed, normalize_location, origin_of, search_base_url
from shared.clock import Deadline
from shared.connections.credentials import authorization_for
from shared.model.integration import IntegrationNotFound
from shared.model.tracker import Installation
from shared.settings import Settings, get_settings
from shared.store.integrations import Integration, IntegrationStore
from shared.store.tracker import TrackerStore

log = logging.getLogger(__name__)

T = TypeVar("T")


class DomainRepairFailed(AdoError):
    """`domain_name` was malformed and could not be repaired; nothing was saved."""


def check_domain_name(
    store: IntegrationStore, integration: Integration, settings: Settings, *, timeout: float | None = None
) -> Integration:
    """Repair a malformed `domain_name` from the account lookup and save it (contract §8).

    The answer must be on an allowed origin: a lookup that points anywhere else is refused, nothing is
    saved, and no credential is ever sent there (the lookup itself is made without credentials). An Azure DevOps
    Server collection (an origin of ADO_ALLOWED_ORIGINS) has no account lookup (it is Azure DevOps Services' own,
    on vssps): its URL is only given its trailing slash, or the repair says how to set it.
    """
    if origin_of(integration.domain_name) in settings.allowed_origins:
        base_url = _collection_url(integration, settings)
        return _save_repair(store, integration, base_url, settings)
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
    return _save_repair(store, integration, base_url, settings)


def _collection_url(integration: Integration, settings: Settings) -> str:
    domain_name = integration.domain_name
    parts = urlsplit(domain_name.strip())
    candidate = f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}/"
    if (
        parts.path.strip("/")
        and not parts.query
        and not parts.fragment
        and is_well_formed(candidate, settings.allowed_origins)
    ):
        return candidate
    raise DomainRepairFailed(
        f"{origin_of(domain_name)} is an Azure DevOps Server (ADO_ALLOWED_ORIGINS), which has no account lookup: "
        "set the integration's domain_name to its collection URL, such as "
        f"{origin_of(domain_name)}/tfs/DefaultCollection/, with PUT /api/vsts/integrations/{integration.id}"
    )


def _save_repair(store: IntegrationStore, integration: Integration, base_url: str, settings: Settings) -> Integration:
    def repair(current: Integration) -> Integration | None:
        if is_well_formed(current.domain_name, settings.allowed_origins):
            return None  # repaired meanwhile: keep what is there
        return replace(current, domain_name=base_url, domain_checked_at=time.time(), api_level=None)

    saved = store.update(integration.id, repair)
    log.info("Repaired the domain of integration %s", integration.id)
    return saved if saved is not None else replace(integration, domain_name=base_url)


def get_client(
    integration_id: str,
    *,
    store: IntegrationStore | None = None,
    settings: Settings | None = None,
    deadline: Deadline | None = None,
) -> tuple[Integration, AdoClient]:
    """The active integration and a client for its organization. Raises IntegrationNotFound."""
    store = store or IntegrationStore()
    return client_for(store.get_active(integration_id), store=store, settings=settings, deadline=deadline)


class CredentialNotShared(IntegrationNotFound):
    """The tracker organization may not use the integration's credentials, and entered none of its own."""


def usable_by(integration: Integration, installation: Installation | None) -> Integration:
    """The integration as the installation's organization may use it (contract §16): with the organization's own
    credentials when it entered some, else with the integration's when it entered them itself or an operator
    shared them with it. CredentialNotShared (a 404) otherwise. Without an installation, only the operator's
    function key can have asked (a link made through the admin API for an organization that syncs nothing): the
    integration's own credentials, as for the function key's lookups."""
    if installation is None:
        return integration
    if installation.credentials:
        return replace(integration, credentials=dict(installation.credentials), needs_reauth=False, borrowed=True)
    if installation.credential_shared or integration.credential_owner == installation.org_id:
        return integration
    raise CredentialNotShared(
        "This organization has no Azure DevOps credentials for that integration: enter its own on the setup page, "
        "or ask the app's operator to share the integration's."
    )


def get_client_for_org(
    integration_id: str,
    org_id: str,
    *,
    store: IntegrationStore | None = None,
    deadline: Deadline | None = None,
) -> tuple[Integration, AdoClient]:
    """`get_client` for the work of one tracker organization, with the credentials it may use (`usable_by`)."""
    store = store or IntegrationStore()
    integration = store.get_active(integration_id)
    installation = TrackerStore().get_installation(integration.id, org_id)
    return client_for(usable_by(integration, installation), store=store, deadline=deadline)


def request_timeout(deadline: Deadline, most: float) -> float:
    """min(most, what is left of a timer's budget); a request that would start with no time left fails as a
    timeout (an Azure DevOps error the timers already handle)."""
    timeout = deadline.cut(most)
    if timeout <= 0:
        raise AdoTimeout("the time budget of this run is spent")
    return timeout


def client_for(
    integration: Integration,
    *,
    store: IntegrationStore,
    settings: Settings | None = None,
    deadline: Deadline | None = None,
) -> tuple[Integration, AdoClient]:
    """A client for an integration already read (its domain repaired first when it is malformed); with a
    deadline, every request's timeout is min(ADO_HTTP_TIMEOUT, what is left)."""
    settings = settings or get_settings()
    http_timeout = settings.http_timeout
    if not is_well_formed(integration.domain_name, settings.allowed_origins):
        timeout = request_timeout(deadline, http_timeout) if deadline else None
        integration = check_domain_name(store, integration, settings, timeout=timeout)
    client = AdoClient(
        integration.domain_name,
        authorization_for(integration, store, settings),
        allowed_origins=settings.allowed_origins,
        timeout=(lambda: request_timeout(deadline, http_timeout)) if deadline else http_timeout,
        search_base_url=search_base_url(integration.domain_name, integration.name, settings.search_base_url),
    )
    if integration.api_level in versions.LEVELS:
        client.api_level = integration.api_level
    elif is_services(integration.domain_name):
        client.api_level = versions.SERVICES
    else:
        integration = learn_api_level(store, integration, client)
        client.api_level = integration.api_level or versions.SERVICES
    return integration, client


def learn_api_level(store: IntegrationStore, integration: Integration, client: AdoClient) -> Integration:
    """Ask an Azure DevOps Server which REST API level it has (once: it is saved on the integration)."""
    level = call_tracking_reauth(store, integration, lambda: api_level(client))

    def remember(current: Integration) -> Integration | None:
        if current.api_level == level or current.domain_name != integration.domain_name:
            return None
        return replace(current, api_level=level)

    saved = store.update(integration.id, remember)
    log.info("Integration %s: Azure DevOps REST API level %s", integration.id, level)
    return saved if saved is not None else replace(integration, api_level=level)


def call_tracking_reauth(store: IntegrationStore, integration: Integration, call: Callable[[], T]) -> T:
    """Run an Azure DevOps call; refused credentials mark the integration as needing re-authorization,
    and a success clears that mark (not for a tracker organization's own credentials: they are not the
    integration's)."""
    if integration.borrowed:
        return call()
    try:
        result = call()
    except AdoUnauthorized:
        store.update(integration.id, lambda cur: None if cur.needs_reauth else replace(cur, needs_reauth=True))
        log.warning("Azure DevOps refused the credentials of integration %s", integration.id)
        raise
    if integration.needs_reauth:
        store.update(integration.id, lambda cur: replace(cur, needs_reauth=False) if cur.needs_reauth else None)
    return result
