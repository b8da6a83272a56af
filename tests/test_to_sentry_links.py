"""What queues a `SentryUpdate` (contract §13.2): inbound sync (deliveries and reconciliation snapshots) on a
Sentry organization's issue, and links made outside Sentry's UI, which the worker shows on the Sentry issue
exactly once. Azurite real; Azure DevOps (`ado`) and Sentry (`sentry_http`) faked with `responses`."""

from __future__ import annotations

import json

import pytest
import responses

from shared.admin import tracker as tracker_admin
from shared.admin import workitems
from shared.deliveries.sentry_messages import read_update_message
from shared.model.sentry import SentryInstallation, SentryUpdate
from shared.model.tracker import Link
from shared.sentryapp.to_sentry import process_update_message
from shared.store.queues import SENTRY_UPDATES_QUEUE_NAME
from shared.store.sentry import SentryStore
from shared.store.sentry_links import SentryLinkStore
from shared.sync.inbound import apply_workitem_update
from shared.sync.reconcile import snapshot_update
from tests.helpers import make_integration, new_id, wait_for
from tests.sync_helpers import SECRET, delivery, issue_view, post, queued_messages, run_queue, setup_org, tracked_issue
from tests.test_to_sentry import clear_updates_queue, queue_count

pytestmark = pytest.mark.usefixtures("azurite")

SENTRY = "https://sentry.example"
ORG_URL = "https://dev.azure.com/fabrikam/"
BUG_STATES = {"value": [{"name": "Active", "category": "InProgress"}, {"name": "Resolved", "category": "Resolved"}]}


@pytest.fixture(autouse=True)
def empty_queues(sentry_http: responses.RequestsMock):
    clear_updates_queue()
    queued_messages()
    yield
    clear_updates_queue()
    queued_messages()


def sentry_org(integration_id: str) -> tuple[str, str]:
    """A Sentry organization with the app installed and the integration installed (both syncs on, no members)."""
    slug = f"s{new_id()[:8]}"
    SentryStore().put(SentryInstallation(new_id(), slug, app_uuid="app-uuid", token="token"))
    setup_org(f"sentry-{slug}", integration_id)
    return f"sentry-{slug}", slug


def updates() -> list[SentryUpdate]:
    return [read_update_message(text)[0] for text in queued_messages(SENTRY_UPDATES_QUEUE_NAME)]


def test_an_inbound_change_is_queued_for_sentry_after_its_revision_and_an_unknown_assignee_applied(ado) -> None:
    integration = make_integration(webhook_secret=SECRET)
    org, _ = sentry_org(integration.id)
    tracked_issue(org, "123", integration.id, 42)
    assert [u.link for u in updates()] == [f"{integration.id}|42"]  # the link, made outside Sentry's UI
    ado.get(f"{ORG_URL}proj-1/_apis/wit/workitemtypes/Bug/states", json=BUG_STATES)
    changes = {"state": ("Active", "Resolved"), "assigned_to": (None, "Gus Ghost <gus@example.com>")}
    assert post(delivery(integration.id, 42, 3, **changes)).status_code == 202
    assert run_queue() == 1
    view = issue_view(org, "123")
    # No tracker member has that email: applied all the same, the Sentry user id is found on the way out.
    assert view["status"] == "resolved" and view["assignee"] == {"email": "gus@example.com", "user_id": None}
    key = f"{integration.id}|42"
    [update] = wait_for(updates, what="the Sentry update (queued with a short delay)")
    assert update == SentryUpdate(org, "123", ("assignee", "status"), after=((key, "assignee", 3), (key, "status", 3)))


def test_a_reconciliation_snapshot_queues_a_sentry_update_too(ado) -> None:
    integration = make_integration(webhook_secret=SECRET)
    org, _ = sentry_org(integration.id)
    tracked_issue(org, "123", integration.id, 42)
    updates()
    ado.get(f"{ORG_URL}proj-1/_apis/wit/workitemtypes/Bug/states", json=BUG_STATES)
    item = {"id": 42, "rev": 4, "fields": {"System.State": "Resolved", "System.WorkItemType": "Bug",
                                           "System.TeamProject": "proj-1"}}  # fmt: skip
    apply_workitem_update(snapshot_update(integration.id, item))
    assert issue_view(org, "123")["status"] == "resolved"
    [update] = wait_for(updates, what="the Sentry update")
    assert update.fields == ("status",) and update.after == ((f"{integration.id}|42", "status", 4),)


def test_another_organization_queues_nothing_for_sentry(ado) -> None:
    integration = make_integration(webhook_secret=SECRET)
    org = f"org-{new_id()[:8]}"
    setup_org(org, integration.id)
    tracked_issue(org, "123", integration.id, 42)
    ado.get(f"{ORG_URL}proj-1/_apis/wit/workitemtypes/Bug/states", json=BUG_STATES)
    assert post(delivery(integration.id, 42, 3, state=("Active", "Resolved"))).status_code == 202
    run_queue()
    assert issue_view(org, "123")["status"] == "resolved"
    assert queue_count() == 0  # delayed messages count too


