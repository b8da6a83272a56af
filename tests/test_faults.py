"""Faults, end to end through the local host: each gets a clear status, loses nothing, and recovers.

Storage stopped mid-run and restarted; Azure DevOps (the fake) answering 429 with Retry-After, 500, a 203
sign-in page, or nothing at all; a failing OAuth token refresh; a failing states lookup behind the queue.
"""

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from devhost.azurite import Azurite
from shared.store.integrations import IntegrationStore
from tests.e2e import create_world, queue_length, start_host, stop_host
from tests.helpers import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("azurite")]

SECRET = "faults-webhook-secret-0123456789"


def world(host, fake_ado, work_items=(77,), credentials=None):
    return create_world(
        host, fake_ado, work_items=work_items, credentials=credentials, webhook_secret=SECRET, members={}
    )


def status_of(host, org, wid) -> str:
    return host.call("GET", f"/api/orgs/{org}/issues/I{wid}").json()["status"]


def deliver(host, payload) -> int:
    return host.call("POST", "/api/vsts/issue-updated", json=payload, headers={"Shared-Secret": SECRET}).status_code


def test_storage_stopped_mid_run_loses_no_acknowledged_delivery(fake_ado, tmp_path) -> None:
    azurite = Azurite.on_free_ports(location=tmp_path / "azurite").start()
    host = start_host(tmp_path, {**fake_ado.settings_env(), "AzureWebJobsStorage": azurite.connection_string})
    try:
        work_items = tuple(range(200, 230))
        name, integration_id, org = world(host, fake_ado, work_items)
        payloads = {
            wid: fake_ado.update_work_item(name, wid, {"System.State": "Resolved"}, deliver=False) for wid in work_items
        }
        statuses: dict[int, int] = {}
        # A third before storage stops, a third while it is stopping, a third after it stopped.
        stopping, stopped = threading.Event(), threading.Event()
        phase = {wid: (None, stopping, stopped)[i * 3 // len(work_items)] for i, wid in enumerate(work_items)}

        def send(wid: int) -> None:
            if phase[wid] is not None:
                assert phase[wid].wait(60)
            statuses[wid] = deliver(host, payloads[wid])

        with ThreadPoolExecutor(4) as pool:
            futures = [pool.submit(send, wid) for wid in work_items]
            wait_for(lambda: len(statuses) >= 5, 30, "the first deliveries to be answered")
            stopping.set()
            azurite.stop()  # storage goes away while deliveries are arriving
            stopped.set()
            for future in futures:
                future.result()
        print("\nstatuses while storage stopped:", sorted(set(statuses.values())))
        assert set(statuses.values()) <= {202, 503}, statuses  # clear answers, never a 5xx other than 503
        assert 503 in statuses.values()
        azurite.start()
        # Azure DevOps retries what was not acknowledged; everything acknowledged must still arrive.
        for wid, status in statuses.items():
            if status != 202:
                assert deliver(host, payloads[wid]) == 202
        try:
            wait_for(lambda: all(status_of(host, org, wid) == "resolved" for wid in work_items), 60, "every delivery")
        except AssertionError:
            missing = [(wid, statuses[wid]) for wid in work_items if status_of(host, org, wid) != "resolved"]
            raise AssertionError(f"not applied: {missing}\n{host.log()[-8000:]}") from None
    finally:
        stop_host(host)
        azurite.stop()


@pytest.mark.parametrize(
    ("fault", "status"),
    [
        ({"status": 429, "headers": {"Retry-After": "30"}}, 503),
        ({"status": 500, "body": {"message": "Internal error"}}, 502),
        ({"status": 203, "headers": {"Content-Type": "text/html"}, "body": "<html>Sign in</html>"}, 502),
    ],
    ids=["429", "500", "203"],
)
def test_azure_devops_faults_on_get_issue_then_recovery(host, fake_ado, fault, status) -> None:
    name, integration_id, org = world(host, fake_ado)
    fake_ado.fail_next(
        "GET", r"/workitems/77$", fault["status"], headers=fault.get("headers"), body=fault.get("body", b""), count=3
    )
    response = host.call("GET", f"/api/vsts/{integration_id}/issues/77")
    assert response.status_code == status and list(response.json()) == ["error"]
    if status == 503:
        assert response.headers["Retry-After"] == "30"
    fake_ado.clear_faults()
    assert host.call("GET", f"/api/vsts/{integration_id}/issues/77").status_code == 200


def test_azure_devops_not_answering_is_504_then_recovers(host, fake_ado) -> None:
    name, integration_id, org = world(host, fake_ado)
    fake_ado.set_delay(r"/workitems/77$", 3)  # longer than this host's ADO_HTTP_TIMEOUT of 2 s
    try:
        assert host.call("GET", f"/api/vsts/{integration_id}/issues/77").status_code == 504
    finally:
        fake_ado.clear_faults()
    assert host.call("GET", f"/api/vsts/{integration_id}/issues/77").status_code == 200


def test_a_failing_token_refresh_is_502_then_recovers(host, fake_ado) -> None:
    credentials = {"type": "oauth", "access_token": "old", "refresh_token": "rt-faults", "expires_at": 0}
    name, integration_id, org = world(host, fake_ado)  # linking reads the work item: built with the PAT
    assert host.call("PUT", f"/api/vsts/integrations/{integration_id}", json={"credentials": credentials}).ok
    fake_ado.add_refresh_token(name, "rt-faults")
    fake_ado.fail_next("POST", r"/oauth2/token$", 500, body={"Error": "server_error"})
    response = host.call("GET", f"/api/vsts/{integration_id}/issues/77")
    assert response.status_code == 502
    stored = IntegrationStore().get(integration_id)
    assert stored.credentials["refresh_token"] == "rt-faults" and stored.refresh_lock_until is None  # nothing lost
    assert host.call("GET", f"/api/vsts/{integration_id}/issues/77").status_code == 200  # the refresh succeeds now
    assert IntegrationStore().get(integration_id).credentials["refresh_token"] != "rt-faults"


def test_a_failing_states_lookup_behind_the_queue_is_retried_until_it_applies(host, fake_ado) -> None:
    name, integration_id, org = world(host, fake_ado)
    payload = fake_ado.update_work_item(name, 77, {"System.State": "Resolved"}, deliver=False)
    fake_ado.fail_next("GET", r"/workitemtypes/Bug/states$", 500, body={"message": "boom"})
    assert deliver(host, payload) == 202
    # The first attempt fails; the worker queues the message again with the first back-off delay (10 s).
    wait_for(lambda: status_of(host, org, 77) == "resolved", 60, "the retried message to apply")
    assert "attempt 1 failed" in host.log() and "queued again, due in 10 s" in host.log()
    assert queue_length(host, "vsts-workitem-updates-poison") in (-1, 0)
