"""What the status page gathers (`shared.pages.status_data`) and the records it reads, in real Table Storage and
Storage queues: integrations with their credentials, subscription and last delivery, tracker and Sentry
installations, queue depths, timer runs, recent failures, and a part that cannot be read."""

from __future__ import annotations

import itertools
import time
from dataclasses import replace

import pytest

from shared.errors import StorageUnavailable
from shared.jobs import sweep
from shared.model.integration import DISABLED
from shared.model.sentry import INTERNAL, SentryInstallation
from shared.model.tracker import Installation, Link, TrackedIssue
from shared.pages import status_data
from shared.pages.status_data import View, gather
from shared.store import failures, last_delivery, queues, timer_runs
from shared.store.integrations import IntegrationStore
from shared.store.sentry import SentryStore
from shared.store.tracker import TrackerStore
from tests.helpers import FakeClock, count_storage_requests, make_integration, new_id

pytestmark = pytest.mark.usefixtures("azurite")


def _row(part: status_data.Part, **match: object) -> object:
    def value(row: object, name: str) -> object:
        return getattr(row.installation, name) if isinstance(row, status_data.SentryStatus) else getattr(row, name)

    rows = [r for r in part.rows if all(value(r, k) == v for k, v in match.items())]
    assert len(rows) == 1, (match, part)
    return rows[0]


@pytest.fixture
def own_queues(monkeypatch: pytest.MonkeyPatch) -> tuple[str, ...]:
    """App queues of this test alone, so the session's real queues (and other tests' messages) stay apart."""
    names = (f"st{new_id()[:8]}-a", f"st{new_id()[:8]}-b")
    monkeypatch.setattr(queues, "APP_QUEUES", names)
    return names


def test_integrations_show_credentials_subscription_and_last_delivery_each_with_what_to_do(own_queues) -> None:
    store = IntegrationStore()
    refused = make_integration(credentials={"type": "pat", "token": "pat-never-shown"})
    store.update(refused.id, lambda cur: replace(cur, needs_reauth=True, subscription_id="sub-1"))
    probation = make_integration()
    store.update(probation.id, lambda cur: replace(cur, subscription_id="sub-2", subscription_status="onProbation"))
    disabled = make_integration()
    store.update(disabled.id, lambda cur: replace(cur, status=DISABLED))
    last_delivery.forget_this_process()
    assert last_delivery.note_delivery(probation.id, now=1_700_000_000.0)

    report = gather(time.time())
    shown_refused = _row(report.integrations, id=refused.id)
    assert shown_refused.credentials == "needs_reauth" and shown_refused.credentials_type == "pat"
    assert "refused its credentials" in shown_refused.problems[0].what
    assert f"PUT /api/vsts/integrations/{refused.id}" in shown_refused.problems[0].action
    shown_probation = _row(report.integrations, id=probation.id)
    assert shown_probation.credentials == "valid" and shown_probation.last_delivery_at == 1_700_000_000.0
    assert shown_probation.subscription_status == "onProbation" and "probation" in shown_probation.problems[0].what
    shown_disabled = _row(report.integrations, id=disabled.id)
    assert (shown_disabled.status, shown_disabled.problems, shown_disabled.last_delivery_at) == ("disabled", (), None)
    assert "pat-never-shown" not in repr(report)


