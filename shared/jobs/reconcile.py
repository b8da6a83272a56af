"""The `reconcile` timer (contract §9): every active integration reconciled through `shared.jobs.sweep`."""

from __future__ import annotations

from shared.jobs.sweep import SweepReport, sweep
from shared.settings import Settings, get_settings
from shared.store.cursors import CursorStore
from shared.store.integrations import IntegrationStore, IntegrationSummary
from shared.store.tracker import TrackerStore
from shared.sync.reconcile import NAME, reconcile_integration


def run_reconcile(*, settings: Settings | None = None, store: IntegrationStore | None = None) -> SweepReport:
    settings = settings or get_settings()
    store = store or IntegrationStore()
    tracker, cursors = TrackerStore(), CursorStore()

    def work(summary: IntegrationSummary, timeout: float) -> bool:
        return reconcile_integration(summary.id, store=store, tracker=tracker, cursors=cursors) > 0

    return sweep(
        NAME,
        work,
        concurrency=settings.domain_check_concurrency,
        budget_seconds=settings.domain_check_budget_seconds,
        store=store,
    )
