"""Sentry alert rules that create work items (contract §17): the `alert-rule-action` element's settings, checked
when a person saves the rule, and `event_alert.triggered`, which files one work item per Sentry issue.

At most one work item per Sentry issue and Azure DevOps integration, as Sentry's own ticket rules
(`has_linked_issue`) ensure; the Sentry App path does not, so the app does, in three steps:

1. The webhook is recorded (and its pending row noted) before it is answered (`shared.sentryapp.intake`), so a
   firing accepted is applied, by the queue or else by the sweeper.
2. Applying it skips an issue that already links a work item of the integration (a resend with a new
   `Request-ID`, a later firing).
3. Otherwise the create goes through `create_work_item` under the idempotency key `sentry-alert|<integration>`,
   scoped to the tracked issue, with one fingerprint for every firing: its conditional insert picks the one
   creator among concurrent firings (the others retry later, and then find the link), and a crash between the
   create and the link leaves a claim that the retry resolves by finding the work item it made (its marker tag)
   before creating anything.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from shared.admin.field_defaults import parse_field_lines
from shared.admin.workitem_request import MAX_TAG, default_title, parse_request
from shared.admin.workitems import InProgress, create_work_item
from shared.deliveries.sentry_alerts import AlertEvent
from shared.deliveries.sentry_ui import AREA_PATH, PROJECT, WORK_ITEM_TYPE, parse_choice
from shared.errors import Conflict, InvalidInput, NotFound, RetryLater
from shared.lookups.forms import Forms
from shared.model.integration import IntegrationNotFound
from shared.model.sentry import SentryInstallation
from shared.model.tracker import TrackedIssue
from shared.sentryapp.components import Connected, connected
from shared.store import failures
from shared.store.tracker import TrackerStore

log = logging.getLogger(__name__)

ITERATION_PATH, TAGS, PRIORITY, SEVERITY = "iteration_path", "tags", "priority", "severity"
EXTRA_FIELDS, ON_RESOLVE = "extra_fields", "on_resolve"
RULE_FIELDS = (PROJECT, WORK_ITEM_TYPE, AREA_PATH, ITERATION_PATH, TAGS, PRIORITY, SEVERITY, EXTRA_FIELDS, ON_RESOLVE)
RESOLVE = "resolve"  # on_resolve: a resolved metric alert also resolves its work item (else it only comments)
PRIORITIES = ("1", "2", "3", "4")
# The severities of the Agile, Scrum and CMMI processes' Bug (Microsoft.VSTS.Common.Severity's allowed values).
SEVERITIES = ("1 - Critical", "2 - High", "3 - Medium", "4 - Low")
IDEMPOTENCY_KEY = "sentry-alert|{integration_id}"
FINGERPRINT = "sentry-alert"  # every firing for an issue is one request: the first one's content is what is made


@dataclass(frozen=True)
class Rule:
    """An alert rule action's settings, resolved to the integration and the create request's body."""

    integration_id: str
    body: dict[str, Any]  # the body of `POST …/workitems` (contract §12.4), without title and description


def _tags(text: str) -> list[str]:
    tags = [tag.strip() for tag in text.replace(",", ";").split(";") if tag.strip()]
    if any(len(tag) > MAX_TAG for tag in tags):
        raise InvalidInput(f"Each tag must be at most {MAX_TAG} characters.")
    return tags


def rule_of(connection: Connected, settings: dict[str, str]) -> Rule:
    """The rule the settings describe, checked without a request (InvalidInput or NotFound, one sentence)."""
    unknown = sorted(name for name in settings if name not in RULE_FIELDS)
    if ON_RESOLVE in settings and settings[ON_RESOLVE] not in ("comment", RESOLVE):
        raise InvalidInput("When a metric alert resolves, the work item is commented on or resolved.")
    if unknown:
        raise InvalidInput(f"The rule has a field the app does not know: {unknown[0][:40]}.")
    for name in (PROJECT, WORK_ITEM_TYPE):
        if name not in settings:
            raise InvalidInput(f"Choose the {'Azure DevOps project' if name == PROJECT else 'work item type'}.")
    choice = parse_choice(settings[PROJECT], "project")
    integration_id = connection.integration_for(choice, "project")
    body: dict[str, Any] = {"integration_id": integration_id, "project": choice.value}
    body["type"] = settings[WORK_ITEM_TYPE].strip()
    for name in (AREA_PATH, ITERATION_PATH):
        if name in settings:
            body[name] = settings[name].strip()
    if TAGS in settings:
        body["tags"] = _tags(settings[TAGS])
    fields = parse_field_lines(settings.get(EXTRA_FIELDS, ""))
    if PRIORITY in settings:
        if settings[PRIORITY].strip() not in PRIORITIES:
            raise InvalidInput("The priority must be 1, 2, 3 or 4.")
        fields["Microsoft.VSTS.Common.Priority"] = int(settings[PRIORITY])
    if SEVERITY in settings:
        fields["Microsoft.VSTS.Common.Severity"] = settings[SEVERITY].strip()
    if fields:
        body["fields"] = fields
    parse_request(body)  # the create's own checks (reserved fields, lengths): refused now, not when it fires
    return Rule(integration_id, body)


def _named(options: list[dict[str, str]], value: str) -> str | None:
    """The option whose label or value is `value` (Azure DevOps compares names without case): its label."""
    wanted = value.casefold()
    return next((o["label"] for o in options if wanted in (o["label"].casefold(), o["value"].casefold())), None)


def check_rule(installation_uuid: str, settings: dict[str, str]) -> dict[str, str]:
    """A rule being saved in Sentry: `{"message"}` when work items can be created as it says; InvalidInput or
    NotFound (answered 4xx with the sentence, which Sentry shows and which blocks the save) otherwise.

    Requests: the installation and its integrations (storage), then the integration's cached lists (projects,
    the project's types, areas or iterations when named): no Azure DevOps request when they are cached."""
    connection = connected(installation_uuid)
    rule = rule_of(connection, settings)
    forms, org_id, body = Forms(), connection.org_id, rule.body
    try:
        project = _named(forms.projects(rule.integration_id, org_id=org_id), body["project"])
        if project is None:
            raise NotFound(f"The Azure DevOps project {body['project']} does not exist or cannot be read.")
        types = forms.work_item_types(rule.integration_id, project, org_id=org_id)
        if _named(types, body["type"]) is None:
            raise NotFound(f"The project {project} has no work item type {body['type']}.")
        for key, structure, what in ((AREA_PATH, "areas", "area"), (ITERATION_PATH, "iterations", "iteration")):
            if (
                key in body
                and _named(forms.paths(rule.integration_id, project, structure, org_id=org_id), body[key]) is None
            ):
                raise NotFound(f"The project {project} has no {what} path {body[key]}.")
    except IntegrationNotFound as exc:  # disabled, or credentials this organization may not use (contract §16)
        raise NotFound(f"The app may not create work items there: {exc}") from None
    return {"message": f"Each issue this rule fires for gets one {body['type']} in {project}."}


