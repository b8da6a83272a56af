"""Recording a new service hook subscription (and its `workitem.commented` twin) with its secret: Azure DevOps
and the integration store together,
for the admin route that creates one and the timer that replaces one."""

from __future__ import annotations

import time

from shared.ado import subscriptions
from shared.ado.client import AdoClient, AdoError
from shared.settings import Settings
from shared.store.integrations import Integration, IntegrationStore


def save_new_subscription(
    store: IntegrationStore, client: AdoClient, integration: Integration, settings: Settings
) -> Integration:
    """Create a subscription in Azure DevOps and record it with its secret. Nothing is left orphaned: when the
    record cannot be saved (storage down, the integration gone), the new subscription is deleted again, since
    nobody else will ever know its secret."""
    subscription_id, status, secret, comments = subscriptions.create_pair(client, settings.webhook_public_url)
    try:
        saved = store.update(
            integration.id,
            lambda cur: cur.with_new_subscription(
                subscription_id,
                status,
                secret,
                grace_seconds=settings.secret_grace_seconds,
                now=time.time(),
                comments_subscription=comments,
            ),
        )
    except Exception:
        subscriptions.delete_quietly(client, subscription_id)
        subscriptions.delete_quietly(client, comments[0])
        raise
    if saved is None:
        subscriptions.delete_quietly(client, subscription_id)
        subscriptions.delete_quietly(client, comments[0])
        raise AdoError("the integration disappeared while its subscription was created")
    return saved
