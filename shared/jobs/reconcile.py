"""The `reconcile` timer (contract §9): every active integration reconciled through `shared.jobs.sweep`."""

from __future__ import annotations

from shared.clock import SYSTEM, Clock
from shared.connections.ado import Deadline
from shared.jobs.sweep import SweepReport, sweep
from shared.settings import Settings, get_settings
from shared.store.cursors import CursorStore
from shared.store.integrations import IntegrationStore, IntegrationSummary
from shared.store.tracker import TrackerStore
from shared.sync.reconcile import NAME, reconcile_integration


def run_reconcile(
    *,
    settings: Settings | None = None,
    store: IntegrationStore | None = None,
    clock: Clock = SYSTEM,
) -> SweepReport:
    """Reconcile every active integration; each one stops between batches when the time budget is spent."""
    settings = settings or get_settings()
    store = store or IntegrationStore()
    tracker, cursors = TrackerStore(), CursorStore()

    def work(summary: IntegrationSummary, timeout: float) -> bool:
        report = reconcile_integration(
            summary.id,
            store=store,
            tracker=tracker,
            cursors=cursors,
            deadline=Deadline(timeout, clock.monotonic),
            clock=clock,
        )
        return report.applied > 0

    return sweep(
        NAME,
        work,
        concurrency=settings.timer_concurrency,
        budget_seconds=settings.timer_budget_seconds,
        store=store,
        clock=clock.monotonic,
    )
