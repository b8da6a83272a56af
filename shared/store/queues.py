"""The Storage queues: `vsts-workitem-updates` between the webhook and `apply_workitem_update`, and their
poison queues.

Messages are base64 text, the Functions host's default `messageEncoding`, so the real host and the local
one decode them alike. The queues live in `AzureWebJobsStorage`, the queue trigger's connection.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from azure.core.exceptions import AzureError, ResourceExistsError, ResourceNotFoundError

from shared.caching import PerKey
from shared.errors import StorageUnavailable
from shared.settings import get_settings
from shared.store.base import sdk_transport

if TYPE_CHECKING:
    from azure.storage.queue import QueueClient

QUEUE_NAME = "vsts-workitem-updates"
POISON_SUFFIX = "-poison"
POISON_QUEUE_NAME = f"{QUEUE_NAME}{POISON_SUFFIX}"

_clients: PerKey[QueueClient] = PerKey()


def queue_client(name: str) -> QueueClient:
    conn = get_settings().webjobs_storage

    def make() -> QueueClient:
        # Imported on first use: only the webhook needs it, and it costs every cold start ~25 ms otherwise.
        from azure.storage.queue import LinearRetry, QueueClient, TextBase64DecodePolicy, TextBase64EncodePolicy

        return QueueClient.from_connection_string(
            conn,
            name,
            message_encode_policy=TextBase64EncodePolicy(),
            message_decode_policy=TextBase64DecodePolicy(),
            # Answer the webhook (503) in seconds, not the SDK's default minute of retries.
            retry_policy=LinearRetry(backoff=0.5, random_jitter_range=0.2, retry_total=2),
            connection_timeout=5,
            read_timeout=10,
            transport=sdk_transport(),
        )

    return _clients.get((conn, name), make)


def updates_queue() -> QueueClient:
    return queue_client(QUEUE_NAME)


def enqueue(message: str, queue: str = QUEUE_NAME) -> None:
    """Durably queue one message; StorageUnavailable when the queue service did not take it."""
    client = queue_client(queue)
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
