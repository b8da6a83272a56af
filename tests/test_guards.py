"""Guards that keep what people did (issue 9, items 4, 8, 9, 10, 12): links per issue are capped and unlink forgets
their watermarks; an entity too large to store is a 409, never "storage unavailable"; a disabled integration's
queued updates apply nothing; one email normalizer for members and deliveries; an OAuth refresh that loses its
race keeps an admin's new credentials; a subscription whose record cannot be saved is deleted again."""

from __future__ import annotations

import json
import logging
import re
import time
from typing import Any

import azure.functions as func
import pytest
import responses

from functions.admin_integrations import create_subscription as create_subscription_route
from functions.admin_tracker import put_issue as put_issue_route
from functions.admin_tracker import put_link as put_link_route
from functions.lookups import get_issue as get_issue_route
from shared.admin import integrations as integration_admin
from shared.admin import tracker as tracker_admin
from shared.model.tracker import MAX_LINKS
from shared.store.integrations import IntegrationStore
from tests import sync_helpers
from tests.helpers import make_integration, new_id
from tests.sync_helpers import SECRET, delivery, issue_view, post, queued_messages, run_queue, setup_org, tracked_issue

pytestmark = pytest.mark.usefixtures("azurite")

BUG_STATES = {"value": [{"name": "Active", "category": "InProgress"}, {"name": "Resolved", "category": "Resolved"}]}
STATES_URL = "https://dev.azure.com/fabrikam/proj-1/_apis/wit/workitemtypes/Bug/states"


def _request(method: str, url: str, route: dict[str, str], body: Any = None) -> func.HttpRequest:
    data = json.dumps(body).encode() if body is not None else b""
    return func.HttpRequest(method, url, route_params=route, body=data)


def _link(org: str, issue: str, integration_id: str, work_item: int) -> func.HttpResponse:
    route = {"org_id": org, "issue_id": issue, "integration_id": integration_id, "work_item_id": str(work_item)}
    with sync_helpers.readable_work_items():
        return put_link_route(_request("PUT", "http://localhost/api/orgs/x", route))


# -- item 9: links per issue, their watermarks, entities too large ---------------------------------------------


def test_links_per_issue_are_capped_with_the_number_in_the_sentence_and_nothing_written() -> None:
    integration = make_integration()
    org = f"org-{new_id()[:8]}"
    tracker_admin.put_issue(org, "I1", {"title": "t"})
    for work_item in range(1, MAX_LINKS + 1):
        assert _link(org, "I1", integration.id, work_item).status_code == 200
    refused = _link(org, "I1", integration.id, MAX_LINKS + 1)
    assert refused.status_code == 409
    assert str(MAX_LINKS) in json.loads(refused.get_body())["error"]
    assert len(issue_view(org, "I1")["links"]) == MAX_LINKS
    from shared.model.tracker import Link
    from shared.store.tracker import TrackerStore

    assert TrackerStore().linked_issues(Link(integration.id, MAX_LINKS + 1)) == []  # no index entry left behind
    # Linking one that is linked already is still fine at the cap.
    assert _link(org, "I1", integration.id, 1).status_code == 200


def test_unlink_forgets_the_watermarks_of_that_work_item(ado, empty_queue) -> None:
    integration = make_integration(webhook_secret=SECRET)
    org = f"org-{new_id()[:8]}"
    setup_org(org, integration.id, members={"dana@example.com": "u-dana"})
    tracked_issue(org, "I1", integration.id, 42)
    tracked_issue(org, "I1", integration.id, 43)
    for work_item in (42, 43):
        assert post(delivery(integration.id, work_item, 5, assigned_to=(None, "Dana <dana@example.com>"))).status_code
    run_queue()
    issue = tracker_admin.get_issue(org, "I1")
    assert set(issue.watermarks) == {f"{integration.id}|42", f"{integration.id}|43"}
    tracker_admin.delete_link(org, "I1", integration.id, "42")
    assert set(tracker_admin.get_issue(org, "I1").watermarks) == {f"{integration.id}|43"}
    # Linked again later, the work item starts afresh: an older revision than before applies again.
    sync_helpers.link(org, "I1", integration.id, 42)
    tracker_admin.put_issue(org, "I1", {"assignee": None})
    post(delivery(integration.id, 42, 2, assigned_to=(None, "Dana <dana@example.com>")))
    run_queue()
    assert issue_view(org, "I1")["assignee"]["email"] == "dana@example.com"


