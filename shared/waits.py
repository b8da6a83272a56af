"""How long to wait before asking a throttled or unavailable service again (429, 503): the one rule both HTTP
clients (Azure DevOps, Sentry) follow inside a single invocation. Pure arithmetic.

A call holds its invocation for at most MAX_ATTEMPTS attempts and MAX_TOTAL_WAIT_SECONDS of waiting; a longer
wait is left to the queue's back-off, which honours the `retry_after` the failure carries.
"""

from __future__ import annotations

import email.utils
import math

MAX_ATTEMPTS = 3
MAX_TOTAL_WAIT_SECONDS = 10.0  # beyond this, answer 503 with Retry-After instead of holding the request
FIRST_BACKOFF_SECONDS = 1.0
MAX_ASKED_SECONDS = 86400.0  # a wait asked for beyond a day is taken as a day


def asked_wait(value: str | None, now: float) -> float | None:
    """Seconds a `Retry-After` value asks for (a number of seconds or an HTTP date), or None when it says none."""
    value = (value or "").strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = email.utils.parsedate_to_datetime(value).timestamp() - now
        except (TypeError, ValueError):
            return None
    return min(max(0.0, seconds), MAX_ASKED_SECONDS) if math.isfinite(seconds) else None  # "inf", "nan": none


def next_wait(attempt: int, asked: float | None, waited: float) -> float | None:
    """The wait before attempt `attempt + 1` (what was asked, else 1 s doubling), or None to give up now."""
    wait = asked if asked is not None else FIRST_BACKOFF_SECONDS * 2 ** (attempt - 1)
    if attempt >= MAX_ATTEMPTS or waited + wait > MAX_TOTAL_WAIT_SECONDS:
        return None
    return wait
