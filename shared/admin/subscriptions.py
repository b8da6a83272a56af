"""`POST /api/vsts/integrations/{id}/subscription` (contract §6): create the service hook subscription that posts
to `WEBHOOK_PUBLIC_URL`, replacing any earlier one, and store its id and secret."""

from __future__ import annotations

import logging

from shared.ado import subscriptions
from shared.connections.ado import get_client, get_client_for_org
from shared.connections.subscriptions import save_new_subscription
from shared.settings import get_settings
from shared.store.integrations import Integration, IntegrationStore

log = logging.getLogger(__name__)


def create_subscription(
    integration_id: str, *, store: IntegrationStore | None = None, org_id: str | None = None
) -> Integration:
    """With `org_id` (the setup page), Azure DevOps is asked with the credentials that organization may use
    (contract §16); without it (the function key), with the integration's."""
    settings = get_settings()
    settings.webhook_public_url  # noqa: B018  (fails first, naming the setting, when it is not set)
    store = store or IntegrationStore()
    if org_id is None:
        integration, client = get_client(integration_id, store=store)
    else:
        integration, client = get_client_for_org(integration_id, org_id, store=store)
    old_ids = (integration.subscription_id, integration.comments_subscription_id)
    saved = save_new_subscription(store, client, integration, settings)
    for old_id in old_ids:
        if old_id and old_id not in (saved.subscription_id, saved.comments_subscription_id):
            subscriptions.delete_quietly(client, old_id)
    log.info("Created subscription %s for integration %s", saved.subscription_id, integration.id)
    return saved
