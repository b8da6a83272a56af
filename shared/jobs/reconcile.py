"""The `reconcile` timer (contract §9): every active integration reconciled through `shared.jobs.sweep`."""

from __future__ import annotations

from shared.clock import SYSTEM, Clock, Deadline
from shared.jobs.sweep import SweepReport, TimerRun, Work, run_timer
from shared.store.cursors import CursorStore
from shared.store.integrations import IntegrationSummary
from shared.store.tracker import TrackerStore
from shared.sync.reconcile import NAME, reconcile_integration


def run_reconcile(clock: Clock = SYSTEM) -> SweepReport:
    """Reconcile every active integration; each one stops between batches when the time budget is spent."""

    def make(run: TimerRun) -> tuple[Work, None]:
        tracker, cursors = TrackerStore(), CursorStore()

        def work(summary: IntegrationSummary, timeout: float) -> bool:
            report = reconcile_integration(
                summary.id,
                store=run.store,
                tracker=tracker,
                cursors=cursors,
                deadline=Deadline(timeout, run.clock.monotonic),
                clock=run.clock,
            )
            return report.applied > 0

        return work, None

    return run_timer(NAME, make, clock)
