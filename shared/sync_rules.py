"""The inbound sync rules (contract §5.2-5.3) as plain functions over plain data.

Deliberately unlike Sentry (reference/sentry-behaviour.md §2.3, §2.14): a move between two not-done states
(New -> Active) changes nothing, a new work item changes nothing, and an unknown set of done states is never
guessed here - the caller retries instead of calling these with an empty set it could not read.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from typing import Literal

from shared.delivery import StateChange

__all__ = [
    "DONE_CATEGORIES",
    "done_states_from_categories",
    "is_done",
    "is_newer",
    "status_action",
]

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
