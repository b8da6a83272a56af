"""The queue's back-off (shared.sync.retry), the attempt count in queue messages, and the storage deadline hook."""

from __future__ import annotations

import json
import time
from types import SimpleNamespace

import pytest

from shared import clock
from shared.deliveries import InvalidDelivery, from_message, read_message, to_message
from shared.model.changes import StateChange, WorkItemUpdate
from shared.settings import load_settings
from shared.store import deadline
from shared.sync.retry import MAX_RETRY_AFTER_SECONDS, RetryPolicy

pytestmark = pytest.mark.usefixtures("azurite")

UPDATE = WorkItemUpdate(
    integration_id="c0ffee00-0000-4000-8000-000000000001",
    work_item_id=77,
    rev=3,
    work_item_type="Bug",
    project_id="p1",
    assignee=None,
    state=StateChange(old="Active", new="Resolved"),
    changed_date=None,
    event_id=None,
)


def test_default_policy_doubles_from_10_s_to_10_minutes_and_survives_over_an_hour() -> None:
    policy = RetryPolicy()
    delays = [policy.delay(n) for n in range(1, 13)]
    assert delays == [10, 20, 40, 80, 160, 320, 600, 600, 600, 600, 600, None]
    assert policy.retries == 11
    assert policy.survival_seconds == 3630 >= 3600


def test_the_settings_defaults_are_the_policy_defaults() -> None:
    settings = load_settings({})
    assert (
        settings.queue_retry_base_seconds,
        settings.queue_retry_max_seconds,
        settings.queue_retry_window_seconds,
    ) == (RetryPolicy.base_seconds, RetryPolicy.max_seconds, RetryPolicy.window_seconds)


@pytest.mark.parametrize("window", [1, 5, 59, 600, 3600, 86400])
def test_every_window_is_covered_by_the_scheduled_delays_alone(window: float) -> None:
    policy = RetryPolicy(base_seconds=2, max_seconds=30, window_seconds=window)
    scheduled = [policy.delay(n) for n in range(1, policy.retries + 1)]
    assert None not in scheduled and sum(scheduled) >= window
    assert sum(scheduled[:-1]) < window  # no more retries than the window needs
    assert policy.delay(policy.retries + 1) is None


def test_retry_after_lengthens_a_delay_but_never_shortens_it() -> None:
    policy = RetryPolicy()
    assert policy.delay(1, retry_after=45) == 45
    assert policy.delay(1, retry_after=0.2) == 10
    assert policy.delay(7, retry_after=30) == 600
    assert policy.delay(2, retry_after=32.1) == 33  # whole seconds, rounded up
    assert policy.delay(1, retry_after=10**9) == MAX_RETRY_AFTER_SECONDS  # under the queue's 7-day limit
    assert policy.delay(12, retry_after=30) is None  # Retry-After does not extend the budget


def test_a_sub_second_base_still_waits_whole_seconds() -> None:
    assert RetryPolicy(base_seconds=0.2, max_seconds=0.5, window_seconds=1).delay(1) == 1


def test_the_attempt_count_rides_in_the_message_and_the_webhook_message_is_unchanged() -> None:
    plain = to_message(UPDATE)
    assert "attempt" not in json.loads(plain)
    assert read_message(plain) == (UPDATE, 0)
    again = to_message(UPDATE, attempt=3)
    assert json.loads(again)["attempt"] == 3
    assert read_message(again) == (UPDATE, 3)
    assert from_message(again) == UPDATE


@pytest.mark.parametrize("value", [0, -1, True, 1.0, "2", None, 10**6])
def test_a_message_with_an_attempt_count_to_message_cannot_write_is_refused(value: object) -> None:
    data = json.loads(to_message(UPDATE))
    data["attempt"] = value
    with pytest.raises(InvalidDelivery):
        read_message(json.dumps(data))


class _Context(dict):
    def __init__(self) -> None:
        super().__init__()
        self.options: dict = {}


def _attempt() -> SimpleNamespace:
    return SimpleNamespace(context=_Context())


def test_an_interactive_storage_operation_is_cut_to_its_budget_and_refused_after_it(monkeypatch) -> None:
    now = [1000.0]
    monkeypatch.setattr(clock.time, "monotonic", lambda: now[0])
    hook = deadline.attempt_bound(5, 15)
    request = _attempt()
    hook(request)
    assert request.context.options == {
        "connection_timeout": deadline.CONNECT_SECONDS,
        "read_timeout": deadline.OPERATION_SECONDS,
    }
    now[0] += deadline.OPERATION_SECONDS - 0.5  # the first attempt timed out; the SDK retries the same request
    hook(request)
    assert request.context.options["read_timeout"] == pytest.approx(0.5)
    now[0] += 1
    with pytest.raises(deadline.StorageDeadlineExceeded):
        hook(request)


def test_a_request_deadline_is_shared_by_its_operations(monkeypatch) -> None:
    now = [50.0]
    monkeypatch.setattr(clock.time, "monotonic", lambda: now[0])
    hook = deadline.attempt_bound(5, 15)
    with deadline.storage_deadline(4):
        hook(_attempt())
        now[0] += 3
        second = _attempt()
        hook(second)
        assert second.context.options["read_timeout"] == pytest.approx(1)
        now[0] += 1.5
        with pytest.raises(deadline.StorageDeadlineExceeded):
            hook(_attempt())
    fresh = _attempt()
    hook(fresh)  # outside the request: the per-operation budget only
    assert fresh.context.options["read_timeout"] == deadline.OPERATION_SECONDS


def test_background_work_keeps_the_clients_own_timeouts() -> None:
    request = _attempt()
    with deadline.background():
        deadline.attempt_bound(5, 15)(request)
    assert request.context.options == {}


def test_the_deadline_hook_reaches_real_storage_clients(monkeypatch) -> None:
    """The hook is installed on the table and queue clients the app uses (a request to Azurite carries it)."""
    from shared.store import base, queues

    seen: list[float] = []
    original = deadline.attempt_bound

    def spy(connect: float, read: float):
        inner = original(connect, read)

        def hook(request) -> None:
            inner(request)
            seen.append(request.context.options["read_timeout"])

        return hook

    monkeypatch.setattr(base, "attempt_bound", spy)
    monkeypatch.setattr(queues, "attempt_bound", spy)
    monkeypatch.setattr(base, "_services", base.PerKey())
    monkeypatch.setattr(base, "_tables", base.PerKey())
    monkeypatch.setattr(queues, "_clients", queues.PerKey())
    assert base.read_entity("nosuchtable", "p", "r", "a read") is None
    assert len(seen) == 1
    queues.enqueue("hello", f"q{int(time.time() * 1000) % 10**9}")  # a new queue: send, create, send
    assert len(seen) == 4 and all(0 < t <= deadline.OPERATION_SECONDS for t in seen)


def test_one_deadline_serves_storage_and_azure_devops(monkeypatch) -> None:
    """Issue 18, finding 11: the timers' Azure DevOps budget and the HTTP paths' storage budget are one mechanism
    (`shared.clock.Deadline`), cut the same way."""
    from shared.ado.client import AdoTimeout
    from shared.connections import ado

    now = [10.0]
    budget = clock.Deadline(5, lambda: now[0])
    assert ado.request_timeout(budget, 30) == 5 and budget.cut(2) == 2
    now[0] += 5
    with pytest.raises(AdoTimeout):
        ado.request_timeout(budget, 30)
    assert ado.Deadline is clock.Deadline  # the timers import the one class
