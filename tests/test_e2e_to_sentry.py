"""Inbound Azure DevOps changes on a Sentry organization's issue reach Sentry (contract §13.2), end to end: the
local host beside the fake Azure DevOps (which delivers service hooks for work item changes) and the fake
Sentry, on Azurite. The installation is seeded into storage (`sentry_world`), so this needs no webhook route."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from devtools.fakes import FakeAzureDevOps, FakeSentry
from tests.e2e import settled as settle
from tests.e2e import stop_host
from tests.helpers import wait_for
from tests.sentry_e2e import SentryHost, SentryWorld, sentry_world, start_sentry_host

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("azurite")]

UPDATES = "vsts-sentry-updates"


@pytest.fixture(scope="module")
def out_host(azurite, fake_ado: FakeAzureDevOps, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SentryHost]:
    # Quick back-off, so Sentry being down for a while is retried within the test.
    env = {"QUEUE_RETRY_BASE_SECONDS": "1", "QUEUE_RETRY_MAX_SECONDS": "2"}
    with FakeSentry() as sentry:
        started = start_sentry_host(tmp_path_factory.mktemp("to-sentry"), fake_ado, sentry, env)
        yield started
        stop_host(started.host)


def subscribed_world(out_host: SentryHost) -> SentryWorld:
    world = sentry_world(out_host)
    response = out_host.host.call("POST", f"/api/vsts/integrations/{world.integration_id}/subscription")
    assert response.status_code == 201, response.text
    settled(out_host)
    return world


def settled(out_host: SentryHost) -> None:
    """Every queue on the way drained: what was queued has been applied (or failed for good)."""
    settle(out_host.host, UPDATES, "vsts-workitem-updates", "vsts-outbound")


def issue_requests(out_host: SentryHost, world: SentryWorld) -> dict[str, int]:
    """Sentry requests so far: the issue's GETs and PUTs, and members lookups."""
    org = f"/api/0/organizations/{world.org_slug}/"
    sentry = out_host.sentry
    return {
        "GET": sentry.count("GET", rf"^{org}issues/{world.issue_id}/$"),
        "PUT": sentry.count("PUT", rf"^{org}issues/{world.issue_id}/$"),
        "members": sentry.count("GET", rf"^{org}members/$"),
    }


