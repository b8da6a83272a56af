"""Keeping deliveries flowing (contract §9), end to end: the subscription route, subscription_check with
secret rotation, and reconcile, with the fake Azure DevOps delivering service hooks to the local host."""

import time
from dataclasses import replace

import pytest

from shared.store.integrations import IntegrationStore
from tests.e2e import create_world, queue_length, start_host, stop_host, tracked_issue
from tests.helpers import new_id, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("azurite")]

GRACE = 3


@pytest.fixture(scope="module")
def subs_host(fake_ado, tmp_path_factory):
    host = start_host(tmp_path_factory.mktemp("subs"), {**fake_ado.settings_env(), "SECRET_GRACE_SECONDS": str(GRACE)})
    yield host
    stop_host(host)


def setup_world(host, fake_ado, work_items=(77,)):
    return create_world(host, fake_ado, work_items=work_items)


def issue(host, org, wid=77):
    return tracked_issue(host, org, wid)


def updated_only(subscriptions: list[dict]) -> list[dict]:
    """The `workitem.updated` subscriptions (each has a `workitem.commented` twin with the same secret, §18)."""
    return [s for s in subscriptions if s["eventType"] == "workitem.updated"]


def subscribe(host, integration_id):
    response = host.call("POST", f"/api/vsts/integrations/{integration_id}/subscription")
    assert response.status_code == 201, response.text
    return response.json()


def test_creating_a_subscription_makes_deliveries_flow(subs_host, fake_ado) -> None:
    name, integration_id, org = setup_world(subs_host, fake_ado)
    view = subscribe(subs_host, integration_id)
    assert view["subscription"]["status"] == "enabled"
    assert "webhook_secret" not in view  # the secret lives in Azure DevOps and the table, not in answers
    [sub] = updated_only(fake_ado.subscriptions(name))
    [twin] = [s for s in fake_ado.subscriptions(name) if s["id"] != sub["id"]]
    assert sub["id"] == view["subscription"]["id"] and twin["id"] == view["subscription"]["comments"]["id"]
    assert twin["eventType"] == "workitem.commented"
    assert twin["consumerInputs"]["httpHeaders"] == sub["consumerInputs"]["httpHeaders"]  # one secret for both
    assert (sub["publisherId"], sub["eventType"], sub["consumerId"], sub["consumerActionId"]) == (
        "tfs", "workitem.updated", "webHooks", "httpRequest"
    )  # fmt: skip
    inputs = sub["consumerInputs"]
    assert inputs["url"] == subs_host.env["WEBHOOK_PUBLIC_URL"]
    assert inputs["resourceDetailsToSend"] == "all"
    secret = inputs["httpHeaders"].split(":", 1)[1]
    assert IntegrationStore().get(integration_id).webhook_secret == secret
    fake_ado.update_work_item(name, 77, {"System.State": "Resolved", "System.AssignedTo": "Dana <dana@example.com>"})
    assert fake_ado.deliveries[-1].status == 202
    wait_for(lambda: issue(subs_host, org)["status"] == "resolved", what="the delivered update to apply")
    assert issue(subs_host, org)["assignee"]["user_id"] == "u-dana"


def test_a_disabled_subscription_is_recreated_and_the_old_secret_has_a_grace_period(subs_host, fake_ado) -> None:
    name, integration_id, org = setup_world(subs_host, fake_ado)
    old_id = subscribe(subs_host, integration_id)["subscription"]["id"]
    old_secret = IntegrationStore().get(integration_id).webhook_secret
    in_flight = fake_ado.update_work_item(
        name, 77, {"System.State": "Resolved"}, deliver=False
    )  # sent, not yet arrived
    fake_ado.set_subscription_status(old_id, "disabledBySystem")
    subs_host.invoke("subscription_check")
    wait_for(
        lambda: IntegrationStore().get(integration_id).subscription_id not in (None, old_id), what="a new subscription"
    )
    [sub] = updated_only(fake_ado.subscriptions(name))  # the disabled one was deleted
    assert sub["id"] != old_id and sub["status"] == "enabled"
    assert len(fake_ado.subscriptions(name)) == 2  # its old twin too, replaced with it
    new_secret = IntegrationStore().get(integration_id).webhook_secret
    assert new_secret != old_secret
    # Inside the grace period the old secret still authenticates the delivery already in flight.
    response = subs_host.call("POST", "/api/vsts/issue-updated", json=in_flight, headers={"Shared-Secret": old_secret})
    assert response.status_code == 202
    wait_for(lambda: issue(subs_host, org)["status"] == "resolved", what="the in-flight delivery to apply")
    # Deliveries resume with the new subscription.
    fake_ado.update_work_item(name, 77, {"System.AssignedTo": "Lee <lee@example.com>"})
    assert fake_ado.deliveries[-1].status == 202
    wait_for(lambda: (issue(subs_host, org)["assignee"] or {}).get("user_id") == "u-lee", what="the new delivery")
    # After the grace period (its end is stored with the integration), the old secret is refused.
    expires_at = IntegrationStore().get(integration_id).previous_secret_expires_at
    assert expires_at is not None
    wait_for(lambda: time.time() > expires_at, GRACE + 5, "the grace period to end")
    late = subs_host.call("POST", "/api/vsts/issue-updated", json=in_flight, headers={"Shared-Secret": old_secret})
    assert late.status_code == 401


