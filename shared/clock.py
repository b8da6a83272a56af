"""Time, injectable: code reads the clock through a `Clock`, so tests move time instead of sleeping.

`SYSTEM` is the real one. A test passes its own (see `tests/helpers.FakeClock`) where time matters.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Wall-clock seconds since the epoch (for timestamps that are stored or compared with other machines)."""
        ...

    def monotonic(self) -> float:
        """Seconds from an arbitrary start, never going back (for timeouts and budgets)."""
        ...

    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def now(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


SYSTEM: Clock = SystemClock()


class Deadline:
    """When some work must be done, on a monotonic clock: the one deadline mechanism, for a timer's budget of
    Azure DevOps requests (`shared.connections.ado`) and an HTTP path's storage budget (`shared.store.deadline`)."""

    def __init__(self, seconds: float, clock: Callable[[], float] | None = None) -> None:
        self.clock = clock or time.monotonic  # read at construction, so a test's patched clock holds
        self.at = self.clock() + seconds

    def left(self) -> float:
        return self.at - self.clock()

    def cut(self, most: float) -> float:
        """min(most, what is left): a timeout that never outlasts the deadline (0 or less once it passed)."""
        return min(most, self.left())

    def earlier(self, other: Deadline | None) -> Deadline:
        """Whichever of the two ends first."""
        return self if other is None or self.at <= other.at else other


def iso_utc(seconds: float) -> str:
    """`2026-12-01T18:57:17.123Z` for a Unix time."""
    whole = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    return f"{whole}.{int(seconds * 1000) % 1000:03d}Z"
