"""Stored state is the truth (issue 18, docs/design.md): what the app accepts is stored as pending work before
anything else can fail, queue messages only wake it, and the sweep wakes whatever a failure left unapplied.

Storage failures are injected request by request (`tests.helpers.failing_storage`) at each step of a Sentry
webhook's path, and a second failure after the first; each time, what was accepted is applied exactly once.
Real Azurite; Sentry faked with `responses`.
"""

from __future__ import annotations

import time
import uuid as uuids

import pytest
import responses

from shared.deliveries.outbound import to_outbound_message
from shared.deliveries.sentry_messages import read_hook_message
from shared.errors import RetryLater
from shared.jobs.pending import sweep_pending
from shared.model.changes import OutboundChange
from shared.model.sentry import INTERNAL, SentryInstallation
from shared.sentryapp.hooks import process_hook_message
from shared.settings import get_settings
from shared.store import base, pending, queues, timer_runs
from shared.store.pending import PendingRef
from shared.store.queues import OUTBOUND_QUEUE_NAME, SENTRY_HOOKS_QUEUE_NAME, SENTRY_UPDATES_QUEUE_NAME
from shared.store.sentry import APPLIED, RECEIVED, SentryStore
from shared.sync import wakeups
from shared.sync.queued import with_backoff
from tests.helpers import FakeClock, failing_storage, make_integration, new_id
from tests.sentry_hooks_helpers import APP_UUID, envelope, issue_data, post, run_hooks
from tests.sync_helpers import issue_view, queued_messages, tracked_issue

pytestmark = pytest.mark.usefixtures("azurite")

ALL_QUEUES = (SENTRY_HOOKS_QUEUE_NAME, OUTBOUND_QUEUE_NAME, SENTRY_UPDATES_QUEUE_NAME)


def _forget_pending_work() -> None:
    """No pending row or queued message of another test (or of a world's set-up): the sweep here sees this test's
    work only."""
    for row in pending.due(now=time.time() + 10**9, limit=10_000):
        base.table(pending.TABLE).delete_entity(pending.PARTITION, row.ref.row_key)
    for queue in ALL_QUEUES:
        queued_messages(queue)


@pytest.fixture(autouse=True)
def clean(sentry_http: responses.RequestsMock) -> responses.RequestsMock:
    _forget_pending_work()
    SentryWorld.mock = sentry_http
    return sentry_http


def _table() -> str:
    return "/" + base.table_name(pending.TABLE)


def _later() -> FakeClock:
    """A clock past every grace period: what the sweep sees a few minutes from now."""
    return FakeClock(time.time() + get_settings().sweep_grace_seconds + 5)


class SentryWorld:
    """A Sentry organization's installation and one tracked issue linked to a work item. Sentry shows the issue as
    the last webhook sent says (a webhook is a hint: the worker reads the issue, contract §15)."""

    mock: responses.RequestsMock

    def __init__(self) -> None:
        self.uuid, self.slug = new_id(), f"o{uuids.uuid4().hex[:8]}"
        self.org_id, self.issue_id = f"sentry-{self.slug}", str(uuids.uuid4().int % 10**9 + 1)
        SentryStore().put(SentryInstallation(self.uuid, self.slug, kind=INTERNAL, app_uuid=APP_UUID, token="t"))
        tracked_issue(self.org_id, self.issue_id, make_integration().id, 77)
        _forget_pending_work()  # the link's announcement to Sentry: not what these tests look at

    def resolve(self, request_id: str) -> int:
        issue_url = f"https://sentry.example/api/0/organizations/{self.slug}/issues/{self.issue_id}/"
        SentryWorld.mock.upsert(responses.GET, issue_url, json=issue_data(self.issue_id)["issue"])
        payload = envelope(self.uuid, "issue", "resolved", issue_data(self.issue_id))
        return post(payload, "issue", request_id=request_id).status_code

    def resolutions(self) -> int:
        """How often the issue was resolved: once per webhook applied that changed it."""
        view = issue_view(self.org_id, self.issue_id)
        assert view["status"] == "resolved" or not [e for e in view["activity"] if e["type"] == "resolved"]
        return sum(1 for entry in view["activity"] if entry["type"] == "resolved")

    def applied(self, request_id: str) -> bool:
        record = SentryStore().get_delivery(self.uuid, request_id)
        return record is not None and record[1] == APPLIED