def test_a_missing_subscription_is_recreated(subs_host, fake_ado) -> None:
    name, integration_id, org = setup_world(subs_host, fake_ado)
    old_id = subscribe(subs_host, integration_id)["subscription"]["id"]
    fake_ado.remove_subscription(old_id)
    subs_host.invoke("subscription_check")
    wait_for(lambda: IntegrationStore().get(integration_id).subscription_id != old_id, what="a new subscription")
    assert len(fake_ado.subscriptions(name)) == 2  # the new one and its workitem.commented twin


@pytest.mark.parametrize("status", ["onProbation", "disabledByUser"])
def test_probation_and_user_disabled_are_shown_not_replaced(subs_host, fake_ado, status) -> None:
    name, integration_id, org = setup_world(subs_host, fake_ado)
    sub_id = subscribe(subs_host, integration_id)["subscription"]["id"]
    fake_ado.set_subscription_status(sub_id, status)
    subs_host.invoke("subscription_check")
    get = lambda: subs_host.call("GET", f"/api/vsts/integrations/{integration_id}").json()["subscription"]  # noqa: E731
    wait_for(lambda: get()["status"] == status, what=f"the status {status} to show")
    assert get()["id"] == sub_id and get()["checked_at"] is not None


def test_creation_refused_by_azure_devops_says_what_is_missing(subs_host, fake_ado) -> None:
    name, integration_id, org = setup_world(subs_host, fake_ado)
    fake_ado.fail_next("POST", r"/_apis/hooks/subscriptions$", 403, body={"message": "TF400813: not authorized"})
    response = subs_host.call("POST", f"/api/vsts/integrations/{integration_id}/subscription")
    assert response.status_code == 502
    message = response.json()["error"]
    assert "Project Collection Administrators" in message and "Third-party application access via OAuth" in message
    assert fake_ado.subscriptions(name) == []
    assert subs_host.call("POST", f"/api/vsts/integrations/{new_id()}/subscription").status_code == 404


def test_reconcile_recovers_changes_lost_while_the_subscription_was_disabled(subs_host, fake_ado) -> None:
    work_items = tuple(range(501, 511))
    name, integration_id, org = setup_world(subs_host, fake_ado, work_items)
    sub_id = subscribe(subs_host, integration_id)["subscription"]["id"]
    fake_ado.set_subscription_status(sub_id, "disabledByUser")
    delivered = len(fake_ado.deliveries)
    old_payloads = {}
    for n in range(20):  # 20 changes over 10 linked work items, none delivered
        wid = work_items[n % 10]
        changes = (
            {"System.State": "Resolved" if n < 10 else "Active"}
            if n % 3
            else {"System.AssignedTo": "Dana <dana@example.com>"}
        )
        old_payloads.setdefault(wid, fake_ado.update_work_item(name, wid, changes))
    assert len(fake_ado.deliveries) == delivered
    subs_host.invoke("reconcile")

    def matches() -> bool:
        for wid in work_items:
            current = fake_ado.work_item(name, wid)["fields"]
            view = issue(subs_host, org, wid)
            status = "resolved" if current.get("System.State") in ("Resolved", "Closed") else "unresolved"
            assignee = "dana@example.com" if current.get("System.AssignedTo") else None
            if view["status"] != status or (view["assignee"] or {}).get("email") != assignee:
                return False
        return True

    wait_for(matches, 30, "every linked issue to match Azure DevOps")
    before = {wid: issue(subs_host, org, wid) for wid in work_items}
    # A late delivery of an older revision changes nothing.
    for payload in old_payloads.values():
        response = subs_host.call(
            "POST",
            "/api/vsts/issue-updated",
            json=payload,
            headers={"Shared-Secret": IntegrationStore().get(integration_id).webhook_secret},
        )
        assert response.status_code == 202
    # They were applied as no-ops (not failed into the poison queue): the worker logged each with no change.
    applied = [
        f"apply_workitem_update: work item {p['resource']['workItemId']} rev {p['resource']['rev']}: "
        "1 linked issue(s), changes none"
        for p in old_payloads.values()
    ]
    wait_for(lambda: all(line in subs_host.log() for line in applied), what="the late deliveries to run")
    wait_for(lambda: queue_length(subs_host) == 0, what="the queue to drain")
    assert queue_length(subs_host, "vsts-workitem-updates-poison") in (-1, 0)  # -1: never created
    assert {wid: issue(subs_host, org, wid) for wid in work_items} == before


