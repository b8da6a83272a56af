"""The service hook subscriptions behind each integration, as Azure DevOps sees them (contract §6, §9, §18): the
`workitem.updated` web hook that posts to the app with a fresh secret in its `shared-secret` header, and its
`workitem.commented` twin with the same secret (a subscription has one event type)."""

from __future__ import annotations

import logging
import secrets
from typing import Any

from shared.ado.client import AdoClient, AdoError, AdoNotFound, AdoRequestRejected, AdoUnauthorized

log = logging.getLogger(__name__)

PERMISSION_HELP = (
    "Azure DevOps refused to create the service hook subscription ({detail}). The integration's identity must be "
    "allowed to manage service hooks in the organization (a member of Project Collection Administrators, or a "
    "project administrator where the organization allows it), and, for OAuth credentials, the organization "
    "policy 'Third-party application access via OAuth' must be on."
)


class SubscriptionRefused(AdoError):
    """Azure DevOps refused to create the subscription: a permission or an organization policy is missing."""


UPDATED = "workitem.updated"
COMMENTED = "workitem.commented"


def subscription_body(url: str, secret: str, event_type: str = UPDATED) -> dict[str, Any]:
    """The web hook that posts every detail of the event to `url` with the secret header."""
    return {
        "publisherId": "tfs",
        "eventType": event_type,
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


def _create_one(client: AdoClient, url: str, secret: str, event_type: str) -> tuple[str, str]:
    try:
        answer = client.create_subscription(subscription_body(url, secret, event_type))
    except (AdoUnauthorized, AdoRequestRejected) as exc:
        raise SubscriptionRefused(PERMISSION_HELP.format(detail=str(exc).rstrip("."))) from exc
    subscription_id = answer.get("id") if isinstance(answer, dict) else None
    if not isinstance(subscription_id, str) or not subscription_id:
        raise AdoError("Azure DevOps created the subscription but answered without its id")
    return subscription_id, str(answer.get("status") or "enabled")


def create(client: AdoClient, url: str) -> tuple[str, str, str]:
    """(subscription id, its status, its secret) of a new `workitem.updated` subscription."""
    secret = secrets.token_hex(32)
    subscription_id, status = _create_one(client, url, secret, UPDATED)
    return subscription_id, status, secret


def create_pair(client: AdoClient, url: str) -> tuple[str, str, str, tuple[str, str]]:
    """A new `workitem.updated` subscription and its `workitem.commented` twin with the same new secret: (id,
    status, secret, (comments id, comments status)). When the second cannot be made, the first is deleted."""
    subscription_id, status, secret = create(client, url)
    try:
        comments = _create_one(client, url, secret, COMMENTED)
    except Exception:
        delete_quietly(client, subscription_id)
        raise
    return subscription_id, status, secret, comments


def delete_quietly(client: AdoClient, subscription_id: str | None) -> None:
    if not subscription_id:
        return
    try:
        client.delete_subscription(subscription_id)
    except AdoNotFound:
        pass
    except AdoError as exc:  # a leftover subscription is harmless: its secret stops working after the grace
        log.warning("Could not delete the old subscription %s: %s", subscription_id, exc)