def _settled(world: SentryWorld, request_id: str) -> bool:
    return pending.get(wakeups.hook_ref(world.uuid, request_id)) is None


# -- finding 2: a Sentry webhook is never lost -------------------------------------------------------------------


def test_a_webhook_whose_wake_up_was_not_queued_is_accepted_and_applied_once_by_the_sweep() -> None:
    world = SentryWorld()
    with failing_storage("/" + SENTRY_HOOKS_QUEUE_NAME) as failed:
        assert world.resolve("req-q") == 202  # recorded: accepted, though the queue took nothing
    assert failed and queued_messages(SENTRY_HOOKS_QUEUE_NAME) == []
    assert SentryStore().get_delivery(world.uuid, "req-q")[1] == RECEIVED
    report = sweep_pending(clock=_later())
    assert (report.woken, report.kinds) == (1, {pending.SENTRY_HOOK: 1})
    assert run_hooks()
    assert world.applied("req-q") and world.resolutions() == 1 and _settled(world, "req-q")
    # Nothing of the webhook is left to wake; the status it changed waits, noted, for the outbound worker.
    assert sweep_pending(clock=_later()).kinds == {pending.OUTBOUND: 1}


def test_a_webhook_whose_queue_and_first_sweep_both_fail_is_applied_once_by_the_next_sweep() -> None:
    world = SentryWorld()
    with failing_storage("/" + SENTRY_HOOKS_QUEUE_NAME):
        assert world.resolve("req-qq") == 202
        first = sweep_pending(clock=_later())  # the second failure: the sweep's own wake-up is refused too
    assert (first.woken, first.failed) == (0, 1)
    assert queued_messages(SENTRY_HOOKS_QUEUE_NAME) == []
    # The failed wake moved the row's wake time a grace period on before it tried: the next run, later, wakes it.
    later = FakeClock(time.time() + 2 * get_settings().sweep_grace_seconds + 10)
    assert sweep_pending(clock=later).woken == 1
    run_hooks()
    assert world.applied("req-qq") and world.resolutions() == 1 and _settled(world, "req-qq")


def test_a_webhook_whose_pending_row_could_not_be_stored_is_503_and_nothing_is_recorded() -> None:
    world = SentryWorld()
    with failing_storage(_table()):
        assert world.resolve("req-p") == 503
    assert SentryStore().get_delivery(world.uuid, "req-p") is None
    assert queued_messages(SENTRY_HOOKS_QUEUE_NAME) == []
    assert world.resolve("req-p") == 202  # Sentry's next attempt (or the same event sent again) is taken
    run_hooks()
    assert world.applied("req-p") and world.resolutions() == 1 and _settled(world, "req-p")


def test_a_webhook_whose_record_could_not_be_stored_is_503_and_its_pending_row_is_settled_harmlessly() -> None:
    world = SentryWorld()
    deliveries = "/" + base.table_name("sentrydeliveries")
    with failing_storage(deliveries):
        assert world.resolve("req-r") == 503
    assert SentryStore().get_delivery(world.uuid, "req-r") is None
    assert not _settled(world, "req-r")  # the row was noted first: it points at nothing
    assert sweep_pending(clock=_later()).woken == 1
    run_hooks()  # the worker finds no record, applies nothing, settles the row
    assert _settled(world, "req-r") and world.resolutions() == 0
    assert world.resolve("req-r") == 202  # a later attempt of the same request is taken and applied once
    run_hooks()
    assert world.applied("req-r") and world.resolutions() == 1


def test_a_webhook_applied_but_neither_marked_nor_settled_is_woken_again_and_applies_nothing_more() -> None:
    """The worker's steps after applying fail (the record's mark, then the row's settle): the sweep wakes it again,
    and applying it again changes nothing more."""
    world = SentryWorld()
    assert world.resolve("req-m") == 202
    deliveries = "/" + base.table_name("sentrydeliveries")
    with failing_storage(deliveries, method="PATCH"), failing_storage(_table(), method="DELETE"):
        outcome = process_hook_message(queued_messages(SENTRY_HOOKS_QUEUE_NAME)[0])
    assert outcome.result == "retried" and world.resolutions() == 1  # applied, but not marked applied
    assert not world.applied("req-m") and not _settled(world, "req-m")
    later = FakeClock(time.time() + outcome.delay + get_settings().sweep_grace_seconds + 5)
    assert sweep_pending(clock=later).kinds.get(pending.SENTRY_HOOK) == 1
    run_hooks()
    assert world.applied("req-m") and _settled(world, "req-m")
    assert world.resolutions() == 1  # the same status again: no second change


