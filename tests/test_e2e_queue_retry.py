"""The queue's back-off end to end (contract §5.2): local host, Azurite and the fake Azure DevOps.

The host runs the retry policy at a scale of seconds (base 1 s, cap 2 s, window 5 s: delays 1, 2, 2, then the
poison queue), so the tests watch the same sequence an hour of trouble takes with the defaults. They assert on
what happened (attempts, delays written in the log, the final effect), never on how long it took.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from devtools.fakes import FakeAzureDevOps
from tests.e2e import HostProcess, create_world, queue_length, start_host, stop_host, tracked_issue
from tests.helpers import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("azurite")]

SECRET = "queue-retry-webhook-secret-0123456789"
QUEUE = "vsts-workitem-updates"
POISON = f"{QUEUE}-poison"
RETRY_ENV = {"QUEUE_RETRY_BASE_SECONDS": "1", "QUEUE_RETRY_MAX_SECONDS": "2", "QUEUE_RETRY_WINDOW_SECONDS": "5"}
# The app's Azure DevOps client itself tries a 503 three times (honouring Retry-After) before the queue sees it.
REQUESTS_PER_ATTEMPT = 3
UNAVAILABLE = {"status": 503, "headers": {"Retry-After": "1"}, "body": {"message": "Service Unavailable"}}


@pytest.fixture(scope="module")
def retry_host(fake_ado: FakeAzureDevOps, tmp_path_factory: pytest.TempPathFactory) -> Iterator[HostProcess]:
    process = start_host(
        tmp_path_factory.mktemp("retry-host"), {**fake_ado.settings_env(), "ADO_HTTP_TIMEOUT": "2", **RETRY_ENV}
    )
    yield process
    stop_host(process)


def states_path(name: str) -> str:
    return rf"/{name}/.*/workitemtypes/Bug/states$"


def deliver_resolved(host: HostProcess, fake: FakeAzureDevOps, name: str) -> None:
    payload = fake.update_work_item(name, 77, {"System.State": "Resolved"}, deliver=False)
    response = host.call("POST", "/api/vsts/issue-updated", json=payload, headers={"Shared-Secret": SECRET})
    assert response.status_code == 202, response.text


def requeued(host: HostProcess, wid: int = 77) -> list[tuple[int, int]]:
    """(attempt, delay) of every failed attempt the worker queued again, in order."""
    pattern = rf"work item {wid} rev \d+: attempt (\d+) failed .*; queued again, due in (\d+) s"
    return [(int(a), int(d)) for a, d in re.findall(pattern, host.log())]


def test_a_delivery_outlasting_azure_devops_trouble_is_retried_with_growing_delays_then_applied(
    retry_host, fake_ado
) -> None:
    name, integration_id, org = create_world(retry_host, fake_ado, webhook_secret=SECRET, members={})
    failing_attempts = 3
    fake_ado.fail_next("GET", states_path(name), **UNAVAILABLE, count=failing_attempts * REQUESTS_PER_ATTEMPT)
    try:
        deliver_resolved(retry_host, fake_ado, name)
        wait_for(lambda: tracked_issue(retry_host, org)["status"] == "resolved", 90, "the delivery to apply")
    finally:
        fake_ado.clear_faults()
    # Three failed attempts, each put back with a longer (then capped) delay; the fourth applied it.
    assert requeued(retry_host) == [(1, 1), (2, 2), (3, 2)], retry_host.log()[-4000:]
    assert fake_ado.count("GET", states_path(name)) == failing_attempts * REQUESTS_PER_ATTEMPT + 1
    assert [a["type"] for a in tracked_issue(retry_host, org)["activity"]] == ["resolved"]
    assert queue_length(retry_host, POISON) in (-1, 0)
    assert "poison queue after" not in retry_host.log()
    # Each attempt that returned normally was deleted: no original is left to come back.
    wait_for(lambda: queue_length(retry_host) == 0, 10, "the settled messages to be deleted")


def test_a_delivery_that_keeps_failing_is_poisoned_after_its_budget_and_redrive_applies_it(
    retry_host, fake_ado
) -> None:
    name, integration_id, org = create_world(retry_host, fake_ado, work_items=(78,), webhook_secret=SECRET, members={})
    fake_ado.fail_next("GET", states_path(name), **UNAVAILABLE, count=10**6)
    try:
        payload = fake_ado.update_work_item(name, 78, {"System.State": "Resolved"}, deliver=False)
        response = retry_host.call("POST", "/api/vsts/issue-updated", json=payload, headers={"Shared-Secret": SECRET})
        assert response.status_code == 202
        wait_for(lambda: queue_length(retry_host, POISON) == 1, 90, "the message to reach the poison queue")
    finally:
        fake_ado.clear_faults()
    # The worker logs the move just after it: wait for the line rather than read the log at once.
    moved = "work item 78 rev 2: moved to the poison queue after 4 failed attempts"
    wait_for(lambda: moved in retry_host.log(), 30, "the worker to log the move")
    assert requeued(retry_host, 78) == [(1, 1), (2, 2), (3, 2)]
    assert tracked_issue(retry_host, org, 78)["status"] == "unresolved"

    # Azure DevOps is back: redrive puts the message back and it is applied, with a whole new budget.
    response = retry_host.call("POST", f"/api/queues/{QUEUE}/redrive")
    assert response.status_code == 200, response.text
    assert response.json() == {"queue": QUEUE, "moved": 1, "more": False}
    wait_for(lambda: tracked_issue(retry_host, org, 78)["status"] == "resolved", 60, "the redriven message")
    assert queue_length(retry_host, POISON) == 0
    # Nothing left to move: the poison queue's own name designates the same queue.
    assert retry_host.call("POST", f"/api/queues/{POISON}/redrive").json() == {
        "queue": QUEUE,
        "moved": 0,
        "more": False,
    }


@pytest.mark.parametrize(
    ("queue", "status"),
    [("Not_A_Queue", 400), ("ab", 400), ("double--hyphen", 400), ("someone-elses-queue", 404), ("vsts-outbounds", 404)],
)
def test_redrive_refuses_malformed_names_and_queues_that_are_not_the_apps(retry_host, queue, status) -> None:
    response = retry_host.call("POST", f"/api/queues/{queue}/redrive")
    assert response.status_code == status
    assert list(response.json()) == ["error"]
