"""The status page's counts of comments synced each way (contract §18), from `shared.store.counters`."""

from __future__ import annotations

from dataclasses import dataclass

from shared.store import counters


@dataclass(frozen=True)
class CountStatus:
    """How many comments were synced one way, since the app's table was made."""

    name: str  # the counter: comments_from_ado, comments_to_sentry, comments_to_ado
    what: str
    value: int


COUNTED = {
    "comments_from_ado": "Azure DevOps comments added to tracked issues",
    "comments_to_sentry": "Azure DevOps comments added to Sentry issues",
    "comments_to_ado": "Tracker and Sentry comments added to work items",
}


def count_rows() -> tuple[CountStatus, ...]:
    counts = counters.read_all()
    return tuple(CountStatus(name, what, counts.get(name, 0)) for name, what in COUNTED.items())
