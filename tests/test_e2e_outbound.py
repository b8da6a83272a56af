"""Two-way sync, the outbound half (contract §12.1-12.2), end to end: the local host, Azurite and the fake Azure
DevOps, which delivers service hooks for the changes the app makes through its API, as the real one does."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e import create_world, queue_length, settled, start_host, stop_host, tracked_issue
from tests.helpers import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("azurite")]

OUTBOUND = "vsts-outbound"


@pytest.fixture(scope="module")
def out_host(fake_ado, tmp_path_factory):
    # Quick back-off, so a throttled attempt is retried within the test.
    env = {**fake_ado.settings_env(), "QUEUE_RETRY_BASE_SECONDS": "1", "QUEUE_RETRY_MAX_SECONDS": "2"}
    host = start_host(tmp_path_factory.mktemp("outbound"), env)
    yield host
    stop_host(host)


def world(host, fake, *, work_items=(77,), **settings: Any) -> tuple[str, str, str]:
    name, integration_id, org = create_world(host, fake, work_items=work_items)
    for email, display in (("dana@example.com", "Dana"), ("lee@example.com", "Lee")):
        fake.add_identity(name, email, display)
    body = {"sync_reverse_assignment": True, "sync_status_reverse": True, **settings}
    assert host.call("PUT", f"/api/orgs/{org}/integrations/{integration_id}", json=body).status_code == 200
    response = host.call("POST", f"/api/vsts/integrations/{integration_id}/subscription")
    assert response.status_code == 201, response.text
    return name, integration_id, org


def put_issue(host, org: str, body: dict, wid: int = 77) -> None:
    response = host.call("PUT", f"/api/orgs/{org}/issues/I{wid}", json=body)
    assert response.status_code == 200, response.text


def activity(host, org: str, wid: int = 77) -> list[tuple[str, str]]:
    return [(entry["type"], entry["source"]) for entry in tracked_issue(host, org, wid)["activity"]]


def item_path(name: str, wid: int = 77) -> str:
    """The work item's path in the fake: each test's organization has its own (the fake serves them all)."""
    return rf"^/{name}/(?:[^/]+/)?_apis/wit/workitems/{wid}$"


def patches(fake, name: str, wid: int = 77) -> int:
    return fake.count("PATCH", item_path(name, wid))


def test_resolve_moves_the_work_item_once_and_its_echo_changes_nothing(out_host, fake_ado) -> None:
    name, _, org = world(out_host, fake_ado, sync_status_forward=True)
    before = len(fake_ado.deliveries)
    put_issue(out_host, org, {"status": "resolved"})
    wait_for(lambda: fake_ado.work_item(name, 77)["fields"]["System.State"] == "Resolved", what="the patch")
    wait_for(lambda: len(fake_ado.deliveries) > before, what="the echo delivery")
    settled(out_host)
    assert patches(fake_ado, name) == 1
    # The delivery of our own patch was seen as stale: no change, no activity from Azure DevOps, no second patch.
    assert activity(out_host, org) == [("resolved", "api"), ("ado_updated", "api")]
    [updated] = [e for e in tracked_issue(out_host, org)["activity"] if e["type"] == "ado_updated"]
    assert updated["fields"] == ["System.State"] and updated["rev"] == fake_ado.work_item(name, 77)["rev"]
    # Unresolve moves it back to the type's first InProgress state.
    put_issue(out_host, org, {"status": "unresolved"})
    wait_for(lambda: fake_ado.work_item(name, 77)["fields"]["System.State"] == "Active", what="the unresolve")
    settled(out_host)
    assert patches(fake_ado, name) == 2


def test_with_the_setting_off_nothing_is_sent(out_host, fake_ado) -> None:
    name, _, org = world(out_host, fake_ado)
    reads = fake_ado.count("GET", item_path(name))
    put_issue(out_host, org, {"status": "resolved", "assignee": "dana@example.com"})
    settled(out_host)
    assert patches(fake_ado, name) == 0 and fake_ado.count("GET", item_path(name)) == reads
    assert fake_ado.work_item(name, 77)["fields"]["System.State"] == "Active"


def test_resolving_an_item_already_closed_leaves_it_closed(out_host, fake_ado) -> None:
    name, _, org = world(out_host, fake_ado, sync_status_forward=True)
    fake_ado.update_work_item(name, 77, {"System.State": "Closed"}, deliver=False)
    reads = fake_ado.count("GET", item_path(name))
    put_issue(out_host, org, {"status": "resolved"})
    wait_for(lambda: fake_ado.count("GET", item_path(name)) > reads, what="the work item read")
    settled(out_host)
    assert patches(fake_ado, name) == 0
    assert fake_ado.work_item(name, 77)["fields"]["System.State"] == "Closed"


def test_a_state_rule_overrides_the_default(out_host, fake_ado) -> None:
    rules = [{"type": "Bug", "resolved": "Closed"}]
    name, _, org = world(out_host, fake_ado, sync_status_forward=True, state_rules=rules)
    put_issue(out_host, org, {"status": "resolved"})
    wait_for(lambda: fake_ado.work_item(name, 77)["fields"]["System.State"] == "Closed", what="the rule's state")


def test_assign_unassign_and_an_email_azure_devops_refuses(out_host, fake_ado, tmp_path) -> None:
    name, integration_id, org = world(out_host, fake_ado, sync_forward_assignment=True)
    put_issue(out_host, org, {"assignee": "dana@example.com"})
    wait_for(lambda: "dana@example.com" in str(fake_ado.work_item(name, 77)["fields"].get("System.AssignedTo")))
    put_issue(out_host, org, {"assignee": None})
    wait_for(lambda: "System.AssignedTo" not in fake_ado.work_item(name, 77)["fields"], what="the unassign")
    settled(out_host)
    sent = patches(fake_ado, name)
    # A member Azure DevOps does not know: recorded as ado_failed, and not retried.
    member = out_host.call("PUT", f"/api/orgs/{org}/members/ghost@example.com", json={"user_id": "u-ghost"})
    assert member.status_code == 201
    put_issue(out_host, org, {"assignee": "ghost@example.com"})
    wait_for(lambda: ("ado_failed", "api") in activity(out_host, org), what="the refusal to be recorded")
    settled(out_host)
    assert patches(fake_ado, name) == sent + 1  # one refused patch, no retry
    assert queue_length(out_host, OUTBOUND + "-poison") in (-1, 0)
    [failed] = [e for e in tracked_issue(out_host, org)["activity"] if e["type"] == "ado_failed"]
    assert "Assigned To" in failed["reason"]


@pytest.mark.parametrize("status", [429, 503])
def test_throttling_and_unavailability_are_retried_and_end_applied(out_host, fake_ado, status) -> None:
    name, _, org = world(out_host, fake_ado, sync_status_forward=True)
    fake_ado.fail_next("PATCH", item_path(name), status, headers={"Retry-After": "1"}, count=4)
    put_issue(out_host, org, {"status": "resolved"})
    wait_for(lambda: fake_ado.work_item(name, 77)["fields"]["System.State"] == "Resolved", 60, "the retried patch")
    assert "queued again" in out_host.log()


def test_a_change_from_one_work_item_reaches_the_other_and_never_goes_back(out_host, fake_ado) -> None:
    """An issue linked to work items in two organizations: W1's change goes to W2, never back to W1."""
    first, _, org = world(out_host, fake_ado, work_items=(77,), sync_status_forward=True)
    second, second_id, other_org = world(out_host, fake_ado, work_items=(88,), sync_status_forward=True)
    # Install the second organization's integration in the first tracker organization, and link I77 to 88 too.
    body = {"sync_reverse_assignment": True, "sync_status_reverse": True, "sync_status_forward": True}
    assert out_host.call("PUT", f"/api/orgs/{org}/integrations/{second_id}", json=body).status_code == 201
    link = out_host.call("PUT", f"/api/orgs/{org}/issues/I77/links/{second_id}/88")
    assert link.status_code == 200, link.text
    fake_ado.update_work_item(first, 77, {"System.State": "Resolved"})
    wait_for(lambda: tracked_issue(out_host, org)["status"] == "resolved", what="the inbound change")
    wait_for(lambda: fake_ado.work_item(second, 88)["fields"]["System.State"] == "Resolved", what="W2 to follow")
    settled(out_host)
    assert patches(fake_ado, first, 77) == 0  # never sent back to where it came from
    assert patches(fake_ado, second, 88) == 1  # and W2's echo did not bounce anywhere
    # The second world's own tracker organization links W2 too: W2 really changed, so its issue follows W2 (an
    # inbound change, not an echo), and sends nothing back, having no other work item.
    wait_for(lambda: tracked_issue(out_host, other_org, 88)["status"] == "resolved", what="W2's other tracker issue")
    settled(out_host)
    assert patches(fake_ado, second, 88) == 1


