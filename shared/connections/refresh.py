"""Refreshing a stored credential once for all instances: the loop the Azure DevOps OAuth refresh and the
Sentry token refresh share.

Threads of one instance queue on a lock per record; instances queue on a claim written into the record under
its ETag (`refresh_lock_until`), so a concurrent instance sees the claim, waits, and uses the winner's
credential instead of spending a (single-use) refresh token a second time.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from dataclasses import replace
from typing import Protocol, TypeVar

from shared.caching import PerKey
from shared.clock import Clock

REFRESH_CLAIM_SECONDS = 30  # how long a refresher's claim holds other instances off
REFRESH_WAIT_SECONDS = 20  # how long an instance waits for another's refresh before giving up
POLL_SECONDS = 0.1

_local_locks: PerKey[threading.Lock] = PerKey()


class Claimable(Protocol):
    refresh_lock_until: float | None


R = TypeVar("R", bound=Claimable)


def refresh_once(
    key: Hashable,
    *,
    read: Callable[[], R],
    due: Callable[[R, float], bool],
    replace_if_unchanged: Callable[[R, R], R | None],
    refresh_claimed: Callable[[R], R],
    busy: Callable[[], Exception],
    now: Callable[[], float],
    clock: Clock,
) -> R:
    """The record with a credential that is not `due`: refreshed here (`refresh_claimed`, once this instance
    holds the claim), or by whoever got there first. `read` raises when there is no record to refresh, `due`
    when one is due and cannot be refreshed; `busy()` is raised when another instance's claim outlasts the wait."""
    with _local_locks.get(key, threading.Lock):
        deadline = clock.monotonic() + REFRESH_WAIT_SECONDS
        while True:
            current = read()
            at = now()
            if not due(current, at):
                return current  # refreshed meanwhile, here or by another instance
            if (current.refresh_lock_until or 0) <= at:
                claimed = replace_if_unchanged(current, replace(current, refresh_lock_until=at + REFRESH_CLAIM_SECONDS))
                if claimed is not None:
                    return refresh_claimed(claimed)
            if clock.monotonic() > deadline:
                raise busy()
            clock.sleep(POLL_SECONDS)
