"""`POST /api/vsts/integrations/{id}/subscription` (contract §6): create the service hook subscription that posts
to `WEBHOOK_PUBLIC_URL`, replacing any earlier one, and store its id and secret."""

from __future__ import annotations

import logging

from shared.ado import subscriptions
from shared.connections.ado import get_client
from shared.connections.subscriptions import save_new_subscription
from shared.settings import get_settings
from shared.store.integrations import Integration, IntegrationStore

log = logging.getLogger(__name__)


def create_subscription(integration_id: str, *, store: IntegrationStore | None = None) -> Integration:
    settings = get_settings()
    settings.webhook_public_url  # noqa: B018  (fails first, naming the setting, when it is not set)
    store = store or IntegrationStore()
    integration, client = get_client(integration_id, store=store)
    old_id = integration.subscription_id
    saved = save_new_subscription(store, client, integration, settings)
    if old_id and old_id != saved.subscription_id:
        subscriptions.delete_quietly(client, old_id)
    log.info("Created subscription %s for integration %s", saved.subscription_id, integration.id)
    return saved
