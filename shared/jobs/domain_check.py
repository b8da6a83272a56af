"""The `domain_check` timer (contract §8): repair every active integration's malformed `domain_name`,
visiting them with `shared.jobs.sweep` (pages, bounded concurrency, isolation, budget, resumable cursor)."""

from __future__ import annotations

from shared.ado.domains import is_well_formed
from shared.clock import SYSTEM, Clock
from shared.connections.ado import check_domain_name
from shared.jobs.sweep import SweepReport, TimerRun, Wanted, Work, run_timer
from shared.store.integrations import IntegrationSummary

NAME = "domain_check"


def run_domain_check(clock: Clock = SYSTEM) -> SweepReport:
    def make(run: TimerRun) -> tuple[Work, Wanted]:
        settings, store = run.settings, run.store

        def malformed(summary: IntegrationSummary) -> bool:
            return not is_well_formed(summary.domain_name, settings.allowed_origins)

        def repair(summary: IntegrationSummary, timeout: float) -> bool:
            integration = store.get(summary.id)
            if (
                integration is None
                or not integration.active
                or is_well_formed(integration.domain_name, settings.allowed_origins)
            ):
                return False  # disabled or repaired since the page was read
            check_domain_name(store, integration, settings, timeout=min(settings.http_timeout, timeout))
            return True

        return repair, malformed

    return run_timer(NAME, make, clock)
