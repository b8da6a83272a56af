"""Counts that do not depend on machine speed: storage round trips per applied assignment (one and five
linked issues), counted with a transport hook, and Azure DevOps requests per warm get_issue, counted by
the fake."""

from __future__ import annotations

import os
import uuid
from dataclasses import replace

import azure.functions as func

SETUP_ATTEMPTS = 5


def _apply_assignment(fake, linked: int) -> int:
    """The set-up and the queue worker's apply, with storage's background timeouts and retries, as the worker has."""
    from shared.store.deadline import background

    with background():
        return _apply_assignment_counted(fake, linked)


def _apply_assignment_counted(fake, linked: int) -> int:
    from shared.admin import tracker as tracker_admin
    from shared.deliveries import AssigneeChange, WorkItemUpdate
    from shared.settings import reset_settings
    from shared.store.integrations import IntegrationStore
    from shared.sync.inbound import apply_workitem_update
    from tests.helpers import count_storage_requests, make_integration

    # Linking reads the work item, so the integration points at an organization of the fake that has it.
    os.environ.update(fake.settings_env())
    reset_settings()
    name = f"b{uuid.uuid4().hex[:8]}"
    integration = make_integration(name=name, credentials={"type": "pat", "token": "bench-pat"})
    fake.add_org(name, integration.id)
    fake.add_pat(name, "bench-pat")
    fake.add_work_item(name, 42, {"System.Title": "t"})
    IntegrationStore().update(integration.id, lambda cur: replace(cur, domain_name=fake.org_url(name)))
    org = f"bench-{uuid.uuid4().hex[:8]}"
    tracker_admin.put_installation(org, integration.id, {"sync_reverse_assignment": True, "sync_status_reverse": True})
    tracker_admin.put_member(org, "dana@example.com", {"user_id": "u-dana"})
    for n in range(linked):
        tracker_admin.put_issue(org, f"I{n}", {"title": "t"})
        tracker_admin.put_link(org, f"I{n}", integration.id, "42")
    update = WorkItemUpdate(
        integration.id, 42, 2, "Bug", "p", AssigneeChange(False, "dana@example.com", ""), None, None, None
    )
    with count_storage_requests() as calls:
        apply_workitem_update(update)
    assert all(tracker_admin.get_issue(org, f"I{n}").assignee_email == "dana@example.com" for n in range(linked))
    return len(calls)


def _ado_requests_per_warm_get_issue(fake) -> tuple[int, int]:
    import os

    from functions.lookups import get_issue
    from shared.settings import reset_settings
    from tests.helpers import count_storage_requests, make_integration

    os.environ.update(fake.settings_env())
    reset_settings()
    name, host_id = f"b{uuid.uuid4().hex[:8]}", str(uuid.uuid4())
    fake.add_org(name, host_id)
    fake.add_pat(name, "bench-pat")
    fake.add_work_item(name, 309, {"System.Title": "t"})
    from shared.store.deadline import background

    with background():
        make_integration(
            integration_id=host_id,
            name=name,
            domain_name=fake.org_url(name),
            credentials={"type": "pat", "token": "bench-pat"},
        )
    request = func.HttpRequest("GET", "http://x", route_params={"integration_id": host_id, "issue_id": "309"}, body=b"")
    for _ in range(SETUP_ATTEMPTS):  # cold: clients made, connections opened (a 503 when storage stalled: again)
        if get_issue(request).status_code == 200:
            break
    for attempt in range(1, SETUP_ATTEMPTS + 1):  # only a whole answered call is counted
        fake.reset_log()
        with count_storage_requests() as storage_calls:
            status = get_issue(request).status_code
        if status == 200:
            return len(fake.requests), len(storage_calls)
        assert status == 503 and attempt < SETUP_ATTEMPTS, status
        print(f"  (get_issue answered 503 while counted: storage stalled; attempt {attempt})", flush=True)
    raise AssertionError("unreachable")


def measure(fake) -> dict:
    ado, storage = _ado_requests_per_warm_get_issue(fake)
    return {
        "assignment_1_linked": _apply_assignment(fake, 1),
        "assignment_5_linked": _apply_assignment(fake, 5),
        "get_issue_ado_requests": ado,
        "get_issue_storage_requests": storage,
    }
