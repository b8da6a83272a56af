"""What changed on one work item at one revision, whoever saw it: a delivery (`shared.deliveries`) or
reconciliation reading the work item's current state (`shared.sync.reconcile`). Plain data."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class AssigneeChange:
    unassign: bool  # System.AssignedTo has no newValue: the work item is now unassigned
    email: str | None  # the new assignee's email, lower-cased, when one can be read
    description: str  # short log-safe text saying where the email came from, or why there is none


@dataclass(frozen=True)
class StateChange:
    old: str | None  # None: no oldValue, i.e. a new work item (or an unreadable value)
    new: str | None  # None: no newValue (or an unreadable value)


@dataclass(frozen=True)
class WorkItemUpdate:
    """One revision of a work item as far as the sync rules care: its assignee and its state.

    From a delivery, `assignee` and `state` say what changed in that revision (None: that field did not change).
    A `snapshot` is instead the work item's current state read by reconciliation: `state.old` is unknown (None)
    and `assignee` is who is assigned now, so the rules compare them with what was last seen (§9).
    """

    integration_id: str
    work_item_id: int
    rev: int | None
    work_item_type: str | None
    project_id: str | None
    assignee: AssigneeChange | None  # None: System.AssignedTo did not change in this revision
    state: StateChange | None  # None: System.State did not change in this revision
    changed_date: str | None
    event_id: str | None
    snapshot: bool = False
    # A `workitem.commented` delivery (contract §18): not a field change; the worker reads the work item's
    # comments through the Comments API. `comment_id` is the delivery's `commentVersionRef.commentId`, if any.
    commented: bool = False
    comment_id: int | None = None


OUTBOUND_FIELDS = ("status", "assignee")


@dataclass(frozen=True)
class OutboundChange:
    """A tracked issue changed on the tracker side: bring its linked work items in line (contract §12.2).

    It names the issue, not the new values: the worker reads the issue as it is then, so messages applied late or
    twice still send the newest state. `exclude` lists the links (`<integration>|<id>`) never to write: the work
    item a change came from. `after` holds, per source link and field, the revision the issue must have recorded
    before this may run (a change from Azure DevOps is queued here before it is saved on the issue).
    """

    org_id: str
    issue_id: str
    fields: tuple[str, ...]
    exclude: tuple[str, ...] = ()
    after: tuple[tuple[str, str, int], ...] = ()  # (link key, field, revision)
    only: tuple[str, ...] = ()  # when not empty, just these links (what is left after some failed)
