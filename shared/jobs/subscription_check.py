"""The `subscription_check` timer (contract §9): keep every integration's service hook subscription alive.

One that is missing, `disabledBySystem` or `disabledByInactiveIdentity` is replaced with a new secret, while the
previous secret stays valid for `SECRET_GRACE_SECONDS`, so deliveries already in flight are not refused (Sentry
rotates silently and refuses them). `disabledByInactiveIdentity` means the identity that owns the subscription
(whoever the credentials were when it was made) is inactive or lost permissions: re-enabling it would keep that
owner, so it is made again with the integration's current credentials; when those are the inactive identity's
too, Azure DevOps refuses, and the status page says to enter an active member's credentials. The status seen is
recorded before replacing, so a replacement that fails leaves it (and its advice) visible. Other statuses
(`onProbation`, `disabledByUser`, ...) are recorded in the integration, where `GET /api/vsts/integrations/{id}`
and the status page show them.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace

from shared.ado import subscriptions
from shared.ado.client import AdoClient, AdoNotFound
from shared.clock import SYSTEM, Clock, Deadline
from shared.connections.ado import get_client
from shared.connections.subscriptions import save_new_subscription
from shared.jobs.sweep import SweepReport, TimerRun, Wanted, Work, run_timer
from shared.settings import Settings
from shared.store.integrations import Integration, IntegrationStore, IntegrationSummary

log = logging.getLogger(__name__)

NAME = "subscription_check"
REPLACE_STATUSES = {"disabledBySystem", "disabledByInactiveIdentity"}


def _status(client: AdoClient, subscription_id: str | None) -> str | None:
    """The subscription's status in Azure DevOps; None when it is missing (or was never made)."""
    if not subscription_id:
        return None
    try:
        return str(client.get_subscription(subscription_id).get("status") or "enabled")
    except AdoNotFound:
        return None


def check_subscription(
    integration_id: str, settings: Settings, store: IntegrationStore, *, deadline: Deadline | None = None
) -> bool:
    """Keep one integration's subscriptions alive (`workitem.updated` and its `workitem.commented` twin, which
    share a secret, so both are replaced together); True when they were replaced. An integration made before the
    twin existed gets it here, through a replacement (the old secret keeps its grace). With a deadline (the
    timer's budget), each Azure DevOps request's timeout is min(ADO_HTTP_TIMEOUT, what is left)."""
    integration, client = get_client(integration_id, store=store, deadline=deadline)
    if not integration.subscription_id:
        return False
    status = _status(client, integration.subscription_id)
    comments_status = _status(client, integration.comments_subscription_id)
    healthy = all(s is not None and s not in REPLACE_STATUSES for s in (status, comments_status))

    def record(cur: Integration) -> Integration:
        return replace(
            cur,
            subscription_status=status or cur.subscription_status,
            comments_subscription_status=comments_status or cur.comments_subscription_status,
            subscription_checked_at=time.time(),
        )

    if healthy:
        if (status, comments_status) != (integration.subscription_status, integration.comments_subscription_status):
            log.warning("Subscriptions of integration %s are %s and %s", integration.id, status, comments_status)
        store.update(integration.id, record)
        return False
    log.warning(
        "Subscriptions of integration %s are %s and %s: replacing them",
        integration.id,
        status or "missing",
        comments_status or "missing",
    )
    if status is not None or comments_status is not None:
        store.update(integration.id, record)
    subscriptions.delete_quietly(client, integration.subscription_id if status else None)
    subscriptions.delete_quietly(client, integration.comments_subscription_id if comments_status else None)
    save_new_subscription(store, client, integration, settings)
    return True


def run_subscription_check(clock: Clock = SYSTEM) -> SweepReport:
    def make(run: TimerRun) -> tuple[Work, Wanted]:
        def check(summary: IntegrationSummary, timeout: float) -> bool:
            deadline = Deadline(timeout, run.clock.monotonic)
            return check_subscription(summary.id, run.settings, run.store, deadline=deadline)

        return check, lambda summary: bool(summary.subscription_id)

    return run_timer(NAME, make, clock)
