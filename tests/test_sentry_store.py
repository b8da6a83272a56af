"""Sentry installations and deliveries in real Table Storage (`shared.store.sentry`), and the token refresh
that happens once for all instances (`shared.connections.sentry`), against Sentry faked with `responses`."""

from __future__ import annotations

import json
import threading
from dataclasses import replace

import pytest
import responses

from shared.connections.sentry import InstallationUnusable, client_for, refresh
from shared.model.sentry import DISABLED, INTERNAL, SentryInstallation
from shared.sentry.client import SentryUnauthorized
from shared.store.sentry import APPLIED, RECEIVED, SentryStore
from tests.helpers import FakeClock, new_id

pytestmark = pytest.mark.usefixtures("azurite")

SENTRY = "https://sentry.example"


@pytest.fixture(autouse=True)
def sentry(sentry_http: responses.RequestsMock) -> responses.RequestsMock:
    return sentry_http


def _installation(clock: FakeClock, **changes: object) -> SentryInstallation:
    base = SentryInstallation(
        uuid=new_id(),
        organization_slug=f"org-{new_id()[:8]}",
        app_uuid="app-uuid",
        token="old-token",
        refresh_token="old-refresh",
        expires_at=clock.now() + 8 * 3600,
    )
    return replace(base, **changes)


def test_an_installation_reads_back_by_uuid_and_by_organization_with_its_tokens_encrypted() -> None:
    from shared.store import base

    clock = FakeClock()
    saved = SentryStore().put(_installation(clock))
    assert SentryStore().get(saved.uuid) == saved
    assert SentryStore().for_org(saved.org_id) == saved
    raw = base.read_entity("sentryinstallations", saved.uuid, "installation", "test")
    assert "old-token" not in json.dumps(dict(raw)) and "old-refresh" not in json.dumps(dict(raw))
    assert "old-token" not in repr(saved)


def test_a_new_installation_of_the_same_organization_becomes_its_current_one() -> None:
    clock = FakeClock()
    first = SentryStore().put(_installation(clock))
    second = SentryStore().put(_installation(clock, organization_slug=first.organization_slug))
    assert SentryStore().for_org(first.org_id).uuid == second.uuid
    assert SentryStore().for_org("not-sentry") is None and SentryStore().get("no/such") is None


def test_a_request_id_is_claimed_once_and_marked_applied() -> None:
    store, uuid, request_id = SentryStore(), new_id(), new_id()
    assert store.claim_delivery(uuid, request_id, {"resource": "issue"}, now=1.0)
    assert not store.claim_delivery(uuid, request_id, {"resource": "other"}, now=2.0)
    assert store.get_delivery(uuid, request_id) == ({"resource": "issue"}, RECEIVED)
    store.mark_applied(uuid, request_id)
    assert store.get_delivery(uuid, request_id) == ({"resource": "issue"}, APPLIED)
    assert not store.claim_delivery(uuid, request_id, {"resource": "issue"}, now=3.0)


def _authorizations(uuid: str) -> str:
    return f"{SENTRY}/api/0/sentry-app-installations/{uuid}/authorizations/"


