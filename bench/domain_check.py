"""domain_check over many integrations, 10% with a malformed domain, the fake answering each lookup after
50 ms. The floor is lookups x 50 ms / concurrency: what the run would take if storage cost nothing."""

from __future__ import annotations

import os
import time
import uuid

LOOKUP_SECONDS = 0.05


def measure(fake, total: int) -> dict:
    from shared.jobs.domain_check import run_domain_check
    from shared.settings import get_settings, reset_settings
    from shared.store.deadline import background
    from tests.helpers import populate_integrations

    os.environ.update(fake.settings_env())
    os.environ["TABLE_PREFIX"] = f"benchdc{uuid.uuid4().hex[:6]}"
    reset_settings()
    started = time.perf_counter()
    # The set-up, and the timer itself as the host runs it (functions/maintenance.py): with storage's background
    # timeouts and retries, so a stalled Azurite slows the run down instead of stopping it.
    with background():
        populate_integrations(fake, total, 10)
        populate = time.perf_counter() - started
        fake.set_delay(r"resourceareas", LOOKUP_SECONDS)
        fake.reset_log()
        try:
            started = time.perf_counter()
            report = run_domain_check()
            elapsed = time.perf_counter() - started
        finally:
            fake.clear_faults()
    settings = get_settings()
    lookups = total // 10
    return {
        "integrations": total,
        "malformed": lookups,
        "seconds": elapsed,
        "finished": report.finished,
        "repaired": report.succeeded,
        "failed": report.failed,
        "concurrency": settings.timer_concurrency,
        "max_concurrent_lookups": fake.max_concurrent(r"resourceareas"),
        "budget_seconds": settings.timer_budget_seconds,
        "floor_seconds": lookups * LOOKUP_SECONDS / settings.timer_concurrency,
        "populate_seconds": populate,
    }
