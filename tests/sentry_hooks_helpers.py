"""Signed Sentry webhooks as Sentry sends them, posted to the app's route, and its queue run as the host would."""

from __future__ import annotations

import json
import uuid
from typing import Any

import azure.functions as func
from azure.functions.queue import QueueMessage

from shared.deliveries.sentry import signature
from shared.store.queues import SENTRY_HOOKS_QUEUE_NAME
from tests.sync_helpers import queued_messages

SECRET = "client-secret"  # the sentry_http fixture's SENTRY_CLIENT_SECRET
APP_UUID = "3f1c4a2e-9b5d-4e8f-a1c2-7d6e5f4a3b2c"
PERSON = {"type": "user", "id": 101, "name": "Dana Lee"}


def envelope(
    installation: str, resource: str, action: str, data: dict[str, Any], actor: dict[str, Any] | None = None
) -> dict[str, Any]:
    return {"action": action, "installation": {"uuid": installation}, "data": data, "actor": actor or PERSON}


def headers_for(body: bytes, resource: str, *, secret: str = SECRET, request_id: str | None = "new") -> dict[str, str]:
    headers = {
        "Content-Type": "application/json",
        "Sentry-Hook-Resource": resource,
        "Sentry-Hook-Timestamp": "1700000000",
        "Sentry-Hook-Signature": signature(body, secret),
    }
    if request_id is not None:
        headers["Request-ID"] = uuid.uuid4().hex if request_id == "new" else request_id
    return headers


def post_raw(body: bytes, headers: dict[str, str]) -> func.HttpResponse:
    from functions.sentry_webhook import sentry_webhook

    return sentry_webhook(func.HttpRequest("POST", "http://localhost/api/sentry/webhook", headers=headers, body=body))


def post(payload: dict[str, Any], resource: str, **options: Any) -> func.HttpResponse:
    body = json.dumps(payload).encode()
    return post_raw(body, headers_for(body, resource, **options))


def answer_of(response: func.HttpResponse) -> dict[str, Any]:
    return json.loads(response.get_body())


def run_hooks() -> list[str]:
    """Apply every queued webhook through the queue function, as the host would; the messages run."""
    from functions.sentry_webhook import apply_sentry_webhook

    messages = queued_messages(SENTRY_HOOKS_QUEUE_NAME)
    for i, text in enumerate(messages):
        apply_sentry_webhook(QueueMessage(id=f"h{i}", body=text.encode(), dequeue_count=1))
    return messages


def issue_data(issue_id: str, status: str = "resolved", assignee: dict[str, Any] | None = None) -> dict[str, Any]:
    issue = {
        "id": issue_id,
        "shortId": "BACKEND-1",
        "title": "ZeroDivisionError",
        "status": status,
        "assignedTo": assignee,
        "project": {"id": "2", "slug": "backend"},
        "web_url": f"https://sentry.example/organizations/acme/issues/{issue_id}/",
    }
    return {"issue": issue, **({"assignee": assignee} if assignee else {})}


def comment_data(issue_id: str, comment_id: str, text: str) -> dict[str, Any]:
    return {
        "comment_id": int(comment_id),
        "issue_id": int(issue_id),
        "project_slug": "backend",
        "timestamp": "2024-01-01T00:00:00Z",
        "comment": text,
    }
