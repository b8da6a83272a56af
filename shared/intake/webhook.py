"""Receiving a service hook delivery (contract §5.1): check it, authenticate it, queue it.

An unknown or disabled integration and a missing or wrong credential get the same answer, after the same
work (one point read and a constant-time comparison against one secret or more), so nobody can learn which
organizations are installed. Only a delivery that is durably queued is acknowledged with 2xx.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from shared.deliveries import (
    BodyTooLarge,
    InvalidDelivery,
    extract_credential,
    parse_delivery,
    parse_workitem_commented,
    parse_workitem_update,
    secret_matches,
    to_message,
)
from shared.errors import StorageUnavailable
from shared.settings import SettingsError
from shared.store import last_delivery, queues
from shared.store.deadline import storage_deadline
from shared.store.integrations import Integration, IntegrationStore

log = logging.getLogger(__name__)

HANDLED_EVENT = "workitem.updated"
COMMENTED_EVENT = "workitem.commented"  # contract §18: applied only where `sync_comments_reverse` is on
# How stale this process's view of an integration may be when a delivery's secret matches it. A disabled
# integration or a retired secret is refused at most this long after the change was made on another instance.
AUTH_CACHE_SECONDS = 5.0
# What storage may take in all for one delivery (the integration read and the enqueue, retries included).
STORAGE_SECONDS = 6.0
# Compared against when there is no integration, so that case costs what a wrong secret costs.
_DECOY = [secrets.token_hex(32)]


@dataclass(frozen=True)
class WebhookAnswer:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] | None = None


RETRY = {"Retry-After": "5"}


UNAUTHORIZED = WebhookAnswer(401, {"error": "unauthorized"})


def _authenticated(integration: Integration | None, headers: Mapping[str, str]) -> bool:
    accepted = integration.accepted_webhook_secrets() if integration is not None and integration.active else []
    return secret_matches(extract_credential(headers), accepted or _DECOY) and bool(accepted)


def receive_delivery(body: bytes, headers: Mapping[str, str], store: IntegrationStore | None = None) -> WebhookAnswer:
    # Azure DevOps gives up on a delivery after about 20 s; contract §5.1 answers 503 within 10 s.
    with storage_deadline(STORAGE_SECONDS):
        try:
            return _receive(body, headers, store)
        except SettingsError as exc:  # e.g. SECRETS_KEY missing: 503 so Azure DevOps retries, not probation
            log.error("Webhook: the app is misconfigured: %s", exc)
            return WebhookAnswer(503, {"error": "The app is misconfigured; the delivery was not accepted."}, RETRY)


def _receive(body: bytes, headers: Mapping[str, str], store: IntegrationStore | None) -> WebhookAnswer:
    try:
        delivery = parse_delivery(body)
    except BodyTooLarge as exc:
        return WebhookAnswer(413, {"error": str(exc)})
    except InvalidDelivery as exc:
        return WebhookAnswer(400, {"error": str(exc)})
    store = store or IntegrationStore()
    try:
        # A delivery whose secret matches what this process read in the last few seconds needs no read; any
        # other (unknown integration, wrong or rotated secret) is checked against a fresh point read.
        integration = store.recently_read(delivery.collection_id, AUTH_CACHE_SECONDS)
        if integration is None or not _authenticated(integration, headers):
            integration = store.get(delivery.collection_id)
    except StorageUnavailable:
        log.warning("Webhook: storage unavailable while authenticating a delivery")
        return WebhookAnswer(503, {"error": "Storage is unavailable; the delivery was not accepted."}, RETRY)
    if not _authenticated(integration, headers):
        log.info("Webhook: refused a delivery (unknown or disabled integration, or a wrong credential)")
        return UNAUTHORIZED
    assert integration is not None
    if delivery.event_type not in (HANDLED_EVENT, COMMENTED_EVENT):
        return WebhookAnswer(200, {"status": "ignored"})
    parse = parse_workitem_update if delivery.event_type == HANDLED_EVENT else parse_workitem_commented
    update = parse(delivery)
    if update is None:
        log.info("Webhook: a %s delivery without a usable work item id was ignored", delivery.event_type)
        return WebhookAnswer(200, {"status": "ignored"})
    update = replace(update, integration_id=integration.id)  # the stored, normalized id
    try:
        queues.enqueue(to_message(update))
    except InvalidDelivery as exc:
        return WebhookAnswer(400, {"error": str(exc)})
    except StorageUnavailable:
        log.warning("Webhook: the queue is unavailable; answering 503 so Azure DevOps retries")
        return WebhookAnswer(503, {"error": "The queue is unavailable; the delivery was not accepted."}, RETRY)
    last_delivery.note_delivery(integration.id)  # for the status page: one write per few minutes, best effort
    return WebhookAnswer(202, {"status": "accepted"})