def test_tracker_and_sentry_installations_are_checked_against_each_other(own_queues) -> None:
    integration = make_integration()
    missing = new_id()
    TrackerStore().put_installation(Installation(integration.id, f"org-{new_id()[:8]}", sync_comments=True))
    TrackerStore().put_installation(Installation(missing, f"org-{new_id()[:8]}"))
    refused = SentryStore().put(
        SentryInstallation(new_id(), f"s{new_id()[:8]}", kind=INTERNAL, token="sntrys-never-shown", needs_reauth=True)
    )
    connected = SentryStore().put(SentryInstallation(new_id(), f"s{new_id()[:8]}", token="another-token"))
    TrackerStore().put_installation(Installation(integration.id, connected.org_id))
    tokenless = SentryStore().put(SentryInstallation(new_id(), f"s{new_id()[:8]}"))

    report = gather(time.time())
    assert _row(report.installations, integration_id=integration.id, syncs=("sync_comments",)).problems == ()
    assert "does not exist" in _row(report.installations, integration_id=missing).problems[0].what
    shown = _row(report.sentry, uuid=refused.uuid)
    assert (shown.installation.kind, shown.token, shown.installation.needs_reauth) == ("internal", "set", True)
    assert [p.what for p in shown.problems] == [
        "Sentry refused the installation's token (needs re-authorization).",
        "No Azure DevOps integration is connected to it.",
    ]
    assert f"PUT /api/sentry/installations/{refused.uuid}" in shown.problems[0].action
    assert _row(report.sentry, uuid=connected.uuid).problems == ()
    assert "No token is stored" in _row(report.sentry, uuid=tokenless.uuid).problems[0].what
    assert "never-shown" not in repr(report) and "another-token" not in repr(report)


def test_queue_and_poison_depths_and_a_poisoned_message_needs_a_redrive(own_queues) -> None:
    first, second = own_queues
    queues.enqueue("waiting", first)
    queues.enqueue("poisoned", first + queues.POISON_SUFFIX)
    queues.enqueue("poisoned too", first + queues.POISON_SUFFIX)
    shown = {row.name: row for row in gather(time.time()).queues.rows}
    assert (shown[first].depth, shown[first].poison, shown[first].poison_depth) == (1, f"{first}-poison", 2)
    assert "2 message(s) failed every retry" in shown[first].problems[0].what
    assert "redrive" in shown[first].problems[0].action
    assert (shown[second].depth, shown[second].poison_depth, shown[second].problems) == (None, None, ())


def test_a_part_that_cannot_be_read_is_named_and_the_others_are_shown(own_queues, monkeypatch) -> None:
    integration = make_integration()

    def unavailable(self, limit):
        raise StorageUnavailable("listing Sentry installations failed: ServiceRequestError")

    def broken() -> dict:
        raise KeyError("a bug")

    monkeypatch.setattr(SentryStore, "list_installations", unavailable)
    monkeypatch.setattr(timer_runs, "timer_records", broken)
    report = gather(time.time())
    assert report.unreadable == ["Sentry installations", "Timers"]
    assert report.sentry.rows == () and "Storage did not answer" in report.sentry.error
    assert "unexpected error" in report.timers.error
    assert _row(report.integrations, id=integration.id).status == "active"
    assert report.queues.error is None and report.failures.error is None

    from shared.pages.render import render

    forms = {"form_token": "t", "redrive_action": "/x", "action": "/y", "view_action": "/v", "view": View()}
    html = render("status.html", report=report, message=None, when=str, **forms).html
    assert "Sentry installations could not be read" in html and "Timers could not be read" in html
    assert integration.id in html


def test_last_deliveries_unreadable_leave_the_integrations_readable(own_queues, monkeypatch) -> None:
    integration = make_integration()

    def unavailable(limit):
        raise StorageUnavailable("reading the last deliveries failed: ServiceRequestError")

    monkeypatch.setattr(last_delivery, "last_deliveries", unavailable)
    report = gather(time.time())
    assert _row(report.integrations, id=integration.id).last_delivery_at is None
    assert report.notes == ("The last deliveries could not be read; they show as unknown.",)


def test_the_last_delivery_is_written_at_most_once_per_few_minutes_per_integration() -> None:
    integration_id = new_id()
    last_delivery.forget_this_process()
    assert last_delivery.note_delivery(integration_id, now=1000.0, monotonic=50.0)
    assert not last_delivery.note_delivery(integration_id, now=1100.0, monotonic=50.0 + 299)
    assert last_delivery.last_deliveries(100_000)[integration_id] == 1000.0
    assert last_delivery.note_delivery(integration_id, now=1400.0, monotonic=50.0 + 301)
    assert last_delivery.last_deliveries(100_000)[integration_id] == 1400.0
    assert last_delivery.note_delivery(new_id(), now=1400.0, monotonic=50.0 + 301)  # each integration its own


