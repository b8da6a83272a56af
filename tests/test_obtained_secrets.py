"""Single-use secrets are stored before anything else can fail (issue 18, finding 3): a refreshed Sentry token pair,
a refreshed Azure DevOps OAuth token, the tokens a Sentry grant code was exchanged for. Storage fails at the save
(once, twice, for good, and once after it wrote unseen); the secret is obtained once and, unless storage never
answered, stored. A failed organization index write is repaired. Real Azurite; Sentry and Azure DevOps faked with
`responses`; storage failures injected at the SDK's transport.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import responses
from azure.core.exceptions import ServiceRequestError, ServiceResponseError
from azure.core.pipeline.transport import RequestsTransport

from shared.connections.credentials import refresh_oauth
from shared.connections.sentry import refresh
from shared.deliveries.sentry_messages import to_hook_message
from shared.errors import StorageUnavailable
from shared.model.sentry import SentryInstallation
from shared.sentryapp.hooks import process_hook_message
from shared.settings import get_settings
from shared.store import base
from shared.store.integrations import IntegrationStore
from shared.store.sentry import INSTALLATIONS, ORGS, SentryStore
from tests.helpers import FakeClock, make_integration, new_id
from tests.sentry_hooks_helpers import APP_UUID, envelope, post
from tests.sync_helpers import queued_messages

pytestmark = pytest.mark.usefixtures("azurite")

SENTRY = "https://sentry.example"
SDK_ATTEMPTS = 4  # the tables client's 1 + 3 retries: one failed save costs this many failed requests
WRITES = ("PUT", "PATCH", "POST", "MERGE", "DELETE")


class Faults:
    """Fails the next `armed` writes to one table; `unseen` lets a write through and then loses its answer."""

    def __init__(self, table: str) -> None:
        self.fragment = "/" + base.table_name(table)
        self.armed = 0
        self.unseen = 0
        self.failed: list[str] = []

    def send(self, original, transport, request, **kwargs):
        if self.fragment in request.url and request.method in WRITES:
            if self.unseen:
                self.unseen -= 1
                original(transport, request, **kwargs)  # written...
                self.failed.append(f"unseen {request.method}")
                raise ServiceResponseError("injected: the answer was lost")  # ...but nobody heard
            if self.armed:
                self.armed -= 1
                self.failed.append(request.method)
                raise ServiceRequestError("injected storage failure")
        return original(transport, request, **kwargs)


@contextmanager
def faults_on(table: str) -> Iterator[Faults]:
    faults, original = Faults(table), RequestsTransport.send
    RequestsTransport.send = lambda transport, request, **kw: faults.send(original, transport, request, **kw)
    try:
        yield faults
    finally:
        RequestsTransport.send = original


@pytest.fixture(autouse=True)
def sentry(sentry_http: responses.RequestsMock) -> responses.RequestsMock:
    return sentry_http


def _authorizations(uuid: str) -> str:
    return f"{SENTRY}/api/0/sentry-app-installations/{uuid}/authorizations/"


def _expiring(clock: FakeClock) -> SentryInstallation:
    installation = SentryInstallation(
        uuid=new_id(),
        organization_slug=f"org-{new_id()[:8]}",
        app_uuid=APP_UUID,
        token="old-token",
        refresh_token="old-refresh",
        expires_at=clock.now() - 1,
    )
    return SentryStore().put(installation)


def _sentry_grants(sentry: responses.RequestsMock, uuid: str, then=None) -> list[str]:
    """Sentry's token endpoint: each call answers a new pair (a refresh token is single use) and runs `then`."""
    issued: list[str] = []

    def answer(request):
        issued.append(f"token-{len(issued) + 1}")
        if then is not None:
            then()
        body = {"token": issued[-1], "refreshToken": f"refresh-{len(issued)}", "expiresAt": "2030-01-01T00:00:00Z"}
        return 201, {}, json.dumps(body)

    sentry.add_callback(responses.POST, _authorizations(uuid), callback=answer)
    return issued


