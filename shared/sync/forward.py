"""The outbound rules (contract §12.1-12.2) as plain functions over plain data: which state a resolve or an
unresolve moves a work item to, and the one JSON Patch that brings a work item in line with its tracked issue.

Deliberately unlike Sentry (reference/sentry-outbound-and-apps.md §1): states come from the work item's own type
and their categories (never the Bug type's), a work item already on the right side of the done boundary is left
alone (so "Closed" never becomes "Resolved"), and only fields that differ are sent, guarded by a `test` of the
revision that was read.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from shared.model.tracker import RESOLVED, StateRule, TrackedIssue
from shared.sync.rules import is_done

STATE = "System.State"
ASSIGNED_TO = "System.AssignedTo"
# The category a move prefers, and its fallback (Azure DevOps: Proposed, InProgress, Resolved, Completed, Removed).
RESOLVE_CATEGORIES = ("Resolved", "Completed")
UNRESOLVE_CATEGORIES = ("InProgress", "Proposed")


@dataclass(frozen=True)
class WorkItemView:
    """What the outbound rules need of a work item as Azure DevOps answered it."""

    rev: int
    state: str | None
    assignee_email: str | None  # None: unassigned, or an assignee without a readable email
    assigned: bool  # whether System.AssignedTo holds anyone
    work_item_type: str
    project: str


def target_state(
    status: str,
    item: WorkItemView,
    states: Sequence[tuple[str, str]],
    done_states: Collection[str],
    rules: Sequence[StateRule],
) -> str | None:
    """The state a tracked issue's `status` moves the work item to, or None to leave it as it is.

    Resolve: nothing when the work item is already done; else the first matching rule's `resolved`, else the
    type's first state of category Resolved, else Completed. Unresolve likewise, mirrored (InProgress, Proposed).
    """
    resolving = status == RESOLVED
    if item.state is None or is_done(item.state, done_states) == resolving:
        return None
    for rule in rules:
        wanted = rule.resolved if resolving else rule.unresolved
        if wanted and rule.matches((item.project,), item.work_item_type):
            return wanted
    for category in RESOLVE_CATEGORIES if resolving else UNRESOLVE_CATEGORIES:
        for name, state_category in states:
            if state_category.casefold() == category.casefold():
                return name
    return None


def patch_for(
    issue: TrackedIssue,
    item: WorkItemView,
    fields: Collection[str],
    target: str | None,
) -> list[dict[str, Any]]:
    """The JSON Patch for `fields` ("status", "assignee") that differ; empty when nothing differs. It starts with a
    `test` of the revision read, so a change made meanwhile in Azure DevOps fails it instead of being overwritten."""
    operations: list[dict[str, Any]] = []
    if "status" in fields and target is not None and target != item.state:
        operations.append({"op": "add", "path": f"/fields/{STATE}", "value": target})
    if "assignee" in fields:
        if issue.assignee_email is None:
            if item.assigned:
                operations.append({"op": "remove", "path": f"/fields/{ASSIGNED_TO}"})
        elif issue.assignee_email != item.assignee_email:
            operations.append({"op": "add", "path": f"/fields/{ASSIGNED_TO}", "value": issue.assignee_email})
    if not operations:
        return []
    return [{"op": "test", "path": "/rev", "value": item.rev}, *operations]


def changed_fields(operations: Sequence[dict[str, Any]]) -> list[str]:
    """The reference names a patch changes, for the activity entry."""
    return [op["path"].removeprefix("/fields/") for op in operations if op["path"].startswith("/fields/")]
