"""domain_check over many integrations, 10% with a malformed domain, the fake answering each lookup after
50 ms. The floor is lookups x 50 ms / concurrency: what the run would take if storage cost nothing."""

from __future__ import annotations

import os
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

LOOKUP_SECONDS = 0.05


def measure(fake, total: int) -> dict:
    from shared.domain_check import run_domain_check
    from shared.integrations import Integration, IntegrationStore
    from shared.settings import get_settings, reset_settings

    os.environ.update(fake.settings_env())
    os.environ["TABLE_PREFIX"] = f"benchdc{uuid.uuid4().hex[:6]}"
    reset_settings()
    integrations = []
    for n in range(total):
        integration_id, name = str(uuid.uuid4()), f"o{uuid.uuid4().hex[:10]}"
        malformed = n % 10 == 0
        if malformed:
            fake.add_org(name, integration_id)
        domain = f"{name}.visualstudio.com" if malformed else fake.org_url(name)
        integrations.append(
            Integration(id=integration_id, name=name, domain_name=domain, credentials={"type": "pat", "token": "t"})
        )
    started = time.perf_counter()
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(IntegrationStore().create, integrations))
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
        "concurrency": settings.domain_check_concurrency,
        "max_concurrent_lookups": fake.max_concurrent(r"resourceareas"),
        "budget_seconds": settings.domain_check_budget_seconds,
        "floor_seconds": lookups * LOOKUP_SECONDS / settings.domain_check_concurrency,
        "populate_seconds": populate,
    }