def spent(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {key: after[key] - before[key] for key in after}


def assigned(out_host: SentryHost, world: SentryWorld) -> str | None:
    """The Sentry user the Sentry issue is assigned to, or None."""
    return (out_host.sentry.issue(world.org_slug, world.issue_id)["assignedTo"] or {}).get("id")


def change(out_host: SentryHost, world: SentryWorld, fields: dict) -> None:
    out_host.ado.update_work_item(world.ado_org, world.work_item_id, fields)


def test_resolving_and_assigning_the_work_item_resolves_and_assigns_the_sentry_issue(out_host) -> None:
    discovered = "Function apply_sentry_update [queue] queue vsts-sentry-updates"
    wait_for(lambda: discovered in out_host.host.log(), what="the host to list the queue function")
    world = subscribed_world(out_host)
    sentry = out_host.sentry
    before = issue_requests(out_host, world)
    change(out_host, world, {"System.State": "Resolved"})
    wait_for(lambda: sentry.issue(world.org_slug, world.issue_id)["status"] == "resolved", what="the resolve")
    settled(out_host)
    assert spent(before, issue_requests(out_host, world)) == {"GET": 1, "PUT": 1, "members": 0}

    # A person Sentry knows but the tracker has no member for yet (cold): found by email, then kept.
    sentry.add_member(world.org_slug, "103", "kim@example.com", "Kim Park")
    before = issue_requests(out_host, world)
    change(out_host, world, {"System.AssignedTo": "Kim Park <kim@example.com>"})
    wait_for(lambda: assigned(out_host, world) == "103", what="the assignment")
    settled(out_host)
    assert spent(before, issue_requests(out_host, world)) == {"GET": 1, "PUT": 1, "members": 1}

    # A member the tracker knows (warm), then Kim again, now known: no members request.
    for name, email, user_id in (("Dana Lee", "dana@example.com", "101"), ("Kim Park", "kim@example.com", "103")):
        before = issue_requests(out_host, world)
        change(out_host, world, {"System.AssignedTo": f"{name} <{email}>"})
        wait_for(lambda uid=user_id: assigned(out_host, world) == uid, what="the assignment")
        settled(out_host)
        assert spent(before, issue_requests(out_host, world)) == {"GET": 1, "PUT": 1, "members": 0}

    # Our own PUTs sent webhooks whose actor is the app; whatever the app makes of them, nothing more is PUT.
    issue = out_host.host.call("GET", f"/api/orgs/{world.org_id}/issues/{world.issue_id}").json()
    assert issue["assignee"] == {"email": "kim@example.com", "user_id": "103"}
    updated = [entry["fields"] for entry in issue["activity"] if entry["type"] == "sentry_updated"]
    assert updated == [["link"], ["status"], ["assignedTo"], ["assignedTo"], ["assignedTo"]]


def test_sentry_down_for_a_while_gets_the_change_when_it_is_back(out_host) -> None:
    world = subscribed_world(out_host)
    sentry = out_host.sentry
    sentry.set_down(True)
    try:
        change(out_host, world, {"System.State": "Resolved"})
        wait_for(lambda: "apply_sentry_update" in out_host.host.log() and _retried(out_host), 60, "a retry")
    finally:
        sentry.set_down(False)
    wait_for(lambda: sentry.issue(world.org_slug, world.issue_id)["status"] == "resolved", 60, "the resolve")
    settled(out_host)
    assert issue_requests(out_host, world)["PUT"] == 1


def _retried(out_host: SentryHost) -> bool:
    return "sentry update" in out_host.host.log() and "queued again" in out_host.host.log()


def test_a_link_made_through_the_admin_api_appears_in_sentry_exactly_once_and_stays(out_host) -> None:
    world = sentry_world(out_host)  # links its work item through PUT .../links/...
    settled(out_host)
    sentry, host = out_host.sentry, out_host.host
    link_path = f"/api/orgs/{world.org_id}/issues/{world.issue_id}/links/{world.integration_id}/{world.work_item_id}"
    assert host.call("PUT", link_path).status_code == 200  # the same link again
    settled(out_host)
    [shown] = sentry.external_issues(world.installation_uuid)
    assert shown["issueId"] == world.issue_id and shown["displayName"].endswith(f"#{world.work_item_id}")
    assert shown["webUrl"].startswith(out_host.ado.org_url(world.ado_org))
    assert sentry.count("POST", rf"^/api/0/sentry-app-installations/{world.installation_uuid}/external-issues/$") == 1
    # Unlinked, Sentry keeps showing it: removing it needs event:admin, which the app does not ask for.
    assert host.call("DELETE", link_path).status_code == 200
    settled(out_host)
    assert len(sentry.external_issues(world.installation_uuid)) == 1
    assert sentry.count("DELETE", r"/external-issues/") == 0


def test_a_token_sentry_expires_mid_run_is_refreshed_once_and_the_change_applied(out_host) -> None:
    """A public installation (through installation.created, so it holds a refresh token) whose token Sentry
    expires before the expiry the app was told: the PUT is refused, refreshed once, and sent again."""
    world = sentry_world(out_host, install="webhook")
    response = out_host.host.call("POST", f"/api/vsts/integrations/{world.integration_id}/subscription")
    assert response.status_code == 201, response.text
    settled(out_host)
    sentry = out_host.sentry
    [token] = sentry.tokens(world.installation_uuid)
    sentry.expire_token(token)
    refreshes = sentry.count("POST", rf"/sentry-app-installations/{world.installation_uuid}/authorizations/$")
    change(out_host, world, {"System.State": "Resolved"})
    wait_for(lambda: sentry.issue(world.org_slug, world.issue_id)["status"] == "resolved", 60, "the resolve")
    settled(out_host)
    after = sentry.count("POST", rf"/sentry-app-installations/{world.installation_uuid}/authorizations/$")
    assert after - refreshes == 1  # refreshed once
    assert sentry.tokens(world.installation_uuid) != [token]
    # The first call, the issue's GET, was refused and sent again with the new token; then the one PUT.
    assert (issue_requests(out_host, world)["GET"], issue_requests(out_host, world)["PUT"]) == (2, 1)


def test_sentry_throttling_the_put_is_waited_out_and_the_change_applied_once(out_host) -> None:
    world = subscribed_world(out_host)
    sentry = out_host.sentry
    path = rf"^/api/0/organizations/{world.org_slug}/issues/{world.issue_id}/$"
    sentry.rate_limit_next("PUT", path, count=4, reset_in=1)  # more 429s than one call's bounded retries
    sentry.fail_next("GET", path, 503, headers={"Retry-After": "1"}, body={"detail": "unavailable"})
    change(out_host, world, {"System.State": "Resolved"})
    wait_for(lambda: sentry.issue(world.org_slug, world.issue_id)["status"] == "resolved", 60, "the resolve")
    settled(out_host)
    issue = out_host.host.call("GET", f"/api/orgs/{world.org_id}/issues/{world.issue_id}").json()
    assert [e["fields"] for e in issue["activity"] if e["type"] == "sentry_updated"] == [["link"], ["status"]]
    assert not [e for e in issue["activity"] if e["type"] == "sentry_failed"]