def test_a_subscription_disabled_for_an_inactive_owner_is_made_again_or_says_what_to_do(subs_host, fake_ado) -> None:
    """`disabledByInactiveIdentity`: re-enabling would keep the inactive owner, so subscription_check makes it again
    with the integration's credentials; when Azure DevOps refuses those too, the status and its advice stay."""
    from shared.pages.status_advice import integration_problems
    from shared.store.timer_runs import timer_records

    def run_check() -> None:
        """One whole run of the timer (the second must not overlap the first: it would be skipped or resume)."""
        invoked = time.time()
        subs_host.invoke("subscription_check")

        def ended() -> bool:
            record = timer_records().get("subscription_check")
            return record is not None and not record.running and (record.ended_at or 0) >= invoked

        wait_for(ended, 120, "the subscription_check run to end")

    name, integration_id, org = setup_world(subs_host, fake_ado)
    old_id = subscribe(subs_host, integration_id)["subscription"]["id"]
    fake_ado.set_subscription_status(old_id, "disabledByInactiveIdentity")
    refusal = {"message": "TF400813: not authorized"}
    fake_ado.fail_next("POST", rf"^/{name}/_apis/hooks/subscriptions$", 403, body=refusal)
    run_check()
    stored = lambda: IntegrationStore().get(integration_id)  # noqa: E731
    wait_for(lambda: stored().subscription_status == "disabledByInactiveIdentity", what="the status to be recorded")
    creations = lambda: fake_ado.count("POST", rf"^/{name}/_apis/hooks/subscriptions$")  # noqa: E731
    wait_for(lambda: creations() == 3, what="the refused re-creation")  # after the first subscribe's two
    [problem] = integration_problems(stored())
    assert "inactive" in problem.what and f"PUT /api/vsts/integrations/{integration_id}" in problem.action

    run_check()  # credentials of an active member now (the refusal is over)
    wait_for(lambda: stored().subscription_status == "enabled", what="a new subscription")
    [sub] = updated_only(fake_ado.subscriptions(name))
    assert sub["id"] == stored().subscription_id != old_id
    assert integration_problems(stored()) == []


def test_an_integration_made_before_the_commented_twin_gets_it_at_the_next_check(subs_host, fake_ado) -> None:
    name, integration_id, org = setup_world(subs_host, fake_ado)
    view = subscribe(subs_host, integration_id)
    twin = view["subscription"]["comments"]["id"]
    fake_ado.remove_subscription(twin)  # as before issue 20: one workitem.updated subscription, nothing recorded
    IntegrationStore().update(integration_id, lambda cur: replace(cur, comments_subscription_id=None))
    subs_host.invoke("subscription_check")
    wait_for(lambda: IntegrationStore().get(integration_id).comments_subscription_id, what="the commented twin")
    events = sorted(s["eventType"] for s in fake_ado.subscriptions(name))
    assert events == ["workitem.commented", "workitem.updated"]  # the old one replaced with the pair
    assert IntegrationStore().get(integration_id).previous_secret_expires_at is not None  # the old secret's grace
