"""Creating and linking work items end to end (contract §12.4): the local host, Azurite and the fake Azure DevOps,
whose create validates fields by the project's process. A create, its retry with the same key, a field error,
a missing work item to link, and a host killed between Azure DevOps' answer and the app's own write."""

from __future__ import annotations

import threading
import uuid
from pathlib import Path
from typing import Any

import pytest
import requests

from devtools.fakes import FakeAzureDevOps
from shared.admin import tracker as tracker_admin
from tests.e2e import HostProcess, create_world, start_host, stop_host
from tests.helpers import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("azurite")]

CREATE = r"/_apis/wit/workitems/\$"
ISSUE_URL = "https://tracker.example.com/acme/issues/I1"


def world(host: HostProcess, fake: FakeAzureDevOps) -> tuple[str, str, str]:
    """An organization with an Agile project `Shop` (area `Shop\\Web`), installed by a tracker organization
    whose issue I1 has a url. Returns (fake organization, integration id, tracker organization)."""
    name, integration_id, org = create_world(host, fake, work_items=(), members={})
    fake.add_project(name, f"p-{uuid.uuid4().hex[:6]}", "Shop", process="Agile")
    fake.add_area(name, "Shop", "Web")
    response = host.call("PUT", f"/api/orgs/{org}/issues/I1", json={"title": "Checkout fails", "url": ISSUE_URL})
    assert response.status_code == 201, response.text
    return name, integration_id, org


def create(host: HostProcess, org: str, body: dict[str, Any], key: str | None = None) -> requests.Response:
    headers = {"Idempotency-Key": key} if key else {}
    return host.call("POST", f"/api/orgs/{org}/issues/I1/workitems", json=body, headers=headers)


def requests_of(fake: FakeAzureDevOps, org_name: str) -> list[str]:
    """What the app asked, but the `OPTIONS _apis/` that learns the server's API level on first use."""
    return [
        f"{r.method} {r.path}" for r in fake.requests if r.path.startswith(f"/{org_name}/") and r.method != "OPTIONS"
    ]


def test_create_then_the_same_key_again_gives_one_linked_work_item_and_the_same_answer(host, fake_ado) -> None:
    name, integration_id, org = world(host, fake_ado)
    body = {
        "integration_id": integration_id,
        "project": "Shop",
        "type": "Bug",
        "description": "It **fails** at `pay`.",
        "area_path": "Shop\\Web",
        "tags": ["checkout"],
    }
    before = len(requests_of(fake_ado, name))
    first = create(host, org, body, key="e2e-key-1")
    assert first.status_code == 201, first.text
    cold = requests_of(fake_ado, name)[before:]
    unmark = f"PATCH /{name}/_apis/wit/workitems/"  # the marker tag taken off once the answer is stored
    assert cold[:2] == [f"GET /{name}/Shop/_apis/wit/workitemtypes/Bug", f"POST /{name}/Shop/_apis/wit/workitems/$Bug"]
    assert len(cold) == 3 and cold[2].startswith(unmark)
    answer = first.json()
    work_item_id = answer["work_item_id"]
    assert answer == {
        "integration_id": integration_id,
        "work_item_id": work_item_id,
        "url": answer["url"],
        "display_name": f"Shop\\Web#{work_item_id}",
    }
    assert answer["url"].endswith(f"&id={work_item_id}")
    item = fake_ado.work_item(name, work_item_id)["fields"]
    assert item["Microsoft.VSTS.TCM.ReproSteps"] == "<p>It <strong>fails</strong> at <code>pay</code>.</p>"
    assert "System.Description" not in item
    assert item["System.Title"] == "Checkout fails" and item["System.Tags"] == "checkout"  # no marker left
    assert item["System.HyperLinkCount"] == 1
    links = host.call("GET", f"/api/orgs/{org}/issues/I1").json()["links"]
    assert links == [{"integration_id": integration_id, "work_item_id": work_item_id}]

    before = len(requests_of(fake_ado, name))
    again = create(host, org, body, key="e2e-key-1")
    assert again.status_code == 201 and again.json() == answer
    assert requests_of(fake_ado, name)[before:] == []  # answered from the record: Azure DevOps not asked
    warm = create(host, org, {**body, "tags": []}, key="e2e-key-2")
    assert warm.status_code == 201 and warm.json()["work_item_id"] != work_item_id
    warm_requests = requests_of(fake_ado, name)[before:]
    assert warm_requests[0] == f"POST /{name}/Shop/_apis/wit/workitems/$Bug" and len(warm_requests) == 2
    assert warm_requests[1].startswith(unmark)
    assert "System.Tags" not in fake_ado.work_item(name, warm.json()["work_item_id"])["fields"] or (
        fake_ado.work_item(name, warm.json()["work_item_id"])["fields"]["System.Tags"] == ""
    )
    print(f"\nAzure DevOps requests per create: cold {len(cold)}, warm {len(warm_requests)}")


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"area_path": "Shop\\Nowhere"}, "field System.AreaPath names an area or iteration that does not exist"),
        ({"fields": {"System.State": "Bogus"}}, "field System.State is not one of the values"),
        ({"fields": {"Custom.Nope": 1}}, "no field Custom.Nope"),
    ],
)
def test_a_field_azure_devops_refuses_is_400_naming_it_and_nothing_is_linked(host, fake_ado, change, words) -> None:
    name, integration_id, org = world(host, fake_ado)
    response = create(host, org, {"integration_id": integration_id, "project": "Shop", "type": "Bug", **change}, "k")
    assert response.status_code == 400 and words in response.json()["error"], response.text
    assert host.call("GET", f"/api/orgs/{org}/issues/I1").json()["links"] == []


