"""The Sentry queues' messages (contract §13.2), compact ASCII JSON checked both ways like the other queues', so
a message the app did not write is refused (and ends in the poison queue) instead of being half applied.

- `vsts-sentry-hooks`: a webhook that was verified and recorded (`shared.store.sentry`): its installation and
  request id; the event itself stays in the record, since a comment may not fit a queue message.
- `vsts-sentry-updates`: a `SentryUpdate`, a tracked issue of a Sentry organization to bring in line.

Also the typed webhook events as the JSON the record holds, and back; the record keeps the webhook's actor beside
its event (`delivery_to_json`), since the worker ignores the app's own writes by it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from shared.deliveries.envelope import InvalidDelivery
from shared.deliveries.outbound import decode_message, encode_message, is_link_key, read_after
from shared.deliveries.sentry import (
    Assignee,
    CommentEvent,
    InstallationEvent,
    IssueEvent,
    SentryWebhook,
    is_app_actor,
)
from shared.deliveries.sentry import (
    event_of as sentry_event_of,
)
from shared.deliveries.sentry_alerts import (
    ALERT_ACTIONS,
    METRIC_ACTIONS,
    AlertEvent,
    MetricAlertEvent,
    alert_event,
    metric_alert_event,
)
from shared.model.sentry import SENTRY_FIELDS, SentryUpdate
from shared.validation import is_valid_id

_HOOK = "sentry-hook"
_HOOK_KEYS = {"v", "kind", "installation", "request_id", "attempt"}
_UPDATE = "sentry-update"
_UPDATE_KEYS = {"v", "kind", "org_id", "issue_id", "fields", "link", "after", "attempt"}
MAX_REQUEST_ID = 200

Event = InstallationEvent | IssueEvent | CommentEvent | AlertEvent | MetricAlertEvent
_KINDS: dict[str, type] = {
    "installation": InstallationEvent,
    "issue": IssueEvent,
    "comment": CommentEvent,
    "event_alert": AlertEvent,
    "metric_alert": MetricAlertEvent,
}


def is_request_id(value: object) -> bool:
    """A request id as it is stored: a table key (Sentry's are uuids; the app makes one from the body's hash)."""
    return (
        isinstance(value, str)
        and 0 < len(value) <= MAX_REQUEST_ID
        and value.isascii()
        and value.isprintable()
        and not any(c in value for c in "/\\#? ")
    )


def to_hook_message(installation_uuid: str, request_id: str, *, attempt: int = 0) -> str:
    text = encode_message(_HOOK, {"installation": installation_uuid, "request_id": request_id}, attempt)
    read_hook_message(text)
    return text


def read_hook_message(text: str) -> tuple[str, str, int]:
    """(installation uuid, request id, attempt count); InvalidDelivery for what to_hook_message cannot write."""
    data, attempt = decode_message(text, _HOOK, _HOOK_KEYS, "a Sentry webhook")
    uuid, request_id = data.get("installation"), data.get("request_id")
    if not is_valid_id(uuid) or not is_request_id(request_id):
        raise InvalidDelivery("The Sentry webhook message names no valid installation and request id.")
    return uuid, request_id, attempt


def to_update_message(update: SentryUpdate, *, attempt: int = 0) -> str:
    content: dict[str, Any] = {"org_id": update.org_id, "issue_id": update.issue_id}
    if update.fields:
        content["fields"] = list(update.fields)
    if update.link:
        content["link"] = update.link
    if update.after:
        content["after"] = [list(entry) for entry in update.after]
    text = encode_message(_UPDATE, content, attempt)
    read_update_message(text)
    return text


def read_update_message(text: str) -> tuple[SentryUpdate, int]:
    data, attempt = decode_message(text, _UPDATE, _UPDATE_KEYS, "a Sentry update")
    org_id, issue_id = data.get("org_id"), data.get("issue_id")
    fields, link = data.get("fields", []), data.get("link")
    if not is_valid_id(org_id) or not is_valid_id(issue_id):
        raise InvalidDelivery("The Sentry update names no valid issue.")
    if not isinstance(fields, list) or not all(f in SENTRY_FIELDS for f in fields) or len(set(fields)) != len(fields):
        raise InvalidDelivery("The Sentry update has an invalid fields list.")
    if link is not None and not is_link_key(link):
        raise InvalidDelivery("The Sentry update has an invalid link.")
    if not fields and link is None:
        raise InvalidDelivery("The Sentry update changes nothing.")
    after = read_after(data.get("after", []), SENTRY_FIELDS, "The Sentry update has an invalid after list.")
    return SentryUpdate(org_id, issue_id, tuple(fields), link, after), attempt


def event_of(webhook: SentryWebhook) -> Event | None:
    """The typed view of a webhook the app handles (`shared.deliveries.sentry.event_of`, and alert webhooks,
    contract §17), or None for one it does not; raises InvalidSentryPayload."""
    if webhook.resource == "event_alert":
        return alert_event(webhook) if webhook.action in ALERT_ACTIONS else None
    if webhook.resource == "metric_alert":
        return metric_alert_event(webhook) if webhook.action in METRIC_ACTIONS else None
    return sentry_event_of(webhook)


def event_to_json(event: Event) -> dict[str, Any]:
    resource = next(name for name, kind in _KINDS.items() if isinstance(event, kind))
    return {"resource": resource, **asdict(event)}


def event_from_json(data: dict[str, Any]) -> Event:
    """The event `event_to_json` wrote; InvalidDelivery for anything else."""
    try:
        content = dict(data)
        kind = _KINDS[content.pop("resource")]
        if kind is IssueEvent and content.get("assignee") is not None:
            content["assignee"] = Assignee(**content["assignee"])
        return kind(**content)
    except (KeyError, TypeError, AttributeError):
        raise InvalidDelivery("The recorded Sentry webhook is not one the app wrote.") from None


@dataclass(frozen=True)
class Actor:
    """Who caused a webhook: a user, or an application (this app's own token when its id is the app's uuid)."""

    type: str | None = None
    id: str | None = None
    name: str | None = None

    def is_app(self, app_uuid: str | None) -> bool:
        return is_app_actor(self.type, self.id, app_uuid)


def actor_of(webhook: SentryWebhook) -> Actor:
    return Actor(webhook.actor_type, webhook.actor_id, webhook.actor_name)


def delivery_to_json(event: Event, actor: Actor) -> dict[str, Any]:
    """What a delivery record holds: the event, and its actor beside it."""
    return {**event_to_json(event), "actor": asdict(actor)}


def delivery_from_json(data: dict[str, Any]) -> tuple[Event, Actor]:
    """The event and actor `delivery_to_json` wrote (a record without an actor: none); InvalidDelivery else."""
    if not isinstance(data, dict):
        raise InvalidDelivery("The recorded Sentry webhook is not one the app wrote.")
    content = dict(data)
    actor = content.pop("actor", None) or {}
    try:
        return event_from_json(content), Actor(**actor)
    except TypeError:
        raise InvalidDelivery("The recorded Sentry webhook's actor is not one the app wrote.") from None
