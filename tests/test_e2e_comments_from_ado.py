"""Comments from Azure DevOps (contract §18) end to end: the local host beside the fake Azure DevOps (a person's
comment makes a revision and a `workitem.commented` delivery; edits and deletions make no `workitem.commented`)
and the fake Sentry (its group notes route refuses a duplicate within an hour, and a note the app posts comes back
as `comment.created` with the app as actor), on Azurite."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from devtools.fakes import FakeAzureDevOps, FakeSentry
from tests.e2e import settled as settle
from tests.e2e import stop_host
from tests.helpers import wait_for
from tests.sentry_e2e import SentryHost, SentryWorld, sentry_world, start_sentry_host

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("azurite")]

QUEUES = ("vsts-workitem-updates", "vsts-outbound", "vsts-sentry-updates", "vsts-sentry-hooks")
DANA = "Dana Lee <dana@example.com>"


@pytest.fixture(scope="module")
def reverse_host(azurite, fake_ado: FakeAzureDevOps, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SentryHost]:
    env = {"QUEUE_RETRY_BASE_SECONDS": "1", "QUEUE_RETRY_MAX_SECONDS": "2"}
    with FakeSentry() as sentry:
        started = start_sentry_host(tmp_path_factory.mktemp("from-ado"), fake_ado, sentry, env)
        yield started
        stop_host(started.host)


def settled(world_host: SentryHost) -> None:
    settle(world_host.host, *QUEUES)


def reverse_world(world_host: SentryHost) -> SentryWorld:
    world = sentry_world(world_host)
    every = {
        "sync_reverse_assignment": True,
        "sync_status_reverse": True,
        "sync_status_forward": True,
        "sync_forward_assignment": True,
        "sync_comments": True,
        "sync_comments_reverse": True,
    }
    host = world_host.host
    response = host.call("PUT", f"/api/orgs/{world.org_id}/integrations/{world.integration_id}", json=every)
    assert response.status_code == 200 and response.json()["sync_comments_reverse"] is True, response.text
    response = host.call("POST", f"/api/vsts/integrations/{world.integration_id}/subscription")
    assert response.status_code == 201, response.text
    assert response.json()["subscription"]["comments"]["id"]  # the workitem.commented twin
    events = sorted(s["eventType"] for s in world_host.ado.subscriptions(world.ado_org))
    assert events == ["workitem.commented", "workitem.updated"]
    settled(world_host)
    return world


def listed(world_host: SentryHost, world: SentryWorld) -> list[dict[str, Any]]:
    response = world_host.host.call("GET", f"/api/orgs/{world.org_id}/issues/{world.issue_id}/comments")
    assert response.status_code == 200, response.text
    return response.json()


def live(world_host: SentryHost, world: SentryWorld) -> list[dict[str, Any]]:
    return [c for c in world_host.ado.comments(world.ado_org, world.work_item_id) if not c["isDeleted"]]


def reconcile(world_host: SentryHost) -> None:
    host = world_host.host
    runs = host.log().count("Executed reconcile")
    host.invoke("reconcile")
    wait_for(lambda: host.log().count("Executed reconcile") > runs, what="reconcile to run")
    settled(world_host)


def test_a_work_item_comment_reaches_the_issue_and_sentry_once_and_its_echo_changes_nothing(reverse_host) -> None:
    ado, sentry = reverse_host.ado, reverse_host.sentry
    world = reverse_world(reverse_host)
    html = '<div>It <b>still</b> fails, see <a href="#" data-vss-mention="version:2.0,1">@Lee Roe</a></div>'
    ado.add_comment(world.ado_org, world.work_item_id, html, by=DANA)
    [comment] = wait_for(lambda: listed(reverse_host, world), what="the comment on the tracked issue")
    assert (comment["source"], comment["author"], comment["work_item_id"]) == ("vsts", "Dana Lee", 77)
    assert comment["text"].startswith("It **still** fails, see @Lee Roe")
    assert "[see the original](" in comment["text"] and comment["url"].endswith("/_workitems/edit/77")
    [note] = wait_for(lambda: sentry.notes(world.org_slug, world.issue_id), what="the comment in Sentry")
    assert note["by_app"] and "**Dana Lee** wrote on [work item 77](" in note["text"]
    assert "It **still** fails" in note["text"]
    # Sentry sent the note back as comment.created with the app as actor, and the app accepted it...
    echo = wait_for(
        lambda: [
            w
            for w in sentry.webhooks
            if (w.resource, w.action, w.installation) == ("comment", "created", world.installation_uuid)
        ],
        what="Sentry's comment.created echo",
    )
    assert echo[0].status is not None and 200 <= echo[0].status < 300
    settled(reverse_host)
    # ...and changed nothing: one comment on the issue, one note in Sentry, the person's one on the work item.
    assert len(listed(reverse_host, world)) == 1 and len(sentry.notes(world.org_slug, world.issue_id)) == 1
    assert [c["createdBy"] for c in live(reverse_host, world)] == [DANA]
    # The same delivery again (Azure DevOps retries) adds nothing.
    [delivery] = [d for d in ado.deliveries if d.payload["eventType"] == "workitem.commented"][-1:]
    ado.deliver(world.ado_org, delivery.payload, subscription_id=delivery.subscription_id)
    settled(reverse_host)
    assert len(listed(reverse_host, world)) == 1 and len(sentry.notes(world.org_slug, world.issue_id)) == 1


def test_the_apps_own_comment_in_azure_devops_is_never_sent_back(reverse_host) -> None:
    ado, sentry = reverse_host.ado, reverse_host.sentry
    world = reverse_world(reverse_host)
    # A person comments in Sentry: the app copies it to the work item (its marker on the first line), and Azure
    # DevOps delivers workitem.commented for the app's own comment.
    sentry.add_comment(world.org_slug, world.issue_id, "Seen in **prod** too.", by_user="101")
    [copy] = wait_for(lambda: live(reverse_host, world), what="the Sentry comment on the work item")
    assert copy["text"].startswith("[//]: # (tracker-comment:")
    wait_for(
        lambda: [d for d in ado.deliveries if d.payload["eventType"] == "workitem.commented"
                 and d.payload["resource"]["id"] == world.work_item_id],
        what="the workitem.commented delivery of the app's comment",
    )  # fmt: skip
    settled(reverse_host)
    [only] = listed(reverse_host, world)
    assert only["source"] == "sentry"
    assert [n["by_app"] for n in sentry.notes(world.org_slug, world.issue_id)] == [False]  # the person's only
    assert len(live(reverse_host, world)) == 1
    # Reconcile reads the same comments and recognises the app's copy too.
    reconcile(reverse_host)
    assert len(listed(reverse_host, world)) == 1 and len(sentry.notes(world.org_slug, world.issue_id)) == 1


def test_reconcile_picks_up_a_missed_comment_an_edit_and_a_delete(reverse_host) -> None:
    ado, sentry = reverse_host.ado, reverse_host.sentry
    world = reverse_world(reverse_host)
    first = ado.add_comment(world.ado_org, world.work_item_id, "<p>first take</p>", by=DANA)
    second = ado.add_comment(world.ado_org, world.work_item_id, "<p>to be deleted</p>", by=DANA)
    wait_for(lambda: len(sentry.notes(world.org_slug, world.issue_id)) == 2, what="both comments in Sentry")
    settled(reverse_host)
    # Edits and deletions send no workitem.commented; a third comment's delivery is lost (subscription disabled).
    ado.edit_comment(world.ado_org, world.work_item_id, first, "<p>second <i>take</i></p>")
    ado.delete_comment(world.ado_org, world.work_item_id, second)
    for sub in ado.subscriptions(world.ado_org):
        ado.set_subscription_status(sub["id"], "disabledByUser")
    ado.add_comment(world.ado_org, world.work_item_id, "<p>missed</p>", by=DANA)
    settled(reverse_host)
    assert [c["text"] for c in listed(reverse_host, world)] == ["first take", "to be deleted"]
    reconcile(reverse_host)
    assert [c["text"] for c in listed(reverse_host, world)] == ["second *take*", "missed"]
    notes = [n["text"] for n in sentry.notes(world.org_slug, world.issue_id)]
    # The edit and the missed comment reach Sentry; the deleted one's note stays: the app has no event:admin.
    assert len(notes) == 3 and "second *take*" in notes[0] and "to be deleted" in notes[1] and "missed" in notes[2]
    before = len(sentry.notes(world.org_slug, world.issue_id))
    reconcile(reverse_host)  # nothing new: nothing sent again
    assert len(listed(reverse_host, world)) == 2 and len(sentry.notes(world.org_slug, world.issue_id)) == before
