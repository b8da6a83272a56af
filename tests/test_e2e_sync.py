"""Deliveries end to end: Azure DevOps (the fake) -> POST /api/vsts/issue-updated on the local host -> the
queue in Azurite -> apply_workitem_update -> the tracked issue."""

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from devhost.azurite import Azurite
from tests.e2e import create_world, queue_length, start_host, stop_host, tracked_issue
from tests.helpers import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("azurite")]

SECRET = "e2e-webhook-secret-0123456789"


def setup_world(host, fake_ado, **options):
    return create_world(host, fake_ado, webhook_secret=SECRET, **options)


def issue(host, org: str) -> dict:
    return tracked_issue(host, org, 77)


def deliver(host, payload: dict, secret: str = SECRET) -> int:
    return host.call("POST", "/api/vsts/issue-updated", json=payload, headers={"Shared-Secret": secret}).status_code


def test_a_delivery_assigns_and_resolves_through_the_host(host, fake_ado) -> None:
    name, integration_id, org = setup_world(host, fake_ado)
    payload = fake_ado.update_work_item(
        name, 77, {"System.State": "Resolved", "System.AssignedTo": "Dana Scully <dana@example.com>"}, deliver=False
    )
    assert deliver(host, payload) == 202
    wait_for(lambda: issue(host, org)["status"] == "resolved", what="the issue to be resolved")
    view = issue(host, org)
    assert view["assignee"] == {"email": "dana@example.com", "user_id": "u-dana"}
    assert sorted(a["type"] for a in view["activity"] if a["source"] == "vsts") == ["assigned", "resolved"]
    assert "Executed apply_workitem_update (queue vsts-workitem-updates" in host.log()


def test_fifty_deliveries_at_once_end_in_the_highest_revisions_state(host, fake_ado) -> None:
    name, integration_id, org = setup_world(host, fake_ado)
    payloads = []
    for i in range(50):
        state = "Resolved" if i % 2 == 0 else "Active"
        who = "Dana <dana@example.com>" if i % 3 else "Lee <lee@example.com>"
        payloads.append(
            fake_ado.update_work_item(name, 77, {"System.State": state, "System.AssignedTo": who}, deliver=False)
        )
    final = fake_ado.work_item(name, 77)
    with ThreadPoolExecutor(50) as pool:
        statuses = list(pool.map(lambda p: deliver(host, p), reversed(payloads)))  # newest first: worst order
    assert statuses == [202] * 50
    expected_status = "resolved" if final["fields"]["System.State"] == "Resolved" else "unresolved"
    expected_email = final["fields"]["System.AssignedTo"].split("<")[1].rstrip(">")

    def settled() -> bool:
        marks = issue(host, org)
        return marks["status"] == expected_status and (marks["assignee"] or {}).get("email") == expected_email

    wait_for(settled, 60, "the issue to reach the final revision's state")
    # Nothing later moves it: every queued message has run and none went to the poison queue.
    wait_for(lambda: queue_length(host, "vsts-workitem-updates") == 0, 60, "the queue to drain")
    view = issue(host, org)
    assert (view["status"], view["assignee"]["email"]) == (expected_status, expected_email)
    assert queue_length(host, "vsts-workitem-updates-poison") <= 0


def test_storage_down_means_503_never_2xx_and_the_retry_applies(fake_ado, tmp_path: Path) -> None:
    # Its own Azurite, on disk, so it can be stopped and started again with its data.
    azurite = Azurite.on_free_ports(location=tmp_path / "azurite").start()
    host = start_host(tmp_path, {**fake_ado.settings_env(), "AzureWebJobsStorage": azurite.connection_string})
    try:
        name, integration_id, org = setup_world(host, fake_ado)
        payload = fake_ado.update_work_item(name, 77, {"System.State": "Resolved"}, deliver=False)
        azurite.stop()
        try:
            status = deliver(host, payload)
        finally:
            azurite.start()
        assert status == 503
        assert issue(host, org)["status"] == "unresolved"
        # Azure DevOps retries 503s; the retry is accepted and applied.
        assert deliver(host, payload) == 202
        wait_for(lambda: issue(host, org)["status"] == "resolved", 30, "the retried delivery to apply")
    finally:
        stop_host(host)
        azurite.stop()


@pytest.mark.parametrize("secret", ["", "wrong-secret"])
def test_a_refused_delivery_changes_nothing(host, fake_ado, secret) -> None:
    name, integration_id, org = setup_world(host, fake_ado)
    payload = fake_ado.update_work_item(name, 77, {"System.State": "Resolved"}, deliver=False)
    response = requests.post(
        f"{host.url}/api/vsts/issue-updated",
        data=json.dumps(payload),
        headers={"Shared-Secret": secret} if secret else {},
        timeout=30,
    )
    assert (response.status_code, response.json()) == (401, {"error": "unauthorized"})
    assert issue(host, org)["status"] == "unresolved"
