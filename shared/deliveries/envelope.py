"""The envelope of a service hook delivery: the body read strictly, just enough checked to find the integration
and the event type (contract §5.1). No I/O."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from shared.errors import BodyTooLarge, InvalidInput
from shared.validation import parse_json

MAX_BODY_BYTES = 2 * 1024 * 1024


class InvalidDelivery(InvalidInput):
    """The body is not a service hook delivery we can read (HTTP 400). The message never echoes the body."""


@dataclass(frozen=True)
class Delivery:
    """The envelope of one service hook delivery, checked just enough to find the integration and event type."""

    event_type: str
    collection_id: str  # resourceContainers.collection.id exactly as given: the integration key
    event_id: str | None
    subscription_id: str | None
    notification_id: int | None
    # repr=False: a 2 MiB payload must never be dumped into a log line or a traceback.
    payload: dict[str, Any] = field(repr=False, hash=False)


def _is_int64(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**63


def loads(text: str) -> Any:
    """Strict JSON (shared.validation.parse_json), every failure mapped to InvalidDelivery."""
    try:
        return parse_json(text)
    except ValueError:
        raise InvalidDelivery("The body is not valid JSON.") from None


def parse_delivery(body: bytes) -> Delivery:
    """Parse a delivery body. Raises BodyTooLarge or InvalidDelivery, and nothing else, whatever the bytes."""
    if len(body) > MAX_BODY_BYTES:
        raise BodyTooLarge("The body is larger than 2 MiB.")
    try:
        # utf-8-sig: tolerate a byte order mark, which some .NET senders write; anything else must be UTF-8.
        text = bytes(body).decode("utf-8-sig")
    except (UnicodeDecodeError, TypeError):
        raise InvalidDelivery("The body is not UTF-8 text.") from None
    payload = loads(text)
    if not isinstance(payload, dict):
        raise InvalidDelivery("The body is not a JSON object.")
    event_type = payload.get("eventType")
    if not isinstance(event_type, str):
        raise InvalidDelivery("The delivery has no string eventType.")
    containers = payload.get("resourceContainers")
    collection = containers.get("collection") if isinstance(containers, dict) else None
    collection_id = collection.get("id") if isinstance(collection, dict) else None
    if not isinstance(collection_id, str):
        raise InvalidDelivery("The delivery has no string resourceContainers.collection.id.")
    event_id = payload.get("id")
    subscription_id = payload.get("subscriptionId")
    notification_id = payload.get("notificationId")
    return Delivery(
        event_type=event_type,
        collection_id=collection_id,
        event_id=event_id if isinstance(event_id, str) else None,
        subscription_id=subscription_id if isinstance(subscription_id, str) else None,
        # Bounded to Int64 so the caller can store it in Table Storage as is.
        notification_id=notification_id if _is_int64(notification_id) else None,
        payload=payload,
    )
