"""Inbound Azure DevOps changes on a Sentry organization's issue, sent to Sentry (contract §13.2), from the queue
`vsts-sentry-updates` with its back-off (`shared.sync.queued.with_backoff`).

A `SentryUpdate` names the issue, not the values: the worker reads the tracked issue as it is then, reads the
Sentry issue, and PUTs only what differs (nothing when Sentry already shows it: so the webhook our own PUT causes,
whose actor is this app, finds nothing to change, and a message applied twice sends nothing the second time).

- Status: `resolved` resolves; `unresolved` unresolves only a resolved Sentry issue. An ignored (archived) one
  counts as not resolved and is left so: a person archived it on purpose, and reopening a work item says the
  problem is not solved, not that the issue must be watched again.
- Assignee: `user:<id>` of the Sentry member with the assignee's email (the tracked issue's user id, else the
  tracker member's, else Sentry's members list, whose answer is kept as a tracker member, so the next assignment
  of that person costs no members request), or "" to unassign. An email Sentry has no member for is recorded as
  `sentry_failed` and not retried.
- Throttling, unavailability, timeouts and storage trouble are retried with back-off (honouring Sentry's wait,
  `X-Sentry-Rate-Limit-Reset` included). A refused token (401, after one refresh) marks the installation
  `needs_reauth`, and the message is parked, as is every message of an installation so marked: nothing is sent
  to Sentry until a new token or a reinstall releases them (`shared.sentryapp.parking`). A 403 is a permission
  the installation lacks: `sentry_failed` naming the scope, not retried, the credentials untouched. Another
  request Sentry refuses (4xx) or an issue it does not have is `sentry_failed`, not retried. A success adds
  `sentry_updated` with the Sentry fields sent, and records what Sentry now shows for them
  (`TrackedIssue.sentry_seen`), so the reconcile timer does not take the app's own change for Sentry's. No
  active installation: nothing, logged.

Sentry requests: a status change costs two (GET, PUT); an assignment two, or three while the member is not yet
known (members, GET, PUT); a change Sentry already shows, one (GET). Links: `shared.sentryapp.to_sentry_links`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from typing import Any

from shared.clock import SYSTEM, Clock
from shared.connections.sentry import InstallationUnusable, client_for, installation_for_org, mark_needs_reauth
from shared.deliveries.sentry_messages import read_update_message, to_update_message
from shared.errors import ConcurrentUpdate, RetryLater, StorageUnavailable
from shared.model.sentry import SentryInstallation, SentryUpdate, slug_of
from shared.model.tracker import RESOLVED, Member, TrackedIssue, activity_entry
from shared.sentry.client import (
    SentryClient,
    SentryError,
    SentryForbidden,
    SentryNotFound,
    SentryRejected,
    SentryUnauthorized,
    actor,
)
from shared.sentryapp.parking import NeedsReauth, park
from shared.sentryapp.sentry_state import FORBIDDEN_ADVICE, forbidden_reason, shown_assignee
from shared.sentryapp.to_sentry_links import LEFT_SHOWN, Refused, sync_link
from shared.store import failures, queues
from shared.store.sentry import SentryStore
from shared.store.tracker import TrackerStore
from shared.sync import wakeups
from shared.sync.queued import Outcome, with_backoff
from shared.sync.rules import ASSIGNEE_REV, STATUS_REV
from shared.sync.worker import run_with

log = logging.getLogger(__name__)

SOURCE = "vsts"  # the change came from Azure DevOps
FUNCTION = "apply_sentry_update"
FUNCTION_QUEUE = queues.SENTRY_UPDATES_QUEUE_NAME
MAX_REASON = 300


@dataclass
class SentryReport:
    sent: list[str] = field(default_factory=list)  # what was sent: status, assignedTo, link, unlink
    failed: list[str] = field(default_factory=list)  # reasons recorded as sentry_failed, not retried
    notes: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return f"sent {self.sent or 'nothing'}, failed {self.failed or 'none'}"


def run_update_message(message_id: str, body: bytes) -> Outcome:
    """The queue function's work: one message of `vsts-sentry-updates` (ValueError: not one the app wrote)."""
    return run_with(queues.SENTRY_UPDATES_QUEUE_NAME, FUNCTION, message_id, body, process_update_message)


def process_update_message(text: str, *, clock: Clock = SYSTEM) -> Outcome[SentryReport]:
    update, attempt = read_update_message(text)
    return with_backoff(
        queues.SENTRY_UPDATES_QUEUE_NAME,
        attempt,
        lambda: apply_sentry_update(update, clock=clock),
        lambda failures: to_update_message(update, attempt=failures),
        f"sentry update {update.org_id}/{update.issue_id} {','.join(update.fields) or 'link'}",
        wakeups.sentry_update_ref(update),
    )


