"""apply_workitem_update (contract §5.2-5.3): deliveries through the webhook and the real queue onto tracked
issues in Azurite, with Azure DevOps' states endpoint faked by `responses`."""

import json

import pytest

from shared.deliveries import from_message
from shared.errors import RetryLater
from shared.sync.inbound import apply_workitem_update
from tests.helpers import count_storage_requests, make_integration, new_id
from tests.sync_helpers import (
    SECRET,
    delivery,
    issue_view,
    link,
    post,
    queued_messages,
    run_queue,
    sample_delivery,
    setup_org,
    tracked_issue,
)

pytestmark = pytest.mark.usefixtures("azurite", "empty_queue")

BUG_STATES = {
    "count": 5,
    "value": [
        {"name": "New", "category": "Proposed"},
        {"name": "Active", "category": "InProgress"},
        {"name": "Resolved", "category": "Resolved"},
        {"name": "Closed", "category": "Completed"},
        {"name": "Removed", "category": "Removed"},
    ],
}


def states_url(project: str = "proj-1", kind: str = "Bug") -> str:
    return f"https://dev.azure.com/fabrikam/{project}/_apis/wit/workitemtypes/{kind}/states"


@pytest.fixture
def world(ado):
    """An integration, an org that installed it (both syncs on) with two members, and issue I1 linked to item 42."""
    integration = make_integration(webhook_secret=SECRET)
    org = f"org-{new_id()[:8]}"
    setup_org(org, integration.id, members={"dana@example.com": "u-dana", "lee@example.com": "u-lee"})
    tracked_issue(org, "I1", integration.id, 42)
    ado.get(states_url(), json=BUG_STATES)
    return integration, org


def deliver(integration_id: str, work_item_id: int, rev: int, **changes) -> None:
    response = post(delivery(integration_id, work_item_id, rev, **changes))
    assert response.status_code == 202, response.get_body()
    assert run_queue() == 1


def kinds(org: str, issue: str = "I1") -> list[tuple[str, int]]:
    return [(a["type"], a["rev"]) for a in issue_view(org, issue)["activity"] if a["source"] == "vsts"]


def test_documented_sample_resolves_by_resolve_states_and_keeps_the_assignee(ado) -> None:
    integration = make_integration(webhook_secret=SECRET)
    org = f"org-{new_id()[:8]}"
    setup_org(org, integration.id, resolve_states=["Approved"], members={"dana@example.com": "u-dana"})
    tracked_issue(org, "I1", integration.id, 5, assignee="dana@example.com")
    sample = sample_delivery()
    project = sample["resourceContainers"]["project"]["id"]
    ado.get(states_url(project, "Bug"), json=BUG_STATES)
    sample["resourceContainers"]["collection"]["id"] = integration.id
    assert post(sample).status_code == 202
    assert run_queue() == 1
    view = issue_view(org, "I1")
    assert view["status"] == "resolved"
    assert view["assignee"] == {"email": "dana@example.com", "user_id": "u-dana"}  # "Jamal Hartnet" has no email
    [entry] = [a for a in view["activity"] if a["source"] == "vsts"]
    assert (entry["type"], entry["work_item_id"], entry["rev"]) == ("resolved", 5, 2)


@pytest.mark.parametrize(
    "new_value",
    [
        "Dana Scully <dana@example.com>",
        {"displayName": "Dana Scully", "uniqueName": "dana@example.com", "id": "abc"},
        {"displayName": "Dana Scully", "uniqueName": "EXAMPLE\\dana", "mailAddress": "dana@example.com"},
        "dana@example.com",
        "Dana Scully <Dana@Example.COM>",
    ],
    ids=["name-email", "identity", "identity-mail", "bare", "mixed-case"],
)
def test_assignment_formats_assign_the_matching_member(world, new_value) -> None:
    integration, org = world
    deliver(integration.id, 42, 2, assigned_to=(None, new_value))
    assert issue_view(org, "I1")["assignee"] == {"email": "dana@example.com", "user_id": "u-dana"}
    assert kinds(org) == [("assigned", 2)]


def test_unknown_email_leaves_the_assignee_unchanged(world) -> None:
    integration, org = world
    deliver(integration.id, 42, 2, assigned_to=(None, "Lee <lee@example.com>"))
    deliver(integration.id, 42, 3, assigned_to=("Lee <lee@example.com>", "Stranger <nobody@example.com>"))
    assert issue_view(org, "I1")["assignee"]["email"] == "lee@example.com"
    assert kinds(org) == [("assigned", 2)]


