"""The Azure DevOps service hook subscription behind each integration (contract §6, §9).

`create_subscription` makes the `workitem.updated` subscription that posts to `WEBHOOK_PUBLIC_URL` with
a fresh secret in its `shared-secret` header. `run_subscription_check` (the timer) reads every active
integration's subscription: one that is missing or `disabledBySystem` is replaced with a new secret, while
the previous secret stays valid for `SECRET_GRACE_SECONDS`, so deliveries already in flight are not
refused (Sentry rotates silently and refuses them). Other statuses (`onProbation`, `disabledByUser`, ...)
are recorded in the integration, where `GET /api/vsts/integrations/{id}` shows them.
"""

from __future__ import annotations

import logging
import secrets
import time
from dataclasses import replace
from typing import Any

from shared.ado_client import AdoClient, AdoError, AdoNotFound, AdoRequestRejected, AdoUnauthorized
from shared.integrations import Integration, IntegrationStore, IntegrationSummary
from shared.lookups import get_client
from shared.settings import Settings, get_settings
from shared.sweep import SweepReport, sweep

log = logging.getLogger(__name__)

NAME = "subscription_check"
REPLACE_STATUSES = {"disabledBySystem"}

PERMISSION_HELP = (
    "Azure DevOps refused to create the service hook subscription ({detail}). The integration's identity must be "
    "allowed to manage service hooks in the organization (a member of Project Collection Administrators, or a "
    "project administrator where the organization allows it), and, for OAuth credentials, the organization "
    "policy 'Third-party application access via OAuth' must be on."
)


class SubscriptionRefused(AdoError):
    """Azure DevOps refused to create the subscription: a permission or an organization policy is missing."""


def subscription_body(url: str, secret: str) -> dict[str, Any]:
    """The `workitem.updated` web hook that posts every detail of the update to `url` with the secret header."""
    return {
        "publisherId": "tfs",
        "eventType": "workitem.updated",
        "resourceVersion": "1.0",  # identities as "Name <email>"; the safest version (reference §1.4)
        "consumerId": "webHooks",
        "consumerActionId": "httpRequest",
        "publisherInputs": {},
        "consumerInputs": {
            "url": url,
            "httpHeaders": f"shared-secret:{secret}",
            "resourceDetailsToSend": "all",
            "messagesToSend": "none",
            "detailedMessagesToSend": "none",
        },
    }


def _create(client: AdoClient, settings: Settings) -> tuple[str, str, str]:
    """(subscription id, its status, its secret) of a new subscription."""
    secret = secrets.token_hex(32)
    try:
        answer = client.create_subscription(subscription_body(settings.webhook_public_url, secret))
    except (AdoUnauthorized, AdoRequestRejected) as exc:
        raise SubscriptionRefused(PERMISSION_HELP.format(detail=str(exc).rstrip("."))) from exc
    subscription_id = answer.get("id") if isinstance(answer, dict) else None
    if not isinstance(subscription_id, str) or not subscription_id:
        raise AdoError("Azure DevOps created the subscription but answered without its id")
    return subscription_id, str(answer.get("status") or "enabled"), secret


def _rotate(
    integration: Integration, subscription_id: str, status: str, secret: str, settings: Settings
) -> Integration:
    now = time.time()
    previous = integration.webhook_secret
    return replace(
        integration,
        subscription_id=subscription_id,
        subscription_status=status,
        subscription_checked_at=now,
        webhook_secret=secret,
        # The old secret keeps working for the grace period: deliveries already sent with it are not refused.
        previous_webhook_secret=previous,
        previous_secret_expires_at=now + settings.secret_grace_seconds if previous else None,
    )


def _delete_quietly(client: AdoClient, subscription_id: str | None) -> None:
    if not subscription_id:
        return
    try:
        client.delete_subscription(subscription_id)
    except AdoNotFound:
        pass
    except AdoError as exc:  # a leftover subscription is harmless: its secret stops working after the grace
        log.warning("Could not delete the old subscription %s: %s", subscription_id, exc)


def create_subscription(integration_id: str, *, store: IntegrationStore | None = None) -> Integration:
    """Create the subscription (replacing any earlier one) and store its id and secret."""
    settings = get_settings()
    settings.webhook_public_url  # noqa: B018  (fails first, naming the setting, when it is not set)
    store = store or IntegrationStore()
    integration, client = get_client(integration_id, store=store)
    subscription_id, status, secret = _create(client, settings)
    old_id = integration.subscription_id
    saved = store.update(integration.id, lambda cur: _rotate(cur, subscription_id, status, secret, settings))
    if saved is None:  # deleted meanwhile: do not leave an orphan subscription behind
        _delete_quietly(client, subscription_id)
        raise AdoError("the integration disappeared while its subscription was created")
    if old_id and old_id != subscription_id:
        _delete_quietly(client, old_id)
    log.info("Created subscription %s for integration %s", subscription_id, integration.id)
    return saved


def check_subscription(integration_id: str, settings: Settings, store: IntegrationStore) -> bool:
    """Keep one integration's subscription alive; True when it was replaced."""
    integration, client = get_client(integration_id, store=store)
    if not integration.subscription_id:
        return False
    try:
        status: str | None = str(client.get_subscription(integration.subscription_id).get("status") or "enabled")
    except AdoNotFound:
        status = None
    if status is not None and status not in REPLACE_STATUSES:
        if status != integration.subscription_status:
            log.warning("Subscription of integration %s is %s", integration.id, status)
        store.update(
            integration.id, lambda cur: replace(cur, subscription_status=status, subscription_checked_at=time.time())
        )
        return False
    log.warning("Subscription of integration %s is %s: replacing it", integration.id, status or "missing")
    _delete_quietly(client, integration.subscription_id if status else None)
    subscription_id, new_status, secret = _create(client, settings)
    store.update(integration.id, lambda cur: _rotate(cur, subscription_id, new_status, secret, settings))
    return True


def run_subscription_check(*, settings: Settings | None = None, store: IntegrationStore | None = None) -> SweepReport:
    settings = settings or get_settings()
    store = store or IntegrationStore()

    def check(summary: IntegrationSummary, timeout: float) -> bool:
        # Each request is bounded by ADO_HTTP_TIMEOUT; the sweep's per-item timeout is not needed here.
        return check_subscription(summary.id, settings, store)

    return sweep(
        NAME,
        check,
        wanted=lambda summary: bool(summary.subscription_id),
        concurrency=settings.domain_check_concurrency,
        budget_seconds=settings.domain_check_budget_seconds,
        store=store,
    )
