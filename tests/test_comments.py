"""Comments (contract §12.3): validation and storage through the admin code and the routes, the queue message,
the text sent to Azure DevOps, and the worker's decisions, on Azurite, with Azure DevOps faked by `responses`."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import azure.functions as func
import pytest
import responses

from functions import comments as routes
from shared.admin import comments as admin
from shared.admin import tracker as tracker_admin
from shared.deliveries import InvalidDelivery
from shared.deliveries.comments import is_comment_message, read_comment_message, to_comment_message
from shared.deliveries.outbound import read_outbound_message, to_outbound_message
from shared.errors import InvalidInput, NotFound, StorageUnavailable
from shared.model.changes import OutboundChange
from shared.model.comments import MAX_TEXT, Comment, CommentChange
from shared.model.tracker import Link
from shared.store import pending
from shared.store.comments import CommentStore
from shared.store.queues import OUTBOUND_QUEUE_NAME
from shared.sync import comments as worker
from shared.sync import wakeups
from shared.sync.comment_text import escape_inline, is_copy_of, marker, render
from shared.sync.queued import process_outbound_message
from tests.helpers import FakeClock, make_integration, new_id
from tests.sync_helpers import issue_view, queued_messages, setup_org, tracked_issue

BASE = "https://dev.azure.com/fabrikam/"
ITEM = BASE + "_apis/wit/workitems/42"
COMMENTS = BASE + "Fabrikam/_apis/wit/workItems/42/comments"


def outbound() -> list[str]:
    return queued_messages(OUTBOUND_QUEUE_NAME)


@pytest.fixture
def storage(azurite):
    outbound()
    yield
    outbound()


@pytest.fixture
def world(storage, ado) -> tuple[str, str]:
    """Issue I1 of a new organization, linked to work item 42 of an installation with sync_comments."""
    integration = make_integration()
    org = f"org-{new_id()[:8]}"
    setup_org(org, integration.id)
    body = {"sync_reverse_assignment": True, "sync_status_reverse": True, "sync_comments": True}
    tracker_admin.put_installation(org, integration.id, body)
    tracked_issue(org, "I1", integration.id, 42)
    ado.get(ITEM, json={"id": 42, "rev": 3, "fields": {"System.TeamProject": "Fabrikam", "System.WorkItemType": "Bug"}})
    return org, integration.id


class AzureDevOpsComments:
    """The comments of work item 42, as the Comments API keeps them: what was posted is listed back."""

    def __init__(self, ado: responses.RequestsMock) -> None:
        self.stored: list[dict[str, Any]] = []
        ado.add_callback(responses.POST, COMMENTS, callback=self._add)
        ado.add_callback(responses.GET, COMMENTS, callback=self._list)

    def _add(self, request: Any) -> tuple[int, dict, str]:
        comment = {"id": 1000 + len(self.stored), "text": json.loads(request.body)["text"], "isDeleted": False}
        self.stored.append(comment)
        return 200, {}, json.dumps(comment)

    def _list(self, request: Any) -> tuple[int, dict, str]:
        return 200, {}, json.dumps({"count": len(self.stored), "comments": list(reversed(self.stored))})


def calls(ado: responses.RequestsMock, method: str, url: str) -> list[Any]:
    return [c for c in ado.calls if c.request.method == method and c.request.url.split("?")[0] == url]


def run(org: str) -> None:
    """Apply every queued outbound message as the queue function would."""
    for text in outbound():
        process_outbound_message(text)


def comment_activity(org: str) -> list[tuple[str, str | None]]:
    return [(a["type"], a.get("action")) for a in issue_view(org, "I1")["activity"] if a["type"].startswith("ado_")]


# -- the text -----------------------------------------------------------------------------------------------


def test_the_author_cannot_add_markup_and_only_the_first_line_marks_a_copy() -> None:
    comment = Comment(
        "org-1", "I1", "1700000000000-abcd0123", "<img src=x onerror=alert(1)> **[me](http://e)**", "hi", 0
    )
    text = render(comment)
    first, author_line, blank, body = text.split("\n")
    assert first == marker(comment) == "[//]: # (tracker-comment:org-1/I1/1700000000000-abcd0123)"
    assert author_line.startswith("**\\<img src\\=x onerror\\=alert\\(1\\)\\> \\*\\*\\[me\\]\\(http\\:\\/\\/e\\)\\*\\*")
    assert author_line.endswith("** wrote:") and blank == "" and body == "hi"
    assert escape_inline("Dana\t  Lee\n") == "Dana Lee"
    assert is_copy_of(text, comment) and is_copy_of(
        render(Comment("org-1", "I1", comment.comment_id, "x", "y", 0)), comment
    )
    other = Comment("org-1", "I1", "1700000000000-ffff0000", "Eve", f"quoting:\n{marker(comment)}", 0)
    assert not is_copy_of(render(other), comment) and not is_copy_of(None, comment)


# -- the queue message --------------------------------------------------------------------------------------


def test_comment_messages_round_trip_and_are_never_read_as_field_changes() -> None:
    change = CommentChange("org-1", "I1", "1700000000000-abcd0123", only=("int-1|42",))
    text = to_comment_message(change, attempt=2)
    assert is_comment_message(text) and read_comment_message(text) == (change, 2)
    with pytest.raises(InvalidDelivery):
        read_outbound_message(text)
    field_change = to_outbound_message(OutboundChange("org-1", "I1", ("status",)))
    assert not is_comment_message(field_change) and not is_comment_message("not json")
    with pytest.raises(InvalidDelivery):
        read_comment_message(field_change)
    good = json.loads(text)
    for bad in ({**good, "extra": 1}, {**good, "comment_id": "a/b"}, {**good, "only": ["nope"]}, {**good, "v": 2}):
        with pytest.raises(InvalidDelivery):
            read_comment_message(json.dumps(bad))


# -- validation and storage ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        {"text": "hi"},
        {"author": "Dana"},
        {"author": " ", "text": "hi"},
        {"author": "Dana", "text": "  \n"},
        {"author": "Dana", "text": 5},
        {"author": "Dana", "text": "bell\x07"},
        {"author": "Dana", "text": "x" * (MAX_TEXT + 1)},
        {"author": "Dana", "text": "\U0001f600" * (MAX_TEXT // 2 + 1)},  # two UTF-16 units each
        {"author": "D" * 257, "text": "hi"},
        {"author": "Dana", "text": "hi", "at": "now"},
    ],
)
def test_bad_comments_are_refused_and_nothing_is_written(world, body) -> None:
    org, _ = world
    with pytest.raises(InvalidInput):
        admin.add_comment(org, "I1", body)
    assert CommentStore().comments_of(org, "I1") == [] and outbound() == []


def test_the_longest_text_and_line_breaks_are_accepted(world) -> None:
    org, _ = world
    saved = admin.add_comment(org, "I1", {"author": " Dana  Lee ", "text": "a\r\n\tb" + "x" * (MAX_TEXT - 5)})
    assert saved.author == "Dana Lee"
    [stored] = CommentStore().comments_of(org, "I1")
    assert stored.text == saved.text and len(outbound()) == 1


def test_unknown_issues_and_comments_are_404(world) -> None:
    org, _ = world
    with pytest.raises(NotFound):
        admin.add_comment(org, "nope", {"author": "Dana", "text": "hi"})
    with pytest.raises(NotFound):
        admin.edit_comment(org, "I1", "1700000000000-abcd0123", {"text": "hi"})
    with pytest.raises(NotFound):
        admin.delete_comment(org, "I1", "bad/id")
    saved = admin.add_comment(org, "I1", {"author": "Dana", "text": "hi"})
    admin.delete_comment(org, "I1", saved.comment_id)
    admin.delete_comment(org, "I1", saved.comment_id)  # again: accepted (a retry after a 503)
    with pytest.raises(NotFound):
        admin.edit_comment(org, "I1", saved.comment_id, {"text": "back"})
    [tombstone] = CommentStore().comments_of(org, "I1")
    assert tombstone.deleted and tombstone.text == ""


def test_an_issue_without_links_queues_nothing(storage) -> None:
    org = f"org-{new_id()[:8]}"
    tracker_admin.put_issue(org, "I9", {"title": "alone"})
    admin.add_comment(org, "I9", {"author": "Dana", "text": "hi"})
    assert outbound() == []


def test_a_failed_queueing_keeps_the_new_comment_noted_for_the_sweep(world, monkeypatch) -> None:
    org, _ = world

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise StorageUnavailable("queue down")

    monkeypatch.setattr(wakeups.queues, "enqueue", refuse)
    comment = admin.add_comment(org, "I1", {"author": "Dana", "text": "hi"})
    assert [c.comment_id for c in CommentStore().comments_of(org, "I1")] == [comment.comment_id]
    ref = wakeups.comment_ref(CommentChange(org, "I1", comment.comment_id))
    assert pending.get(ref) is not None  # the sweep sends it


def request(method: str, path: str, body: Any = None, **params: str) -> func.HttpRequest:
    data = body if isinstance(body, bytes) else json.dumps(body).encode() if body is not None else b""
    return func.HttpRequest(method, f"http://localhost/api/{path}", body=data, route_params=params)


def test_the_routes(world) -> None:
    org, _ = world
    keys = {"org_id": org, "issue_id": "I1"}
    added = routes.add_comment(request("POST", "c", {"author": "Dana", "text": "hi"}, **keys))
    assert added.status_code == 201
    body = json.loads(added.get_body())
    assert set(body) == {"id", "author", "text", "at"} and body["at"].endswith("Z")
    edited = routes.edit_comment(request("PUT", "c", {"text": "there"}, **keys, comment_id=body["id"]))
    assert edited.status_code == 200 and json.loads(edited.get_body())["text"] == "there"
    assert routes.delete_comment(request("DELETE", "c", **keys, comment_id=body["id"])).status_code == 204
    assert routes.add_comment(request("POST", "c", {"text": "hi"}, **keys)).status_code == 400
    assert routes.add_comment(request("POST", "c", b"[1]", **keys)).status_code == 400
    assert routes.add_comment(request("POST", "c", b"x" * (300 * 1024), **keys)).status_code == 413
    missing = routes.add_comment(request("POST", "c", {"author": "D", "text": "t"}, org_id=org, issue_id="I404"))
    assert missing.status_code == 404 and "issue" in json.loads(missing.get_body())["error"]


# -- the worker ---------------------------------------------------------------------------------------------


def test_add_edit_and_delete_reach_the_work_item(world, ado) -> None:
    org, integration_id = world
    remote = AzureDevOpsComments(ado)
    ado.patch(COMMENTS + "/1000", json={"id": 1000})
    ado.delete(COMMENTS + "/1000", status=200)
    saved = admin.add_comment(org, "I1", {"author": "Dana <dana@example.com>", "text": "**Steps:**\n1. run"})
    run(org)
    assert [c["text"] for c in remote.stored] == [render(saved)]
    [post] = calls(ado, "POST", COMMENTS)
    assert "format=markdown" in post.request.url
    assert post.request.headers["Accept"] == "application/json;api-version=7.1-preview.4"
    copy = CommentStore().get(org, "I1", saved.comment_id).remote[f"{integration_id}|42"]
    assert (copy.ado_id, copy.project, copy.version, copy.claim) == (1000, "Fabrikam", 1, None)
    assert len(calls(ado, "GET", ITEM)) == 1 and len(calls(ado, "GET", COMMENTS)) == 0  # a first add looks for nothing

    admin.edit_comment(org, "I1", saved.comment_id, {"text": "edited"})
    run(org)
    [patch] = calls(ado, "PATCH", COMMENTS + "/1000")
    assert json.loads(patch.request.body)["text"].endswith("wrote:\n\nedited")
    admin.edit_comment(org, "I1", saved.comment_id, {"text": "edited"})  # the same text: queued, nothing to send
    run(org)
    admin.delete_comment(org, "I1", saved.comment_id)
    run(org)
    assert len(calls(ado, "DELETE", COMMENTS + "/1000")) == 1 and len(calls(ado, "PATCH", COMMENTS + "/1000")) == 1
    assert len(calls(ado, "GET", ITEM)) == 1  # edits and deletions use the project kept with the copy
    assert comment_activity(org) == [("ado_updated", "added"), ("ado_updated", "edited"), ("ado_updated", "deleted")]
    [entry, *_] = [a for a in issue_view(org, "I1")["activity"] if a["type"] == "ado_updated"]
    assert entry["fields"] == ["comment"] and entry["comment_id"] == saved.comment_id and entry["work_item_id"] == 42


def test_without_sync_comments_nothing_is_sent(world, ado) -> None:
    org, integration_id = world
    tracker_admin.put_installation(org, integration_id, {"sync_reverse_assignment": True, "sync_status_reverse": True})
    admin.add_comment(org, "I1", {"author": "Dana", "text": "hi"})
    run(org)
    assert len(ado.calls) == 0 and comment_activity(org) == []


def test_an_answer_lost_after_the_add_does_not_add_it_twice(world, ado, monkeypatch) -> None:
    """Azure DevOps added the comment, but its id could not be recorded (as if the worker died there)."""
    org, integration_id = world
    remote = AzureDevOpsComments(ado)
    saved = admin.add_comment(org, "I1", {"author": "Dana", "text": "hi"})
    change = CommentChange(org, "I1", saved.comment_id)
    clock = FakeClock()
    writes: list[int] = []
    original = CommentStore.update

    def record_fails(self: CommentStore, *args: Any) -> Any:
        writes.append(1)
        if len(writes) == 2:  # the claim was written; the id is not
            raise StorageUnavailable("storage went away")
        return original(self, *args)

    monkeypatch.setattr(CommentStore, "update", record_fails)
    assert worker.apply_comment(change, clock=clock).retry == [f"{integration_id}|42"]
    monkeypatch.setattr(CommentStore, "update", original)
    assert len(remote.stored) == 1
    # While the claim holds, nobody adds it (an attempt may still be under way).
    assert worker.apply_comment(change, clock=clock).retry == [f"{integration_id}|42"]
    assert len(calls(ado, "GET", COMMENTS)) == 0
    clock.advance(worker.CLAIM_SECONDS + 1)
    report = worker.apply_comment(change, clock=clock)
    assert report.retry == [] and report.updated == [(f"{integration_id}|42", 1000)]
    assert len(remote.stored) == 1 and len(calls(ado, "GET", COMMENTS)) == 1
    copy = CommentStore().get(org, "I1", saved.comment_id).remote[f"{integration_id}|42"]
    assert (copy.ado_id, copy.version) == (1000, 1)
    assert comment_activity(org) == [("ado_updated", "added")]


def test_a_throttled_add_is_retried_and_looks_before_adding_again(world, ado) -> None:
    org, integration_id = world
    ado.post(COMMENTS, status=429, headers={"Retry-After": "0"})
    ado.post(COMMENTS, status=429, headers={"Retry-After": "0"})
    ado.post(COMMENTS, status=429, headers={"Retry-After": "0"})
    saved = admin.add_comment(org, "I1", {"author": "Dana", "text": "hi"})
    report = worker.apply_comment(CommentChange(org, "I1", saved.comment_id))
    assert report.retry == [f"{integration_id}|42"]
    copy = CommentStore().get(org, "I1", saved.comment_id).remote[f"{integration_id}|42"]
    assert copy.ado_id is None and copy.claimed_until == 0  # the claim is given up: the retry need not wait
    ado.replace(responses.POST, COMMENTS, json={"id": 7, "text": render(saved)})
    ado.get(COMMENTS, json={"count": 0, "comments": []})
    assert worker.apply_comment(CommentChange(org, "I1", saved.comment_id)).updated == [(f"{integration_id}|42", 7)]
    assert len(calls(ado, "POST", COMMENTS)) == 4 and len(calls(ado, "GET", COMMENTS)) == 1


def test_a_refused_add_is_recorded_and_not_retried(world, ado) -> None:
    org, _ = world
    ado.post(COMMENTS, status=400, json={"message": "VS402625: The comment is too long."})
    admin.add_comment(org, "I1", {"author": "Dana", "text": "hi"})
    run(org)
    assert outbound() == [] and comment_activity(org) == [("ado_failed", None)]
    [failed] = [a for a in issue_view(org, "I1")["activity"] if a["type"] == "ado_failed"]
    assert "VS402625" in failed["reason"] and failed["comment_id"]


def test_an_edit_of_a_copy_deleted_in_azure_devops_is_recorded_and_not_retried(world, ado) -> None:
    org, integration_id = world
    AzureDevOpsComments(ado)
    ado.patch(COMMENTS + "/1000", status=404, json={"message": "Comment 1000 does not exist."})
    saved = admin.add_comment(org, "I1", {"author": "Dana", "text": "hi"})
    run(org)
    admin.edit_comment(org, "I1", saved.comment_id, {"text": "edited"})
    run(org)
    assert comment_activity(org) == [("ado_updated", "added"), ("ado_failed", None)]
    assert CommentStore().get(org, "I1", saved.comment_id).remote[f"{integration_id}|42"].deleted
    admin.edit_comment(org, "I1", saved.comment_id, {"text": "again"})
    run(org)
    assert len(calls(ado, "PATCH", COMMENTS + "/1000")) == 1  # never again, and never added back


def test_a_deletion_follows_a_work_item_that_moved_to_another_project(world, ado) -> None:
    org, integration_id = world
    AzureDevOpsComments(ado)
    saved = admin.add_comment(org, "I1", {"author": "Dana", "text": "hi"})
    run(org)
    ado.delete(COMMENTS + "/1000", status=404, json={"message": "TF401232"})
    ado.replace(responses.GET, ITEM, json={"id": 42, "rev": 9, "fields": {"System.TeamProject": "Other"}})
    moved = BASE + "Other/_apis/wit/workItems/42/comments/1000"
    ado.delete(moved, status=200)
    admin.delete_comment(org, "I1", saved.comment_id)
    run(org)
    assert len(calls(ado, "DELETE", moved)) == 1
    copy = CommentStore().get(org, "I1", saved.comment_id).remote[f"{integration_id}|42"]
    assert copy.deleted and copy.project == "Other"


def test_an_edit_accepted_while_an_older_one_is_sent_is_sent_too_and_versions_only_grow(world, ado) -> None:
    """Issue 18, finding 5 for comments: an edit accepted while the worker sends the previous one (so another
    worker may send it first, and this older text land over it). Right after its edit, the worker reads the comment
    again and sends the newest; a stored copy's version never goes back."""
    org, integration_id = world
    AzureDevOpsComments(ado)
    saved = admin.add_comment(org, "I1", {"author": "Dana <dana@example.com>", "text": "first"})
    run(org)
    sent: list[str] = []

    def edit_there(request: Any) -> tuple[int, dict, str]:
        sent.append(json.loads(request.body)["text"])
        if len(sent) == 1:  # a person edits again while this edit is on its way
            admin.edit_comment(org, "I1", saved.comment_id, {"text": "newest"})
        return 200, {}, json.dumps({"id": 1000})

    ado.add_callback(responses.PATCH, COMMENTS + "/1000", callback=edit_there)
    admin.edit_comment(org, "I1", saved.comment_id, {"text": "older"})
    [older_message] = outbound()
    process_outbound_message(older_message)
    assert sent[-1].endswith("wrote:\n\nnewest"), sent  # the newest text is what Azure DevOps shows
    key = f"{integration_id}|42"
    assert CommentStore().get(org, "I1", saved.comment_id).remote[key].version == 3
    # A slower worker recording the older version afterwards does not take the stored one back.
    stale = replace(CommentStore().get(org, "I1", saved.comment_id).remote[key], version=2)
    worker._save(CommentStore(), CommentStore().get(org, "I1", saved.comment_id), Link(integration_id, 42), stale)
    assert CommentStore().get(org, "I1", saved.comment_id).remote[key].version == 3
