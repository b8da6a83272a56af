"""Queue triggers against real Azurite: success deletes, failure retries, then the poison queue."""

import base64
import json
import threading
import uuid
from pathlib import Path

import pytest
from azure.core.exceptions import ResourceNotFoundError
from azure.storage.queue import QueueClient

from devhost.config import HostConfig, load_host_config, parse_timespan
from devhost.host import FunctionHost
from devhost.queues import QueuePoller, decode_body
from tests.helpers import wait_for

SAMPLE = Path(__file__).parent / "apps" / "sample"


def test_host_json_queue_settings_are_read() -> None:
    config = load_host_config(SAMPLE)
    assert config == HostConfig(
        route_prefix="api",
        max_dequeue_count=3,
        visibility_timeout=0.0,
        max_polling_interval=0.2,
        batch_size=4,
        message_encoding="base64",
    )
    assert parse_timespan("00:00:10") == 10
    assert parse_timespan("1.02:00:00") == 93600
    assert load_host_config(Path(__file__).parent.parent).max_dequeue_count == 5  # the app's own host.json


def test_decode_body() -> None:
    assert decode_body(base64.b64encode(b"hi").decode(), "base64") == b"hi"
    assert decode_body("hi", "none") == b"hi"
    with pytest.raises(ValueError, match="base64"):
        decode_body("not base64!", "base64")


@pytest.fixture
def running_host(azurite, monkeypatch):
    queue_name = f"work-{uuid.uuid4().hex[:10]}"
    monkeypatch.setenv("TICK_SCHEDULE", "0 0 0 1 1 *")
    monkeypatch.setenv("WORK_QUEUE", queue_name)
    host = FunctionHost(SAMPLE)
    queue = QueueClient.from_connection_string(azurite.connection_string, queue_name)
    queue.create_queue()
    host.start()
    yield host, queue, QueueClient.from_connection_string(azurite.connection_string, f"{queue_name}-poison")
    host.stop()


def _send(queue: QueueClient, payload: dict) -> None:
    queue.send_message(base64.b64encode(json.dumps(payload).encode()).decode())


def test_a_message_that_succeeds_is_deleted(running_host) -> None:
    host, queue, poison = running_host
    _send(queue, {"id": "ok-1"})
    wait_for(lambda: ("work", ({"id": "ok-1"}, 1)) in host.module.CALLS)
    wait_for(lambda: _count(queue) == 0)


def test_a_failing_message_is_retried_then_moved_to_the_poison_queue(running_host) -> None:
    host, queue, poison = running_host
    _send(queue, {"id": "bad-1", "fail": True})
    wait_for(lambda: _count(poison) == 1)
    attempts = [call[1][1] for call in host.module.CALLS if call[0] == "work" and call[1][0]["id"] == "bad-1"]
    assert attempts == [1, 2, 3]  # maxDequeueCount is 3 in the sample host.json
    assert _count(queue) == 0
    moved = poison.receive_message()
    assert json.loads(base64.b64decode(moved.content)) == {"id": "bad-1", "fail": True}


def test_a_message_that_is_not_base64_ends_in_the_poison_queue(running_host) -> None:
    host, queue, poison = running_host
    queue.send_message("this is not base64 !")
    wait_for(lambda: _count(poison) == 1)
    assert poison.receive_message().content == "this is not base64 !"


def test_the_poller_waits_for_a_queue_that_does_not_exist_yet(azurite) -> None:
    name = f"late-{uuid.uuid4().hex[:10]}"
    seen: list[bytes] = []
    stop = threading.Event()
    config = HostConfig(max_polling_interval=0.2, visibility_timeout=0)
    poller = QueuePoller("late", name, azurite.connection_string, config, lambda b, m: seen.append(b) or True, stop)
    poller.start()
    try:
        client = QueueClient.from_connection_string(azurite.connection_string, name)
        wait_for(lambda: _exists(client))
        client.send_message(base64.b64encode(b"hello").decode())
        wait_for(lambda: seen == [b"hello"])
    finally:
        stop.set()
        poller.join(5)


def _exists(client: QueueClient) -> bool:
    return _count(client) >= 0


def _count(client: QueueClient) -> int:
    """Messages in the queue, or -1 while it does not exist."""
    try:
        return client.get_queue_properties().approximate_message_count
    except ResourceNotFoundError:
        return -1