def test_a_repeated_request_id_is_a_duplicate_and_never_re_queued_by_the_intake() -> None:
    """The 2-minute re-queue of a repeated `Request-ID` is gone: the sweep is the one way lost work returns."""
    world = SentryWorld()
    with failing_storage("/" + SENTRY_HOOKS_QUEUE_NAME):
        assert world.resolve("req-d") == 202
    assert world.resolve("req-d") == 200
    assert queued_messages(SENTRY_HOOKS_QUEUE_NAME) == []
    assert sweep_pending(clock=_later()).woken == 1
    [message] = queued_messages(SENTRY_HOOKS_QUEUE_NAME)
    assert read_hook_message(message) == (world.uuid, "req-d", 0)


# -- finding 7 and the admin paths: saved is sent --------------------------------------------------------------


def test_a_sentry_comment_saved_while_the_queue_was_down_is_sent_by_a_repeat_and_by_the_sweep() -> None:
    from shared.admin.comments import add_comment

    world = SentryWorld()
    body = {"author": "Dana", "text": "seen in production"}
    with failing_storage("/" + OUTBOUND_QUEUE_NAME):
        add_comment(world.org_id, world.issue_id, body, comment_id="sentry-1")  # saved: no 503
    assert queued_messages(OUTBOUND_QUEUE_NAME) == []
    again = add_comment(world.org_id, world.issue_id, body, comment_id="sentry-1")  # Sentry's repeat
    assert again.comment_id == "sentry-1"
    assert len(queued_messages(OUTBOUND_QUEUE_NAME)) == 1  # before: the repeat returned it and queued nothing
    with failing_storage("/" + OUTBOUND_QUEUE_NAME):
        add_comment(world.org_id, world.issue_id, {**body, "text": "second"}, comment_id="sentry-2")
    report = sweep_pending(clock=_later())
    assert report.kinds.get(pending.COMMENT) == 2  # both comments' rows: neither was sent yet
    assert len(queued_messages(OUTBOUND_QUEUE_NAME)) == 2


def test_a_status_change_accepted_while_the_queue_was_down_is_sent_by_the_sweep() -> None:
    from shared.admin.tracker import put_issue

    world = SentryWorld()
    org_id, issue_id = world.org_id, world.issue_id
    with failing_storage("/" + OUTBOUND_QUEUE_NAME):
        put_issue(org_id, issue_id, {"status": "resolved"})  # saved and noted: answered 200, not 503
    assert queued_messages(OUTBOUND_QUEUE_NAME) == []
    sweep_pending(clock=_later())
    [message] = queued_messages(OUTBOUND_QUEUE_NAME)
    assert message == to_outbound_message(OutboundChange(org_id, issue_id, ("status",)))


def test_a_change_whose_pending_row_could_not_be_stored_is_503_saved_but_not_queued() -> None:
    from shared.admin.tracker import put_issue
    from shared.errors import NotQueued

    world = SentryWorld()
    with failing_storage(_table()), pytest.raises(NotQueued):
        put_issue(world.org_id, world.issue_id, {"status": "resolved"})


def test_a_worker_settles_only_the_row_it_read_and_a_change_noted_meanwhile_stays() -> None:
    world = SentryWorld()
    change = OutboundChange(world.org_id, world.issue_id, ("status",))
    ref = wakeups.outbound_ref(change)
    assert ref is not None
    wakeups.note(ref, OUTBOUND_QUEUE_NAME, to_outbound_message(change))
    row = pending.get(ref)
    wakeups.note(ref, OUTBOUND_QUEUE_NAME, to_outbound_message(change))  # accepted again while the worker ran
    wakeups.settle(row)
    assert pending.get(ref) is not None
    wakeups.settle(pending.get(ref))
    assert pending.get(ref) is None


def test_a_retried_change_is_not_woken_by_the_sweep_before_its_retry_is_due() -> None:
    ref = PendingRef(pending.OUTBOUND, new_id())
    wakeups.note(ref, OUTBOUND_QUEUE_NAME, "message")

    def fails() -> None:
        raise RetryLater("Azure DevOps answered 503", 30.0)

    outcome = with_backoff(OUTBOUND_QUEUE_NAME, 0, fails, lambda failures: f"again {failures}", "test", ref)
    assert outcome.result == "retried" and outcome.delay == 30
    row = pending.get(ref)
    assert row is not None and row.wake_at >= time.time() + 30 + get_settings().sweep_grace_seconds - 5
    assert sweep_pending(clock=_later()).woken == 0  # the retry is due first
    # The retry ("again 1", due in 30 s) would become visible on the shared queue during a later module, whose
    # local host would take it and poison it: remove it, delayed messages included.
    queues.queue_client(OUTBOUND_QUEUE_NAME).clear_messages()


