"""Status and assignee changes of a tracked issue, whoever makes them (an admin: `api`; Sentry: `sentry`), and
their queueing (noted pending, then woken) for the linked work items (contract §12.2)."""

from __future__ import annotations

from dataclasses import replace

from shared.deliveries.outbound import to_outbound_message
from shared.errors import NotQueued, StorageUnavailable
from shared.model.changes import OutboundChange
from shared.model.tracker import RESOLVED, UNRESOLVED, Member, TrackedIssue, activity_entry
from shared.store import queues
from shared.store.pending import PendingRef
from shared.sync import wakeups


def with_status_and_assignee(
    issue: TrackedIssue, status: str | None, assign: bool, member: Member | None, source: str
) -> TrackedIssue:
    """The issue with `status` (None: as it is) and, when `assign`, assigned to `member` (None: unassigned); an
    activity entry from `source` for each that changed. Unchanged, it equals `issue`."""
    entries = []
    if status is not None and status != issue.status:
        issue = replace(issue, status=status)
        entries.append(activity_entry(RESOLVED if status == RESOLVED else UNRESOLVED, source, None, None))
    if assign:
        email = member.email if member else None
        if email != issue.assignee_email:
            issue = replace(issue, assignee_email=email, assignee_user_id=member.user_id if member else None)
            entries.append(activity_entry("assigned" if member else "unassigned", source, None, None))
    return issue.with_activity(*entries)


def forward_change(issue: TrackedIssue, fields: tuple[str, ...]) -> None:
    """Note a tracker-side change of `fields` as pending for the linked work items (§12.2, docs/design.md) and
    wake the worker, which reads the issue as it is then and checks each installation. NotQueued when even the
    pending row could not be stored (a queue that did not take the wake-up leaves it to the sweeper)."""
    if fields and issue.links:
        change = OutboundChange(issue.org_id, issue.issue_id, fields)
        ref = wakeups.outbound_ref(change)
        assert ref is not None  # a change with no source to exclude always has its row
        accept_after_save(ref, to_outbound_message(change), queues.OUTBOUND_QUEUE_NAME)


def accept_after_save(ref: PendingRef, message: str, queue: str) -> None:
    """Note what a request saved as pending and wake its worker: NotQueued (503: "saved but not yet queued", send
    it again) when storage did not take the pending row."""
    try:
        wakeups.accept(ref, queue, message)
    except StorageUnavailable as exc:
        raise NotQueued(str(exc)) from exc
