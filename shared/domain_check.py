"""The `domain_check` timer (contract §8): repair every active integration's malformed `domain_name`.

It visits active integrations page by page in id order, runs at most `DOMAIN_CHECK_CONCURRENCY` lookups
at once, keeps going past any one integration's failure, and stops starting work when its time budget
is spent; every lookup's timeout is cut to the budget that is left, so the run ends within the budget.
A cursor (the last id visited) lets the next run resume where this one stopped; a run that reaches the
end clears it, so the next run starts over.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from shared.ado_client import AdoError
from shared.cursors import CursorStore
from shared.domains import is_well_formed
from shared.integrations import IntegrationStore, IntegrationSummary
from shared.lookups import check_domain_name
from shared.settings import Settings, get_settings
from shared.storage import StorageUnavailable

log = logging.getLogger(__name__)

CURSOR = "domain_check"
PAGE_SIZE = 200
MIN_LOOKUP_SECONDS = 0.5  # not worth starting a lookup with less budget than this left


@dataclass
class DomainCheckReport:
    visited: int = 0
    checked: int = 0  # malformed ones looked up
    repaired: int = 0
    failed: int = 0
    finished: bool = False  # reached the end of the integrations
    cursor: str = ""
    seconds: float = 0.0


def run_domain_check(
    *,
    store: IntegrationStore | None = None,
    cursors: CursorStore | None = None,
    settings: Settings | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> DomainCheckReport:
    settings = settings or get_settings()
    store = store or IntegrationStore()
    cursors = cursors or CursorStore()
    started = clock()
    deadline = started + settings.domain_check_budget_seconds
    report = DomainCheckReport(cursor=cursors.get(CURSOR))
    slots = threading.BoundedSemaphore(settings.domain_check_concurrency)
    lock = threading.Lock()

    def repair(summary: IntegrationSummary, timeout: float) -> None:
        try:
            integration = store.get(summary.id)
            malformed = integration is not None and not is_well_formed(
                integration.domain_name, settings.allowed_origins
            )
            if integration is not None and integration.active and malformed:
                check_domain_name(store, integration, settings, timeout=timeout)
                with lock:
                    report.repaired += 1
        except (AdoError, StorageUnavailable) as exc:
            with lock:
                report.failed += 1
            log.warning("domain_check: integration %s not repaired: %s", summary.id, exc)
        except Exception:  # one integration's surprise must not stop the others
            with lock:
                report.failed += 1
            log.exception("domain_check: integration %s failed unexpectedly", summary.id)
        finally:
            slots.release()

    out_of_time = False
    with ThreadPoolExecutor(max_workers=settings.domain_check_concurrency, thread_name_prefix="domain-check") as pool:
        while not out_of_time:
            page = store.list_active(after=report.cursor, limit=PAGE_SIZE)
            if not page:
                report.finished = True
                break
            for summary in page:
                if not is_well_formed(summary.domain_name, settings.allowed_origins):
                    # Bounded submission: wait for a free slot, so nothing queues past the budget.
                    remaining = deadline - clock()
                    if remaining < MIN_LOOKUP_SECONDS or not slots.acquire(timeout=remaining - MIN_LOOKUP_SECONDS):
                        out_of_time = True
                        break
                    remaining = deadline - clock()
                    report.checked += 1
                    pool.submit(repair, summary, max(MIN_LOOKUP_SECONDS, min(settings.http_timeout, remaining)))
                report.visited += 1
                report.cursor = summary.id
    # Every submitted lookup has finished (the pool was joined): the cursor is safe to save.
    cursors.set(CURSOR, "" if report.finished else report.cursor)
    report.seconds = clock() - started
    log.info(
        "domain_check: visited %d, looked up %d, repaired %d, failed %d, %s in %.1f s",
        report.visited,
        report.checked,
        report.repaired,
        report.failed,
        "finished" if report.finished else f"stopped after {report.cursor}",
        report.seconds,
    )
    return report