def test_an_expired_token_is_refreshed_once_for_concurrent_callers_and_the_new_one_stored(
    sentry: responses.RequestsMock,
) -> None:
    clock = FakeClock()
    saved = SentryStore().put(_installation(clock, expires_at=clock.now() - 1))
    sentry.add(
        responses.POST,
        _authorizations(saved.uuid),
        json={"token": "new-token", "refreshToken": "new-refresh", "expiresAt": "2030-01-01T00:00:00Z"},
        status=201,
    )
    results: list[str] = []
    threads = [
        threading.Thread(target=lambda: results.append(refresh(SentryStore(), saved.uuid).token)) for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == ["new-token"] * 4
    assert len(sentry.calls) == 1
    sent = json.loads(sentry.calls[0].request.body)
    assert sent == {
        "client_id": "client-id",
        "client_secret": "client-secret",
        "grant_type": "refresh_token",
        "refresh_token": "old-refresh",
    }
    stored = SentryStore().get(saved.uuid)
    assert (stored.token, stored.refresh_token, stored.refresh_lock_until) == ("new-token", "new-refresh", None)


def test_a_refused_refresh_marks_the_installation_needs_reauth(sentry: responses.RequestsMock) -> None:
    clock = FakeClock()
    saved = SentryStore().put(_installation(clock, expires_at=clock.now() - 1))
    sentry.add(responses.POST, _authorizations(saved.uuid), json={"detail": "Invalid grant"}, status=401)
    with pytest.raises(SentryUnauthorized):
        refresh(SentryStore(), saved.uuid, clock=clock)
    stored = SentryStore().get(saved.uuid)
    assert stored.needs_reauth and stored.refresh_lock_until is None and stored.token == "old-token"


def test_the_client_sends_the_current_token_and_refreshes_it_when_due(sentry: responses.RequestsMock) -> None:
    clock = FakeClock()
    saved = SentryStore().put(_installation(clock, expires_at=clock.now() + 3600))
    issue = f"{SENTRY}/api/0/organizations/{saved.organization_slug}/issues/7/"
    sentry.add(responses.GET, issue, json={"id": "7"})
    sentry.add(
        responses.POST,
        _authorizations(saved.uuid),
        json={"token": "new-token", "refreshToken": "r2", "expiresAt": None},
        status=201,
    )
    client = client_for(saved, clock=clock)
    client.get_issue(saved.organization_slug, "7")
    clock.advance(3600)
    client.get_issue(saved.organization_slug, "7")
    auth = [c.request.headers.get("Authorization") for c in sentry.calls if c.request.method == "GET"]
    assert auth == ["Bearer old-token", "Bearer new-token"]


def test_an_internal_token_never_expires_and_a_disabled_installation_gives_no_client() -> None:
    clock = FakeClock()
    internal = SentryStore().put(_installation(clock, kind=INTERNAL, refresh_token=None, expires_at=None))
    assert client_for(internal, clock=clock) is not None
    with pytest.raises(InstallationUnusable):
        client_for(replace(internal, status=DISABLED))


def test_a_token_sentry_refuses_before_its_expiry_is_refreshed_once_and_the_call_sent_again(
    sentry: responses.RequestsMock,
) -> None:
    clock = FakeClock()
    saved = SentryStore().put(_installation(clock, expires_at=clock.now() + 3600))
    issue = f"{SENTRY}/api/0/organizations/{saved.organization_slug}/issues/7/"
    sentry.add(responses.PUT, issue, json={"detail": "Token expired"}, status=401)
    sentry.add(responses.PUT, issue, json={"id": "7", "status": "resolved"})
    sentry.add(
        responses.POST,
        _authorizations(saved.uuid),
        json={"token": "new-token", "refreshToken": "r2", "expiresAt": "2030-01-01T00:00:00Z"},
        status=201,
    )
    client_for(saved, clock=clock).update_issue(saved.organization_slug, "7", status="resolved")
    sent = [(c.request.method, c.request.headers.get("Authorization")) for c in sentry.calls]
    assert sent == [("PUT", "Bearer old-token"), ("POST", None), ("PUT", "Bearer new-token")]
    assert SentryStore().get(saved.uuid).token == "new-token"


def test_a_refused_token_another_instance_refreshed_already_is_not_refreshed_again(
    sentry: responses.RequestsMock,
) -> None:
    clock = FakeClock()
    saved = SentryStore().put(_installation(clock, expires_at=clock.now() + 3600))
    SentryStore().update(saved.uuid, lambda current: replace(current, token="theirs", refresh_token="their-refresh"))
    issue = f"{SENTRY}/api/0/organizations/{saved.organization_slug}/issues/7/"
    sentry.add(responses.GET, issue, json={"detail": "Invalid token"}, status=401)
    sentry.add(responses.GET, issue, json={"id": "7"})
    client_for(saved, clock=clock).get_issue(saved.organization_slug, "7")  # holds the old token
    sent = [(c.request.method, c.request.headers.get("Authorization")) for c in sentry.calls]
    assert sent == [("GET", "Bearer old-token"), ("GET", "Bearer theirs")]  # no authorization request


def test_an_internal_token_sentry_refuses_is_not_retried(sentry: responses.RequestsMock) -> None:
    clock = FakeClock()
    internal = SentryStore().put(_installation(clock, kind=INTERNAL, refresh_token=None, expires_at=None))
    issue = f"{SENTRY}/api/0/organizations/{internal.organization_slug}/issues/7/"
    sentry.add(responses.GET, issue, json={"detail": "Invalid token"}, status=401)
    with pytest.raises(SentryUnauthorized):
        client_for(internal, clock=clock).get_issue(internal.organization_slug, "7")
    assert len(sentry.calls) == 1
