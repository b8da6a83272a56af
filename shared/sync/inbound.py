"""Apply a work item update to the tracked issues linked to it (contract §5.2-5.3).

For every organization that installed the integration, for every issue of it linked to the work item:
the assignee (when `sync_reverse_assignment`) and the status (when `sync_status_reverse`) follow the work
item through the rules of `shared.sync.rules`. A disabled integration applies nothing. When the done states
cannot be read, the update is retried later (`RetryLater`), never guessed.

Storage round trips for an assignment to one linked issue: installations (query), links (query),
member (point read), issue (point read + conditional write): five, plus a point read of the integration when
this process has not read it in the last few seconds (the webhook that queued the update usually has).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from shared.errors import RetryLater, StorageUnavailable
from shared.model.changes import WorkItemUpdate
from shared.model.tracker import Installation, Link, Member, TrackedIssue
from shared.store.integrations import IntegrationStore
from shared.store.tracker import TrackerStore
from shared.sync.done_states import DoneStates
from shared.sync.rules import decide

log = logging.getLogger(__name__)

# How stale this process's view of the integration may be here: a disable made on another instance stops the
# updates it has not applied yet within this many seconds (the webhook refuses new deliveries as fast).
RECENT_SECONDS = 5.0


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
        return new

    return applied if tracker.update_issue(org, issue_id, change) is not None else []


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
            org_done = done | frozenset(installation.resolve_states) if done is not None else None

            entries = _apply_to_issue(tracker, org, issue_id, update, installation, org_done, member, report.notes)
            report.changes += [(org, issue_id, entry["type"]) for entry in entries]
    except StorageUnavailable as exc:
        raise RetryLater(str(exc)) from exc
    return _logged(update, report)


def _logged(update: WorkItemUpdate, report: ApplyReport) -> ApplyReport:
    for note in dict.fromkeys(report.notes):
        log.info("work item %s rev %s: %s", update.work_item_id, update.rev, note)
    return report