# -- a refreshed Sentry token pair ---------------------------------------------------------------------------------


@pytest.mark.parametrize("failed_saves", [1, 2], ids=["first-save-fails", "second-save-fails-too"])
def test_a_refreshed_sentry_pair_is_saved_though_the_save_fails(sentry, failed_saves: int, caplog) -> None:
    clock = FakeClock()
    saved = _expiring(clock)
    with faults_on(INSTALLATIONS) as faults:
        issued = _sentry_grants(sentry, saved.uuid, then=lambda: setattr(faults, "armed", failed_saves * SDK_ATTEMPTS))
        with caplog.at_level(logging.ERROR):
            assert refresh(SentryStore(), saved.uuid, clock=clock).token == "token-1"
    assert len(faults.failed) == failed_saves * SDK_ATTEMPTS
    assert issued == ["token-1"]  # the refresh token was spent once
    stored = SentryStore().get(saved.uuid)
    assert (stored.token, stored.refresh_token, stored.refresh_lock_until) == ("token-1", "refresh-1", None)
    assert sum("obtained but not saved" in r.getMessage() for r in caplog.records) == failed_saves
    assert "token-1" not in caplog.text and "refresh-1" not in caplog.text


def test_a_refreshed_sentry_pair_whose_save_wrote_unseen_is_kept_by_the_next_attempt(sentry) -> None:
    clock = FakeClock()
    saved = _expiring(clock)
    with faults_on(INSTALLATIONS) as faults:
        _sentry_grants(sentry, saved.uuid, then=lambda: setattr(faults, "unseen", 1))
        assert refresh(SentryStore(), saved.uuid, clock=clock).token == "token-1"
    assert faults.failed == ["unseen PUT"]
    stored = SentryStore().get(saved.uuid)
    assert (stored.token, stored.refresh_token, stored.refresh_lock_until) == ("token-1", "refresh-1", None)


def test_a_save_that_never_succeeds_gives_up_loudly_after_a_bounded_number_of_attempts(sentry, caplog) -> None:
    clock = FakeClock()
    saved = _expiring(clock)
    with faults_on(INSTALLATIONS) as faults:
        _sentry_grants(sentry, saved.uuid, then=lambda: setattr(faults, "armed", 10**6))
        with caplog.at_level(logging.ERROR), pytest.raises(StorageUnavailable):
            refresh(SentryStore(), saved.uuid, clock=clock)
    assert any(r.levelno == logging.CRITICAL and "is lost" in r.getMessage() for r in caplog.records)
    assert clock.monotonic() - FakeClock().monotonic() <= 4  # the waits are bounded (0.5 + 1 + 2 s)


# -- a refreshed Azure DevOps OAuth token ----------------------------------------------------------------------------


@pytest.mark.parametrize("failed_saves", [1, 2], ids=["first-save-fails", "second-save-fails-too"])
def test_a_refreshed_oauth_token_is_saved_though_the_save_fails(env, ado, failed_saves: int) -> None:
    env.setenv("ADO_CLIENT_SECRET", "the-client-secret")
    credentials = {"type": "oauth", "access_token": "old", "refresh_token": "rt-1", "expires_at": time.time() - 10}
    integration = make_integration(credentials=credentials)
    sent: list[str] = []
    with faults_on("integrations") as faults:

        def answer(request):
            sent.append(dict(urllib.parse.parse_qsl(request.body))["assertion"])
            faults.armed = failed_saves * SDK_ATTEMPTS
            body = {"access_token": "new-access", "refresh_token": "rt-2", "expires_in": "3599"}
            return 200, {}, json.dumps(body)

        ado.add_callback(ado.POST, "https://app.vssps.visualstudio.com/oauth2/token", callback=answer)
        fresh = refresh_oauth(IntegrationStore(), integration.id, get_settings(), clock=FakeClock())
    assert fresh.credentials["access_token"] == "new-access"
    assert sent == ["rt-1"] and len(faults.failed) == failed_saves * SDK_ATTEMPTS
    stored = IntegrationStore().get(integration.id).credentials
    assert (stored["access_token"], stored["refresh_token"]) == ("new-access", "rt-2")


