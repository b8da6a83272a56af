"""The inbound sync rules (contract §5.2-5.3, §9) as plain functions over plain data.

Deliberately unlike Sentry (reference/sentry-behaviour.md §2.3, §2.14): a move between two not-done states
(New -> Active) changes nothing, a new work item changes nothing, and an unknown set of done states is never
guessed here - the caller retries instead of calling these with an empty set it could not read.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import replace
from typing import Any, Literal

from shared.model.changes import AssigneeChange, StateChange, WorkItemUpdate
from shared.model.tracker import RESOLVED, UNRESOLVED, Installation, Link, Member, TrackedIssue, activity_entry

__all__ = [
    "DONE_CATEGORIES",
    "decide",
    "done_states_from_categories",
    "is_done",
    "is_newer",
    "status_action",
]

SOURCE = "vsts"
# Watermark keys, per linked work item: the revision that last set each field, and the value last seen there.
ASSIGNEE_REV, STATUS_REV = "assignee", "status"
ASSIGNEE_SEEN, STATE_SEEN = "assignee_seen", "state"
UNASSIGNED = ""  # what ASSIGNEE_SEEN holds for a work item seen without an assignee

# Azure DevOps' state categories are Proposed, InProgress, Resolved, Completed and Removed; "Removed" is not done.
DONE_CATEGORIES = frozenset({"resolved", "completed"})


def _key(name: str) -> str:
    return name.strip().casefold()


def _names(values: Collection[str] | str) -> Iterable[str]:
    # A bare string is one state name, not a collection of one-letter names.
    return (values,) if isinstance(values, str) else values


def is_done(state: str, done_states: Collection[str]) -> bool:
    """Whether `state` is one of `done_states`, ignoring case (and surrounding blanks)."""
    if not isinstance(state, str) or not state.strip():
        return False
    wanted = _key(state)
    return any(isinstance(done, str) and _key(done) == wanted for done in _names(done_states))


def status_action(change: StateChange, done_states: Collection[str]) -> Literal["resolve", "unresolve"] | None:
    """What a state change does to the linked issues: resolve on entering a done state, unresolve on leaving one.

    A new work item (no old state), a change without a new state, done -> done (Resolved -> Closed) and
    not-done -> not-done (New -> Active) all change nothing.
    """
    old, new = change.old, change.new
    if not isinstance(old, str) or not old.strip() or not isinstance(new, str) or not new.strip():
        return None
    was_done, now_done = is_done(old, done_states), is_done(new, done_states)
    if now_done and not was_done:
        return "resolve"
    if was_done and not now_done:
        return "unresolve"
    return None


def done_states_from_categories(
    states: Iterable[Mapping[str, object]], resolve_states: Collection[str] = ()
) -> frozenset[str]:
    """The done state names of a work item type: those whose category is Resolved or Completed in Azure DevOps'
    `workitemtypes/{type}/states` "value" list, plus the installation's own `resolve_states`.

    Malformed entries are skipped, so one odd entry does not hide the others.
    """
    done: set[str] = set()
    for entry in states:
        if not isinstance(entry, Mapping):
            continue
        name, category = entry.get("name"), entry.get("category")
        if isinstance(name, str) and name.strip() and isinstance(category, str) and _key(category) in DONE_CATEGORIES:
            done.add(name)
    done.update(name for name in _names(resolve_states) if isinstance(name, str) and name.strip())
    return frozenset(done)


def is_newer(rev: int | None, watermark: int | None) -> bool:
    """Whether an update at revision `rev` may set a field last set at revision `watermark` (strictly newer).

    Without a revision the update cannot be ordered, so it never wins; without a watermark nothing set it yet.
    """
    if not isinstance(rev, int) or isinstance(rev, bool):
        return False
    if watermark is None:
        return True
    return rev > watermark


def decide(
    issue: TrackedIssue,
    update: WorkItemUpdate,
    installation: Installation,
    done_states: frozenset[str] | None,
    member: Member | None,
    notes: list[str],
) -> tuple[TrackedIssue | None, list[dict[str, Any]]]:
    """The issue after `update` (None when nothing changes) and the activity entries it adds.

    Each field changes only for a revision newer than the one that last set it (§5.3). A snapshot (the work
    item's current state, read by reconciliation) changes a field only when its value differs from the one last
    seen on that work item (§9), so an unrelated edit never re-imposes an old value over a person's later change.
    `notes` says why something was not applied.
    """
    link = Link(update.integration_id, update.work_item_id)
    if link not in issue.links:
        return None, []  # a stale index entry: the issue no longer links this work item
    marks = dict(issue.watermarks.get(link.key, {}))
    entries: list[dict[str, Any]] = []
    new = issue
    where = f"{issue.org_id}/{issue.issue_id}"
    if update.assignee is not None and installation.sync_reverse_assignment:
        if is_newer(update.rev, marks.get(ASSIGNEE_REV)):
            marks[ASSIGNEE_REV] = update.rev
            new = _assignee(new, update, update.assignee, member, marks, entries, notes, where)
        else:
            notes.append(f"{where}: assignee of rev {update.rev} is stale")
    if update.state is not None and installation.sync_status_reverse and done_states is not None:
        if is_newer(update.rev, marks.get(STATUS_REV)):
            marks[STATUS_REV] = update.rev
            new = _status(new, update, update.state, done_states, marks, entries)
        else:
            notes.append(f"{where}: state of rev {update.rev} is stale")
    if marks == issue.watermarks.get(link.key, {}) and not entries:
        return None, []
    return replace(new, watermarks={**issue.watermarks, link.key: marks}).with_activity(*entries), entries


def _assignee(
    issue: TrackedIssue,
    update: WorkItemUpdate,
    change: AssigneeChange,
    member: Member | None,
    marks: dict[str, Any],
    entries: list[dict[str, Any]],
    notes: list[str],
    where: str,
) -> TrackedIssue:
    seen = UNASSIGNED if change.unassign else change.email
    last_seen = marks.get(ASSIGNEE_SEEN)
    if seen is not None:
        marks[ASSIGNEE_SEEN] = seen
    if update.snapshot:
        if seen is None or seen == last_seen:
            return issue  # Azure DevOps still shows what was last seen there (or nothing readable): keep
        if last_seen is None and (change.unassign or issue.assignee_email is not None):
            # Never seen on this work item: nothing says the issue's assignee came from it, so only an
            # unassigned issue takes the work item's assignee.
            return issue
    if change.unassign:
        if issue.assignee_email is None:
            return issue
        entries.append(activity_entry("unassigned", SOURCE, update.work_item_id, update.rev))
        return replace(issue, assignee_email=None, assignee_user_id=None)
    if member is not None:
        if issue.assignee_email == member.email:
            return issue
        entries.append(activity_entry("assigned", SOURCE, update.work_item_id, update.rev))
        return replace(issue, assignee_email=member.email, assignee_user_id=member.user_id)
    if change.email is None:
        notes.append(f"{where}: assignee unchanged, {change.description}")
    else:
        notes.append(f"{where}: assignee unchanged, no member has that email")
    return issue


def _status(
    issue: TrackedIssue,
    update: WorkItemUpdate,
    change: StateChange,
    done_states: frozenset[str],
    marks: dict[str, Any],
    entries: list[dict[str, Any]],
) -> TrackedIssue:
    if update.snapshot:
        action = _snapshot_action(change.new, marks.get(STATE_SEEN), issue.status, done_states)
    else:
        action = status_action(change, done_states)
    if isinstance(change.new, str):
        marks[STATE_SEEN] = change.new  # the last state seen, so a reconciliation knows where it came from
    if action == "resolve" and issue.status != RESOLVED:
        entries.append(activity_entry("resolved", SOURCE, update.work_item_id, update.rev))
        return replace(issue, status=RESOLVED)
    if action == "unresolve" and issue.status != UNRESOLVED:
        entries.append(activity_entry("unresolved", SOURCE, update.work_item_id, update.rev))
        return replace(issue, status=UNRESOLVED)
    return issue


def _snapshot_action(
    current: str | None, last_seen: str | None, status: str, done_states: frozenset[str]
) -> Literal["resolve", "unresolve"] | None:
    """What a work item's current state does, given the last state seen for it.

    Never seen: a done work item resolves, but a not-done one never unresolves, since the issue may have
    been resolved by a person or by another work item it links (nothing says this one ever was done).
    """
    if current is None:
        return None
    if last_seen is not None:
        return status_action(StateChange(last_seen, current), done_states)
    return "resolve" if is_done(current, done_states) and status != RESOLVED else None
