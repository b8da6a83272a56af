"""`sweep` (every few minutes, contract §16, docs/design.md): wake again the work the app stored but has not
applied or sent past the grace period: a Sentry webhook recorded but not applied, a tracker-side change or
comment not sent to Azure DevOps, a link not announced to Sentry.

Each due row's wake time is first moved a grace period ahead under its ETag (so two runs never wake one row
twice, and a row settled meanwhile is left alone), then its message is queued again. Bounded by the timers'
time budget and a number of rows per run; what is left goes at the next run. Recorded for the status page.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from shared.clock import SYSTEM, Clock
from shared.errors import StorageUnavailable
from shared.jobs.sweep import record_run
from shared.settings import get_settings
from shared.store import pending, queues, timer_runs

log = logging.getLogger(__name__)

NAME = "sweep"
ROWS_PER_RUN = 2_000
BATCH = 200
MIN_WORK_SECONDS = 0.5  # not worth starting a batch with less budget than this left


@dataclass
class PendingSweepReport:
    due: int = 0  # rows found past their wake time
    woken: int = 0  # messages queued again
    failed: int = 0  # rows whose wake-up failed this time (storage or the queue)
    finished: bool = True  # False: stopped by the budget or the bound, due rows are left for the next run
    kinds: dict[str, int] = field(default_factory=dict)  # woken, per kind of work


def sweep_pending(*, clock: Clock = SYSTEM, rows_per_run: int = ROWS_PER_RUN) -> PendingSweepReport:
    """Wake every due pending row, within the timers' budget; the report of what was done."""
    settings = get_settings()
    started, budget, grace = clock.monotonic(), settings.timer_budget_seconds, settings.sweep_grace_seconds
    report = PendingSweepReport()
    record_run(timer_runs.record_start, NAME, now=clock.now())
    error: str | None = None
    seen: set[str] = set()
    try:
        while report.due < rows_per_run:
            if clock.monotonic() - started > budget - MIN_WORK_SECONDS:
                report.finished = False
                break
            found = pending.due(now=clock.now(), limit=min(BATCH, rows_per_run - report.due))
            batch = [row for row in found if row.ref.row_key not in seen]
            if not batch:
                break
            for row in batch:
                seen.add(row.ref.row_key)
                report.due += 1
                _wake(row, clock.now() + grace, report)
        else:
            report.finished = False
    except StorageUnavailable as exc:
        log.warning("sweep: storage failed while finding pending work: %s", exc)
        error, report.finished = str(exc), False
    if report.woken or report.failed:
        log.warning("sweep: woke %d pending piece(s) of work %s, %d failed", report.woken, report.kinds, report.failed)
    record_run(
        timer_runs.record_end,
        NAME,
        now=clock.now(),
        visited=report.due,
        worked=report.woken,
        failed=report.failed,
        finished=report.finished,
        error=error,
    )
    return report


def _wake(row: pending.Pending, wake_at: float, report: PendingSweepReport) -> None:
    if row.queue not in queues.APP_QUEUES:
        log.error(
            "sweep: %s %s names a queue that is not the app's (%r): left alone", row.ref.kind, row.ref.key, row.queue
        )
        report.failed += 1
        return
    try:
        if pending.postpone(row, wake_at=wake_at, woken=True) is None:
            return  # settled, or noted again, since it was read: its own message wakes it
        queues.enqueue(row.message, row.queue)
    except StorageUnavailable as exc:
        log.warning("sweep: %s %s could not be woken this time: %s", row.ref.kind, row.ref.key, exc)
        report.failed += 1
        return
    report.woken += 1
    report.kinds[row.ref.kind] = report.kinds.get(row.ref.kind, 0) + 1