# -- a grant code exchanged on installation.created ----------------------------------------------------------------


def _created(uuid: str, slug: str) -> str:
    """Post installation.created; the queued message."""
    installation = {
        "uuid": uuid,
        "status": "installed",
        "code": "grant-code",
        "app": {"uuid": APP_UUID, "slug": "boards-sync"},
        "organization": {"slug": slug},
    }
    request_id = new_id()
    payload = envelope(uuid, "installation", "created", {"installation": installation})
    assert post(payload, "installation", request_id=request_id).status_code == 202
    queued_messages("vsts-sentry-hooks")
    return to_hook_message(uuid, request_id)


@pytest.mark.parametrize("failed_saves", [1, 2], ids=["first-put-fails", "second-put-fails-too"])
def test_an_exchanged_grant_is_saved_though_the_installations_put_fails(sentry, failed_saves: int) -> None:
    uuid, slug = new_id(), f"org-{new_id()[:8]}"
    message = _created(uuid, slug)
    with faults_on(INSTALLATIONS) as faults:
        issued = _sentry_grants(sentry, uuid, then=lambda: setattr(faults, "armed", failed_saves * SDK_ATTEMPTS))
        assert process_hook_message(message, clock=FakeClock()).result == "applied"
    assert issued == ["token-1"] and len(faults.failed) == failed_saves * SDK_ATTEMPTS
    assert SentryStore().get(uuid).token == "token-1"
    assert SentryStore().for_org(f"sentry-{slug}").uuid == uuid


def test_a_failed_org_index_write_is_repaired_by_the_events_retry_without_a_second_exchange(sentry) -> None:
    uuid, slug = new_id(), f"org-{new_id()[:8]}"
    message = _created(uuid, slug)
    issued = _sentry_grants(sentry, uuid)
    retries = f"test-retry-{new_id()[:8]}"  # the copy put back stays out of other tests
    with faults_on(ORGS) as faults:
        faults.armed = 10**6  # every attempt of the index write fails: the event is retried later
        assert process_hook_message(message, retries, clock=FakeClock()).result == "retried"
    assert SentryStore().get(uuid).token == "token-1"  # the tokens were saved first
    assert base.read_entity(ORGS, f"sentry-{slug}", "installation", "test") is None
    assert process_hook_message(message, retries, clock=FakeClock()).result == "applied"
    assert issued == ["token-1"]  # the code was exchanged once
    index = base.read_entity(ORGS, f"sentry-{slug}", "installation", "test")
    assert index is not None and index["Uuid"] == uuid


def test_an_organization_whose_index_is_missing_is_found_and_its_index_repaired() -> None:
    slug = f"org-{new_id()[:8]}"
    installation = SentryStore().put(SentryInstallation(new_id(), slug, app_uuid=APP_UUID, token="t"))
    base.table(ORGS).delete_entity(f"sentry-{slug}", "installation")  # as if its write had failed
    assert SentryStore().for_org(f"sentry-{slug}").uuid == installation.uuid  # to_sentry no longer drops it
    index = base.read_entity(ORGS, f"sentry-{slug}", "installation", "test")
    assert index is not None and index["Uuid"] == installation.uuid
    assert SentryStore().for_org(f"sentry-{new_id()[:8]}") is None  # never installed: still nothing


def test_a_repeat_of_an_older_installation_never_takes_the_index_from_a_newer_one() -> None:
    slug = f"org-{new_id()[:8]}"
    older = SentryStore().put(SentryInstallation(new_id(), slug, app_uuid=APP_UUID, token="a", created_at=1.0))
    newer = SentryStore().put(SentryInstallation(new_id(), slug, app_uuid=APP_UUID, token="b"))
    SentryStore().repair_org_index(older)
    assert SentryStore().for_org(f"sentry-{slug}").uuid == newer.uuid
