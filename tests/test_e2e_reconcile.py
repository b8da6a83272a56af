"""Reconcile never undoes a person (issue 9, item 1; contract §9), end to end: the local host, Azurite and the fake
Azure DevOps, which delivers service hooks for changes made through its own API."""

from __future__ import annotations

import pytest

from tests.e2e import create_world, start_host, stop_host, tracked_issue
from tests.helpers import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("azurite")]


@pytest.fixture(scope="module")
def reconcile_host(fake_ado, tmp_path_factory):
    host = start_host(tmp_path_factory.mktemp("reconcile"), fake_ado.settings_env())
    yield host
    stop_host(host)


def _subscribe(host, integration_id: str) -> str:
    response = host.call("POST", f"/api/vsts/integrations/{integration_id}/subscription")
    assert response.status_code == 201, response.text
    return response.json()["subscription"]["id"]


def _reconcile(host) -> None:
    """Run the timer now and wait for the host to say it ran (one log line per invocation)."""
    runs = _runs(host)
    host.invoke("reconcile")
    wait_for(lambda: len(_runs(host)) > len(runs), what="reconcile to run")
    assert "succeeded" in _runs(host)[-1].lower(), _runs(host)[-1]


def _runs(host) -> list[str]:
    return [line for line in host.log().splitlines() if "Executed reconcile" in line]


def test_reconcile_after_a_lost_unrelated_edit_keeps_a_persons_later_assignment(reconcile_host, fake_ado) -> None:
    host = reconcile_host
    name, integration_id, org = create_world(host, fake_ado, work_items=(77,))
    subscription_id = _subscribe(host, integration_id)
    # Assigned to Dana in Azure DevOps, delivered: the tracked issue follows.
    fake_ado.update_work_item(name, 77, {"System.AssignedTo": "Dana <dana@example.com>"})
    wait_for(lambda: (tracked_issue(host, org)["assignee"] or {}).get("email") == "dana@example.com")
    # A person then assigns the tracked issue to Lee in the tracker.
    response = host.call("PUT", f"/api/orgs/{org}/issues/I77", json={"assignee": "lee@example.com"})
    assert response.status_code == 200, response.text
    # Someone edits only the title in Azure DevOps, and that delivery is lost.
    fake_ado.set_subscription_status(subscription_id, "disabledByUser")
    delivered = len(fake_ado.deliveries)
    fake_ado.update_work_item(name, 77, {"System.Title": "A better title"})
    assert len(fake_ado.deliveries) == delivered
    batches = fake_ado.count("POST", r"workitemsbatch")
    _reconcile(host)
    assert fake_ado.count("POST", r"workitemsbatch") == batches + 1  # it did read the work item
    view = tracked_issue(host, org)
    assert view["assignee"]["email"] == "lee@example.com"  # the person's change stands
    # A real change of the assignee in Azure DevOps (cleared), also lost, is recovered by the next reconcile.
    fake_ado.update_work_item(name, 77, {"System.AssignedTo": None})
    _reconcile(host)
    assert tracked_issue(host, org)["assignee"] is None
