"""`POST /api/sentry/webhook` (contract §13.1): verified, recorded once per request id, queued, answered fast.

The signature is checked before the body is parsed; then the webhook is noted as pending work
(`shared.store.pending`, docs/design.md), its event recorded under its request id (a conditional insert: a
repeated `Request-ID` is seen as such by every instance), and a wake-up queued on `vsts-sentry-hooks`. Three
storage operations, under one deadline. Once the record is stored the webhook is accepted: a queue that does not
take the wake-up leaves it to the sweeper, which wakes every recorded webhook not applied after a grace period.
No input gives a 5xx but 503, which says storage or the configuration failed and nothing was recorded.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping

from shared.clock import SYSTEM, Clock
from shared.deliveries.sentry import InvalidSentryPayload, InvalidSignature, from_http
from shared.deliveries.sentry_messages import actor_of, delivery_to_json, event_of, is_request_id, to_hook_message
from shared.errors import BodyTooLarge, StorageUnavailable, TooLargeToStore
from shared.intake.webhook import RETRY, WebhookAnswer
from shared.settings import SettingsError, get_settings
from shared.store import queues
from shared.store.deadline import storage_deadline
from shared.store.sentry import SentryStore
from shared.sync import wakeups

log = logging.getLogger(__name__)

# What storage may take in all for one webhook (the record and the enqueue, retries included). Sentry waits 1 s
# and does not send a webhook again, so a slow storage that still takes the event within this is worth waiting
# for; a hung one is given up on, answered 503.
STORAGE_SECONDS = 4.0
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
    ref, message = wakeups.hook_ref(uuid, request_id), to_hook_message(uuid, request_id)
    with storage_deadline(STORAGE_SECONDS):
        try:
            # The pending row first: once the record is stored, the sweeper wakes it even if nothing else is.
            wakeups.note(ref, queues.SENTRY_HOOKS_QUEUE_NAME, message, clock=clock)
            if not store.claim_delivery(uuid, request_id, record, now=clock.now()):
                log.info("Sentry webhook: request %s of installation %s was received already", request_id, uuid)
                return WebhookAnswer(200, {"status": "duplicate"})
        except TooLargeToStore:
            return WebhookAnswer(413, {"error": "The webhook's event is too large to record."})
        except StorageUnavailable:
            log.warning("Sentry webhook: storage unavailable while recording a webhook")
            return UNAVAILABLE
        # Recorded: accepted. A queue that does not take the wake-up leaves it to the sweeper.
        wakeups.wake(ref, queues.SENTRY_HOOKS_QUEUE_NAME, message)
    return WebhookAnswer(202, {"status": "queued"})
