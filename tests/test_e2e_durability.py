"""A Sentry webhook is never lost (issue 18, finding 2), end to end: the local host beside the fake Sentry and the fake
Azure DevOps, its tables on one Azurite and its queues on another. The queues' Azurite is stopped (SIGSTOP, not
killed) while a person resolves the Sentry issue: the webhook is recorded and accepted though its queue message
could not be sent (the message it sent reaches the queue once Azurite runs again); and with the queues' Azurite
killed and started again empty, the `sweep` timer wakes the recorded webhook. Either way the work item is
resolved, once. Before issue 18 the record was released when queueing failed, and the message that arrived
later found nothing to apply.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator

import pytest

from devhost.azurite import Azurite
from devtools.fakes import FakeAzureDevOps, FakeSentry
from shared.settings import reset_settings
from shared.store import pending
from shared.store.sentry import APPLIED, RECEIVED, SentryStore
from shared.sync import wakeups
from tests.e2e import stop_host
from tests.helpers import wait_for
from tests.sentry_e2e import SentryHost, sentry_world, start_sentry_host

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("azurite")]


@pytest.fixture(scope="module")
def split_storage() -> Iterator[tuple[Azurite, Azurite]]:
    """Tables and queues on Azurites of their own; this test process reads the same tables as the host."""
    tables, queues = Azurite.on_free_ports().start(), Azurite.on_free_ports().start()
    saved = os.environ.get("STORAGE_CONNECTION_STRING")
    os.environ["STORAGE_CONNECTION_STRING"] = tables.connection_string
    reset_settings()
    try:
        yield tables, queues
    finally:
        for server in (tables, queues):
            if server.process is not None:
                os.killpg(server.process.pid, signal.SIGCONT)
            server.stop()
        if saved is None:
            os.environ.pop("STORAGE_CONNECTION_STRING", None)
        else:
            os.environ["STORAGE_CONNECTION_STRING"] = saved
        reset_settings()


@pytest.fixture(scope="module")
def durable_host(
    split_storage: tuple[Azurite, Azurite], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SentryHost]:
    tables, queues = split_storage
    env = {
        "STORAGE_CONNECTION_STRING": tables.connection_string,
        "AzureWebJobsStorage": queues.connection_string,
        "SWEEP_SCHEDULE": "*/2 * * * * *",
        "SWEEP_GRACE_SECONDS": "3",
    }
    with FakeAzureDevOps() as ado, FakeSentry() as sentry:
        started = start_sentry_host(tmp_path_factory.mktemp("durable"), ado, sentry, env)
        try:
            yield started
        finally:
            stop_host(started.host)


def test_a_webhook_recorded_while_the_queue_was_stopped_is_applied_once_by_the_sweep(
    durable_host: SentryHost, split_storage: tuple[Azurite, Azurite]
) -> None:
    h, (_, queues) = durable_host, split_storage
    world = sentry_world(h)
    assert queues.process is not None
    os.killpg(queues.process.pid, signal.SIGSTOP)
    try:
        started = time.monotonic()
        h.sentry.change_issue(world.org_slug, world.issue_id, status="resolved", by_user=101)
        answered = time.monotonic() - started
        [webhook] = [w for w in h.sentry.webhooks if w.resource == "issue"][-1:]
        request_id = webhook.headers["Request-ID"]
        record = SentryStore().get_delivery(world.installation_uuid, request_id)
        assert record is not None and record[1] == RECEIVED  # recorded: accepted, though its wake-up was not sent
        assert pending.get(wakeups.hook_ref(world.installation_uuid, request_id)) is not None
        # Sentry waits a second for the answer; the app goes on till its storage deadline, then answers 202.
        wait_for(lambda: "the sweeper sends it" in h.host.log(), 30, "the webhook to give up on its queue message")
        print(f"\nSentry's webhook call ended after {answered:.1f} s ({webhook.status or webhook.error})")
    finally:
        os.killpg(queues.process.pid, signal.SIGCONT)
    fields = wait_for(
        lambda: (f := h.ado.work_item(world.ado_org, world.work_item_id)["fields"])["System.State"] == "Resolved" and f,
        90,
        "the work item resolved after the sweep woke the webhook",
    )
    assert fields["System.State"] == "Resolved"
    wait_for(lambda: SentryStore().get_delivery(world.installation_uuid, request_id)[1] == APPLIED, 30, "the mark")
    wait_for(lambda: pending.get(wakeups.hook_ref(world.installation_uuid, request_id)) is None, 30, "the row settled")
    issue = h.host.call("GET", f"/api/orgs/{world.org_id}/issues/{world.issue_id}").json()
    assert issue["status"] == "resolved"
    assert [e["type"] for e in issue["activity"]].count("resolved") == 1  # applied once


def test_a_webhook_whose_queue_message_never_arrived_is_woken_by_the_sweep_and_applied_once(
    durable_host: SentryHost, split_storage: tuple[Azurite, Azurite]
) -> None:
    """The queues' Azurite is gone (killed: its in-memory queues with it) while the webhook comes, and started
    again on the same ports: only the sweep can bring the webhook back."""
    h, (_, queues) = durable_host, split_storage
    world = sentry_world(h)
    queues.stop()
    try:
        h.sentry.change_issue(world.org_slug, world.issue_id, status="resolved", by_user=101)
        [webhook] = [w for w in h.sentry.webhooks if w.resource == "issue"][-1:]
        request_id = webhook.headers["Request-ID"]
        # Sentry waits a second; the app answers 202 once the record is stored and the queue has refused.
        wait_for(lambda: f"|{request_id} is stored but" in h.host.log(), 30, "the webhook's queue message to fail")
        assert SentryStore().get_delivery(world.installation_uuid, request_id)[1] == RECEIVED
    finally:
        queues.start()
    wait_for(
        lambda: h.ado.work_item(world.ado_org, world.work_item_id)["fields"]["System.State"] == "Resolved",
        90,
        "the work item resolved after the sweep woke the webhook",
    )
    assert SentryStore().get_delivery(world.installation_uuid, request_id)[1] == APPLIED
    assert "sweep: woke 1 pending" in h.host.log()
    issue = h.host.call("GET", f"/api/orgs/{world.org_id}/issues/{world.issue_id}").json()
    assert [e["type"] for e in issue["activity"]].count("resolved") == 1