# -- finding 6: poison never expires ------------------------------------------------------------------------------


def test_a_poisoned_message_never_expires_and_its_pending_row_is_settled() -> None:
    queued_messages(OUTBOUND_QUEUE_NAME + queues.POISON_SUFFIX)
    ref = PendingRef(pending.OUTBOUND, new_id())
    wakeups.note(ref, OUTBOUND_QUEUE_NAME, "message")

    def fails() -> None:
        raise RetryLater("Azure DevOps is down")

    outcome = with_backoff(OUTBOUND_QUEUE_NAME, 10**6, fails, lambda failures: f"again {failures}", "test", ref)
    assert outcome.result == "poisoned"
    [peeked] = queues.queue_client(OUTBOUND_QUEUE_NAME + queues.POISON_SUFFIX).peek_messages(max_messages=32)
    assert peeked.content == "again 0"
    assert peeked.expires_on.year == 9999  # time to live -1: kept until redriven or deleted by a person
    assert pending.get(ref) is None  # the poison queue holds it now; the sweep must not wake it forever
    queued_messages(OUTBOUND_QUEUE_NAME + queues.POISON_SUFFIX)


# -- the sweep itself ----------------------------------------------------------------------------------------------


def test_the_sweep_wakes_only_rows_past_their_grace_and_records_its_run() -> None:
    fresh, old = PendingRef(pending.COMMENT, new_id()), PendingRef(pending.COMMENT, new_id())
    now = time.time()
    pending.note(fresh, OUTBOUND_QUEUE_NAME, "fresh", now=now, grace=600)
    pending.note(old, OUTBOUND_QUEUE_NAME, "old", now=now - 700, grace=600)
    report = sweep_pending(clock=FakeClock(now))
    assert (report.due, report.woken) == (1, 1)
    assert queued_messages(OUTBOUND_QUEUE_NAME) == ["old"]
    assert sweep_pending(clock=FakeClock(now)).woken == 0  # woken once per grace period, not every run
    record = timer_runs.timer_records()["sweep"]
    assert record.worked == 0 and record.finished and not record.running


def test_the_sweep_leaves_alone_a_row_naming_a_queue_that_is_not_the_apps() -> None:
    ref = PendingRef(pending.COMMENT, new_id())
    pending.note(ref, "someone-elses-queue", "x", now=time.time() - 1000, grace=1)
    report = sweep_pending(clock=FakeClock(time.time()))
    assert (report.woken, report.failed) == (0, 1)


def test_the_sweep_stops_at_its_bound_and_the_next_run_goes_on() -> None:
    now = time.time()
    for n in range(5):
        pending.note(PendingRef(pending.COMMENT, f"bound-{n}"), OUTBOUND_QUEUE_NAME, f"m{n}", now=now - 1000, grace=1)
    first = sweep_pending(clock=FakeClock(now), rows_per_run=3)
    assert (first.woken, first.finished) == (3, False)
    assert sweep_pending(clock=FakeClock(now)).woken == 2
    assert sorted(queued_messages(OUTBOUND_QUEUE_NAME)) == [f"m{n}" for n in range(5)]


def test_the_sweep_with_storage_down_records_a_failed_run_and_raises_nothing() -> None:
    with failing_storage(_table()):
        report = sweep_pending(clock=FakeClock(time.time()))
    assert not report.finished
    assert "pending" in (timer_runs.timer_records()["sweep"].error or "")


def test_a_pending_row_stays_cheap_to_find(monkeypatch) -> None:
    """The sweep's query names the one partition: a filter on the partition key, not a scan of other tables."""
    seen: list[str] = []
    original = base.query

    def recording(table, text, parameters, what, **kwargs):
        seen.append(text)
        return original(table, text, parameters, what, **kwargs)

    monkeypatch.setattr(base, "query", recording)
    sweep_pending(clock=FakeClock(time.time()))
    assert seen and all(text.startswith("PartitionKey eq @pk") for text in seen)
