"""The timers' sweep (contract §8-9): progress saved as it goes, never past unfinished work, and each item's
Azure DevOps calls bounded by the budget that is left."""

import threading
import uuid

import pytest

from shared.admin.subscriptions import create_subscription
from shared.jobs import sweep as sweep_module
from shared.jobs.subscription_check import run_subscription_check
from shared.jobs.sweep import sweep
from shared.store.cursors import CursorStore
from shared.store.integrations import Integration, IntegrationStore, IntegrationSummary
from tests.helpers import new_id

pytestmark = pytest.mark.usefixtures("azurite")

PAT = "sweep-pat-0123456789"


def _integrations(count: int) -> list[str]:
    store = IntegrationStore()
    ids = sorted(new_id() for _ in range(count))
    for integration_id in ids:
        store.create(
            Integration(
                id=integration_id, name="o", domain_name="https://dev.azure.com/o/", credentials={"type": "pat"}
            )
        )
    return ids


def test_the_cursor_is_saved_as_the_run_goes_and_never_passes_unfinished_work(own_tables, monkeypatch) -> None:
    """What a run stopped by the host (functionTimeout) leaves: the cursor past finished work, before the rest."""
    monkeypatch.setattr(sweep_module, "PAGE_SIZE", 2)
    ids = _integrations(6)
    name = f"test_sweep_{uuid.uuid4().hex[:8]}"
    release = threading.Event()
    seen_by_last: list[str] = []

    def work(summary: IntegrationSummary, timeout: float) -> bool:
        if summary.id == ids[1]:  # the second one is slow: it finishes only after the last one started
            assert release.wait(30)
        elif summary.id == ids[-1]:
            # With two slots and ids[1] holding one, ids[0] finished before ids[2] could start, and the pages
            # of ids[2:4] and ids[4:6] were read since, each after saving the cursor.
            seen_by_last.append(CursorStore().get(name))
            release.set()
        return True

    report = sweep(name, work, concurrency=2, budget_seconds=60)
    assert report.finished and report.succeeded == 6
    assert seen_by_last == [ids[0]]  # progress was saved, but not past ids[1], which had not finished
    assert CursorStore().get(name) == ""  # a finished run clears it


def test_subscription_check_cuts_each_request_to_the_budget_left(own_tables, fake_ado) -> None:
    """A subscription read that Azure DevOps answers too late fails within the budget, not after ADO_HTTP_TIMEOUT."""
    own_tables.setenv("WEBHOOK_PUBLIC_URL", "https://app.example/api/vsts/issue-updated")
    own_tables.setenv("ADO_HTTP_TIMEOUT", "30")
    own_tables.setenv("DOMAIN_CHECK_BUDGET_SECONDS", "1")  # the old name of TIMER_BUDGET_SECONDS, still read
    org, integration_id = f"s{uuid.uuid4().hex[:8]}", new_id()
    fake_ado.add_org(org, integration_id)
    fake_ado.add_pat(org, PAT)
    IntegrationStore().create(
        Integration(
            id=integration_id, name=org, domain_name=fake_ado.org_url(org), credentials={"type": "pat", "token": PAT}
        )
    )
    subscription_id = create_subscription(integration_id).subscription_id
    fake_ado.set_delay(rf"/hooks/subscriptions/{subscription_id}$", 5, method="GET")
    try:
        report = run_subscription_check()
    finally:
        fake_ado.clear_faults()
    assert (report.worked, report.failed) == (1, 1)  # timed out at the budget, instead of waiting 5 s
    assert IntegrationStore().get(integration_id).subscription_id == subscription_id  # nothing replaced
