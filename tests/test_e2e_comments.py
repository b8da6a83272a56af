"""Comments (contract §12.3) end to end: the local host, Azurite and the fake Azure DevOps, whose Comments API
keeps what the app adds, edits and deletes, and delivers the revisions that adding and deleting make."""

from __future__ import annotations

from typing import Any

import pytest

from shared.model.comments import RemoteCopy
from shared.store.comments import CommentStore
from tests.e2e import create_world, settled, start_host, stop_host, tracked_issue
from tests.helpers import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("azurite")]

OUTBOUND = "vsts-outbound"


@pytest.fixture(scope="module")
def comments_host(fake_ado, tmp_path_factory):
    # Quick back-off, so a throttled attempt is retried within the test.
    env = {**fake_ado.settings_env(), "QUEUE_RETRY_BASE_SECONDS": "1", "QUEUE_RETRY_MAX_SECONDS": "2"}
    host = start_host(tmp_path_factory.mktemp("comments"), env)
    yield host
    stop_host(host)


def world(host, fake, *, work_items=(77,), sync_comments: bool = True) -> tuple[str, str, str]:
    name, integration_id, org = create_world(host, fake, work_items=work_items)
    body = {"sync_reverse_assignment": True, "sync_status_reverse": True, "sync_comments": sync_comments}
    assert host.call("PUT", f"/api/orgs/{org}/integrations/{integration_id}", json=body).status_code == 200
    response = host.call("POST", f"/api/vsts/integrations/{integration_id}/subscription")
    assert response.status_code == 201, response.text
    fake.reset_log()  # count only what the comments cost (linking read each work item once)
    return name, integration_id, org


def comments_path(name: str, wid: int = 77, comment: bool = False) -> str:
    return rf"(?i)^/{name}/[^/]+/_apis/wit/workitems/{wid}/comments" + (r"/\d+$" if comment else "$")


def requests_made(fake, name: str, wid: int = 77) -> dict[str, int]:
    return {
        "GET item": fake.count("GET", rf"(?i)^/{name}/(?:[^/]+/)?_apis/wit/workitems/{wid}$"),
        "list": fake.count("GET", comments_path(name, wid)),
        "POST": fake.count("POST", comments_path(name, wid)),
        "PATCH": fake.count("PATCH", comments_path(name, wid, True)),
        "DELETE": fake.count("DELETE", comments_path(name, wid, True)),
    }


def add(host, org: str, text: str, author: str = "Dana", wid: int = 77) -> dict[str, Any]:
    response = host.call("POST", f"/api/orgs/{org}/issues/I{wid}/comments", json={"author": author, "text": text})
    assert response.status_code == 201, response.text
    return response.json()


def live(fake, name: str, wid: int = 77) -> list[dict[str, Any]]:
    return [c for c in fake.comments(name, wid) if not c["isDeleted"]]


def activity(host, org: str) -> list[tuple[str, str, str | None]]:
    return [(e["type"], e["source"], e.get("action")) for e in tracked_issue(host, org)["activity"]]


def test_add_edit_and_delete_reach_the_work_item_and_the_echo_changes_nothing(comments_host, fake_ado) -> None:
    name, _, org = world(comments_host, fake_ado)
    deliveries = len(fake_ado.deliveries)
    comment = add(comments_host, org, "It crashes on **save**.", author="Dana <dana@example.com>")
    [copy] = wait_for(lambda: live(fake_ado, name), what="the comment on the work item")
    assert (
        copy["format"] == "markdown"
        and "**Dana \\<dana\\@example\\.com\\>** wrote:\n\nIt crashes on **save**." in copy["text"]
    )
    assert copy["text"].startswith(f"[//]: # (tracker-comment:{org}/I77/{comment['id']})\n")
    # Adding the comment made a revision, delivered as workitem.updated (System.CommentCount, System.History).
    echo = wait_for(lambda: fake_ado.deliveries[deliveries:], what="the delivery of the comment's revision")
    assert "System.CommentCount" in echo[0].payload["resource"]["fields"] and echo[0].status == 202
    settled(comments_host)
    added = requests_made(fake_ado, name)
    assert added == {"GET item": 1, "list": 0, "POST": 1, "PATCH": 0, "DELETE": 0}
    # The echo went through the inbound sync and changed nothing: no vsts activity, no outbound patch.
    issue = tracked_issue(comments_host, org)
    assert issue["status"] == "unresolved" and issue["assignee"] is None
    assert activity(comments_host, org) == [("ado_updated", "api", "added")]
    assert fake_ado.count("PATCH", rf"(?i)^/{name}/(?:[^/]+/)?_apis/wit/workitems/77$") == 0

    edit = comments_host.call("PUT", f"/api/orgs/{org}/issues/I77/comments/{comment['id']}", json={"text": "Fixed?"})
    assert edit.status_code == 200 and edit.json()["text"] == "Fixed?"
    wait_for(lambda: live(fake_ado, name)[0]["text"].endswith("wrote:\n\nFixed?"), what="the edit")
    settled(comments_host)
    assert requests_made(fake_ado, name) == {**added, "PATCH": 1}
    delete = comments_host.call("DELETE", f"/api/orgs/{org}/issues/I77/comments/{comment['id']}")
    assert delete.status_code == 204
    wait_for(lambda: fake_ado.comments(name, 77)[0]["isDeleted"], what="the deletion")
    settled(comments_host)
    assert requests_made(fake_ado, name) == {**added, "PATCH": 1, "DELETE": 1}
    assert len(fake_ado.comments(name, 77)) == 1
    assert [a for a in activity(comments_host, org) if a[0] != "ado_updated"] == []
    assert [a[2] for a in activity(comments_host, org)] == ["added", "edited", "deleted"]