def test_an_entity_too_large_for_table_storage_is_409_not_storage_unavailable(ado) -> None:
    """Table Storage answers 400 PropertyValueTooLarge; the route says so in a sentence, and nothing changed."""
    org = f"org-{new_id()[:8]}"
    tracker_admin.put_issue(org, "I1", {"title": "before"})
    error = {"odata.error": {"code": "PropertyValueTooLarge", "message": {"lang": "en-US", "value": "too large"}}}
    # Only the conditional replace of the issue is refused; every other storage call reaches Azurite.
    ado.add(
        responses.PUT,
        re.compile(r"http://127\.0\.0\.1:\d+/[^/]+/\w*issues\(.*"),
        status=400,
        json=error,
        headers={"x-ms-error-code": "PropertyValueTooLarge"},
    )
    route = {"org_id": org, "issue_id": "I1"}
    response = put_issue_route(_request("PUT", "http://localhost/api/orgs/x", route, {"title": "after"}))
    assert response.status_code == 409, response.get_body()
    assert "too large" in json.loads(response.get_body())["error"]
    ado.reset()
    ado.add_passthru(re.compile(r"http://127\.0\.0\.1:\d+/"))
    assert issue_view(org, "I1")["title"] == "before"


# -- item 10: a disabled integration applies nothing -------------------------------------------------------------


def test_a_queued_update_for_a_disabled_integration_applies_nothing_and_says_so(ado, empty_queue, caplog) -> None:
    integration = make_integration(webhook_secret=SECRET)
    org = f"org-{new_id()[:8]}"
    setup_org(org, integration.id, members={"dana@example.com": "u-dana"})
    tracked_issue(org, "I1", integration.id, 42)
    ado.get(STATES_URL, json=BUG_STATES)
    both = delivery(integration.id, 42, 3, state=("Active", "Resolved"), assigned_to=(None, "Dana <dana@example.com>"))
    assert post(both).status_code == 202
    integration_admin.disable_integration(integration.id)
    # This process saw the integration active moments ago; an instance that did not, or this one a few seconds
    # later, reads it again. Forget the recent view, as another instance would have none.
    from shared.store import integrations as integrations_module

    integrations_module._recent.forget(integration.id)
    with caplog.at_level(logging.INFO):
        run_queue()
    view = issue_view(org, "I1")
    assert (view["status"], view["assignee"], view["activity"]) == ("unresolved", None, [])
    assert "disabled or gone: nothing applied" in caplog.text


# -- item 12: one email normalizer ---------------------------------------------------------------------------------


@pytest.mark.parametrize("email", ["dana@corp", "Dana.O'Brien@Example.co.uk", "dana+boards@example.com"])
def test_every_email_a_member_can_have_is_matched_from_a_delivery(ado, empty_queue, email: str) -> None:
    integration = make_integration(webhook_secret=SECRET)
    org = f"org-{new_id()[:8]}"
    setup_org(org, integration.id, members={email: "u-1"})
    tracked_issue(org, "I1", integration.id, 42)
    assert post(delivery(integration.id, 42, 2, assigned_to=(None, f"Dana <{email.upper()}>"))).status_code == 202
    run_queue()
    assert issue_view(org, "I1")["assignee"] == {"email": email.lower(), "user_id": "u-1"}


# -- item 4: a refresh that loses its race keeps an admin's new credentials ------------------------------------


def test_an_oauth_refresh_that_loses_its_race_keeps_credentials_an_admin_put_meanwhile(env, ado) -> None:
    env.setenv("ADO_CLIENT_SECRET", "the-client-secret")
    integration = make_integration(
        credentials={"type": "oauth", "access_token": "old", "refresh_token": "rt-1", "expires_at": time.time() - 9}
    )

    def token_endpoint(request: Any) -> tuple[int, dict, str]:
        # While the refresh is under way, an admin replaces the credentials with a PAT.
        integration_admin.put_integration(integration.id, {"credentials": {"type": "pat", "token": "new-pat"}})
        return 200, {}, json.dumps({"access_token": "refreshed", "refresh_token": "rt-2", "expires_in": 3600})

    ado.add_callback(ado.POST, "https://app.vssps.visualstudio.com/oauth2/token", callback=token_endpoint)
    ado.get("https://dev.azure.com/fabrikam/_apis/wit/workitems/7", json={"id": 7, "fields": {}})
    route = {"integration_id": integration.id, "issue_id": "7"}
    assert get_issue_route(_request("GET", "http://localhost/api/vsts/x/issues/7", route)).status_code == 200
    stored = IntegrationStore().get(integration.id)
    assert stored.credentials == {"type": "pat", "token": "new-pat"}
    assert stored.refresh_lock_until is None