def test_a_last_delivery_that_cannot_be_written_is_logged_not_raised(monkeypatch, caplog) -> None:
    from shared.store import base

    def unavailable(*args, **kwargs):
        raise StorageUnavailable("recording the last delivery failed: ServiceRequestError")

    monkeypatch.setattr(base, "upsert", unavailable)
    last_delivery.forget_this_process()
    assert last_delivery.note_delivery(new_id()) is False
    assert "Could not record the last delivery" in caplog.text


def _make_sweep(seen: list[str]):
    def make(run: sweep.TimerRun):
        def work(summary, timeout: float) -> bool:
            seen.append(summary.id)
            return False

        return work, None

    return make


def test_a_timer_run_records_its_start_and_its_outcome() -> None:
    name = f"t{new_id()[:8]}"
    make_integration()
    clock = FakeClock(now=1_700_000_000.0)
    seen: list[str] = []
    report = sweep.run_timer(name, _make_sweep(seen), clock)
    record = timer_runs.timer_records()[name]
    assert (record.started_at, record.ended_at, record.running) == (1_700_000_000.0, 1_700_000_000.0, False)
    assert (record.visited, record.worked, record.failed, record.finished) == (report.visited, len(seen), 0, True)
    assert record.error is None and record.visited >= 1


def test_a_timer_run_that_fails_records_the_error_and_still_raises(monkeypatch) -> None:
    name = f"t{new_id()[:8]}"

    def unavailable(self, after: str = "", limit: int = 100):
        raise StorageUnavailable("listing integrations failed: ServiceRequestError")

    monkeypatch.setattr(IntegrationStore, "list_active", unavailable)
    with pytest.raises(StorageUnavailable):
        sweep.run_timer(name, _make_sweep([]), FakeClock())
    record = timer_runs.timer_records()[name]
    assert record.error == "StorageUnavailable: listing integrations failed: ServiceRequestError"
    assert not record.running and not record.finished


def test_a_run_still_marked_running_past_its_budget_is_shown_as_stopped_by_the_host(monkeypatch) -> None:
    from shared.pages.status_advice import timer_outcome, timer_problems

    timer_runs.record_start("reconcile", now=1000.0)
    record = timer_runs.timer_records()["reconcile"]
    assert timer_outcome(record) == "running"
    assert timer_problems(record, now=1000.0 + 240, budget_seconds=240) == []
    assert "never ended" in timer_problems(record, now=1000.0 + 240 + 121, budget_seconds=240)[0].what
    shown = {row.name: row for row in gather(1000.0 + 10_000).timers.rows}
    assert set(shown) == {"domain_check", "subscription_check", "reconcile", "cleanup", "sweep", "sentry_reconcile"}
    assert "never ended" in shown["reconcile"].problems[0].what


def test_the_timer_names_are_the_jobs_own() -> None:
    from shared.jobs import cleanup, domain_check, pending, reconcile, subscription_check
    from shared.sentryapp import reconcile as sentry_reconcile

    names = (
        domain_check.NAME,
        subscription_check.NAME,
        reconcile.NAME,
        cleanup.NAME,
        pending.NAME,
        sentry_reconcile.NAME,
    )
    assert names == status_data.TIMERS


def test_the_failure_list_keeps_the_newest_fifty_newest_first(monkeypatch) -> None:
    monkeypatch.setattr(failures, "_recorded", itertools.count())
    start = time.time() + 10_000  # newer than anything other tests recorded
    for n in range(60):
        assert failures.record_failure("ado_failed", f"org/I{n} → work item {n}", f"reason {n}", now=start + n)
    stored = failures.recent_failures(limit=1000)
    assert len(stored) <= failures.KEEP + failures.PRUNE_EVERY - 1  # pruned as it went
    assert [f.subject for f in stored[:3]] == [
        "org/I59 → work item 59",
        "org/I58 → work item 58",
        "org/I57 → work item 57",
    ]
    failures.prune()
    assert len(failures.recent_failures(limit=1000)) == failures.KEEP
    shown = gather(time.time()).failures.rows
    assert len(shown) == failures.KEEP and shown[0].reason == "reason 59"
    assert "Azure DevOps refused the change" in shown[0].action
    _forget_failures_after(start)


