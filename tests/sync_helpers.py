"""Helpers for webhook and sync tests: deliveries, the real queue, and tracker set-up through the admin code."""

from __future__ import annotations

import base64
import copy
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import azure.functions as func
import responses
from azure.core.exceptions import ResourceNotFoundError
from azure.functions.queue import QueueMessage

from functions.webhook import apply_workitem_update, vsts_webhook
from shared.admin import tracker as tracker_admin
from shared.store.queues import QUEUE_NAME, queue_client

# Copies of ../shared/fixtures (tests/test_delivery.py checks they still match when that folder is there).
FIXTURES = Path(__file__).resolve().parent / "fixtures"
SECRET = "w" * 40


def sample_delivery() -> dict[str, Any]:
    """Azure DevOps' documented sample `workitem.updated` delivery (work item 5, rev 2, New -> Approved)."""
    return json.loads((FIXTURES / "ado_workitem_updated_sample.json").read_text())


def delivery(
    integration_id: str,
    work_item_id: int,
    rev: int,
    *,
    state: tuple[str | None, str | None] | None = None,
    assigned_to: tuple[Any, Any] | None = None,
    work_item_type: str = "Bug",
    project_id: str = "proj-1",
) -> dict[str, Any]:
    """A resourceVersion 1.0 delivery; `state`/`assigned_to` are (oldValue, newValue), None meaning absent."""
    fields: dict[str, Any] = {"System.Rev": {"oldValue": rev - 1, "newValue": rev}}
    for name, change in (("System.State", state), ("System.AssignedTo", assigned_to)):
        if change is not None:
            old, new = change
            fields[name] = {k: v for k, v in (("oldValue", old), ("newValue", new)) if v is not None}
    return {
        "id": f"evt-{work_item_id}-{rev}",
        "eventType": "workitem.updated",
        "publisherId": "tfs",
        "resource": {
            "id": rev - 1,
            "workItemId": work_item_id,
            "rev": rev,
            "fields": fields,
            "revision": {"id": work_item_id, "rev": rev, "fields": {"System.WorkItemType": work_item_type}},
        },
        "resourceVersion": "1.0",
        "resourceContainers": {"collection": {"id": integration_id}, "project": {"id": project_id}},
    }


def post(body: Any, headers: dict[str, str] | None = None, raw: bytes | None = None) -> func.HttpResponse:
    data = raw if raw is not None else json.dumps(body).encode()
    hdrs = {
        "Content-Type": "application/json; charset=utf-8",
        **({"Shared-Secret": SECRET} if headers is None else headers),
    }
    return vsts_webhook(func.HttpRequest("POST", "http://localhost/api/vsts/issue-updated", headers=hdrs, body=data))


def queued_messages(queue: str = QUEUE_NAME) -> list[str]:
    """Take every message off a queue, the updates queue by default (decoded as the host would)."""
    client = queue_client(queue)
    taken = []
    while True:
        try:
            batch = list(client.receive_messages(max_messages=32, visibility_timeout=30))
        except ResourceNotFoundError:
            return taken  # no queue yet: nothing was ever queued
        if not batch:
            return taken
        for message in batch:
            taken.append(message.content)  # the client's policy already decoded the base64
            client.delete_message(message)


def run_queue() -> int:
    """Apply every queued update through the queue function, as the host would; how many ran."""
    messages = queued_messages()
    for i, text in enumerate(messages):
        apply_workitem_update(QueueMessage(id=f"m{i}", body=text.encode(), dequeue_count=1))
    return len(messages)


def setup_org(
    org_id: str,
    integration_id: str,
    *,
    assignment: bool = True,
    status: bool = True,
    resolve_states: list[str] | None = None,
    members: dict[str, str] | None = None,
) -> None:
    body: dict[str, Any] = {"sync_reverse_assignment": assignment, "sync_status_reverse": status}
    if resolve_states is not None:
        body["resolve_states"] = resolve_states
    tracker_admin.put_installation(org_id, integration_id, body)
    for email, user_id in (members or {}).items():
        tracker_admin.put_member(org_id, email, {"user_id": user_id})


@contextmanager
def readable_work_items() -> Iterator[responses.RequestsMock]:
    """Linking checks that the work item exists (contract §12.4): inside, Azure DevOps answers every work item
    GET with a work item. A mock of its own, so the test's `ado` mock neither sees nor counts these reads."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add_passthru(re.compile(r"http://127\.0\.0\.1:\d+/"))
        mock.add_callback(
            responses.GET,
            re.compile(r"https://[^?]+/_apis/wit/workitems/\d+"),
            callback=lambda request: (200, {}, json.dumps({"id": int(request.path_url.split("?")[0].split("/")[-1])})),
        )
        yield mock


def link(org_id: str, issue_id: str, integration_id: str, work_item_id: int) -> None:
    with readable_work_items():
        tracker_admin.put_link(org_id, issue_id, integration_id, str(work_item_id))


def tracked_issue(org_id: str, issue_id: str, integration_id: str, work_item_id: int, **fields: Any) -> None:
    tracker_admin.put_issue(org_id, issue_id, {"title": f"Issue {issue_id}", **fields})
    link(org_id, issue_id, integration_id, work_item_id)


def issue_view(org_id: str, issue_id: str) -> dict[str, Any]:
    return tracker_admin.get_issue(org_id, issue_id).public()


def copy_of(value: Any) -> Any:
    return copy.deepcopy(value)


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()
