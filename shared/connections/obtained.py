"""Saving what cannot be obtained twice (issue 18, finding 3): a refreshed token pair whose refresh token is
single use, or the tokens a grant code was exchanged for. Once obtained, the save is tried again (a few times,
with short waits, each failure logged as an error) before giving up, and the save itself is repeatable: each
attempt re-reads and writes the same result, so one that succeeded unseen is not undone by the next.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

from shared.clock import SYSTEM, Clock
from shared.errors import StorageUnavailable

log = logging.getLogger(__name__)

T = TypeVar("T")

SAVE_ATTEMPTS = 4
FIRST_WAIT_SECONDS = 0.5  # then doubled: 0.5 + 1 + 2 s of waiting in all, on top of each attempt's own time


def save_obtained(save: Callable[[], T], what: str, *, clock: Clock = SYSTEM, attempts: int = SAVE_ATTEMPTS) -> T:
    """`save()`, tried again on StorageUnavailable up to `attempts` times in all; the last failure propagates,
    logged as critical: `what` (which must never hold a secret) is then lost and must be obtained anew."""
    wait = FIRST_WAIT_SECONDS
    for attempt in range(1, attempts + 1):
        try:
            return save()
        except StorageUnavailable as exc:
            if attempt == attempts:
                log.critical("%s could not be saved after %d attempts and is lost: %s", what, attempts, exc)
                raise
            log.error(
                "%s was obtained but not saved (attempt %d of %d): %s; trying again", what, attempt, attempts, exc
            )
            clock.sleep(wait)
            wait *= 2
    raise AssertionError("unreachable")
