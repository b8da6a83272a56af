"""The `vsts-sentry-hooks` worker (contract §13.2): a queued webhook's record read, applied once, marked applied.

A record already applied is skipped (the queue delivers a message at least once). A failure that may pass
(storage, Sentry throttled or down during the token exchange) is queued again with back-off and, once the
budget is spent, poisoned (`shared.sync.queued.with_backoff`); a message or record the app did not write raises
ValueError, so the host moves it to the poison queue for a person. An issue webhook reads the issue from Sentry
(it is a hint); while the installation needs a new token, its message is parked instead, left unapplied
(`shared.sentryapp.parking`), and applied once a new token or a reinstall releases it.
"""

from __future__ import annotations

import logging

from shared.clock import SYSTEM, Clock
from shared.deliveries.sentry import InstallationEvent, IssueEvent
from shared.deliveries.sentry_alerts import AlertEvent, MetricAlertEvent
from shared.deliveries.sentry_messages import Actor, Event, delivery_from_json, read_hook_message, to_hook_message
from shared.errors import ConcurrentUpdate, RetryLater, StorageUnavailable
from shared.sentryapp.events import apply_comment_event, apply_issue_event
from shared.sentryapp.installations import apply_installation_event
from shared.sentryapp.parking import NeedsReauth, park
from shared.store import queues
from shared.store.sentry import APPLIED, SentryStore
from shared.sync import wakeups
from shared.sync.queued import Outcome, with_backoff
from shared.sync.worker import run_with

log = logging.getLogger(__name__)

FUNCTION = "apply_sentry_webhook"


def run_hook_message(message_id: str, body: bytes) -> Outcome[str]:
    """One message as the queue function receives it (ValueError: not one the app wrote)."""
    return run_with(queues.SENTRY_HOOKS_QUEUE_NAME, FUNCTION, message_id, body, process_hook_message)


def process_hook_message(
    text: str,
    queue: str = queues.SENTRY_HOOKS_QUEUE_NAME,
    *,
    store: SentryStore | None = None,
    clock: Clock = SYSTEM,
) -> Outcome[str]:
    """Apply one queued webhook; InvalidDelivery for a message (or record) the app did not write."""
    uuid, request_id, attempt = read_hook_message(text)
    sentry = store or SentryStore()

    def apply() -> str:
        try:
            return apply_delivery(sentry, uuid, request_id, clock=clock)
        except (StorageUnavailable, ConcurrentUpdate) as exc:
            raise RetryLater(f"storage failed: {exc}") from exc

    return with_backoff(
        queue,
        attempt,
        apply,
        lambda failures: to_hook_message(uuid, request_id, attempt=failures),
        f"Sentry webhook {request_id} of installation {uuid}",
        wakeups.hook_ref(uuid, request_id),
    )


def apply_delivery(store: SentryStore, uuid: str, request_id: str, *, clock: Clock = SYSTEM) -> str:
    """Apply a recorded webhook unless it was applied already; what became of it, for the log."""
    record = store.get_delivery(uuid, request_id)
    if record is None:  # expired, or its pending row was noted by a webhook whose record was then not stored
        log.warning("Sentry webhook %s of installation %s has no record: nothing applied", request_id, uuid)
        return "no record: nothing applied"
    data, state = record
    if state == APPLIED:
        return "applied already"
    event, actor = delivery_from_json(data)
    try:
        result = _apply(store, uuid, event, actor, clock)
    except NeedsReauth:
        installation = store.get(uuid)
        assert installation is not None  # _apply found it
        current = store.for_org(installation.org_id)
        if current is None or current.uuid == uuid:
            # Left unapplied: released when the installation has a new token, it is applied then.
            return park(installation.org_id, queues.SENTRY_HOOKS_QUEUE_NAME, to_hook_message(uuid, request_id))
        result = "the installation was replaced by a newer one: nothing applied"
    store.mark_applied(uuid, request_id)
    return result


def _apply(store: SentryStore, uuid: str, event: Event, actor: Actor, clock: Clock) -> str:
    if isinstance(event, InstallationEvent):
        return apply_installation_event(event, store, clock=clock)
    installation = store.get(uuid)
    if installation is None or not installation.active:
        log.info("Sentry webhook for an unknown or disabled installation %s: nothing applied", uuid)
        return "unknown or disabled installation: nothing applied"
    if actor.is_app(installation.app_uuid):
        return "the app's own change: ignored"
    if isinstance(event, IssueEvent):
        return apply_issue_event(event, installation, store=store, clock=clock)
    if isinstance(event, AlertEvent):
        from shared.sentryapp.alerts import apply_alert_event  # on first use: alerts are rarer than issue webhooks

        return apply_alert_event(event, installation)
    if isinstance(event, MetricAlertEvent):
        from shared.sentryapp.metric_alerts import apply_metric_alert

        return apply_metric_alert(event, installation)
    return apply_comment_event(event, installation)
