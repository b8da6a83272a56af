"""domain_check (contract §8): page by page, bounded concurrency, isolation, a budget, and a resumable cursor."""

import uuid

import pytest

from shared.jobs.domain_check import run_domain_check
from shared.jobs.sweep import MIN_WORK_SECONDS, sweep
from shared.store.cursors import CursorStore
from shared.store.integrations import Integration, IntegrationStore, IntegrationSummary
from tests.helpers import FakeClock, new_id, populate_integrations, wait_for

pytestmark = pytest.mark.usefixtures("azurite")


def test_repairs_through_the_timer_and_refuses_other_origins(own_tables, fake_ado) -> None:
    store = IntegrationStore()
    good, bad = populate_integrations(fake_ado, 6, 2)
    evil = store.create(
        Integration(
            id=new_id(), name="evil", domain_name="evil.visualstudio.com", credentials={"type": "pat", "token": "t"}
        )
    )
    fake_ado.add_org(f"e{uuid.uuid4().hex[:8]}", evil.id, location_url="http://evil.example")
    gone = store.create(
        Integration(
            id=new_id(), name="gone", domain_name="gone.visualstudio.com", credentials={"type": "pat", "token": "t"}
        )
    )
    report = run_domain_check()
    assert report.finished
    assert (report.visited, report.worked, report.succeeded, report.failed) == (8, 5, 3, 2)
    for integration_id in bad:
        assert store.get(integration_id).domain_name.startswith(fake_ado.base_url)
    assert store.get(evil.id).domain_name == "evil.visualstudio.com"  # refused, nothing saved
    assert store.get(gone.id).domain_name == "gone.visualstudio.com"  # lookup 404: kept, others went on


def test_a_real_looking_legacy_domain_is_repaired_to_its_https_form(own_tables, fake_ado) -> None:
    store = IntegrationStore()
    integration = store.create(
        Integration(
            id=new_id(),
            name="fabrikam",
            domain_name="fabrikam.visualstudio.com",
            credentials={"type": "pat", "token": "t"},
        )
    )
    fake_ado.add_org(f"f{uuid.uuid4().hex[:8]}", integration.id, location_url="https://fabrikam.visualstudio.com")
    assert run_domain_check().succeeded == 1
    assert store.get(integration.id).domain_name == "https://fabrikam.visualstudio.com/"


@pytest.mark.slow  # thousands of rows and real lookup delays
def test_two_thousand_integrations_with_bounded_concurrency(own_tables, fake_ado) -> None:
    own_tables.setenv("DOMAIN_CHECK_CONCURRENCY", "8")
    own_tables.setenv("DOMAIN_CHECK_BUDGET_SECONDS", "60")
    good, bad = populate_integrations(fake_ado, 2000, 10)
    fake_ado.set_delay(r"resourceareas", 0.05)  # slow lookups, so lookups overlap and the bound shows
    fake_ado.reset_log()
    try:
        report = run_domain_check()
    finally:
        fake_ado.clear_faults()
    print(
        f"\ndomain_check over 2000 integrations (200 malformed, 50 ms lookups, concurrency 8): {report.seconds:.2f} s"
    )
    assert report.finished and report.visited == 2000
    assert (report.worked, report.succeeded, report.failed) == (200, 200, 0)
    assert fake_ado.count("GET", r"resourceareas") == 200  # one lookup per malformed integration, none for the rest
    assert 1 < fake_ado.max_concurrent(r"resourceareas") <= 8
    store = IntegrationStore()
    assert all(store.get(i).domain_name.endswith("/") for i in bad[:20])