def apply_sentry_update(
    update: SentryUpdate,
    *,
    tracker: TrackerStore | None = None,
    store: SentryStore | None = None,
    clock: Clock = SYSTEM,
) -> SentryReport:
    """Bring the Sentry issue in line with the tracked issue; RetryLater for failures that may pass."""
    tracker, store = tracker or TrackerStore(), store or SentryStore()
    report = SentryReport()
    try:
        issue = tracker.get_issue(update.org_id, update.issue_id)
        if issue is None:
            return _noted(update, report, "the issue no longer exists")
        _check_saved(issue, update)
        installation = installation_for_org(update.org_id, store)
        if installation is None:
            return _noted(update, report, "the organization has no active Sentry installation: nothing sent")
        try:
            if installation.needs_reauth:
                raise NeedsReauth(installation.uuid)
            try:
                client = client_for(installation, store=store, clock=clock)
            except InstallationUnusable as exc:
                return _noted(update, report, f"the Sentry installation cannot be used ({exc}): nothing sent")
            _send(client, installation, issue, update, tracker, store, report)
        except NeedsReauth:
            return _noted(update, report, park(update.org_id, FUNCTION_QUEUE, to_update_message(update)))
    except (StorageUnavailable, ConcurrentUpdate) as exc:
        raise RetryLater(str(exc)) from exc
    for note in report.notes:
        log.info("sentry update %s/%s: %s", update.org_id, update.issue_id, note)
    return report


def _send(
    client: SentryClient,
    installation: SentryInstallation,
    issue: TrackedIssue,
    update: SentryUpdate,
    tracker: TrackerStore,
    store: SentryStore,
    report: SentryReport,
) -> None:
    entries: list[dict[str, Any]] = []
    found: Member | None = None
    seen: dict[str, str] = {}  # what Sentry shows now of the fields sent
    where = _source(update)

    def failed(reason: str) -> None:
        report.failed.append(reason[:MAX_REASON])
        entries.append({**activity_entry("sentry_failed", SOURCE, *where), "reason": reason[:MAX_REASON]})

    retry: RetryLater | None = None
    reauth: NeedsReauth | None = None
    forbidden: str | None = None
    try:
        if update.fields:
            found, refusal = _sync_fields(client, issue, update.fields, tracker, report, seen)
            if report.sent:
                entries.append({**activity_entry("sentry_updated", SOURCE, *where), "fields": list(report.sent)})
            if refusal is not None:
                failed(refusal)
        if update.link:
            outcome = sync_link(client, installation, issue, update.link)
            if outcome is None:
                report.notes.append("Sentry already shows the issue's links: nothing sent")
            elif outcome == LEFT_SHOWN:
                report.notes.append(
                    "the issue has no link left; Sentry still shows the last one (removing it needs event:admin, "
                    "which the app does not ask for): remove it in Sentry if it should go"
                )
            else:
                report.sent.append(outcome)
                entries.append({**activity_entry("sentry_updated", SOURCE, *where), "fields": [outcome]})
    except Refused as exc:
        failed(str(exc))
    except InstallationUnusable as exc:  # the token expired and could not be refreshed (marked needs_reauth)
        current = store.get(installation.uuid)
        if current is not None and current.active and current.needs_reauth:
            reauth = NeedsReauth(installation.uuid)
        else:
            report.notes.append(f"the Sentry installation cannot be used ({exc}): nothing more sent")
    except SentryUnauthorized:  # refused after one refresh (or an internal token, which has none)
        mark_needs_reauth(store, installation.uuid)
        reauth = NeedsReauth(installation.uuid)
    except SentryForbidden as exc:  # a permission, not the token: recorded, never retried or refreshed
        failed(forbidden_reason(exc, "apply the change"))
        forbidden = report.failed[-1]
    except SentryRejected as exc:
        failed(str(exc))
    except SentryNotFound as exc:
        failed(f"Sentry does not have the issue (or does not let the app see it): {exc}")
    except SentryError as exc:  # throttled, unavailable, timed out, a 5xx, an answer that cannot be read
        retry = RetryLater(str(exc), exc.retry_after)
    except RetryLater as exc:
        retry = exc
    _record(tracker, issue, entries, found, seen)  # what was sent before a failure stays recorded
    for reason in report.failed:  # the status page's recent failures: not retried, so a person has to act
        failures.record_failure(
            "sentry_failed",
            f"{issue.org_id}/{issue.issue_id} → Sentry",
            reason,
            advice=FORBIDDEN_ADVICE if reason == forbidden else None,
            details={"org_id": issue.org_id, "issue_id": issue.issue_id, "installation": installation.uuid},
        )
    if reauth is not None:
        raise reauth
    if retry is not None:
        raise retry
    if installation.needs_reauth:  # the token worked: whatever refused it before has passed
        store.update(installation.uuid, lambda cur: replace(cur, needs_reauth=False) if cur.needs_reauth else None)


