"""The Storage queue between the webhook and `apply_workitem_update` (`vsts-workitem-updates`).

Messages are base64 text, the Functions host's default `messageEncoding`, so the real host and the local
one decode them alike. The queue lives in `AzureWebJobsStorage`, the queue trigger's connection.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from azure.core.exceptions import AzureError, ResourceExistsError, ResourceNotFoundError

from shared.settings import get_settings
from shared.storage import StorageUnavailable, sdk_transport

if TYPE_CHECKING:
    from azure.storage.queue import QueueClient

QUEUE_NAME = "vsts-workitem-updates"
POISON_QUEUE_NAME = f"{QUEUE_NAME}-poison"

_lock = threading.Lock()
_clients: dict[str, QueueClient] = {}


def updates_queue() -> QueueClient:
    conn = get_settings().webjobs_storage
    client = _clients.get(conn)
    if client is None:
        # Imported on first use: only the webhook needs it, and it costs every cold start ~25 ms otherwise.
        from azure.storage.queue import LinearRetry, QueueClient, TextBase64DecodePolicy, TextBase64EncodePolicy

        with _lock:
            client = _clients.get(conn)
            if client is None:
                client = QueueClient.from_connection_string(
                    conn,
                    QUEUE_NAME,
                    message_encode_policy=TextBase64EncodePolicy(),
                    message_decode_policy=TextBase64DecodePolicy(),
                    # Answer the webhook (503) in seconds, not the SDK's default minute of retries.
                    retry_policy=LinearRetry(backoff=0.5, random_jitter_range=0.2, retry_total=2),
                    connection_timeout=5,
                    read_timeout=10,
                    transport=sdk_transport(),
                )
                _clients[conn] = client
    return client


def enqueue(message: str) -> None:
    """Durably queue one message; StorageUnavailable when the queue service did not take it."""
    client = updates_queue()
    try:
        try:
            client.send_message(message)
        except ResourceNotFoundError:
            try:
                client.create_queue()
            except ResourceExistsError:
                pass
            client.send_message(message)
    except AzureError as exc:
        raise StorageUnavailable(f"queueing the update failed: {type(exc).__name__}") from exc
