"""`cleanup` (daily): remove rows past their own expiry (`shared.store.expiry`), table by table, within the
timers' time budget and a bound on rows per run; what is left goes at the next run. Recorded for the status page
like the other timers."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from shared.clock import SYSTEM, Clock
from shared.errors import StorageUnavailable
from shared.jobs.sweep import record_run
from shared.settings import get_settings
from shared.store import timer_runs
from shared.store.expiry import EXPIRING_TABLES, purge_expired

log = logging.getLogger(__name__)

NAME = "cleanup"
ROWS_PER_RUN = 20_000  # per table: a day's webhooks of a busy Sentry organization, with room to spare
BATCH = 500


@dataclass
class CleanupReport:
    deleted: dict[str, int] = field(default_factory=dict)
    failed: list[str] = field(default_factory=list)  # tables that could not be cleaned this time
    finished: bool = True  # False: stopped by the budget or the bound, rows are left for the next run


def run_cleanup(*, clock: Clock = SYSTEM, rows_per_run: int = ROWS_PER_RUN) -> CleanupReport:
    started = clock.monotonic()
    budget = get_settings().timer_budget_seconds
    report = CleanupReport()
    record_run(timer_runs.record_start, NAME, now=clock.now())
    for table in EXPIRING_TABLES:
        deleted = 0
        try:
            while deleted < rows_per_run:
                if clock.monotonic() - started > budget:
                    report.finished = False
                    break
                batch = purge_expired(table, now=clock.now(), limit=min(BATCH, rows_per_run - deleted))
                deleted += batch
                if batch == 0:
                    break
            else:
                report.finished = False  # the bound was reached: more may be left
        except StorageUnavailable as exc:
            log.warning("cleanup: %s could not be cleaned this time: %s", table, exc)
            report.failed.append(table)
        report.deleted[table] = deleted
    log.info("cleanup: deleted %s expired rows, failed %s", report.deleted, report.failed or "none")
    record_run(
        timer_runs.record_end,
        NAME,
        now=clock.now(),
        visited=len(EXPIRING_TABLES),
        worked=sum(report.deleted.values()),
        failed=len(report.failed),
        finished=report.finished,
    )
    return report
