"""The queue's back-off for failures that may pass (contract §5.2): pure arithmetic, attempt -> delay.

After the n-th failed attempt a message waits `min(base * 2**(n-1), max)` seconds, or longer when the other
side asked for longer (`Retry-After`). A message gets as many retries as it takes for those scheduled delays to
add up to `window` seconds; Retry-After only lengthens them, so a message always survives at least `window`
seconds of continuous trouble. The defaults (10 s, 600 s, 3600 s) give 11 retries: 10, 20, 40, 80, 160, 320,
then 600 five times, 3630 s in all before the 12th failure sends the message to the poison queue.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

# Azure refuses a visibility timeout of 7 days or more (and a message expires after 7 days): a Retry-After
# beyond a day is taken as a day.
MAX_RETRY_AFTER_SECONDS = 86400


@dataclass(frozen=True)
class RetryPolicy:
    base_seconds: float = 10.0
    max_seconds: float = 600.0
    window_seconds: float = 3600.0

    def scheduled_delay(self, failures: int) -> float:
        """The delay after the `failures`-th failed attempt, before Retry-After is considered."""
        cap = max(self.max_seconds, self.base_seconds)
        exponent = min(max(failures, 1) - 1, 60)  # 2**60 times any base is past every cap
        return min(cap, self.base_seconds * 2**exponent)

    @cached_property
    def retries(self) -> int:
        """How many times a message is put back before it gives up."""
        total, count = 0.0, 0
        while total < self.window_seconds:
            count += 1
            total += self.scheduled_delay(count)
        return count

    @property
    def survival_seconds(self) -> float:
        """The scheduled delay a message accumulates before it gives up: at least `window_seconds`."""
        return sum(self.scheduled_delay(n) for n in range(1, self.retries + 1))

    def delay(self, failures: int, retry_after: float | None = None) -> int | None:
        """Whole seconds to wait after the `failures`-th failed attempt, or None when the budget is spent."""
        if failures > self.retries:
            return None
        asked = min(retry_after, MAX_RETRY_AFTER_SECONDS) if retry_after and retry_after > 0 else 0.0
        return max(1, math.ceil(max(self.scheduled_delay(failures), asked)))
