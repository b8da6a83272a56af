"""Sentry as it really behaves, end to end (contract §15; issue 17): the local host beside the fake Sentry, which
checks scopes as Sentry's permission classes do and sends `issue.unresolved` only behind the organization's
`webhooks-unresolved` feature and nothing on unassign, and the fake Azure DevOps, on Azurite.

- A 403 (a permission the installation lacks) is recorded, naming the scope, and neither retried nor refreshed.
- A reopen and an unassign that send no webhook reach Azure DevOps through `sentry_reconcile`.
- An old `issue.resolved` sent again with a new Request-ID after a newer reopen changes nothing.
- After Sentry revokes the tokens, messages are parked without calling Sentry, and applied after a new token.
"""

from __future__ import annotations

import uuid

import pytest
import requests

from shared.store import failures, sentry_parked
from shared.store.cursors import CursorStore
from shared.store.sentry import SentryStore
from tests import sentry_e2e
from tests.e2e import queue_length
from tests.helpers import wait_for
from tests.sentry_e2e import APP, SentryHost, SentryWorld, sentry_world

fake_sentry, sentry_host = sentry_e2e.fake_sentry, sentry_e2e.sentry_host
pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("azurite")]

QUEUES = ("vsts-sentry-hooks", "vsts-sentry-updates", "vsts-outbound", "vsts-workitem-updates")


def _settled(h: SentryHost) -> None:
    wait_for(lambda: all(queue_length(h.host, q) in (-1, 0) for q in QUEUES), 60, "the queues to drain")


def _issue(h: SentryHost, world: SentryWorld) -> dict:
    response = h.host.call("GET", f"/api/orgs/{world.org_id}/issues/{world.issue_id}")
    assert response.status_code == 200, response.text
    return response.json()


def _fields(h: SentryHost, world: SentryWorld) -> dict:
    return h.ado.work_item(world.ado_org, world.work_item_id)["fields"]


def _subscribed(h: SentryHost, **options: object) -> SentryWorld:
    world = sentry_world(h, **options)
    response = h.host.call("POST", f"/api/vsts/integrations/{world.integration_id}/subscription")
    assert response.status_code == 201, response.text
    _settled(h)
    return world


def _issue_calls(h: SentryHost, world: SentryWorld, method: str = "*") -> int:
    return h.sentry.count(method, rf"^/api/0/organizations/{world.org_slug}/issues/{world.issue_id}/$")


def _sentry_reconcile(h: SentryHost, world: SentryWorld) -> None:
    """Run the timer now, from this organization, and wait for the host to say it ran."""
    CursorStore().set("sentry_reconcile", f"{world.org_id}|")
    runs = _runs(h)
    h.host.invoke("sentry_reconcile")
    wait_for(lambda: len(_runs(h)) > len(runs), 60, "sentry_reconcile to run")
    assert "succeeded" in _runs(h)[-1].lower(), _runs(h)[-1]


def _runs(h: SentryHost) -> list[str]:
    return [line for line in h.host.log().splitlines() if "Executed sentry_reconcile" in line]


def test_a_sentry_403_is_recorded_with_the_scope_and_not_retried_and_the_credentials_stay(sentry_host) -> None:
    h = sentry_host
    world = _subscribed(h)
    h.sentry.set_scopes(world.installation_uuid, ["event:read", "member:read", "org:read"])  # no event:write
    before = SentryStore().get(world.installation_uuid)
    tokens = h.sentry.tokens(world.installation_uuid)
    h.ado.update_work_item(world.ado_org, world.work_item_id, {"System.State": "Resolved"})
    [entry] = wait_for(
        lambda: [e for e in _issue(h, world)["activity"] if e["type"] == "sentry_failed"], 60, "sentry_failed"
    )
    _settled(h)
    assert "event:write" in entry["reason"] and "Permissions" in entry["reason"]
    assert _issue_calls(h, world, "PUT") == 1  # refused once, not retried
    assert h.sentry.count("POST", rf"/sentry-app-installations/{world.installation_uuid}/authorizations/$") == 0
    after = SentryStore().get(world.installation_uuid)
    assert (after.token, after.needs_reauth) == (before.token, False) and h.sentry.tokens(
        world.installation_uuid
    ) == tokens
    assert h.sentry.issue(world.org_slug, world.issue_id)["status"] == "unresolved"
    assert any(
        f.kind == "sentry_failed" and "event:write" in f.reason and f.subject.startswith(world.org_id)
        for f in failures.recent_failures()
    )