def work_item(work_item_id: int) -> dict:
    html = f"{ORG_URL}web/wi.aspx?pcguid=abc&id={work_item_id}"
    return {
        "id": work_item_id,
        "rev": 1,
        "fields": {"System.AreaPath": "Shop\\Backend"},
        "_links": {"html": {"href": html}},
    }


def apply_queued() -> list[list[str]]:
    """Apply what is queued for Sentry; what each message sent."""
    return [process_update_message(text).report.sent for text in queued_messages(SENTRY_UPDATES_QUEUE_NAME)]


def external_calls(sentry: responses.RequestsMock) -> list[tuple[str, dict | None]]:
    return [
        (c.request.method, json.loads(c.request.body) if c.request.body else None)
        for c in sentry.calls
        if "/external-issues/" in c.request.url
    ]


def test_a_link_made_through_the_admin_api_is_shown_once_replaced_by_the_next_and_left_by_the_last_unlink(
    sentry_http,
) -> None:
    ado = sentry_http  # one mock for both services: a second one started later would hide this one
    integration = make_integration()
    org, _ = sentry_org(integration.id)
    uuid = SentryStore().for_org(org).uuid
    tracker_admin.put_issue(org, "123", {"title": "ZeroDivisionError"})
    for wid in (77, 78):
        ado.get(f"{ORG_URL}_apis/wit/workitems/{wid}", json=work_item(wid))
    external = f"{SENTRY}/api/0/sentry-app-installations/{uuid}/external-issues/"
    sentry_http.post(external, json={"id": "5001", "issueId": "123", "displayName": "Shop\\Backend#77"}, status=201)

    tracker_admin.put_link(org, "123", integration.id, "77")
    assert apply_queued() == [["link"]]
    page = f"{ORG_URL}web/wi.aspx?pcguid=abc&id=77"
    shown = {"issueId": 123, "webUrl": page, "project": "Shop\\Backend", "identifier": "77"}
    assert external_calls(sentry_http) == [("POST", shown)]
    activity = [e for e in issue_view(org, "123")["activity"] if e["type"].startswith("sentry_")]
    assert [(e["type"], e["fields"], e["work_item_id"]) for e in activity] == [("sentry_updated", ["link"], 77)]
    # The same request again (as after a 503), and the message delivered twice: queued again, nothing sent.
    tracker_admin.put_link(org, "123", integration.id, "77")
    assert apply_queued() == [[]]
    assert len(external_calls(sentry_http)) == 1
    # Sentry shows one external issue per issue and app: a second link replaces it, its unlink shows the first again.
    tracker_admin.put_link(org, "123", integration.id, "78")
    assert apply_queued() == [["link"]]
    tracker_admin.delete_link(org, "123", integration.id, "78")
    assert apply_queued() == [["link"]]
    assert [body["identifier"] for _, body in external_calls(sentry_http)] == ["77", "78", "77"]
    # Unlinking a link made elsewhere that Sentry does not show sends nothing; after the last unlink Sentry keeps
    # showing it: removing it needs event:admin, which the app does not ask for, so nothing is sent.
    tracker_admin.delete_link(org, "123", integration.id, "78")
    assert apply_queued() == [[]]
    tracker_admin.delete_link(org, "123", integration.id, "77")
    assert apply_queued() == [[]]
    assert [method for method, _ in external_calls(sentry_http)] == ["POST"] * 3
    assert SentryLinkStore().get(org, "123") is None
    # Linked again, it is shown again (the POST replaces what Sentry shows).
    tracker_admin.put_link(org, "123", integration.id, "77")
    assert apply_queued() == [["link"]]


def test_a_created_work_item_is_announced_but_not_when_sentry_s_own_ui_made_it(sentry_http) -> None:
    ado = sentry_http
    integration = make_integration()
    org, _ = sentry_org(integration.id)
    tracker_admin.put_issue(org, "123", {"title": "ZeroDivisionError"})
    workitems._type_cache.clear()
    ado.post(f"{ORG_URL}proj-1/_apis/wit/workitems/$Bug", json=work_item(80))
    body = {"integration_id": integration.id, "project": "proj-1", "type": "Bug"}
    workitems.create_work_item(org, "123", body)
    assert [u.link for u in updates()] == [f"{integration.id}|80"]
    workitems.create_work_item(org, "123", body, announce_to_sentry=False)
    tracker_admin.put_link(org, "123", integration.id, "80", announce_to_sentry=False)
    assert updates() == []
    assert Link(integration.id, 80) in tracker_admin.get_issue(org, "123").links