@pytest.mark.parametrize(
    ("process", "kind", "start", "resolved", "reopened"),
    [
        ("Agile", "User Story", "Active", "Resolved", "Active"),
        ("Scrum", "Product Backlog Item", "Committed", "Done", "Committed"),
        ("CMMI", "Requirement", "Active", "Resolved", "Active"),
        ("Basic", "Issue", "Doing", "Done", "Doing"),
    ],
)
def test_default_states_for_each_process(out_host, fake_ado, process, kind, start, resolved, reopened) -> None:
    """Resolve and unresolve pick states from the work item's own type in its own process."""
    name, integration_id, org = world(out_host, fake_ado, sync_status_forward=True)
    fake_ado.add_project(name, f"{process.lower()}-id", f"{process} project", process=process)
    fake_ado.add_work_item(
        name, 90, {"System.WorkItemType": kind, "System.State": start}, project=f"{process.lower()}-id"
    )
    assert out_host.call("PUT", f"/api/orgs/{org}/issues/I90", json={"title": "t"}).status_code == 201
    assert out_host.call("PUT", f"/api/orgs/{org}/issues/I90/links/{integration_id}/90").status_code == 200
    put_issue(out_host, org, {"status": "resolved"}, wid=90)
    wait_for(lambda: fake_ado.work_item(name, 90)["fields"]["System.State"] == resolved, what=f"{kind} resolved")
    put_issue(out_host, org, {"status": "unresolved"}, wid=90)
    wait_for(lambda: fake_ado.work_item(name, 90)["fields"]["System.State"] == reopened, what=f"{kind} reopened")


