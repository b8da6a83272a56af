"""Queue triggers polled from Storage queues (Azurite locally), with the Functions host's retry rules.

As the host's QueueProcessor does: a message is received invisible; on success it is deleted; on failure
it becomes visible again after `visibilityTimeout`, unless it has been dequeued `maxDequeueCount` times,
in which case it is copied to `<queue>-poison` and deleted. Polling backs off to `maxPollingInterval`
while the queue is empty and is immediate while it has messages.
"""

from __future__ import annotations

import base64
import binascii
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from azure.core.exceptions import AzureError, ResourceExistsError
from azure.storage.queue import LinearRetry, QueueClient, QueueMessage

from devhost.config import HostConfig
from devhost.storage import QueueConnection

log = logging.getLogger("devhost")

# While a message is being processed it stays invisible this long, renewed while the function runs, as the
# Functions host does. If settling it fails (storage down), it reappears when this runs out: never lost.
PROCESSING_VISIBILITY_SECONDS = 15
RENEW_EVERY_SECONDS = 5
MIN_POLL_SECONDS = 0.1


def decode_body(content: str, encoding: str) -> bytes:
    """The message body as the function sees it; raises ValueError for content that is not valid base64."""
    if encoding == "none":
        return content.encode("utf-8")
    try:
        return base64.b64decode(content.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise ValueError("the message is not base64 (host.json extensions.queues.messageEncoding)") from None


class QueuePoller(threading.Thread):
    """Polls one queue for one function until `stop` is set.

    `invoke(body, message) -> bool` runs the function and says whether it succeeded.
    """

    def __init__(
        self,
        function_name: str,
        queue_name: str,
        connection: QueueConnection | str,
        config: HostConfig,
        invoke: Callable[[bytes, QueueMessage], bool],
        stop: threading.Event,
    ) -> None:
        super().__init__(name=f"queue-{function_name}", daemon=True)
        self.function_name = function_name
        self.config = config
        self.invoke = invoke
        self.stop = stop
        # The poller has its own back-off; the SDK's default retries (15 s and up) would stall it for a minute.
        options = {"retry_policy": LinearRetry(backoff=0.5, random_jitter_range=0.2, retry_total=1)}
        if isinstance(connection, str):  # a connection string
            connection = QueueConnection("connection", connection_string=connection)
        self.queue = connection.client(queue_name, **options)
        self.poison = connection.client(f"{queue_name}-poison", **options)

    def run(self) -> None:
        interval = MIN_POLL_SECONDS
        with ThreadPoolExecutor(max_workers=self.config.batch_size, thread_name_prefix=self.name) as pool:
            while not self.stop.is_set():
                try:
                    messages = self._receive()
                except AzureError as exc:
                    log.warning("Queue %s: cannot poll (%s); retrying", self.queue.queue_name, type(exc).__name__)
                    messages = []
                if not messages:
                    self.stop.wait(interval)
                    interval = min(interval * 2, max(self.config.max_polling_interval, MIN_POLL_SECONDS))
                    continue
                interval = MIN_POLL_SECONDS
                list(pool.map(self._handle, messages))

    def _receive(self) -> list[QueueMessage]:
        try:
            return list(
                self.queue.receive_messages(
                    max_messages=self.config.batch_size, visibility_timeout=PROCESSING_VISIBILITY_SECONDS
                )
            )
        except AzureError as exc:
            if getattr(exc, "status_code", None) == 404:  # the queue does not exist yet
                self._create_queue(self.queue)
                return []
            raise

    def _handle(self, message: QueueMessage) -> None:
        try:
            body = decode_body(message.content or "", self.config.message_encoding)
        except ValueError as exc:
            log.error("Queue %s: message %s: %s", self.queue.queue_name, message.id, exc)
            succeeded = False
        else:
            succeeded = self._invoke_keeping_invisible(body, message)
        try:
            if succeeded:
                self.queue.delete_message(message)
            elif message.dequeue_count >= self.config.max_dequeue_count:
                self._create_queue(self.poison)
                self.poison.send_message(message.content)
                self.queue.delete_message(message)
                log.warning(
                    "Queue %s: message %s moved to %s after %d attempts",
                    self.queue.queue_name,
                    message.id,
                    self.poison.queue_name,
                    message.dequeue_count,
                )
            else:
                self.queue.update_message(message, visibility_timeout=int(self.config.visibility_timeout))
        except AzureError as exc:
            # The message reappears after its processing visibility ends and is tried again.
            log.warning("Queue %s: message %s: cannot settle (%s)", self.queue.queue_name, message.id, exc)

    def _invoke_keeping_invisible(self, body: bytes, message: QueueMessage) -> bool:
        done = threading.Event()

        def renew() -> None:
            while not done.wait(RENEW_EVERY_SECONDS):
                try:
                    receipt = self.queue.update_message(message, visibility_timeout=PROCESSING_VISIBILITY_SECONDS)
                    message.pop_receipt = receipt.pop_receipt
                except AzureError:
                    pass  # storage is away: the message reappears when its visibility runs out

        renewer = threading.Thread(target=renew, name=f"{self.name}-renew", daemon=True)
        renewer.start()
        try:
            return self.invoke(body, message)
        finally:
            done.set()
            renewer.join()

    @staticmethod
    def _create_queue(client: QueueClient) -> None:
        try:
            client.create_queue()
        except ResourceExistsError:
            pass