def test_no_new_value_unassigns(world) -> None:
    integration, org = world
    deliver(integration.id, 42, 2, assigned_to=(None, "Lee <lee@example.com>"))
    deliver(integration.id, 42, 3, assigned_to=("Lee <lee@example.com>", None))
    assert issue_view(org, "I1")["assignee"] is None
    assert kinds(org) == [("assigned", 2), ("unassigned", 3)]


def test_only_members_of_the_issues_own_org_are_matched(world) -> None:
    integration, org = world
    other = f"org-{new_id()[:8]}"
    setup_org(other, integration.id, members={"kim@example.com": "u-kim"})
    deliver(integration.id, 42, 2, assigned_to=(None, "Kim <kim@example.com>"))
    assert issue_view(org, "I1")["assignee"] is None


def test_an_org_without_reverse_assignment_is_untouched(ado) -> None:
    integration = make_integration(webhook_secret=SECRET)
    org = f"org-{new_id()[:8]}"
    setup_org(org, integration.id, assignment=False, status=False, members={"dana@example.com": "u-dana"})
    tracked_issue(org, "I1", integration.id, 42)
    deliver(integration.id, 42, 2, assigned_to=(None, "Dana <dana@example.com>"), state=("Active", "Resolved"))
    view = issue_view(org, "I1")
    assert (view["assignee"], view["status"], kinds(org)) == (None, "unresolved", [])
    assert len(ado.calls) == 0  # status sync off: no states lookup either


@pytest.mark.parametrize(
    ("old", "new", "start", "end"),
    [
        ("Active", "Resolved", "unresolved", "resolved"),
        ("Resolved", "Active", "resolved", "unresolved"),
        (None, "Resolved", "unresolved", "unresolved"),  # a new work item changes nothing
        ("Resolved", "Closed", "unresolved", "unresolved"),  # done -> done changes nothing
        ("New", "Active", "resolved", "resolved"),  # not-done -> not-done changes nothing (Sentry unresolves)
        ("Closed", "Removed", "resolved", "unresolved"),  # Removed is not done
    ],
)
def test_status_rules(world, old, new, start, end) -> None:
    from shared.admin import tracker as tracker_admin

    integration, org = world
    tracker_admin.put_issue(org, "I1", {"status": start})
    deliver(integration.id, 42, 2, state=(old, new))
    assert issue_view(org, "I1")["status"] == end


def test_resolve_states_override_the_categories(ado) -> None:
    integration = make_integration(webhook_secret=SECRET)
    org = f"org-{new_id()[:8]}"
    setup_org(org, integration.id, resolve_states=["Ready for QA"])
    tracked_issue(org, "I1", integration.id, 42)
    ado.get(states_url(), json=BUG_STATES)
    deliver(integration.id, 42, 2, state=("Active", "Ready for QA"))
    assert issue_view(org, "I1")["status"] == "resolved"


def test_states_are_read_once_and_cached(world, ado) -> None:
    integration, org = world
    deliver(integration.id, 42, 2, state=("Active", "Resolved"))
    deliver(integration.id, 42, 3, state=("Resolved", "Active"))
    assert sum("workitemtypes" in c.request.url for c in ado.calls) == 1


@pytest.mark.parametrize("status", [429, 500, 503, 401])
def test_a_failing_states_lookup_is_retried_not_guessed(ado, status) -> None:
    integration = make_integration(webhook_secret=SECRET)
    org = f"org-{new_id()[:8]}"
    setup_org(org, integration.id)
    tracked_issue(org, "I1", integration.id, 42)
    ado.get(states_url(), status=status, headers={"Retry-After": "0"}, json={"message": "nope"})
    assert post(delivery(integration.id, 42, 2, state=("Active", "Resolved"))).status_code == 202
    [message] = queued_messages()
    with pytest.raises(RetryLater):
        apply_workitem_update(from_message(message))
    assert issue_view(org, "I1")["status"] == "unresolved"
    # When Azure DevOps answers again, the retried message applies.
    ado.replace(ado.GET, states_url(), json=BUG_STATES)
    apply_workitem_update(from_message(message))
    assert issue_view(org, "I1")["status"] == "resolved"


def test_the_work_item_type_is_read_when_the_delivery_lacks_it(world, ado) -> None:
    integration, org = world
    body = delivery(integration.id, 42, 2, state=("Active", "Resolved"))
    del body["resource"]["revision"]["fields"]["System.WorkItemType"]
    ado.get(
        "https://dev.azure.com/fabrikam/_apis/wit/workitems/42",
        json={"id": 42, "rev": 2, "fields": {"System.WorkItemType": "Bug", "System.TeamProject": "proj-1"}},
    )
    assert post(body).status_code == 202
    run_queue()
    assert issue_view(org, "I1")["status"] == "resolved"