@pytest.mark.slow  # thousands of rows and real lookup delays
def test_a_small_budget_stops_and_the_next_run_finishes_the_rest(own_tables, fake_ado) -> None:
    own_tables.setenv("DOMAIN_CHECK_CONCURRENCY", "4")
    own_tables.setenv("DOMAIN_CHECK_BUDGET_SECONDS", "1.5")
    good, bad = populate_integrations(fake_ado, 600, 2)  # 300 lookups of 50 ms at 4 at once need about 4 s
    fake_ado.set_delay(r"resourceareas", 0.05)
    fake_ado.reset_log()
    try:
        runs = []
        while not (runs and runs[-1].finished) and len(runs) <= 10:
            runs.append(run_domain_check())
    finally:
        fake_ado.clear_faults()
    print("\nruns with a 1.5 s budget:", [(r.visited, r.succeeded) for r in runs])
    assert len(runs) >= 2 and runs[-1].finished and not any(r.finished for r in runs[:-1])
    assert all(r.cursor for r in runs[:-1])  # each unfinished run left a cursor for the next
    assert sum(r.visited for r in runs) == 600  # nothing visited twice, nothing skipped
    assert sum(r.succeeded for r in runs) == 300
    assert fake_ado.count("GET", r"resourceareas") == 300  # no integration looked up twice
    store = IntegrationStore()
    assert all(store.get(i).domain_name.startswith(fake_ado.base_url) for i in bad)


def test_the_sweep_starts_no_work_once_its_budget_is_spent_and_the_next_run_resumes(own_tables, fake_ado) -> None:
    # The budget on a fake clock that each piece of work advances by 0.25 s: no stopwatch, no real waiting.
    good, bad = populate_integrations(fake_ado, 20, 20)
    clock = FakeClock()
    seen: list[tuple[str, float]] = []

    def work(summary: IntegrationSummary, timeout: float) -> bool:
        seen.append((summary.id, timeout))
        clock.sleep(0.25)
        return True

    first = sweep("budget-test", work, concurrency=1, budget_seconds=2.0, clock=clock.monotonic)
    assert not first.finished and 0 < first.worked < 20 and first.visited == first.worked
    assert first.seconds <= 2.0  # the work started in time fits in the budget
    assert all(MIN_WORK_SECONDS <= timeout <= 2.0 for _, timeout in seen)  # each timeout cut to what is left
    assert CursorStore().get("budget-test") == first.cursor == seen[-1][0]
    second = sweep("budget-test", work, concurrency=1, budget_seconds=60.0, clock=clock.monotonic)
    assert second.finished and first.visited + second.visited == 20
    assert sorted(i for i, _ in seen) == sorted(good + bad)  # every integration once, in two runs
    assert CursorStore().get("budget-test") == ""  # a finished run starts the next one over


@pytest.mark.slow
def test_the_timer_function_runs_it(host, fake_ado) -> None:
    # Through the local host: the domain_check timer invoked as Core Tools would.
    store = IntegrationStore()
    name = f"t{uuid.uuid4().hex[:8]}"
    integration = store.create(
        Integration(
            id=new_id(), name=name, domain_name=f"{name}.visualstudio.com", credentials={"type": "pat", "token": "t"}
        )
    )
    fake_ado.add_org(name, integration.id)
    host.invoke("domain_check")
    wait_for(lambda: store.get(integration.id).domain_name == fake_ado.org_url(name), 30, "the repair")
    wait_for(lambda: "Executed domain_check (timer" in host.log(), 30, "the host to log the invocation")


def test_a_server_collection_is_repaired_without_the_account_lookup(own_tables, fake_ado) -> None:
    """Azure DevOps Server has no account lookup (it is Services' own, on vssps): a collection URL on an origin of
    ADO_ALLOWED_ORIGINS is only given its trailing slash; one without a collection says how to set it."""
    from shared.connections.ado import DomainRepairFailed, check_domain_name
    from shared.settings import get_settings

    store = IntegrationStore()
    make = lambda domain: store.create(  # noqa: E731
        Integration(id=new_id(), name="coll", domain_name=domain, credentials={"type": "pat", "token": "t"})
    )
    slashless = make(f"{fake_ado.base_url}/tfs/DefaultCollection")
    bare = make(fake_ado.base_url)
    fake_ado.reset_log()
    repaired = check_domain_name(store, slashless, get_settings())
    assert repaired.domain_name == store.get(slashless.id).domain_name == f"{fake_ado.base_url}/tfs/DefaultCollection/"
    with pytest.raises(DomainRepairFailed, match=r"no account lookup: set .*/tfs/DefaultCollection/, with PUT"):
        check_domain_name(store, bare, get_settings())
    assert store.get(bare.id).domain_name == fake_ado.base_url
    assert fake_ado.requests == []  # no lookup asked