def _sync_fields(
    client: SentryClient,
    issue: TrackedIssue,
    fields: tuple[str, ...],
    tracker: TrackerStore,
    report: SentryReport,
    seen: dict[str, str],
) -> tuple[Member | None, str | None]:
    """PUT the fields that differ. Returns the member found in Sentry's members list (if one was looked up), and
    why the assignee was not sent (Sentry has no member with that email), or None."""
    slug = slug_of(issue.org_id)
    assigned_to, found = None, None
    if "assignee" in fields:
        assigned_to, found = _assignee_actor(client, slug, issue, tracker)
    refusal = None
    if "assignee" in fields and assigned_to is None:
        refusal = f"No member of the Sentry organization has the email {issue.assignee_email}; not assigned in Sentry."
        if "status" not in fields:
            return found, refusal
    current = client.get_issue(slug, issue.issue_id)
    status = _status_to_send(issue.status, current.get("status")) if "status" in fields else None
    if assigned_to is not None and assigned_to == shown_assignee(current.get("assignedTo")):
        assigned_to = None
    _put(client, slug, issue.issue_id, status, assigned_to, report)
    # Only what was sent: a field left alone may hold a change of Sentry's the app has not applied yet.
    seen.update({k: v for k, v in (("status", status), ("assignee", assigned_to)) if v is not None})
    return found, refusal


def _put(
    client: SentryClient, slug: str, issue_id: str, status: str | None, assigned_to: str | None, report: SentryReport
) -> None:
    if status is None and assigned_to is None:
        report.notes.append("Sentry already shows the issue's status and assignee: nothing sent")
        return
    client.update_issue(slug, issue_id, status=status, assigned_to=assigned_to)
    report.sent += [name for name, value in (("status", status), ("assignedTo", assigned_to)) if value is not None]


def _status_to_send(status: str, shown: object) -> str | None:
    """What the Sentry issue's status must become, or None: an ignored issue counts as not resolved."""
    if status == RESOLVED:
        return None if shown == "resolved" else "resolved"
    return "unresolved" if shown == "resolved" else None


def _assignee_actor(
    client: SentryClient, slug: str, issue: TrackedIssue, tracker: TrackerStore
) -> tuple[str | None, Member | None]:
    """(`assignedTo` to send, the member found in Sentry's members list); None to send when Sentry has nobody with
    that email. Looked up in Sentry only when no user id is known yet, and then kept as a tracker member."""
    email = issue.assignee_email
    if email is None:
        return "", None
    if issue.assignee_user_id:
        return actor(issue.assignee_user_id), None
    known = tracker.get_member(issue.org_id, email)
    if known is not None and known.user_id:
        return actor(known.user_id), None
    member = client.find_member(slug, email)
    if member is None:
        return None, None
    found = Member(issue.org_id, email, member.user_id, member.name)
    tracker.put_member(found)
    return actor(found.user_id), found


def _record(
    tracker: TrackerStore,
    issue: TrackedIssue,
    entries: list[dict[str, Any]],
    found: Member | None,
    seen: dict[str, str],
) -> None:
    """The outcome on the issue: its activity entries, the assignee's Sentry user id once it is known, and what
    Sentry now shows of the fields sent."""
    if not entries and found is None and not seen:
        return

    def change(current: TrackedIssue) -> TrackedIssue | None:
        new = current
        if found is not None and current.assignee_email == found.email and not current.assignee_user_id:
            new = replace(new, assignee_user_id=found.user_id)
        if seen:  # a field not sent keeps what was seen of it (or stays unknown)
            new = replace(new, sentry_seen={**(current.sentry_seen or {}), **seen})
        return new.with_activity(*entries) if entries else new

    tracker.update_issue(issue.org_id, issue.issue_id, change)


def _check_saved(issue: TrackedIssue, update: SentryUpdate) -> None:
    """Wait (through the queue) for the save this update was queued before."""
    linked = {link.key for link in issue.links}
    for key, field_name, rev in update.after:
        saved = issue.watermarks.get(key, {}).get(STATUS_REV if field_name == "status" else ASSIGNEE_REV)
        if key in linked and (not isinstance(saved, int) or saved < rev):
            raise RetryLater(f"the change from {key} rev {rev} is not saved on the issue yet")


def _source(update: SentryUpdate) -> tuple[int | None, int | None]:
    """(work item id, revision) the change came from, for the activity entry."""
    key = update.after[0][0] if update.after else update.link
    rev = update.after[0][2] if update.after else None
    return (int(key.rpartition("|")[2]), rev) if key else (None, None)


def _noted(update: SentryUpdate, report: SentryReport, note: str) -> SentryReport:
    log.info("sentry update %s/%s: %s", update.org_id, update.issue_id, note)
    report.notes.append(note)
    return report
