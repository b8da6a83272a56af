"""Timer triggers: six-field NCRONTAB schedules, in UTC, as the Functions host reads them.

NCRONTAB puts seconds first and ANDs day-of-month with day-of-week; croniter does both only when told
(`second_at_beginning=True, day_or=False`).
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import threading
from collections.abc import Callable, Iterator, Mapping

from croniter import croniter

log = logging.getLogger("devhost")

_SETTING = re.compile(r"%([^%]+)%")


def resolve_setting(value: str, environ: Mapping[str, str]) -> str:
    """`%NAME%` in a binding reads the value from the app setting NAME, as in Azure."""
    match = _SETTING.fullmatch(value.strip())
    if not match:
        return value.strip()
    name = match.group(1)
    if not environ.get(name):
        raise ValueError(f"a trigger names the app setting {name}, which is not set")
    return environ[name].strip()


def resolve_schedule(schedule: str, environ: Mapping[str, str]) -> str:
    """The timer's six-field schedule, after `%NAME%` resolution."""
    schedule = resolve_setting(schedule, environ)
    if len(schedule.split()) != 6 or not croniter.is_valid(schedule, second_at_beginning=True):
        raise ValueError(f"not a six-field NCRONTAB schedule (seconds first): {schedule!r}")
    return schedule


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def occurrences(schedule: str, after: dt.datetime) -> Iterator[dt.datetime]:
    """The schedule's occurrences strictly after `after` (an aware UTC datetime)."""
    it = croniter(schedule, after, second_at_beginning=True, day_or=False)
    while True:
        yield it.get_next(dt.datetime)


class TimerRunner(threading.Thread):
    """Fires one timer function on its schedule until `stop` is set.

    `fire(past_due, schedule_status)` runs the function; a firing that starts more than a second late is
    reported as past due, as the Functions host does.
    """

    def __init__(
        self,
        name: str,
        schedule: str,
        run_on_startup: bool,
        fire: Callable[[bool, dict], None],
        stop: threading.Event,
    ) -> None:
        super().__init__(name=f"timer-{name}", daemon=True)
        self.function_name = name
        self.schedule = schedule
        self.run_on_startup = run_on_startup
        self.fire = fire
        self.stop = stop

    def run(self) -> None:
        last: dt.datetime | None = None
        next_at = next_occurrence(self.schedule, utcnow())
        if self.run_on_startup:
            self.fire(False, _status(None, next_at))
        log.info("Timer %s: schedule %r, next at %s", self.function_name, self.schedule, next_at.isoformat())
        while not self.stop.wait(max(0.0, (next_at - utcnow()).total_seconds())):
            now = utcnow()
            following = next_occurrence(self.schedule, max(now, next_at))
            self.fire((now - next_at).total_seconds() > 1.0, _status(last, following))
            last = next_at
            # Occurrences that passed during a long run are skipped, as the host does.
            now = utcnow()
            next_at = following if following > now else next_occurrence(self.schedule, now)


def next_occurrence(schedule: str, after: dt.datetime) -> dt.datetime:
    return next(occurrences(schedule, after))


def _status(last: dt.datetime | None, next_at: dt.datetime) -> dict:
    return {
        "Last": last.isoformat() if last else None,
        "Next": next_at.isoformat(),
        "LastUpdated": utcnow().isoformat(),
    }
