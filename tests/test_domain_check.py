"""domain_check (contract §8): page by page, bounded concurrency, isolation, a budget, and a resumable cursor."""

import time
import uuid

import pytest

from shared.jobs.domain_check import run_domain_check
from shared.store.integrations import Integration, IntegrationStore
from tests.helpers import new_id, populate_integrations


@pytest.fixture
def own_tables(env, fake_ado):
    """A table prefix of its own (an empty integrations table) and the app pointed at the fake."""
    env.setenv("TABLE_PREFIX", f"dc{uuid.uuid4().hex[:10]}")
    for key, value in fake_ado.settings_env().items():
        env.setenv(key, value)
    return env


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


def test_two_thousand_integrations_within_budget_and_concurrency_bound(own_tables, fake_ado) -> None:
    own_tables.setenv("DOMAIN_CHECK_CONCURRENCY", "8")
    own_tables.setenv("DOMAIN_CHECK_BUDGET_SECONDS", "60")
    good, bad = populate_integrations(fake_ado, 2000, 10)
    fake_ado.set_delay(r"resourceareas", 0.05)
    fake_ado.reset_log()
    try:
        started = time.monotonic()
        report = run_domain_check()
        elapsed = time.monotonic() - started
    finally:
        fake_ado.clear_faults()
    print(f"\ndomain_check over 2000 integrations (200 malformed, 50 ms lookups, concurrency 8): {elapsed:.2f} s")
    assert report.finished and report.visited == 2000
    assert (report.worked, report.succeeded, report.failed) == (200, 200, 0)
    assert elapsed < 60
    assert 1 < fake_ado.max_concurrent(r"resourceareas") <= 8
    store = IntegrationStore()
    assert all(store.get(i).domain_name.endswith("/") for i in bad[:20])


def test_a_small_budget_stops_and_the_next_run_finishes_the_rest(own_tables, fake_ado) -> None:
    own_tables.setenv("DOMAIN_CHECK_CONCURRENCY", "4")
    own_tables.setenv("DOMAIN_CHECK_BUDGET_SECONDS", "1.5")
    good, bad = populate_integrations(fake_ado, 600, 2)  # 300 lookups of 50 ms at 4 at once need about 4 s
    fake_ado.set_delay(r"resourceareas", 0.05)
    try:
        runs = []
        while True:
            started = time.monotonic()
            report = run_domain_check()
            runs.append((report, time.monotonic() - started))
            if report.finished or len(runs) > 10:
                break
    finally:
        fake_ado.clear_faults()
    print("\nruns with a 1.5 s budget:", [(r.visited, r.succeeded, round(s, 2)) for r, s in runs])
    assert len(runs) >= 2 and not runs[0][0].finished
    assert all(seconds < 1.5 + 1.0 for _, seconds in runs)  # each run ends within its budget (plus bookkeeping)
    assert sum(r.visited for r, _ in runs) == 600  # nothing visited twice, nothing skipped
    assert sum(r.succeeded for r, _ in runs) == 300
    store = IntegrationStore()
    assert all(store.get(i).domain_name.startswith(fake_ado.base_url) for i in bad)


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
    deadline = time.monotonic() + 30
    while store.get(integration.id).domain_name != fake_ado.org_url(name):
        assert time.monotonic() < deadline, host.log()[-2000:]
        time.sleep(0.1)
    assert "Executed domain_check (timer" in host.log()