def _description(event: AlertEvent) -> str:
    """Markdown: the event's details, a link to the issue, and a footer naming the rule."""
    lines = [f"**{event.title}**"]
    if event.culprit:
        lines += ["", f"In `{event.culprit}`"]
    details = [
        ("Level", event.level),
        ("Environment", event.environment),
        ("Release", event.release),
        ("Platform", event.platform),
    ]
    shown = [f"- {label}: {value}" for label, value in details if value]
    shown += [f"- {key}: {value}" for key, value in event.tags if key not in {"level", "environment", "release"}]
    if shown:
        lines += ["", "Event details:", "", *shown]
    if event.event_url:
        lines += ["", f"[The event in Sentry]({event.event_url})"]
    if event.issue_url:
        lines += ["", f"[The issue in Sentry]({event.issue_url})"]
    rule = f'the Sentry alert rule "{event.rule}"' if event.rule else "a Sentry alert rule"
    lines += ["", f"Created by {rule}."]
    return "\n".join(lines)


def _tracked(installation: SentryInstallation, event: AlertEvent) -> TrackedIssue:
    """The Sentry issue as a tracked issue of `sentry-<slug>` (made now when it is not one yet)."""
    tracker, org_id = TrackerStore(), installation.org_id
    issue = tracker.get_issue(org_id, event.issue_id)
    if issue is None:
        fresh = TrackedIssue(org_id, event.issue_id, default_title(event.title), url=event.issue_url)
        issue = tracker.create_issue(fresh) or tracker.get_issue(org_id, event.issue_id)  # or another firing's
        if issue is None:
            raise RetryLater(f"issue {event.issue_id} was neither created nor found")
    return issue


def apply_alert_event(event: AlertEvent, installation: SentryInstallation) -> str:
    """Create and link the work item of a fired issue alert, unless the issue has one of the integration.
    RetryLater while another firing for the issue is creating it (then this one finds the link)."""
    if not event.settings:
        return f"issue {event.issue_id}: the alert has no settings of this app, nothing created"
    try:
        rule = rule_of(connected(installation.uuid), event.settings)
    except (InvalidInput, NotFound) as exc:  # the rule was changed since it was saved, or the integration left
        return _refused(installation, event, str(exc))
    issue = _tracked(installation, event)
    linked = [link.work_item_id for link in issue.links if link.integration_id == rule.integration_id]
    if linked:
        return f"issue {event.issue_id}: already linked to work item {linked[0]}, nothing created"
    body = {**rule.body, "title": default_title(event.title), "description": _description(event)}
    key = IDEMPOTENCY_KEY.format(integration_id=rule.integration_id)
    try:
        created = create_work_item(
            installation.org_id, event.issue_id, body, key, request_fingerprint=FINGERPRINT, announce_to_sentry=True
        )
    except InProgress:
        raise RetryLater("another firing is creating the work item") from None  # soon: it links what it made
    except Conflict as exc:  # the issue holds as many links as it may
        return _refused(installation, event, str(exc))
    except (InvalidInput, NotFound, IntegrationNotFound) as exc:  # Azure DevOps refused it, or it cannot be used
        return _refused(installation, event, str(exc))
    return f"issue {event.issue_id}: work item {created['work_item_id']} created and linked"


def _refused(installation: SentryInstallation, event: AlertEvent, reason: str) -> str:
    return refused(installation, f"issue {event.issue_id}", event.rule, reason)


def refused(installation: SentryInstallation, subject: str, rule_name: str | None, reason: str) -> str:
    """Record why an alert created nothing (a failure a person sees on the status page)."""
    log.warning("Sentry alert for %s created nothing: %s", subject, reason)
    rule = f'"{rule_name}"' if rule_name else "(unnamed)"
    failures.record_failure(
        "ado_failed",
        f"{installation.org_id} {subject} ← alert rule {rule}",
        reason,
        advice="Fix the alert rule's action in Sentry (or the integration's field defaults); the next firing uses it.",
    )
    return f"{subject}: nothing created ({reason})"