def test_linking_a_work_item_that_does_not_exist_is_404(host, fake_ado) -> None:
    name, integration_id, org = world(host, fake_ado)
    response = host.call("PUT", f"/api/orgs/{org}/issues/I1/links/{integration_id}/999")
    assert response.status_code == 404
    assert response.json() == {"error": "Work item 999 does not exist or cannot be read."}
    assert host.call("GET", f"/api/orgs/{org}/issues/I1").json()["links"] == []


def test_a_host_killed_after_azure_devops_created_the_work_item_is_completed_by_the_retry(
    fake_ado: FakeAzureDevOps, tmp_path: Path
) -> None:
    """The create call is held in the fake; the host is killed while it waits, and the fake then creates the
    work item anyway (as Azure DevOps finishes a request whose client went away). The app never wrote that it
    did. A new host, the same request and key: it finds the work item by its tag, links it, and answers it."""
    env = {**fake_ado.settings_env(), "ADO_HTTP_TIMEOUT": "10"}
    first = start_host(tmp_path, env)
    try:
        name, integration_id, org = world(first, fake_ado)
        body = {"integration_id": integration_id, "project": "Shop", "type": "Task"}
        fake_ado.set_delay(rf"^/{name}/Shop{CREATE}", 1.5, method="POST")
        sent = threading.Thread(target=lambda: _ignore_failure(lambda: create(first, org, body, "crash-key")))
        sent.start()
        wait_for(lambda: fake_ado.count("POST", rf"^/{name}/Shop{CREATE}") == 1, 30, "the create call to arrive")
        first.process.kill()
        first.process.wait(10)
        sent.join(30)
        wait_for(lambda: _created(fake_ado, name), 30, "the fake to finish the create")
    finally:
        fake_ado.clear_faults()
        stop_host(first)
    [created_id] = _created(fake_ado, name)
    assert tracker_admin.get_issue(org, "I1").links == ()  # killed before it linked anything

    second = start_host(tmp_path, env)
    try:
        retried = create(second, org, body, "crash-key")
        assert retried.status_code == 201, retried.text
        assert retried.json()["work_item_id"] == created_id
        assert fake_ado.count("POST", rf"^/{name}/Shop{CREATE}") == 1  # one work item, ever
        links = second.call("GET", f"/api/orgs/{org}/issues/I1").json()["links"]
        assert links == [{"integration_id": integration_id, "work_item_id": created_id}]
        assert create(second, org, body, "crash-key").json() == retried.json()
    finally:
        stop_host(second)


def _ignore_failure(call: Any) -> None:
    try:
        call()
    except requests.RequestException:
        pass  # the host was killed under this request: no answer is expected


def _created(fake: FakeAzureDevOps, org_name: str) -> list[int]:
    """Ids of the work items in the organization once every create call to it has its response ready (the
    organization had none before: ids start at 1)."""
    calls = [r for r in fake.requests if r.method == "POST" and r.path.startswith(f"/{org_name}/Shop/")]
    if not calls or any(r.ended is None for r in calls):
        return []
    found = []
    for work_item_id in range(1, 10):
        try:
            found.append(fake.work_item(org_name, work_item_id)["id"])
        except KeyError:
            break
    return found