def test_a_reopen_and_an_unassign_without_webhooks_reach_azure_devops_through_sentry_reconcile(sentry_host) -> None:
    h = sentry_host
    world = _subscribed(h)
    h.sentry.change_issue(world.org_slug, world.issue_id, status="resolved", assigned_to=101, by_user=102)
    wait_for(lambda: _fields(h, world)["System.State"] == "Resolved", 60, "the work item resolved")
    wait_for(lambda: "dana@example.com" in str(_fields(h, world).get("System.AssignedTo", "")).lower(), 60, "assigned")
    _settled(h)
    webhooks = len(h.sentry.webhooks)
    # A person reopens and unassigns in Sentry: the organization lacks webhooks-unresolved, and unassigning never
    # sends one, so nothing reaches the app.
    h.sentry.change_issue(world.org_slug, world.issue_id, status="unresolved", assigned_to="", by_user=102)
    assert len(h.sentry.webhooks) == webhooks
    assert _issue(h, world)["status"] == "resolved"
    reads = _issue_calls(h, world, "GET")
    _sentry_reconcile(h, world)
    wait_for(lambda: _fields(h, world)["System.State"] == "Active", 60, "the work item reopened")
    wait_for(lambda: not _fields(h, world).get("System.AssignedTo"), 60, "the work item unassigned")
    issue = _issue(h, world)
    assert (issue["status"], issue["assignee"]) == ("unresolved", None)
    _settled(h)
    assert _issue_calls(h, world, "GET") >= reads + 1 and _issue_calls(h, world, "PUT") == 0  # nothing echoed


def test_an_old_resolved_sent_again_with_a_new_request_id_after_a_reopen_changes_nothing(sentry_host) -> None:
    h = sentry_host
    world = _subscribed(h)
    h.sentry.set_feature(world.org_slug, "webhooks-unresolved")
    h.sentry.change_issue(world.org_slug, world.issue_id, status="resolved", by_user=101)
    wait_for(lambda: _fields(h, world)["System.State"] == "Resolved", 60, "the work item resolved")
    [resolved] = [w for w in h.sentry.webhooks if w.action == "resolved" and w.installation == world.installation_uuid]
    h.sentry.change_issue(world.org_slug, world.issue_id, status="unresolved", by_user=101)
    wait_for(lambda: _fields(h, world)["System.State"] == "Active", 60, "the work item reopened")
    _settled(h)
    activity, revision = _issue(h, world)["activity"], h.ado.work_item(world.ado_org, world.work_item_id)["rev"]
    reads = _issue_calls(h, world, "GET")
    # Sentry sends the resolve again, later, with a new Request-ID (as after a timeout), signed the same.
    resent = requests.post(
        f"{h.host.url}/api/sentry/webhook",
        data=resolved.body,
        headers={**resolved.headers, "Request-ID": uuid.uuid4().hex},
        timeout=10,
    )
    assert (resent.status_code, resent.json()) == (202, {"status": "queued"})
    wait_for(lambda: _issue_calls(h, world, "GET") > reads, 60, "the issue read from Sentry")
    _settled(h)
    assert _issue(h, world)["activity"] == activity and _issue(h, world)["status"] == "unresolved"
    assert h.ado.work_item(world.ado_org, world.work_item_id)["rev"] == revision
    assert _fields(h, world)["System.State"] == "Active"


def test_messages_wait_without_calling_sentry_after_its_tokens_are_revoked_and_apply_after_a_new_token(
    sentry_host,
) -> None:
    h = sentry_host
    world = _subscribed(h, install="webhook")  # a public installation, with a refresh token
    uuid_ = world.installation_uuid
    h.sentry.revoke_tokens(uuid_)
    h.ado.update_work_item(world.ado_org, world.work_item_id, {"System.State": "Resolved"})
    wait_for(lambda: SentryStore().get(uuid_).needs_reauth, 60, "needs_reauth")
    wait_for(lambda: len(sentry_parked.parked(world.org_id)) == 1, 60, "the update parked")
    refreshes = h.sentry.count("POST", rf"/sentry-app-installations/{uuid_}/authorizations/$")
    calls = _issue_calls(h, world)
    # A person assigns in Sentry meanwhile: the webhook is taken, and parked without reading the issue.
    h.sentry.change_issue(world.org_slug, world.issue_id, assigned_to=101, by_user=102)
    wait_for(lambda: len(sentry_parked.parked(world.org_id)) == 2, 60, "the webhook parked")
    _settled(h)
    # The grant exchange at install, the one refresh Sentry refused, and nothing since.
    assert h.sentry.count("POST", rf"/sentry-app-installations/{uuid_}/authorizations/$") == refreshes == 2
    assert _issue_calls(h, world) == calls and _issue(h, world)["assignee"] is None
    # A new token, entered through the admin route, re-authorises the installation: the messages are applied.
    token = uuid.uuid4().hex
    assert h.sentry.add_static_token(world.org_slug, token, APP) == uuid_
    response = h.host.call("PUT", f"/api/sentry/installations/{uuid_}", json={"token": token})
    assert response.status_code == 200, response.text
    assert response.json()["needs_reauth"] is False and response.json()["kind"] == "public"
    wait_for(lambda: h.sentry.issue(world.org_slug, world.issue_id)["status"] == "resolved", 60, "Sentry resolved")
    wait_for(lambda: (_issue(h, world)["assignee"] or {}).get("email") == "dana@example.com", 60, "the assignee")
    wait_for(lambda: "dana@example.com" in str(_fields(h, world).get("System.AssignedTo", "")).lower(), 60, "ADO")
    assert sentry_parked.parked(world.org_id) == []
