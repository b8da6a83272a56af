"""Soak (issue 18): two-way traffic from both sides on 50 linked issues while storage freezes and Azure DevOps and
Sentry answer 503 in turns; then everything settles to the same state on all three sides, nothing stays in a
queue or pending, and no change a person made is lost. Part of `make test` (about 40 s alone); `make soak`
runs it alone and prints what it did.

The local host runs on an Azurite of its own (tables and queues), beside a fake Azure DevOps and a fake Sentry.
Three phases, each a different fault, each person's change made once on one side:

1. storage freezes (Azurite stopped with SIGSTOP, then SIGCONT): Sentry people resolve issues 0-24 just before,
   Azure DevOps people resolve the work items of 25-49 while it is stopped. Deliveries answered 503 (or not at
   all) are sent again as Azure DevOps does with transient failures. Sentry does not send a webhook twice, so its
   people act while storage answers.
2. Azure DevOps answers 503 to everything: Sentry people reopen 25-49, assign 40-49 and comment on 0-9.
3. Sentry answers 503 to everything: Azure DevOps people reopen the work items of 0-24.

Before a phase starts, the app has taken each change of the one before (shown on the tracked issue), so the
expected end state is well defined: every issue unresolved on all three sides, 40-49 assigned to Dana, each
comment once on its work item.
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import TableClient
from azure.storage.queue import QueueClient

from devhost.azurite import Azurite
from devtools.fakes import FakeAzureDevOps, FakeSentry
from devtools.fakes.ado.deliveries import TRANSIENT_DELIVERY_STATUSES
from tests.e2e import PAT, stop_host
from tests.helpers import wait_for
from tests.sentry_e2e import PEOPLE, SentryHost, start_sentry_host

pytestmark = [pytest.mark.slow, pytest.mark.soak]

ISSUES = 50
FREEZE_SECONDS = 8.0
SETTLE_SECONDS = 240.0
DONE = {"Resolved", "Closed", "Done"}
QUEUES = ("vsts-workitem-updates", "vsts-outbound", "vsts-sentry-hooks", "vsts-sentry-updates")
DANA = ("101", "dana@example.com")


@pytest.fixture(scope="module")
def soak_storage() -> Iterator[Azurite]:
    server = Azurite.on_free_ports().start()
    try:
        yield server
    finally:
        if server.process is not None:
            os.killpg(server.process.pid, signal.SIGCONT)  # a stopped process cannot act on SIGTERM
        server.stop()


@pytest.fixture(scope="module")
def soak_host(soak_storage: Azurite, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SentryHost]:
    env = {
        "STORAGE_CONNECTION_STRING": soak_storage.connection_string,
        "AzureWebJobsStorage": soak_storage.connection_string,
        "SWEEP_SCHEDULE": "*/2 * * * * *",
        "SWEEP_GRACE_SECONDS": "5",
        # A short back-off, and a window no phase outlasts: nothing is poisoned by the faults.
        "QUEUE_RETRY_BASE_SECONDS": "1",
        "QUEUE_RETRY_MAX_SECONDS": "4",
        "QUEUE_RETRY_WINDOW_SECONDS": "900",
    }
    with FakeAzureDevOps() as ado, FakeSentry() as sentry:
        started = start_sentry_host(tmp_path_factory.mktemp("soak"), ado, sentry, env)
        try:
            yield started
        finally:
            stop_host(started.host, drain=False)


class Soak:
    """The world: one Sentry organization with the app installed, one Azure DevOps organization it installed with
    every sync on, and ISSUES Sentry issues tracked and each linked to its own work item."""

    def __init__(self, h: SentryHost, storage: Azurite) -> None:
        self.h, self.host, self.ado, self.sentry, self.storage = h, h.host, h.ado, h.sentry, storage
        self.slug, self.ado_org = f"k{uuid.uuid4().hex[:8]}", f"w{uuid.uuid4().hex[:8]}"
        self.org_id, self.integration_id = f"sentry-{self.slug}", str(uuid.uuid4())
        self.issue_ids = [str(900_000 + n) for n in range(ISSUES)]
        self.work_items = [1000 + n for n in range(ISSUES)]
        self.counts: dict[str, int] = {}
        self.comments: dict[int, str] = {}  # issue index -> text
        self.replayed = 0

    def count(self, what: str, n: int = 1) -> None:
        self.counts[what] = self.counts.get(what, 0) + n

    def call(self, method: str, path: str, body: dict | None = None) -> dict:
        response = self.host.call(method, path, json=body) if body is not None else self.host.call(method, path)
        assert response.status_code in (200, 201), (path, response.status_code, response.text)
        return response.json() if response.content else {}

    def set_up(self) -> None:
        # An organization whose reopens send issue.unresolved (a feature flag; without it sentry_reconcile does).
        self.sentry.set_feature(self.slug, "webhooks-unresolved")
        for user_id, (email, name) in PEOPLE.items():
            self.sentry.add_member(self.slug, user_id, email, name)
        token = uuid.uuid4().hex
        uuid_ = self.sentry.add_static_token(self.slug, token, "boards-sync")
        self.call(
            "PUT",
            f"/api/sentry/installations/{uuid_}",
            {"token": token, "organization": self.slug, "app_uuid": self.h.app_uuid},
        )
        self.ado.add_org(self.ado_org, self.integration_id)
        self.ado.add_pat(self.ado_org, PAT)
        for email, name in PEOPLE.values():
            self.ado.add_identity(self.ado_org, email, name)
        integration = {
            "name": self.ado_org,
            "domain_name": self.ado.org_url(self.ado_org),
            "credentials": {"type": "pat", "token": PAT},
        }
        self.call("PUT", f"/api/vsts/integrations/{self.integration_id}", integration)
        every_sync = dict.fromkeys(
            (
                "sync_reverse_assignment",
                "sync_status_reverse",
                "sync_status_forward",
                "sync_forward_assignment",
                "sync_comments",
            ),
            True,
        )
        self.call("PUT", f"/api/orgs/{self.org_id}/integrations/{self.integration_id}", every_sync)
        for user_id, (email, _) in PEOPLE.items():
            self.call("PUT", f"/api/orgs/{self.org_id}/members/{email}", {"user_id": user_id})
        for issue_id, work_item in zip(self.issue_ids, self.work_items, strict=True):
            self.sentry.add_issue(self.slug, issue_id, f"Error {issue_id}", "backend")
            fields = {"System.State": "Active", "System.WorkItemType": "Bug", "System.Title": f"Item {work_item}"}
            self.ado.add_work_item(self.ado_org, work_item, fields)
            url = self.sentry.issue(self.slug, issue_id).get("permalink")
            self.call("PUT", f"/api/orgs/{self.org_id}/issues/{issue_id}", {"title": f"Error {issue_id}", "url": url})
            self.call("PUT", f"/api/orgs/{self.org_id}/issues/{issue_id}/links/{self.integration_id}/{work_item}")
        response = self.host.call("POST", f"/api/vsts/integrations/{self.integration_id}/subscription")
        assert response.status_code == 201, response.text

    # -- the three sides --------------------------------------------------------------------------------------

    def tracked(self, n: int) -> dict:
        return self.call("GET", f"/api/orgs/{self.org_id}/issues/{self.issue_ids[n]}")

    def ado_fields(self, n: int) -> dict[str, Any]:
        return self.ado.work_item(self.ado_org, self.work_items[n])["fields"]

    def sentry_issue(self, n: int) -> dict[str, Any]:
        return self.sentry.issue(self.slug, self.issue_ids[n])

    # -- people ------------------------------------------------------------------------------------------------

    def sentry_person(self, n: int, **change: Any) -> None:
        self.sentry.change_issue(self.slug, self.issue_ids[n], by_user=102, **change)
        self.count("Sentry changes")

    def ado_person(self, n: int, state: str) -> None:
        self.ado.update_work_item(
            self.ado_org, self.work_items[n], {"System.State": state}, revised_by="Lee Roe <lee@example.com>"
        )
        self.count("Azure DevOps changes")

    def resend_failed_deliveries(self, since: int) -> None:
        """What Azure DevOps does with a delivery answered 503 or not at all: it sends it again, till taken."""
        while True:
            failed = [
                d for d in self.ado.deliveries[since:] if d.status is None or d.status in TRANSIENT_DELIVERY_STATUSES
            ]
            since = len(self.ado.deliveries)
            if not failed:
                return
            for delivery in failed:
                self.ado.deliver(self.ado_org, delivery.payload, subscription_id=delivery.subscription_id)
                self.replayed += 1

    # -- storage -------------------------------------------------------------------------------------------------

    def queue_depths(self) -> dict[str, int]:
        depths = {}
        for name in QUEUES + tuple(q + "-poison" for q in QUEUES):
            try:
                depths[name] = (
                    QueueClient.from_connection_string(self.storage.connection_string, name)
                    .get_queue_properties()
                    .approximate_message_count
                )
            except ResourceNotFoundError:
                depths[name] = 0
        return depths

    def pending_rows(self) -> int:
        client = TableClient.from_connection_string(self.storage.connection_string, "vstspending")
        try:
            return len(list(client.query_entities("PartitionKey eq 'pending'", select=["RowKey"])))
        except ResourceNotFoundError:
            return 0


def _all(items: range, what: Callable[[int], bool]) -> bool:
    return all(what(n) for n in items)


def _each(items: range, act: Callable[[int], None], workers: int = 8) -> None:
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(act, items))


def test_soak_two_way_traffic_through_frozen_storage_and_503s_settles_everywhere(
    soak_host: SentryHost, soak_storage: Azurite
) -> None:
    world = Soak(soak_host, soak_storage)
    started = time.monotonic()
    world.set_up()
    first, second = range(0, ISSUES // 2), range(ISSUES // 2, ISSUES)
    log: list[str] = [f"set up {ISSUES} linked issues in {time.monotonic() - started:.1f} s"]

    # 1. Storage freezes.
    _each(first, lambda n: world.sentry_person(n, status="resolved"), workers=4)
    wait_for(lambda: _all(first, lambda n: world.tracked(n)["status"] == "resolved"), 60, "Sentry's resolutions taken")
    since = len(world.ado.deliveries)
    assert soak_storage.process is not None
    os.killpg(soak_storage.process.pid, signal.SIGSTOP)
    frozen_at = time.monotonic()
    try:
        with ThreadPoolExecutor(len(second)) as pool:
            futures = [pool.submit(world.ado_person, n, "Resolved") for n in second]
            time.sleep(FREEZE_SECONDS)  # how long storage stays stopped: the fault itself, not a wait for an event
            os.killpg(soak_storage.process.pid, signal.SIGCONT)
            for future in futures:
                future.result()
    finally:
        os.killpg(soak_storage.process.pid, signal.SIGCONT)
    refused = sum(1 for d in world.ado.deliveries[since:] if d.status != 202)
    world.resend_failed_deliveries(since)
    log.append(
        f"phase 1: storage stopped {time.monotonic() - frozen_at:.1f} s; {len(first)} Sentry and {len(second)} Azure "
        f"DevOps resolutions; {refused} deliveries refused or unanswered, sent again {world.replayed} times"
    )
    wait_for(lambda: _all(second, lambda n: world.tracked(n)["status"] == "resolved"), 90, "the deliveries taken")
    # A person changes what they see: the next phase's people act once the resolutions reached their side.
    wait_for(lambda: _all(second, lambda n: world.sentry_issue(n)["status"] == "resolved"), 90, "Sentry resolved")
    wait_for(lambda: _all(first, lambda n: world.ado_fields(n)["System.State"] in DONE), 90, "the work items resolved")

    # 2. Azure DevOps answers 503.
    world.ado.fail_next("*", r".", 503, headers={"Retry-After": "1"}, count=10**6)
    phase = time.monotonic()
    _each(second, lambda n: world.sentry_person(n, status="unresolved"), workers=4)
    _each(range(40, 50), lambda n: world.sentry_person(n, assigned_to=DANA[0]), workers=4)
    for n in range(10):
        world.comments[n] = f"soak comment {n} {uuid.uuid4().hex[:6]}"
        world.sentry.add_comment(world.slug, world.issue_ids[n], world.comments[n], by_user=101)
        world.count("Sentry comments")
    wait_for(
        lambda: (
            _all(second, lambda n: world.tracked(n)["status"] == "unresolved")
            and _all(range(40, 50), lambda n: (world.tracked(n).get("assignee") or {}).get("email") == DANA[1])
        ),
        60,
        "Sentry's changes taken",
    )
    time.sleep(3)  # Azure DevOps stays down a little longer: retries meet it (the fault's length, not a wait)
    world.ado.clear_faults()
    log.append(f"phase 2: Azure DevOps answered 503 for {time.monotonic() - phase:.1f} s")

    # 3. Sentry answers 503.
    world.sentry.set_down(True)
    phase = time.monotonic()
    since = len(world.ado.deliveries)
    _each(first, lambda n: world.ado_person(n, "Active"), workers=4)
    world.resend_failed_deliveries(since)
    wait_for(lambda: _all(first, lambda n: world.tracked(n)["status"] == "unresolved"), 60, "the reopenings taken")
    time.sleep(3)  # Sentry stays down a little longer (the fault's length)
    world.sentry.set_down(False)
    log.append(f"phase 3: Sentry answered 503 for {time.monotonic() - phase:.1f} s")

    # Settle.
    settling = time.monotonic()
    everything = range(ISSUES)

    def settled() -> bool:
        return (
            _all(everything, lambda n: world.tracked(n)["status"] == "unresolved")
            and _all(everything, lambda n: world.ado_fields(n)["System.State"] not in DONE)
            and _all(everything, lambda n: world.sentry_issue(n)["status"] == "unresolved")
            and _all(range(40, 50), lambda n: DANA[1] in str(world.ado_fields(n).get("System.AssignedTo", "")).lower())
            and _all(
                range(40, 50), lambda n: ((world.sentry_issue(n).get("assignedTo") or {}).get("email") or "") == DANA[1]
            )
            and all(
                sum(text in c["text"] for c in world.ado.comments(world.ado_org, world.work_items[n])) == 1
                for n, text in world.comments.items()
            )
            and not any(world.queue_depths().values())
            and world.pending_rows() == 0
        )

    try:
        wait_for(settled, SETTLE_SECONDS, "every side to agree, every queue to drain and nothing to stay pending")
    finally:
        log.append(f"queues at the end: {world.queue_depths()}, pending rows: {world.pending_rows()}")
    log.append(f"settled {time.monotonic() - settling:.1f} s after the last fault; {world.counts}")
    text = world.host.log()
    log.append(
        f"the app queued {text.count('queued again, due in')} retries with back-off, the sweep woke pending work "
        f"{text.count('sweep: woke')} times, {text.count('the sweeper sends it')} wake-ups were left to it"
    )
    log.append(f"in all {time.monotonic() - started:.1f} s")
    print("\nsoak:\n  " + "\n  ".join(log))
    # No change a person made is lost: the one before the last on each issue shows in its activity too.
    for n in everything:
        types = [entry["type"] for entry in world.tracked(n)["activity"]]
        assert "resolved" in types and "unresolved" in types, (n, types)