def _forget_failures_after(start: float) -> None:
    """Failures recorded in the future would push out what other tests record now: remove them."""
    from shared.store import base

    client = base.table(failures.TABLE)
    for entity in base.query(failures.TABLE, "PartitionKey eq @pk and At ge @at", {"pk": "failure", "at": start}, "t"):
        client.delete_entity(entity["PartitionKey"], entity["RowKey"])


def test_a_failure_that_cannot_be_recorded_is_logged_not_raised(monkeypatch, caplog) -> None:
    from shared.store import base

    def unavailable(*args, **kwargs):
        raise StorageUnavailable("recording a failure failed: ServiceRequestError")

    monkeypatch.setattr(base, "write", unavailable)
    assert failures.record_failure("sentry_failed", "sentry-acme/1", "Sentry refused it") is False
    assert "Could not record a sentry_failed failure" in caplog.text


def test_an_outbound_change_azure_devops_refused_is_a_recent_failure(monkeypatch) -> None:
    from shared.sync import outbound

    org, integration_id = f"org-{new_id()[:8]}", new_id()
    link = Link(integration_id, 77)
    issue = TrackedIssue(org_id=org, issue_id="I1", title="t", links=(link,))
    TrackerStore().create_issue(issue)
    outbound._record(TrackerStore(), issue, link, None, [], failure="Azure DevOps refused the change: TF401320")
    assert TrackerStore().get_issue(org, "I1").activity[-1]["type"] == "ado_failed"
    recorded = [f for f in failures.recent_failures(limit=1000) if f.details.get("org_id") == org]
    assert [(f.kind, f.subject, f.reason) for f in recorded] == [
        ("ado_failed", f"{org}/I1 → work item 77", "Azure DevOps refused the change: TF401320")
    ]


def test_the_webhook_notes_the_last_delivery_after_queueing_at_most_once_per_few_minutes() -> None:
    from shared.store.base import table_name
    from tests.sync_helpers import SECRET, delivery, post, queued_messages

    integration = make_integration(webhook_secret=SECRET)
    last_delivery.forget_this_process()
    queued_messages()
    assert post(delivery(integration.id, 1, 2), headers={"Shared-Secret": "wrong"}).status_code == 401
    assert integration.id not in last_delivery.last_deliveries(100_000)
    with count_storage_requests() as first:
        assert post(delivery(integration.id, 1, 3)).status_code == 202
    with count_storage_requests() as second:
        assert post(delivery(integration.id, 1, 4)).status_code == 202
    status_table = f"/{table_name('status')}"
    assert [c for c in first if status_table in c] != [] and [c for c in second if status_table in c] == []
    queued_at = next(n for n, call in enumerate(first) if "/messages" in call)
    assert all(n > queued_at for n, call in enumerate(first) if status_table in call)  # after the queue took it
    assert integration.id in last_delivery.last_deliveries(100_000)
    assert len(queued_messages()) == 2


def test_comments_synced_each_way_are_counted(own_queues) -> None:
    from shared.store import counters

    def shown() -> dict[str, int]:
        return {row.name: row.value for row in gather(time.time()).comments.rows}

    before = shown()
    assert set(before) == {"comments_from_ado", "comments_to_sentry", "comments_to_ado"}
    counters.add("org-1", "comments_from_ado")
    counters.add("org-1", "comments_from_ado")
    counters.add("org-1", "comments_to_sentry")
    after = shown()
    assert after["comments_from_ado"] == before["comments_from_ado"] + 2
    assert after["comments_to_sentry"] == before["comments_to_sentry"] + 1
    assert after["comments_to_ado"] == before["comments_to_ado"]
