"""Time, injectable: code reads the clock through a `Clock`, so tests move time instead of sleeping.

`SYSTEM` is the real one. A test passes its own (see `tests/helpers.FakeClock`) where time matters.
"""

from __future__ import annotations

import time
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


def iso_utc(seconds: float) -> str:
    """`2026-12-01T18:57:17.123Z` for a Unix time."""
    whole = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    return f"{whole}.{int(seconds * 1000) % 1000:03d}Z"
