"""Visiting every active integration from a timer: the shape `domain_check`, `subscription_check` and
`reconcile` share (contract §8-9).

Active integrations are visited page by page in id order, at most `concurrency` at once; one integration's
failure is counted and logged and never stops the others; no new work starts once the time budget is
spent, and each piece of work gets a timeout cut to the budget that is left, so a run ends within its
budget. A cursor (the last id visited, in the `state` table) lets the next run resume where this one
stopped; a run that reaches the end clears it, so the next run starts over.

The cursor is saved as the run goes (before each page, and at least every SAVE_EVERY_SECONDS), so a run the
host stops (functionTimeout) does not start over. Work finishes out of order, so what is saved is the last
id before the first unfinished one: a stopped run may repeat a few integrations, never skip one.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from shared.ado.client import AdoError
from shared.clock import SYSTEM, Clock
from shared.errors import RetryLater, StorageUnavailable
from shared.settings import Settings, get_settings
from shared.store import timer_runs
from shared.store.cursors import CursorStore
from shared.store.integrations import IntegrationNotFound, IntegrationStore, IntegrationSummary

log = logging.getLogger(__name__)

PAGE_SIZE = 200
MIN_WORK_SECONDS = 0.5  # not worth starting work with less budget than this left
SAVE_EVERY_SECONDS = 10.0  # within a page, how often the cursor is saved (a write to storage)
# What may fail for one integration without stopping the sweep (anything else is logged with its traceback).
EXPECTED_FAILURES = (AdoError, StorageUnavailable, IntegrationNotFound, RetryLater)


@dataclass
class SweepReport:
    name: str
    visited: int = 0
    worked: int = 0  # integrations the work ran for
    succeeded: int = 0  # work that returned True (it changed something)
    failed: int = 0
    finished: bool = False  # reached the end of the integrations
    cursor: str = ""
    seconds: float = 0.0
    failures: list[str] = field(default_factory=list)  # integration ids


class _Progress:
    """The ids visited, in order, and which of them are done: the cursor may pass only finished work."""

    def __init__(self, cursor: str) -> None:
        self.safe = cursor  # every id up to this one is done
        self._visited: deque[str] = deque()
        self._done: set[str] = set()
        self._lock = threading.Lock()

    def visit(self, summary_id: str, *, done: bool) -> None:
        with self._lock:
            self._visited.append(summary_id)
            if done:
                self._done.add(summary_id)

    def finish(self, summary_id: str) -> None:
        with self._lock:
            self._done.add(summary_id)

    def advance(self) -> str:
        """The last id before the first unfinished one."""
        with self._lock:
            while self._visited and self._visited[0] in self._done:
                self.safe = self._visited.popleft()
                self._done.discard(self.safe)
            return self.safe


def sweep(
    name: str,
    work: Callable[[IntegrationSummary, float], bool],
    *,
    wanted: Callable[[IntegrationSummary], bool] = lambda summary: True,
    concurrency: int,
    budget_seconds: float,
    store: IntegrationStore | None = None,
    cursors: CursorStore | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> SweepReport:
    """Run `work(summary, timeout)` for every active integration that `wanted` selects."""
    store = store or IntegrationStore()
    cursors = cursors or CursorStore()
    started = clock()
    deadline = started + budget_seconds
    report = SweepReport(name=name, cursor=cursors.get(name))
    slots = threading.BoundedSemaphore(concurrency)
    lock = threading.Lock()
    progress = _Progress(report.cursor)
    saved = [report.cursor, started]  # what was saved last, and when

    def save_progress(force: bool = False) -> None:
        # Called from this thread only, so saves happen in order and the saved cursor never goes back.
        safe = progress.advance()
        if safe != saved[0] and (force or clock() - saved[1] >= SAVE_EVERY_SECONDS):
            cursors.set(name, safe)
            saved[:] = [safe, clock()]

    def run(summary: IntegrationSummary, timeout: float) -> None:
        try:
            changed = work(summary, timeout)
            with lock:
                report.succeeded += bool(changed)
        except Exception as exc:  # one integration's failure must not stop the others
            with lock:
                report.failed += 1
                report.failures.append(summary.id)
            if isinstance(exc, EXPECTED_FAILURES):
                log.warning("%s: integration %s failed: %s", name, summary.id, exc)
            else:
                log.exception("%s: integration %s failed unexpectedly", name, summary.id)
        finally:
            progress.finish(summary.id)
            slots.release()

    out_of_time = False
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix=name) as pool:
        while not out_of_time:
            save_progress(force=True)
            page = store.list_active(after=report.cursor, limit=PAGE_SIZE)
            if not page:
                report.finished = True
                break
            for summary in page:
                selected = wanted(summary)
                if selected:
                    # Bounded submission: wait for a free slot, so nothing queues up past the budget.
                    remaining = deadline - clock()
                    if remaining < MIN_WORK_SECONDS or not slots.acquire(timeout=remaining - MIN_WORK_SECONDS):
                        out_of_time = True
                        break
                    report.worked += 1
                progress.visit(summary.id, done=not selected)
                if selected:
                    pool.submit(run, summary, max(MIN_WORK_SECONDS, deadline - clock()))
                    save_progress()
                report.visited += 1
                report.cursor = summary.id
    # The pool has been joined, so every submitted piece of work is done: the cursor is safe to save.
    cursors.set(name, "" if report.finished else report.cursor)
    report.seconds = clock() - started
    log.info(
        "%s: visited %d, worked on %d, changed %d, failed %d, %s in %.1f s",
        name,
        report.visited,
        report.worked,
        report.succeeded,
        report.failed,
        "finished" if report.finished else f"stopped after {report.cursor}",
        report.seconds,
    )
    return report


Work = Callable[[IntegrationSummary, float], bool]
Wanted = Callable[[IntegrationSummary], bool]


@dataclass(frozen=True)
class TimerRun:
    """What one timer run's work is made from: the settings, the integrations and the clock."""

    settings: Settings
    store: IntegrationStore
    clock: Clock


def run_timer(name: str, make: Callable[[TimerRun], tuple[Work, Wanted | None]], clock: Clock = SYSTEM) -> SweepReport:
    """One run of a timer: `make` builds its work (and which integrations it wants) for this run, and the sweep
    visits them with the timers' shared concurrency and budget."""
    record_run(timer_runs.record_start, name, now=clock.now())
    try:
        run = TimerRun(get_settings(), IntegrationStore(), clock)
        work, wanted = make(run)
        report = sweep(
            name,
            work,
            wanted=wanted or (lambda summary: True),
            concurrency=run.settings.timer_concurrency,
            budget_seconds=run.settings.timer_budget_seconds,
            store=run.store,
            clock=clock.monotonic,
        )
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}" if isinstance(exc, EXPECTED_FAILURES) else type(exc).__name__
        record_run(
            timer_runs.record_end, name, now=clock.now(), visited=0, worked=0, failed=0, finished=False, error=error
        )
        raise
    record_run(
        timer_runs.record_end,
        name,
        now=clock.now(),
        visited=report.visited,
        worked=report.worked,
        failed=report.failed,
        finished=report.finished,
    )
    return report


def record_run(record: Callable[..., None], name: str, **values: Any) -> None:
    """Record a run for the status page, best effort: a timer never fails because its record could not be kept."""
    try:
        record(name, **values)
    except StorageUnavailable as exc:
        log.warning("%s: could not record the run: %s", name, exc)
