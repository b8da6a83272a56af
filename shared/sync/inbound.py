"""Apply a work item update to the tracked issues linked to it (contract §5.2-5.3).

For every organization that installed the integration, for every issue of it linked to the work item:
the assignee (when `sync_reverse_assignment`) and the status (when `sync_status_reverse`) follow the work
item through the rules of `shared.sync.rules`. A disabled integration applies nothing. When the done states
cannot be read, the update is retried later (`RetryLater`), never guessed.

Storage round trips for an assignment to one linked issue: installations (query), links (query),
member (point read), issue (point read + conditional write): five, plus a point read of the integration when
this process has not read it in the last few seconds (the webhook that queued the update usually has).

On a Sentry organization's issue (`sentry-<slug>`, contract §13.2) the applied change is also queued for Sentry
(`vsts-sentry-updates`), and an assignee whose email is no member yet is applied all the same: the members are
Sentry's, found by email when the change reaches Sentry.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from shared.deliveries.outbound import to_outbound_message
from shared.deliveries.sentry_messages import to_update_message
from shared.errors import ConcurrentUpdate, RetryLater, StorageUnavailable
from shared.model.changes import OutboundChange, WorkItemUpdate
from shared.model.sentry import SentryUpdate, is_sentry_org
from shared.model.tracker import Installation, Link, Member, TrackedIssue
from shared.store import queues
from shared.store.integrations import IntegrationStore
from shared.store.tracker import TrackerStore
from shared.sync.done_states import DoneStates
from shared.sync.rules import decide

log = logging.getLogger(__name__)

# How stale this process's view of the integration may be here: a disable made on another instance stops the
# updates it has not applied yet within this many seconds (the webhook refuses new deliveries as fast).
RECENT_SECONDS = 5.0
# Which outbound field each applied change is, and how long a forwarded change waits for the save it follows.
FORWARDED = {"assigned": "assignee", "unassigned": "assignee", "resolved": "status", "unresolved": "status"}
FORWARD_DELAY_SECONDS = 1


@dataclass
class ApplyReport:
    linked: int = 0
    changes: list[tuple[str, str, str]] = field(default_factory=list)  # (org, issue, activity type)
    notes: list[str] = field(default_factory=list)


def _apply_to_issue(
    tracker: TrackerStore,
    org: str,
    issue_id: str,
    update: WorkItemUpdate,
    installation: Installation,
    done: frozenset[str] | None,
    member: Member | None,
    notes: list[str],
) -> list[dict]:
    """Apply the update to one issue under its ETag; the activity entries written."""
    applied: list[dict] = []

    def change(issue: TrackedIssue) -> TrackedIssue | None:
        new, entries = decide(issue, update, installation, done, member, notes)
        applied[:] = entries  # a lost ETag race re-applies: the last attempt's entries are the ones written
        if new is not None and entries:
            _forward_to_other_links(new, update, entries)
            _queue_for_sentry(new, update, entries)
        return new

    return applied if tracker.update_issue(org, issue_id, change) is not None else []


def _forward_to_other_links(issue: TrackedIssue, update: WorkItemUpdate, entries: list[dict]) -> None:
    """A change that came from one work item goes to the issue's other linked work items, never back (§12.2).

    Queued before the issue is saved, with the revision the save must record (`after`), so it can neither be
    lost between the save and the queueing nor run ahead of the save: the worker waits for that revision. A lost
    ETag race queues it again: harmless, the worker reads the issue as it is then.
    """
    source = Link(update.integration_id, update.work_item_id).key
    if update.rev is None or not any(link.key != source for link in issue.links):
        return
    fields = _fields(entries)
    if fields:
        change = OutboundChange(
            issue.org_id,
            issue.issue_id,
            fields,
            exclude=(source,),
            after=tuple((source, name, update.rev) for name in fields),
        )
        queues.enqueue(to_outbound_message(change), queues.OUTBOUND_QUEUE_NAME, delay_seconds=FORWARD_DELAY_SECONDS)


def _queue_for_sentry(issue: TrackedIssue, update: WorkItemUpdate, entries: list[dict]) -> None:
    """A change to a Sentry organization's issue goes to the Sentry issue too (§13.2), queued as the forward above
    is: before the save, with the revision the save must record (`after`), so it is neither lost nor run early."""
    fields = _fields(entries)
    if not is_sentry_org(issue.org_id) or update.rev is None or not fields:
        return
    source = Link(update.integration_id, update.work_item_id).key
    after = tuple((source, name, update.rev) for name in fields)
    change = SentryUpdate(issue.org_id, issue.issue_id, fields, after=after)
    queues.enqueue(to_update_message(change), queues.SENTRY_UPDATES_QUEUE_NAME, delay_seconds=FORWARD_DELAY_SECONDS)


def _fields(entries: list[dict]) -> tuple[str, ...]:
    """The fields (status, assignee) that applied activity entries changed."""
    return tuple(dict.fromkeys(FORWARDED[entry["type"]] for entry in entries if entry["type"] in FORWARDED))


def apply_workitem_update(
    update: WorkItemUpdate,
    *,
    tracker: TrackerStore | None = None,
    integrations: IntegrationStore | None = None,
    done_states: DoneStates | None = None,
) -> ApplyReport:
    """Apply one update (or a snapshot: a work item's current state) to every linked tracked issue.
    Raises RetryLater for failures that may pass."""
    tracker = tracker or TrackerStore()
    integrations = integrations or IntegrationStore()
    report = ApplyReport()
    if update.commented:  # a comment, not a field change (§18): read through the Comments API
        from shared.sync.from_ado_comments import sync_work_item_comments

        found = sync_work_item_comments(
            update.integration_id, update.work_item_id, project=update.project_id, tracker=tracker,
            integrations=integrations,
        )  # fmt: skip
        report.notes += found.notes
        report.changes += [("", comment_id, "comment") for comment_id in found.added]
        return report
    try:
        installations = {i.org_id: i for i in tracker.installations_of(update.integration_id)}
        if not installations:
            report.notes.append("no organization installed this integration")
            return report
        linked = [
            (org, issue)
            for org, issue in tracker.linked_issues(Link(update.integration_id, update.work_item_id))
            if org in installations
        ]
        report.linked = len(linked)
        if not linked:
            report.notes.append("no tracked issue of an installing organization links this work item")
            return report
        if update.rev is None:
            report.notes.append("the delivery has no revision, so it cannot be ordered: ignored")
            return report
        integration = integrations.recently_read(update.integration_id, RECENT_SECONDS) or integrations.get(
            update.integration_id
        )
        if integration is None or not integration.active:
            report.notes.append("the integration is disabled or gone: nothing applied")
            return _logged(update, report)
        done: frozenset[str] | None = None
        if update.state is not None and any(installations[org].sync_status_reverse for org, _ in linked):
            done = (done_states or DoneStates(integrations)).for_update(update, integration)
        for org, issue_id in linked:
            installation = installations[org]
            member = None
            assignee = update.assignee
            if assignee and installation.sync_reverse_assignment and not assignee.unassign and assignee.email:
                member = tracker.get_member(org, assignee.email)
                if member is None and is_sentry_org(org):
                    member = Member(org, assignee.email, "")  # no Sentry user id yet: found by email on the way out
            org_done = done | frozenset(installation.resolve_states) if done is not None else None

            entries = _apply_to_issue(tracker, org, issue_id, update, installation, org_done, member, report.notes)
            report.changes += [(org, issue_id, entry["type"]) for entry in entries]
    except (StorageUnavailable, ConcurrentUpdate) as exc:  # both may pass: the queue tries again later
        raise RetryLater(str(exc)) from exc
    return _logged(update, report)


def _logged(update: WorkItemUpdate, report: ApplyReport) -> ApplyReport:
    for note in dict.fromkeys(report.notes):
        log.info("work item %s rev %s: %s", update.work_item_id, update.rev, note)
    return report