def test_a_persons_newer_state_in_azure_devops_is_never_patched_over(out_host, fake_ado) -> None:
    """Issue 18, finding 5: a tracker change is still queued (its first read of the work item meets a 503) when a
    person closes the work item in Azure DevOps, whose delivery is late. The worker reads the person's revision:
    its state changed since the app last saw it, so it is newer, and it is applied inbound (by the rules a
    delivery follows: Resolved to Closed changes no issue), never patched over; the late delivery changes
    nothing; and the tracker's next change is sent as usual."""
    name, _, org = world(out_host, fake_ado, sync_status_forward=True)
    put_issue(out_host, org, {"status": "resolved"})  # a first round trip, so the app has seen the work item
    wait_for(lambda: fake_ado.work_item(name, 77)["fields"]["System.State"] == "Resolved", what="the first patch")
    settled(out_host)
    sent = patches(fake_ado, name)
    fake_ado.fail_next("GET", item_path(name), 503, headers={"Retry-After": "1"}, count=1)
    put_issue(out_host, org, {"status": "unresolved"})  # the older change, queued
    late = fake_ado.update_work_item(name, 77, {"System.State": "Closed"}, deliver=False)  # the person's, newer
    wait_for(lambda: "status changed in Azure DevOps since last seen" in out_host.log(), 60, "the outbound attempt")
    settled(out_host)
    assert fake_ado.work_item(name, 77)["fields"]["System.State"] == "Closed"  # never overwritten
    assert patches(fake_ado, name) == sent
    fake_ado.deliver(name, late)  # its delivery, late: nothing more to do
    settled(out_host)
    assert fake_ado.work_item(name, 77)["fields"]["System.State"] == "Closed" and patches(fake_ado, name) == sent
    # The app has now seen Closed: the tracker's next change is sent.
    put_issue(out_host, org, {"status": "resolved"})
    put_issue(out_host, org, {"status": "unresolved"})
    wait_for(lambda: fake_ado.work_item(name, 77)["fields"]["System.State"] == "Active", what="the next change")


def test_a_persons_newer_assignee_in_azure_devops_is_applied_inbound_first(out_host, fake_ado) -> None:
    """The same for the assignee: the tracker's older assignment to Lee is queued while a person unassigns the
    work item in Azure DevOps. The unassignment is newer: the issue is unassigned too, and Lee is never set."""
    name, _, org = world(out_host, fake_ado, sync_forward_assignment=True)
    put_issue(out_host, org, {"assignee": "dana@example.com"})
    wait_for(lambda: "dana" in str(fake_ado.work_item(name, 77)["fields"].get("System.AssignedTo")), what="Dana")
    settled(out_host)
    sent = patches(fake_ado, name)
    fake_ado.fail_next("GET", item_path(name), 503, headers={"Retry-After": "1"}, count=1)
    put_issue(out_host, org, {"assignee": "lee@example.com"})  # the older change, queued
    late = fake_ado.update_work_item(name, 77, {"System.AssignedTo": None}, deliver=False)  # the person's, newer
    wait_for(lambda: tracked_issue(out_host, org)["assignee"] is None, 60, "the person's change applied inbound")
    settled(out_host)
    assert "System.AssignedTo" not in fake_ado.work_item(name, 77)["fields"] and patches(fake_ado, name) == sent
    fake_ado.deliver(name, late)
    settled(out_host)
    assert tracked_issue(out_host, org)["assignee"] is None and patches(fake_ado, name) == sent
