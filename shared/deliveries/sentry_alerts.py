"""Alert webhooks and settings as Sentry sends them (contract §17), verified by `shared.deliveries.sentry` and
parsed here. No I/O. `event_alert.triggered` (`send_alert_webhook_v2`): `data.event` (the event, with `issue_id`,
`web_url`), `data.triggered_rule` (the rule's name), `data.issue_alert.settings` (`[{name, value, label?}]`, the
action's saved settings). A rule being saved sends its settings as `fields` of the same shape.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from shared.deliveries.sentry import (
    _NAME,
    InvalidSentryPayload,
    SentryWebhook,
    _expect,
    _id,
    _object,
    _text,
    _url,
)
from shared.validation import has_control_characters

ALERT_ACTIONS = {"triggered"}  # of event_alert; metric_alert's are critical, warning, resolved
MAX_SETTINGS = 30  # an alert rule action's fields: a handful; more is not what Sentry sends for this app
MAX_SETTING_TEXT = 4000
MAX_ALERT_TAGS = 20
MAX_DETAIL = 1000


@dataclass(frozen=True)
class AlertEvent:
    """`event_alert.triggered` (contract §17): an issue alert rule with this app's action fired for an event."""

    action: str  # triggered
    issue_id: str  # digits: the Sentry issue (group) the event belongs to
    issue_url: str | None  # the issue's page, `…/issues/{id}/` (cut from the event's web_url)
    event_url: str | None  # the event's page
    title: str
    rule: str | None  # data.triggered_rule, the rule's name
    settings: dict[str, str]  # data.issue_alert.settings, name -> value (as text)
    culprit: str | None = None
    level: str | None = None
    environment: str | None = None
    release: str | None = None
    platform: str | None = None
    tags: list[list[str]] = field(default_factory=list)  # [[key, value], ...], the first few


def alert_settings(value: object) -> dict[str, str]:
    """Sentry's saved settings `[{name, value, label?}]` as name -> text (numbers as text; blanks left out)."""
    if not isinstance(value, list) or len(value) > MAX_SETTINGS:
        raise InvalidSentryPayload(f"The alert's settings must be a list of at most {MAX_SETTINGS} fields.")
    settings: dict[str, str] = {}
    for entry in value:
        if not isinstance(entry, dict) or not _NAME.fullmatch(str(entry.get("name", ""))):
            raise InvalidSentryPayload("Each of the alert's settings must be an object with a field name.")
        raw = entry.get("value")
        if isinstance(raw, bool) or raw is None:
            continue
        if isinstance(raw, int | float):
            raw = str(raw)
        if not isinstance(raw, str) or len(raw) > MAX_SETTING_TEXT:
            raise InvalidSentryPayload(f"The alert's setting {entry['name']} must be text.")
        if has_control_characters(raw.replace("\r", "").replace("\n", "")):
            raise InvalidSentryPayload(f"The alert's setting {entry['name']} must not contain control characters.")
        if raw.strip():
            settings[entry["name"]] = raw
    return settings


def _issue_page(event_url: str | None, issue_id: str) -> str | None:
    """The issue's page from the event's (`…/issues/{id}/events/{event id}/`)."""
    if event_url is None:
        return None
    marker = f"/issues/{issue_id}/"
    head, found, _ = event_url.partition(marker)
    return head + marker if found else None


def _tag_pairs(value: object) -> list[list[str]]:
    pairs = []
    for entry in value if isinstance(value, list) else []:
        if isinstance(entry, list | tuple) and len(entry) == 2:
            key, text = _text(entry[0]), _text(entry[1])
            if key and text:
                pairs.append([key, text])
        if len(pairs) >= MAX_ALERT_TAGS:
            break
    return pairs


def alert_event(webhook: SentryWebhook) -> AlertEvent:
    _expect(webhook, "event_alert")
    event = _object(webhook.data.get("event"))
    issue_id = _id(event.get("issue_id")) or _id(event.get("group_id"))
    if issue_id is None:
        raise InvalidSentryPayload("The event_alert webhook has no data.event.issue_id.")
    title = _text(event.get("title"), 10_000) or _text(_object(event.get("metadata")).get("title"), 10_000)
    event_url = _url(event.get("web_url"))
    issue_alert = _object(webhook.data.get("issue_alert"))
    return AlertEvent(
        action=webhook.action,
        issue_id=issue_id,
        issue_url=_issue_page(event_url, issue_id),
        event_url=event_url,
        title=title or f"Sentry issue {issue_id}",
        rule=_text(webhook.data.get("triggered_rule"), MAX_DETAIL) or _text(issue_alert.get("title"), MAX_DETAIL),
        settings=alert_settings(issue_alert.get("settings", [])),
        culprit=_text(event.get("culprit"), MAX_DETAIL),
        level=_text(event.get("level")),
        environment=_text(event.get("environment")),
        release=_text(event.get("release")),
        platform=_text(event.get("platform")),
        tags=_tag_pairs(event.get("tags")),
    )


METRIC_ACTIONS = {"critical", "warning", "resolved"}
OWN_SETTINGS = {"project", "work_item_type"}  # this app's action is the one whose settings name these


@dataclass(frozen=True)
class MetricAlertEvent:
    """`metric_alert.critical|warning|resolved` (contract §17): an incident of a metric alert rule whose triggers
    have this app's action. Actions carry Sentry's integer app id, not the app's uuid, so this app's action is
    found by its settings."""

    action: str  # critical | warning | resolved
    incident_id: str  # digits
    rule: str | None  # the alert rule's name
    title: str  # description_title
    text: str | None  # description_text
    web_url: str | None  # the rule's page
    settings: dict[str, str]  # this app's action's settings (empty: none found)


def _own_settings(alert_rule: dict[str, Any]) -> dict[str, str]:
    triggers = alert_rule.get("triggers")
    for trigger in triggers if isinstance(triggers, list) else []:
        actions = _object(trigger).get("actions")
        for action in actions if isinstance(actions, list) else []:
            try:
                settings = alert_settings(_object(action).get("settings", []))
            except InvalidSentryPayload:  # another integration's action, shaped its own way
                continue
            if set(settings) >= OWN_SETTINGS:
                return settings
    return {}


def metric_alert_event(webhook: SentryWebhook) -> MetricAlertEvent:
    _expect(webhook, "metric_alert")
    incident = _object(webhook.data.get("metric_alert"))
    incident_id = _id(incident.get("id")) or _id(incident.get("identifier"))
    if incident_id is None:
        raise InvalidSentryPayload("The metric_alert webhook has no data.metric_alert.id.")
    alert_rule = _object(incident.get("alert_rule"))
    rule = _text(alert_rule.get("name"), MAX_DETAIL)
    return MetricAlertEvent(
        action=webhook.action,
        incident_id=incident_id,
        rule=rule,
        title=_text(webhook.data.get("description_title"), MAX_DETAIL) or rule or f"Metric alert {incident_id}",
        text=_text(webhook.data.get("description_text"), MAX_SETTING_TEXT),
        web_url=_url(webhook.data.get("web_url")),
        settings=_own_settings(alert_rule),
    )
