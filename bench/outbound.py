"""Outbound sync (contract §12.2), counted and timed in this process against the fake Azure DevOps and Azurite.

Counts (machine-independent): Azure DevOps requests and storage round trips per outbound status change to one
linked work item (cold: the type's states not cached yet; warm: cached), when nothing differs, and per
assignment. Timed (as a ratio measured in one run, samples interleaved): the tracker `PUT` of a linked issue,
which saves and queues the change, against the same `PUT` of an issue without links, which only saves.
"""

from __future__ import annotations

import json
import os
import statistics
import time
import uuid

import azure.functions as func


def _world(fake) -> tuple[str, str]:
    """The set-up, with storage's background timeouts and retries: a stalled Azurite slows it, never stops it."""
    from shared.store.deadline import background

    with background():
        return _make_world(fake)


def _make_world(fake) -> tuple[str, str]:
    """An organization in the fake with an Active Bug 77 and a member identity; its integration, installed with
    status and assignment synced forward; issue I77 linked to the work item and I0 linked to nothing."""
    from shared.admin import tracker as tracker_admin
    from shared.settings import reset_settings
    from tests.helpers import make_integration

    os.environ.update(fake.settings_env())
    reset_settings()
    name, host_id, org = f"o{uuid.uuid4().hex[:8]}", str(uuid.uuid4()), f"bench-{uuid.uuid4().hex[:8]}"
    fake.add_org(name, host_id)
    fake.add_pat(name, "bench-pat")
    fake.add_identity(name, "dana@example.com", "Dana")
    fake.add_work_item(name, 77, {"System.State": "Active", "System.WorkItemType": "Bug"})
    make_integration(
        integration_id=host_id,
        name=name,
        domain_name=fake.org_url(name),
        credentials={"type": "pat", "token": "bench-pat"},
    )
    settings = {"sync_reverse_assignment": True, "sync_status_reverse": True}
    tracker_admin.put_installation(
        org, host_id, {**settings, "sync_status_forward": True, "sync_forward_assignment": True}
    )
    tracker_admin.put_member(org, "dana@example.com", {"user_id": "u-dana"})
    tracker_admin.put_issue(org, "I77", {"title": "linked"})
    tracker_admin.put_link(org, "I77", host_id, "77")
    tracker_admin.put_issue(org, "I0", {"title": "not linked"})
    return org, host_id


def _take_outbound(attempts: int = 3) -> list[str]:
    """Empty the outbound queue (the bench's own housekeeping, not a request path): Azurite in memory sometimes
    stalls for longer than a read timeout under this load, so a timed-out receive is tried again."""
    from azure.core.exceptions import AzureError

    from shared.store.deadline import background
    from shared.store.queues import OUTBOUND_QUEUE_NAME, queue_client

    client, taken = queue_client(OUTBOUND_QUEUE_NAME), []
    with background():
        for attempt in range(1, attempts + 1):
            try:
                while batch := list(client.receive_messages(max_messages=32, visibility_timeout=30)):
                    for message in batch:
                        taken.append(message.content)
                        client.delete_message(message)
                return taken
            except AzureError as exc:
                print(f"  (emptying the outbound queue: {type(exc).__name__}, attempt {attempt} of {attempts})")
                if attempt == attempts:
                    raise
    return taken


def _apply_counted(fake) -> tuple[int, int]:
    """Apply the one queued outbound change: (Azure DevOps requests, storage round trips)."""
    from shared.deliveries.outbound import read_outbound_message
    from shared.store.deadline import background
    from shared.sync.outbound import apply_outbound
    from tests.helpers import count_storage_requests

    [text] = _take_outbound()
    change, _ = read_outbound_message(text)
    fake.reset_log()
    with background(), count_storage_requests() as calls:  # the queue worker's profile
        report = apply_outbound(change)
    assert not report.retry and not report.failed, report
    return len(fake.requests), len(calls)


def counts(fake) -> dict[str, int]:
    from shared.admin import tracker as tracker_admin
    from shared.store.deadline import background

    org, _ = _world(fake)
    found: dict[str, int] = {}

    def put(body: dict) -> None:
        with background():  # the set-up of what is counted: not the figure itself
            tracker_admin.put_issue(org, "I77", body)

    put({"status": "resolved"})
    found["status_cold_ado"], found["status_cold_storage"] = _apply_counted(fake)
    put({"status": "unresolved"})
    found["status_ado"], found["status_storage"] = _apply_counted(fake)
    put({"status": "unresolved"})  # already in line: nothing to send
    found["unchanged_ado"], found["unchanged_storage"] = _apply_counted(fake)
    put({"assignee": "dana@example.com"})
    found["assignment_ado"], found["assignment_storage"] = _apply_counted(fake)
    return found


def put_ratio(fake, samples: int) -> dict[str, float]:
    """The tracker PUT of a linked issue whose installation syncs forward, of one whose installation does not, and
    of an unlinked issue, interleaved. Whether to send is the worker's decision (it reads the installation), so
    a linked issue's PUT costs the same with outbound on or off: it saves, then queues."""
    from functions.admin_tracker import put_issue
    from shared.admin import tracker as tracker_admin
    from shared.store.deadline import background

    org_on, _ = _world(fake)
    org_off, integration_off = _world(fake)
    with background():
        tracker_admin.put_installation(
            org_off, integration_off, {"sync_reverse_assignment": True, "sync_status_reverse": True}
        )

    def put(org: str, issue_id: str, status: str) -> float:
        body = json.dumps({"status": status}).encode()
        request = func.HttpRequest("PUT", "http://x", route_params={"org_id": org, "issue_id": issue_id}, body=body)
        started = time.perf_counter()
        response = put_issue(request)
        elapsed = (time.perf_counter() - started) * 1000
        if response.status_code == 503:  # storage did not answer within the request budget: a client sends again
            unavailable.append(issue_id)
            return put(org, issue_id, status)
        assert response.status_code == 200, (response.status_code, response.get_body())
        return elapsed

    unavailable: list[str] = []
    cases = {"on": (org_on, "I77"), "off": (org_off, "I77"), "unlinked": (org_on, "I0")}
    times: dict[str, list[float]] = {name: [] for name in cases}
    for n in range(20 + samples):  # the first 20 warm connections and clients
        status = "resolved" if n % 2 else "unresolved"
        for name, (org, issue_id) in cases.items():
            elapsed = put(org, issue_id, status)
            if n >= 20:
                times[name].append(elapsed)
        if n % 50 == 0:
            _take_outbound()
    _take_outbound()
    p50 = {f"put_{name}_p50_ms": statistics.median(values) for name, values in times.items()}
    return {**p50, "samples": samples, "put_503s": len(unavailable)}


def measure(fake, samples: int) -> dict:
    return {**counts(fake), **put_ratio(fake, samples)}
