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
from shared.ado.client import AdoNotFound
from shared.clock import SYSTEM, Clock, Deadline
from shared.connections.ado import get_client
from shared.connections.subscriptions import save_new_subscription
from shared.jobs.sweep import SweepReport, TimerRun, Wanted, Work, run_timer
from shared.settings import Settings
from shared.store.integrations import IntegrationStore, IntegrationSummary

log = logging.getLogger(__name__)

NAME = "subscription_check"
REPLACE_STATUSES = {"disabledBySystem", "disabledByInactiveIdentity"}


def check_subscription(
    integration_id: str, settings: Settings, store: IntegrationStore, *, deadline: Deadline | None = None
) -> bool:
    """Keep one integration's subscription alive; True when it was replaced. With a deadline (the timer's
    budget), each Azure DevOps request's timeout is min(ADO_HTTP_TIMEOUT, what is left)."""
    integration, client = get_client(integration_id, store=store, deadline=deadline)
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
    if status is not None and status != integration.subscription_status:
        store.update(
            integration.id, lambda cur: replace(cur, subscription_status=status, subscription_checked_at=time.time())
        )
    subscriptions.delete_quietly(client, integration.subscription_id if status else None)
    save_new_subscription(store, client, integration, settings)
    return True


def run_subscription_check(clock: Clock = SYSTEM) -> SweepReport:
    def make(run: TimerRun) -> tuple[Work, Wanted]:
        def check(summary: IntegrationSummary, timeout: float) -> bool:
            deadline = Deadline(timeout, run.clock.monotonic)
            return check_subscription(summary.id, run.settings, run.store, deadline=deadline)

        return check, lambda summary: bool(summary.subscription_id)

    return run_timer(NAME, make, clock)