def test_the_same_delivery_five_times_gives_one_activity_entry(world) -> None:
    integration, org = world
    body = delivery(integration.id, 42, 2, state=("Active", "Resolved"), assigned_to=(None, "Dana <dana@example.com>"))
    for _ in range(5):
        assert post(body).status_code == 202
    assert run_queue() == 5
    assert sorted(kinds(org)) == [("assigned", 2), ("resolved", 2)]


def test_a_late_older_revision_changes_nothing(world) -> None:
    integration, org = world
    deliver(integration.id, 42, 3, state=("Active", "Resolved"), assigned_to=(None, "Lee <lee@example.com>"))
    deliver(
        integration.id,
        42,
        2,
        state=("Resolved", "Active"),
        assigned_to=("Lee <lee@example.com>", "Dana <dana@example.com>"),
    )
    view = issue_view(org, "I1")
    assert (view["status"], view["assignee"]["email"]) == ("resolved", "lee@example.com")


def test_a_tracker_change_after_rev_3_is_not_undone_by_a_replay_of_rev_3(world) -> None:
    from shared.admin import tracker as tracker_admin

    integration, org = world
    body = delivery(integration.id, 42, 3, state=("Active", "Resolved"), assigned_to=(None, "Lee <lee@example.com>"))
    assert post(body).status_code == 202
    run_queue()
    tracker_admin.put_issue(org, "I1", {"status": "unresolved", "assignee": "dana@example.com"})
    assert post(body).status_code == 202
    run_queue()
    view = issue_view(org, "I1")
    assert (view["status"], view["assignee"]["email"]) == ("unresolved", "dana@example.com")


def test_a_not_done_move_still_orders_later_deliveries(world) -> None:
    # rev 3 moves New -> Active (no action) but is the newest word on the state: a late rev 2 must not resolve.
    integration, org = world
    deliver(integration.id, 42, 3, state=("New", "Active"))
    deliver(integration.id, 42, 2, state=("Active", "Resolved"))
    assert issue_view(org, "I1")["status"] == "unresolved"


def test_one_work_item_linked_from_issues_of_several_orgs_and_issues_with_several_links(world, ado) -> None:
    integration, org = world
    other = f"org-{new_id()[:8]}"
    setup_org(other, integration.id, members={"dana@example.com": "u-dana-2"})
    tracked_issue(other, "X9", integration.id, 42)
    tracked_issue(org, "I2", integration.id, 43)
    from shared.admin import tracker as tracker_admin

    link(org, "I2", integration.id, 42)  # I2 links 42 and 43
    deliver(integration.id, 42, 2, assigned_to=(None, "Dana <dana@example.com>"))
    assert issue_view(org, "I1")["assignee"]["user_id"] == "u-dana"
    assert issue_view(org, "I2")["assignee"]["user_id"] == "u-dana"
    assert issue_view(other, "X9")["assignee"]["user_id"] == "u-dana-2"
    # An unlinked issue no longer follows the work item.
    tracker_admin.delete_link(org, "I1", integration.id, "42")
    deliver(integration.id, 42, 3, assigned_to=("Dana <dana@example.com>", None))
    assert issue_view(org, "I1")["assignee"]["user_id"] == "u-dana"
    assert issue_view(org, "I2")["assignee"] is None


def test_an_org_that_did_not_install_the_integration_is_untouched(world) -> None:
    integration, org = world
    outsider = f"org-{new_id()[:8]}"
    from shared.admin import tracker as tracker_admin

    tracker_admin.put_member(outsider, "dana@example.com", {"user_id": "u-x"})
    tracker_admin.put_issue(outsider, "Z1", {"title": "t"})
    link(outsider, "Z1", integration.id, 42)
    deliver(integration.id, 42, 2, assigned_to=(None, "Dana <dana@example.com>"))
    assert issue_view(outsider, "Z1")["assignee"] is None


def test_an_assignment_to_one_linked_issue_costs_five_storage_round_trips(world) -> None:
    integration, org = world
    post(delivery(integration.id, 42, 2, assigned_to=(None, "Dana <dana@example.com>")))
    [message] = queued_messages()
    with count_storage_requests() as calls:
        apply_workitem_update(from_message(message))
    assert issue_view(org, "I1")["assignee"]["email"] == "dana@example.com"
    assert len(calls) == 5, calls


def test_activity_keeps_the_last_100_entries(world) -> None:
    integration, org = world
    for rev in range(2, 2 + 110):
        old, new = ("Active", "Resolved") if rev % 2 == 0 else ("Resolved", "Active")
        post(delivery(integration.id, 42, rev, state=(old, new)))
    run_queue()
    activity = issue_view(org, "I1")["activity"]
    assert len(activity) == 100
    assert activity[-1]["rev"] == 111
    assert json.loads(json.dumps(activity)) == activity  # plain JSON: nothing lost or changed on the way
