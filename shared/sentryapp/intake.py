"""`POST /api/sentry/webhook` (contract §13.1): verified, recorded once per request id, queued, answered fast.

The signature is checked before the body is parsed; then the event is recorded under its request id (a
conditional insert: a repeated `Request-ID` is seen as such by every instance) and its record's key queued on
`vsts-sentry-hooks`. Two storage operations in all, under one deadline. When queueing fails, the record is
released again, so Sentry's next attempt is taken rather than answered "duplicate"; and should the release fail
too, a repeat of a record left unapplied is queued again. No input gives a 5xx
but 503, which says storage or the configuration failed and nothing was accepted.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping

from shared.clock import SYSTEM, Clock
from shared.deliveries.sentry import InvalidSentryPayload, InvalidSignature, event_of, from_http
from shared.deliveries.sentry_messages import actor_of, delivery_to_json, is_request_id, to_hook_message
from shared.errors import BodyTooLarge, StorageUnavailable, TooLargeToStore
from shared.intake.webhook import RETRY, WebhookAnswer
from shared.settings import SettingsError, get_settings
from shared.store import queues
from shared.store.deadline import storage_deadline
from shared.store.sentry import SentryStore

log = logging.getLogger(__name__)

# What storage may take in all for one webhook (the record and the enqueue, retries included). Sentry waits 1 s
# and does not send a webhook again, so a slow storage that still takes the event within this is worth waiting
# for; a hung one is given up on, answered 503.
STORAGE_SECONDS = 4.0
RELEASE_SECONDS = 2.0
# A repeated webhook whose record is still not applied this long after it was received is queued again.
LOST_AFTER_SECONDS = 120.0
UNAVAILABLE = WebhookAnswer(503, {"error": "Storage is unavailable; the webhook was not accepted."}, RETRY)


def request_id_of(header: str | None, body: bytes) -> str:
    """Sentry's `Request-ID`, or the body's hash when it sent none (or one that cannot be a table key)."""
    return header if is_request_id(header) else "sha256:" + hashlib.sha256(body).hexdigest()


def receive_sentry_webhook(
    body: bytes, headers: Mapping[str, str], *, store: SentryStore | None = None, clock: Clock = SYSTEM
) -> WebhookAnswer:
    try:
        secret = get_settings().sentry_client_secret
    except SettingsError:
        log.error("Sentry webhook: SENTRY_CLIENT_SECRET is not set, so no webhook can be verified")
        message = "The app has no Sentry client secret set, so it cannot verify webhooks."
        return WebhookAnswer(503, {"error": message}, {"Retry-After": "60"})
    try:
        webhook = from_http(headers, body, secret)
        event = event_of(webhook)
    except BodyTooLarge as exc:
        return WebhookAnswer(413, {"error": str(exc)})
    except InvalidSignature as exc:
        log.info("Sentry webhook: refused (%s)", exc)
        return WebhookAnswer(401, {"error": str(exc)})
    except InvalidSentryPayload as exc:
        return WebhookAnswer(400, {"error": str(exc)})
    if event is None:
        return WebhookAnswer(200, {"status": "ignored"})
    uuid, request_id = webhook.installation_uuid, request_id_of(webhook.request_id, body)
    store = store or SentryStore()
    record = delivery_to_json(event, actor_of(webhook))
    with storage_deadline(STORAGE_SECONDS):
        try:
            if not store.claim_delivery(uuid, request_id, record, now=clock.now()):
                log.info("Sentry webhook: request %s of installation %s was received already", request_id, uuid)
                _queue_again_if_lost(store, uuid, request_id, clock.now())
                return WebhookAnswer(200, {"status": "duplicate"})
        except TooLargeToStore:
            return WebhookAnswer(413, {"error": "The webhook's event is too large to record."})
        except StorageUnavailable:
            log.warning("Sentry webhook: storage unavailable while recording a webhook")
            return UNAVAILABLE
        try:
            queues.enqueue(to_hook_message(uuid, request_id), queues.SENTRY_HOOKS_QUEUE_NAME)
            return WebhookAnswer(202, {"status": "queued"})
        except StorageUnavailable:
            log.warning("Sentry webhook: the queue is unavailable; forgetting the record and answering 503")
    # Outside the request's deadline, which the failed enqueue may have used up: a release of its own.
    with storage_deadline(RELEASE_SECONDS):
        _release(store, uuid, request_id)
    return UNAVAILABLE


def _queue_again_if_lost(store: SentryStore, uuid: str, request_id: str, now: float) -> None:
    """A repeated webhook whose record was never applied: its message may be lost (the record outlived a failed
    enqueue and release), so it is queued again rather than answered "duplicate" and dropped. Applying one
    twice changes nothing more than once (statuses, assignees, comments by Sentry's id, installations)."""
    try:
        if store.delivery_left_unapplied(uuid, request_id, now=now, older_than=LOST_AFTER_SECONDS):
            queues.enqueue(to_hook_message(uuid, request_id), queues.SENTRY_HOOKS_QUEUE_NAME)
            log.warning("Sentry webhook: request %s of %s was never applied; queued again", request_id, uuid)
    except StorageUnavailable:
        log.warning("Sentry webhook: could not check whether request %s of %s was applied", request_id, uuid)


def _release(store: SentryStore, uuid: str, request_id: str) -> None:
    try:
        store.release_delivery(uuid, request_id)
    except StorageUnavailable:
        # The record stays without a queue message: Sentry's next attempt is taken for a duplicate, so say so.
        log.error("Sentry webhook: request %s of %s is recorded but not queued", request_id, uuid)
