"""Timer triggers: NCRONTAB semantics (seconds first, UTC, day AND weekday), %SETTING%, and firing."""

import datetime as dt
import itertools
import threading
import time

import pytest

from devhost.timers import TimerRunner, occurrences, resolve_schedule
from tests.helpers import wait_for

UTC = dt.UTC


def _next(schedule: str, start: dt.datetime, n: int) -> list[dt.datetime]:
    return list(itertools.islice(occurrences(schedule, start), n))


def test_six_fields_are_seconds_first() -> None:
    start = dt.datetime(2026, 1, 1, 9, 0, 0, tzinfo=UTC)
    assert _next("0 */5 * * * *", start, 3) == [
        dt.datetime(2026, 1, 1, 9, 5, tzinfo=UTC),
        dt.datetime(2026, 1, 1, 9, 10, tzinfo=UTC),
        dt.datetime(2026, 1, 1, 9, 15, tzinfo=UTC),
    ]
    assert _next("*/20 * * * * *", start, 2) == [
        dt.datetime(2026, 1, 1, 9, 0, 20, tzinfo=UTC),
        dt.datetime(2026, 1, 1, 9, 0, 40, tzinfo=UTC),
    ]


def test_day_of_month_and_day_of_week_are_anded_as_in_ncrontab() -> None:
    start = dt.datetime(2026, 1, 1, tzinfo=UTC)
    fridays_13th = _next("0 0 0 13 * Fri", start, 3)
    assert [d.date() for d in fridays_13th] == [dt.date(2026, 2, 13), dt.date(2026, 3, 13), dt.date(2026, 11, 13)]


def test_the_contract_default_schedules() -> None:
    start = dt.datetime(2026, 1, 1, 0, 10, tzinfo=UTC)
    assert _next("0 0 */6 * * *", start, 2) == [
        dt.datetime(2026, 1, 1, 6, tzinfo=UTC),
        dt.datetime(2026, 1, 1, 12, tzinfo=UTC),
    ]
    assert _next("0 30 * * * *", start, 1) == [dt.datetime(2026, 1, 1, 0, 30, tzinfo=UTC)]


def test_schedules_come_from_app_settings() -> None:
    assert resolve_schedule("%S%", {"S": " 0 0 * * * * "}) == "0 0 * * * *"
    assert resolve_schedule("0 0 * * * *", {}) == "0 0 * * * *"
    with pytest.raises(ValueError, match="MISSING"):
        resolve_schedule("%MISSING%", {})
    with pytest.raises(ValueError, match="six-field"):
        resolve_schedule("0 * * * *", {})


def test_a_timer_fires_on_its_schedule() -> None:
    fired: list[tuple[float, bool, dict]] = []
    stop = threading.Event()
    runner = TimerRunner(
        "t", "* * * * * *", False, lambda past_due, status: fired.append((time.time(), past_due, status)), stop
    )  # every second
    runner.start()
    wait_for(lambda: len(fired) >= 2, 10, "two firings")
    stop.set()
    runner.join(5)
    assert not runner.is_alive()
    # Each firing reports the next occurrence, a whole second after its own.
    for at, past_due, status in fired:
        next_at = dt.datetime.fromisoformat(status["Next"])
        assert next_at.microsecond == 0 and next_at.timestamp() > at - 1
        assert past_due is False
    assert fired[0][2]["Last"] is None
    assert fired[1][2]["Last"] is not None


def test_run_on_startup_fires_at_once() -> None:
    fired: list[dict] = []
    stop = threading.Event()
    # The next real occurrence is on New Year's Day: only run_on_startup can fire it now.
    runner = TimerRunner("t", "0 0 0 1 1 *", True, lambda past_due, status: fired.append(status), stop)
    runner.start()
    wait_for(lambda: fired, 10, "the start-up firing")
    stop.set()
    runner.join(5)
    assert len(fired) == 1 and fired[0]["Last"] is None
