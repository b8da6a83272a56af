"""The Storage queues: `vsts-workitem-updates` between the webhook and `apply_workitem_update`, `vsts-outbound`
(tracker-side changes to Azure DevOps), `vsts-sentry-hooks` and `vsts-sentry-updates` (from and to Sentry), and
their poison queues.

Messages are base64 text, the Functions host's default `messageEncoding`, so the real host and the local
one decode them alike. The queues live in `AzureWebJobsStorage`, the queue trigger's connection.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from azure.core.exceptions import AzureError, ResourceExistsError, ResourceNotFoundError

from shared.caching import PerKey
from shared.errors import StorageUnavailable
from shared.settings import get_settings
from shared.store.base import sdk_transport
from shared.store.deadline import attempt_bound

if TYPE_CHECKING:
    from azure.storage.queue import QueueClient

QUEUE_NAME = "vsts-workitem-updates"
POISON_SUFFIX = "-poison"
POISON_QUEUE_NAME = f"{QUEUE_NAME}{POISON_SUFFIX}"
# The app's own queues, the only ones redrive may touch.
OUTBOUND_QUEUE_NAME = "vsts-outbound"  # tracker-side changes on their way to Azure DevOps (contract §12.2)
SENTRY_HOOKS_QUEUE_NAME = "vsts-sentry-hooks"  # verified Sentry webhooks, applied to the tracker side (§13.2)
SENTRY_UPDATES_QUEUE_NAME = "vsts-sentry-updates"  # inbound changes on their way to Sentry issues (§13.2)
APP_QUEUES = (QUEUE_NAME, OUTBOUND_QUEUE_NAME, SENTRY_HOOKS_QUEUE_NAME, SENTRY_UPDATES_QUEUE_NAME)

CONNECT_SECONDS = 5
READ_SECONDS = 10
# While redrive moves a message it is invisible this long in the poison queue: if moving it fails half way
# (re-sent, not yet deleted), it reappears there and is moved again, a harmless duplicate.
MOVE_VISIBILITY_SECONDS = 60

_clients: PerKey[QueueClient] = PerKey()


def queue_client(name: str, *, raw: bool = False) -> QueueClient:
    """The shared client of one queue; `raw` moves message text as stored, without base64 decoding it."""
    conn = get_settings().queue_storage  # a connection string or an identity (shared.store.connect)

    def make() -> QueueClient:
        # Imported on first use: only the webhook needs it, and it costs every cold start ~25 ms otherwise.
        from azure.storage.queue import LinearRetry, TextBase64DecodePolicy, TextBase64EncodePolicy

        from shared.store.connect import queue_client as connect

        codec = {} if raw else {
            "message_encode_policy": TextBase64EncodePolicy(),
            "message_decode_policy": TextBase64DecodePolicy(),
        }  # fmt: skip
        return connect(
            conn,
            name,
            # Few retries: the queue worker has its own back-off, and HTTP paths are cut shorter per request
            # (shared.store.deadline) to answer 503 in seconds.
            retry_policy=LinearRetry(backoff=0.5, random_jitter_range=0.2, retry_total=2),
            transport=sdk_transport(CONNECT_SECONDS, READ_SECONDS),
            raw_request_hook=attempt_bound(CONNECT_SECONDS, READ_SECONDS),
            **codec,
        )

    return _clients.get((conn, name, raw), make)


def updates_queue() -> QueueClient:
    return queue_client(QUEUE_NAME)


def _send(client: QueueClient, message: str, delay_seconds: int, *, forever: bool = False) -> None:
    """Send, creating the queue when it does not exist yet; `forever`: the message never expires (time to live -1;
    otherwise the service drops it after 7 days)."""
    options: dict[str, int] = {"time_to_live": -1} if forever else {}
    visibility = delay_seconds if delay_seconds > 0 else None
    try:
        client.send_message(message, visibility_timeout=visibility, **options)
    except ResourceNotFoundError:
        try:
            client.create_queue()
        except ResourceExistsError:
            pass
        client.send_message(message, visibility_timeout=visibility, **options)


def enqueue(message: str, queue: str = QUEUE_NAME, *, delay_seconds: int = 0) -> None:
    """Durably queue one message, invisible for `delay_seconds` (whole seconds, under 7 days);
    StorageUnavailable when the queue service did not take it."""
    try:
        _send(queue_client(queue), message, delay_seconds)
    except AzureError as exc:
        raise StorageUnavailable(f"queueing the update failed: {type(exc).__name__}") from exc


def enqueue_poison(message: str, queue: str) -> None:
    """Put a message that failed every retry on `queue`'s poison queue, where it stays until a person redrives or
    deletes it; StorageUnavailable when the queue service did not take it."""
    try:
        _send(queue_client(queue + POISON_SUFFIX), message, 0, forever=True)
    except AzureError as exc:
        raise StorageUnavailable(f"queueing a poisoned message failed: {type(exc).__name__}") from exc


def move_messages(source: str, target: str, limit: int, budget_seconds: float) -> tuple[int, bool]:
    """Move up to `limit` messages from `source` to `target`, for at most about `budget_seconds`: each is re-sent
    before it is deleted (at least once, never lost). Returns (moved, whether messages remain in `source`)."""
    origin, destination = queue_client(source, raw=True), queue_client(target, raw=True)
    moved, stop_at = 0, time.monotonic() + budget_seconds
    try:
        while moved < limit and time.monotonic() < stop_at:
            batch = list(
                origin.receive_messages(
                    messages_per_page=32,
                    max_messages=min(32, limit - moved),
                    visibility_timeout=MOVE_VISIBILITY_SECONDS,
                )
            )
            if not batch:
                return moved, False
            for message in batch:
                _send(destination, message.content, 0, forever=target.endswith(POISON_SUFFIX))
                origin.delete_message(message)
                moved += 1
        return moved, bool(list(origin.peek_messages(max_messages=1)))
    except ResourceNotFoundError:
        return moved, False  # no such queue yet: nothing to move
    except AzureError as exc:
        raise StorageUnavailable(f"moving messages from {source} failed: {type(exc).__name__}") from exc


def depth(name: str) -> int | None:
    """About how many messages `name` holds (visible or not; one request), or None when it does not exist yet."""
    try:
        return queue_client(name).get_queue_properties().approximate_message_count
    except ResourceNotFoundError:
        return None
    except AzureError as exc:
        raise StorageUnavailable(f"reading the depth of {name} failed: {type(exc).__name__}") from exc