def test_with_sync_comments_off_nothing_is_sent(comments_host, fake_ado) -> None:
    name, _, org = world(comments_host, fake_ado, sync_comments=False)
    add(comments_host, org, "internal note")
    settled(comments_host)
    assert fake_ado.comments(name, 77) == [] and sum(requests_made(fake_ado, name).values()) == 0
    assert activity(comments_host, org) == []


def test_an_issue_linked_to_two_work_items_gets_the_comment_on_both(comments_host, fake_ado) -> None:
    name, integration_id, org = world(comments_host, fake_ado)
    fake_ado.add_work_item(name, 88, {"System.State": "Active", "System.WorkItemType": "Task", "System.Title": "x"})
    assert comments_host.call("PUT", f"/api/orgs/{org}/issues/I77/links/{integration_id}/88").status_code == 200
    add(comments_host, org, "on both")
    wait_for(lambda: live(fake_ado, name, 77) and live(fake_ado, name, 88), what="the comment on both work items")
    settled(comments_host)
    assert len(fake_ado.comments(name, 77)) == len(fake_ado.comments(name, 88)) == 1
    assert [(a[0], a[2]) for a in activity(comments_host, org)] == [("ado_updated", "added")] * 2


def test_a_retry_after_a_lost_answer_finds_the_comment_instead_of_adding_it_twice(comments_host, fake_ado) -> None:
    name, integration_id, org = world(comments_host, fake_ado)
    comment = add(comments_host, org, "only once")
    wait_for(lambda: live(fake_ado, name), what="the comment on the work item")
    settled(comments_host)
    # As if the worker had died after Azure DevOps added it, before the id was recorded: its claim ran out.
    key = f"{integration_id}|77"

    def cut_off(current: Any) -> Any:
        return current.with_copy(key, RemoteCopy(project=current.remote[key].project, claim="x", claimed_until=1.0))

    CommentStore().update(org, "I77", comment["id"], cut_off)
    before = requests_made(fake_ado, name)
    again = comments_host.call(
        "PUT", f"/api/orgs/{org}/issues/I77/comments/{comment['id']}", json={"text": "only once"}
    )
    assert again.status_code == 200  # the same text: queued again, which is what brings the worker back
    wait_for(lambda: CommentStore().get(org, "I77", comment["id"]).remote[key].ado_id, what="the copy found again")
    settled(comments_host)
    assert len(fake_ado.comments(name, 77)) == 1
    assert requests_made(fake_ado, name) == {**before, "list": before["list"] + 1}


def test_throttling_is_retried_and_ends_applied(comments_host, fake_ado) -> None:
    name, _, org = world(comments_host, fake_ado)
    fake_ado.fail_next("POST", comments_path(name), 429, headers={"Retry-After": "1"}, count=4)
    add(comments_host, org, "eventually")
    wait_for(lambda: live(fake_ado, name), 60, "the retried comment")
    settled(comments_host)
    assert len(fake_ado.comments(name, 77)) == 1 and "queued again" in comments_host.log()
    # Three tries within the first attempt (its bounded retries), then one that is throttled and one that is not
    # within the second, which looked for the comment first (the first attempt's claim was given up).
    assert requests_made(fake_ado, name) == {"GET item": 1, "list": 1, "POST": 5, "PATCH": 0, "DELETE": 0}