# -- item 8: no orphaned subscription ------------------------------------------------------------------------------


def test_a_subscription_whose_record_cannot_be_saved_is_deleted_again(env, ado) -> None:
    env.setenv("WEBHOOK_PUBLIC_URL", "https://app.example.com/api/vsts/issue-updated")
    integration = make_integration()
    hooks = "https://dev.azure.com/fabrikam/_apis/hooks/subscriptions"
    ado.post(hooks, json={"id": "sub-new", "status": "enabled"})
    ado.post(hooks, json={"id": "sub-comments", "status": "enabled"})  # its workitem.commented twin
    ado.delete(f"{hooks}/sub-new", status=204)
    ado.delete(f"{hooks}/sub-comments", status=204)
    # Storage refuses the write that would record the subscription and its secret.
    ado.add(responses.PUT, re.compile(r"http://127\.0\.0\.1:\d+/[^/]+/\w*integrations\(.*"), status=503)
    route = {"integration_id": integration.id}
    response = create_subscription_route(_request("POST", "http://localhost/api/vsts/integrations/x", route))
    assert response.status_code == 503
    calls = [(c.request.method, c.request.url) for c in ado.calls if "hooks/subscriptions" in c.request.url]
    assert calls == [
        ("POST", hooks),
        ("POST", hooks),
        ("DELETE", f"{hooks}/sub-new"),
        ("DELETE", f"{hooks}/sub-comments"),
    ]
    events = [json.loads(c.request.body)["eventType"] for c in ado.calls if c.request.method == "POST"]
    assert events[:2] == ["workitem.updated", "workitem.commented"]
    ado.reset()
    ado.add_passthru(re.compile(r"http://127\.0\.0\.1:\d+/"))
    assert IntegrationStore().get(integration.id).subscription_id is None


def test_a_change_saved_but_not_noted_says_so_and_sending_it_again_queues_it(ado) -> None:
    """The PUT saves, notes the change as pending, then queues it. When only the queueing fails the change is
    accepted (the sweep sends it); when the pending row cannot be written, the 503 says what to do."""
    from shared.store import base, pending
    from shared.store.queues import OUTBOUND_QUEUE_NAME

    integration = make_integration()
    org = f"org-{new_id()[:8]}"
    tracked_issue(org, "I1", integration.id, 42)
    route = {"org_id": org, "issue_id": "I1"}
    queue = re.compile(rf"http://127\.0\.0\.1:\d+/[^/]+/{OUTBOUND_QUEUE_NAME}/messages.*")
    refused = ado.add(responses.POST, queue, status=500)
    response = put_issue_route(_request("PUT", "http://localhost/api/orgs/x", route, {"status": "resolved"}))
    assert response.status_code == 200  # saved and noted: the sweep sends it
    ado.remove(refused)
    assert issue_view(org, "I1")["status"] == "resolved"
    assert any(row.ref.key.startswith(f"{org}|I1|") for row in pending.due(now=10**12, limit=10_000))
    table = re.compile(rf"http://127\.0\.0\.1:\d+/[^/]+/{base.table_name(pending.TABLE)}.*")
    refused = [ado.add(method, table, status=500) for method in (responses.PUT, responses.PATCH, responses.POST)]
    response = put_issue_route(_request("PUT", "http://localhost/api/orgs/x", route, {"status": "unresolved"}))
    assert response.status_code == 503
    assert "saved but not yet queued" in json.loads(response.get_body())["error"]
    assert issue_view(org, "I1")["status"] == "unresolved"
    for rule in refused:
        ado.remove(rule)
    queued_messages(OUTBOUND_QUEUE_NAME)
    again = put_issue_route(_request("PUT", "http://localhost/api/orgs/x", route, {"status": "unresolved"}))
    assert again.status_code == 200
    assert len(queued_messages(OUTBOUND_QUEUE_NAME)) == 1
