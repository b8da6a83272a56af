"""Metric alerts (contract §17): `metric_alert.critical|warning` creates one work item per incident, and
`metric_alert.resolved` comments on it (and resolves it when the action's `on_resolve` says so).

An incident is tracked as the issue `metric-<incident id>` of `sentry-<slug>` (its url: the rule's page), so its
work item is created, linked and kept at most once per integration exactly as an issue alert's is
(`shared.sentryapp.alerts`: the link check, then the idempotent create). The comment and the resolve are
tracker-side changes (contract §12): they reach the work item through the outbound queue, as the installation's
`sync_comments` and `sync_status_forward` allow.
"""

from __future__ import annotations

from shared.admin.comments import add_comment
from shared.admin.tracker import put_issue
from shared.admin.workitem_request import default_title
from shared.admin.workitems import InProgress, create_work_item
from shared.deliveries.sentry_alerts import MetricAlertEvent
from shared.errors import Conflict, InvalidInput, NotFound, RetryLater
from shared.model.integration import IntegrationNotFound
from shared.model.sentry import SentryInstallation
from shared.model.tracker import TrackedIssue
from shared.sentryapp.alerts import FINGERPRINT, IDEMPOTENCY_KEY, ON_RESOLVE, RESOLVE, refused, rule_of
from shared.sentryapp.components import connected
from shared.store.tracker import TrackerStore

ISSUE_PREFIX = "metric-"
AUTHOR = "Sentry"


def _title(event: MetricAlertEvent) -> str:
    rule = event.rule or ""
    return default_title(event.title if rule in event.title else f"{rule}: {event.title}")


def _description(event: MetricAlertEvent) -> str:
    lines = [f"**{event.title}**"]
    if event.text:
        lines += ["", event.text]
    if event.web_url:
        lines += ["", f"[The alert rule in Sentry]({event.web_url})"]
    rule = f'the Sentry metric alert rule "{event.rule}"' if event.rule else "a Sentry metric alert rule"
    return "\n".join([*lines, "", f"Created by {rule}, incident {event.incident_id}."])


def _tracked(installation: SentryInstallation, event: MetricAlertEvent) -> TrackedIssue:
    tracker, org_id, issue_id = TrackerStore(), installation.org_id, ISSUE_PREFIX + event.incident_id
    issue = tracker.get_issue(org_id, issue_id)
    if issue is None:
        fresh = TrackedIssue(org_id, issue_id, _title(event), url=event.web_url)
        issue = tracker.create_issue(fresh) or tracker.get_issue(org_id, issue_id)
        if issue is None:
            raise RetryLater(f"incident {event.incident_id} was neither tracked nor found")
    return issue


def apply_metric_alert(event: MetricAlertEvent, installation: SentryInstallation) -> str:
    """Create (critical, warning) or comment and maybe resolve (resolved); what became of it, for the log."""
    subject = f"incident {event.incident_id}"
    if not event.settings:
        return f"{subject}: the alert has no action of this app, nothing done"
    if event.action == "resolved":
        return _resolved(event, installation, subject)
    try:
        rule = rule_of(connected(installation.uuid), event.settings)
    except (InvalidInput, NotFound) as exc:
        return refused(installation, subject, event.rule, str(exc))
    issue = _tracked(installation, event)
    linked = [link.work_item_id for link in issue.links if link.integration_id == rule.integration_id]
    if linked:
        return f"{subject}: already linked to work item {linked[0]}, nothing created"
    body = {**rule.body, "title": _title(event), "description": _description(event)}
    key = IDEMPOTENCY_KEY.format(integration_id=rule.integration_id)
    try:
        created = create_work_item(installation.org_id, issue.issue_id, body, key, request_fingerprint=FINGERPRINT)
    except InProgress:
        raise RetryLater("another webhook of the incident is creating the work item") from None
    except (Conflict, InvalidInput, NotFound, IntegrationNotFound) as exc:
        return refused(installation, subject, event.rule, str(exc))
    return f"{subject}: work item {created['work_item_id']} created and linked"


def _resolved(event: MetricAlertEvent, installation: SentryInstallation, subject: str) -> str:
    org_id, issue_id = installation.org_id, ISSUE_PREFIX + event.incident_id
    if TrackerStore().get_issue(org_id, issue_id) is None:
        return f"{subject}: resolved, but no work item was made for it"
    text = f"Sentry: the metric alert {event.rule or ''} resolved.".replace("  ", " ")
    if event.text:
        text += f"\n\n{event.text}"
    # One comment per incident: its id makes a repeated webhook find the comment it added.
    add_comment(org_id, issue_id, {"author": AUTHOR, "text": text}, comment_id=f"{ISSUE_PREFIX}resolved")
    if event.settings.get(ON_RESOLVE) == RESOLVE:
        put_issue(org_id, issue_id, {"status": "resolved"})
        return f"{subject}: resolved, commented and resolved"
    return f"{subject}: resolved, commented"
