"""Installations (contract §13.2): installation.created exchanges the grant code and stores the tokens encrypted,
installation.deleted disables and forgets them, and an internal integration's token entered through
PUT /api/sentry/installations/{uuid}; real Azurite, Sentry faked with `responses`."""

from __future__ import annotations

import json

import azure.functions as func
import pytest
import responses

from shared.deliveries.sentry_messages import read_hook_message, to_hook_message
from shared.model.sentry import ACTIVE, DISABLED, INTERNAL, PUBLIC, SentryInstallation
from shared.sentryapp.hooks import process_hook_message
from shared.store import base
from shared.store.queues import SENTRY_HOOKS_QUEUE_NAME
from shared.store.sentry import INSTALLATIONS, ROW, SentryStore
from tests.helpers import new_id
from tests.sentry_hooks_helpers import APP_UUID, answer_of, envelope, post, run_hooks
from tests.sync_helpers import queued_messages

pytestmark = pytest.mark.usefixtures("azurite")

SENTRY = "https://sentry.example"


@pytest.fixture(autouse=True)
def sentry(sentry_http: responses.RequestsMock) -> responses.RequestsMock:
    queued_messages(SENTRY_HOOKS_QUEUE_NAME)
    return sentry_http


def _authorizations(uuid: str) -> str:
    return f"{SENTRY}/api/0/sentry-app-installations/{uuid}/authorizations/"


def _grant(token: str = "tok-1", refresh: str = "ref-1") -> dict:
    return {"token": token, "refreshToken": refresh, "expiresAt": "2030-01-01T08:00:00.000000Z"}


def _created(uuid: str, slug: str, *, code: str | None = "grant-code", status: str = "installed") -> dict:
    installation = {
        "uuid": uuid,
        "status": status,
        "app": {"uuid": APP_UUID, "slug": "boards-sync"},
        "organization": {"slug": slug},
    }
    if code is not None:
        installation["code"] = code
    return envelope(uuid, "installation", "created", {"installation": installation})


def _deleted(uuid: str, slug: str) -> dict:
    data = {"installation": {"uuid": uuid, "app": {"uuid": APP_UUID}, "organization": {"slug": slug}}}
    return envelope(uuid, "installation", "deleted", data)


def _install(sentry: responses.RequestsMock, *, status: int = 201, body: dict | None = None, **options) -> tuple:
    uuid, slug = new_id(), f"org-{new_id()[:8]}"
    sentry.add(responses.POST, _authorizations(uuid), json=body or _grant(), status=status)
    assert post(_created(uuid, slug, **options), "installation").status_code == 202
    run_hooks()
    return uuid, slug


def test_created_exchanges_the_code_and_stores_the_tokens_encrypted(sentry: responses.RequestsMock) -> None:
    uuid, slug = _install(sentry)
    [call] = [c for c in sentry.calls if "authorizations" in c.request.url]
    sent = json.loads(call.request.body)
    assert sent == {
        "grant_type": "authorization_code",
        "code": "grant-code",
        "client_id": "client-id",
        "client_secret": "client-secret",
    }
    installation = SentryStore().get(uuid)
    assert installation is not None
    assert (installation.kind, installation.status, installation.organization_slug) == (PUBLIC, ACTIVE, slug)
    assert (installation.token, installation.refresh_token, installation.app_uuid) == ("tok-1", "ref-1", APP_UUID)
    assert installation.expires_at is not None
    raw = json.dumps(dict(base.read_entity(INSTALLATIONS, uuid, ROW, "test")), default=str)
    assert "tok-1" not in raw and "ref-1" not in raw
    assert SentryStore().for_org(f"sentry-{slug}").uuid == uuid


def test_a_pending_installation_is_confirmed_with_the_new_token(sentry: responses.RequestsMock) -> None:
    uuid = new_id()
    confirm = sentry.add(responses.PUT, f"{SENTRY}/api/0/sentry-app-installations/{uuid}/", json={}, status=200)
    sentry.add(responses.POST, _authorizations(uuid), json=_grant("tok-p"), status=201)
    post(_created(uuid, "acme-p", status="pending"), "installation")
    run_hooks()
    assert confirm.call_count == 1
    request = confirm.calls[0].request
    assert request.headers["Authorization"] == "Bearer tok-p"
    assert json.loads(request.body) == {"status": "installed"}


@pytest.mark.parametrize(
    ("options", "status"), [({"code": None}, 201), ({}, 401), ({}, 400)], ids=["no-code", "refused", "rejected"]
)
def test_a_created_event_without_a_usable_code_records_nothing(sentry, options: dict, status: int) -> None:
    uuid, _ = _install(sentry, status=status, body={"detail": "Could not find grant for given code"}, **options)
    assert SentryStore().get(uuid) is None
    assert queued_messages(SENTRY_HOOKS_QUEUE_NAME) == []  # done with, not retried


def test_sentry_down_during_the_exchange_is_retried_with_back_off_then_applied(sentry) -> None:
    uuid, slug = new_id(), "acme-down"
    sentry.add(responses.POST, _authorizations(uuid), json={"detail": "down"}, status=503)
    post(_created(uuid, slug), "installation")
    [message] = queued_messages(SENTRY_HOOKS_QUEUE_NAME)
    retries = f"test-retry-{new_id()[:8]}"  # a queue of its own: the copy put back stays out of other tests
    outcome = process_hook_message(message, retries)
    assert (outcome.result, outcome.attempt) == ("retried", 1)
    assert outcome.delay is not None and outcome.delay >= 10
    assert SentryStore().get(uuid) is None
    _, request_id, _ = read_hook_message(message)
    sentry.replace(responses.POST, _authorizations(uuid), json=_grant("tok-late"), status=201)
    assert process_hook_message(to_hook_message(uuid, request_id, attempt=1), retries).result == "applied"
    assert SentryStore().get(uuid).token == "tok-late"


def test_deleted_disables_the_installation_and_forgets_its_tokens(sentry: responses.RequestsMock) -> None:
    uuid, slug = _install(sentry)
    assert post(_deleted(uuid, slug), "installation").status_code == 202
    run_hooks()
    installation = SentryStore().get(uuid)
    assert installation.status == DISABLED
    assert (installation.token, installation.refresh_token) == (None, None)
    assert "tok-1" not in json.dumps(dict(base.read_entity(INSTALLATIONS, uuid, ROW, "test")), default=str)


def test_a_later_installation_of_the_same_organization_becomes_current(sentry: responses.RequestsMock) -> None:
    first, slug = _install(sentry)
    second = new_id()
    sentry.add(responses.POST, _authorizations(second), json=_grant("tok-2", "ref-2"), status=201)
    post(_created(second, slug), "installation")
    run_hooks()
    assert SentryStore().for_org(f"sentry-{slug}").uuid == second


def test_a_created_event_delivered_again_keeps_the_tokens_of_the_first(sentry: responses.RequestsMock) -> None:
    uuid, slug = _install(sentry)
    sentry.replace(responses.POST, _authorizations(uuid), json={"detail": "Could not find grant"}, status=401)
    post(_created(uuid, slug), "installation")  # a new request id: recorded and applied again
    run_hooks()
    assert SentryStore().get(uuid).token == "tok-1"
    assert len([c for c in sentry.calls if "authorizations" in c.request.url]) == 1


# -- PUT / GET /api/sentry/installations/{uuid} ---------------------------------------------------------------


def _put(uuid: str, body: object) -> func.HttpResponse:
    from functions.sentry_webhook import put_installation

    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = func.HttpRequest(
        "PUT", f"http://localhost/api/sentry/installations/{uuid}", body=raw, route_params={"uuid": uuid}
    )
    return put_installation(request)


def _get(uuid: str) -> func.HttpResponse:
    from functions.sentry_webhook import get_installation

    request = func.HttpRequest(
        "GET", f"http://localhost/api/sentry/installations/{uuid}", body=b"", route_params={"uuid": uuid}
    )
    return get_installation(request)


def test_an_internal_integrations_token_is_stored_and_never_shown() -> None:
    uuid, token = new_id(), "sntrys_" + "a" * 60
    created = _put(uuid, {"token": token, "organization": "self-hosted", "app_uuid": APP_UUID})
    assert created.status_code == 201
    shown = answer_of(created)
    assert (shown["kind"], shown["status"], shown["token"], shown["expires_at"]) == (INTERNAL, ACTIVE, "set", None)
    assert token not in created.get_body().decode()
    replaced = _put(uuid, {"token": "b" * 64, "organization": "self-hosted"})
    assert replaced.status_code == 200
    assert answer_of(replaced)["app_uuid"] == APP_UUID  # kept when not given again
    read = _get(uuid)
    assert read.status_code == 200 and "b" * 64 not in read.get_body().decode()
    stored: SentryInstallation = SentryStore().get(uuid)
    assert (stored.token, stored.expires_at, stored.org_id) == ("b" * 64, None, "sentry-self-hosted")


@pytest.mark.parametrize(
    "body",
    [
        {"organization": "acme"},
        {"token": "", "organization": "acme"},
        {"token": "has space", "organization": "acme"},
        {"token": "x" * 513, "organization": "acme"},
        {"token": "tok\n", "organization": "acme"},
        {"token": "tøk", "organization": "acme"},
        {"token": 42, "organization": "acme"},
        {"token": "tok"},
        {"token": "tok", "organization": "a/b"},
        {"token": "tok", "organization": "-acme"},
        {"token": "tok", "organization": "acme", "app_uuid": "a b"},
        {"token": "tok", "organization": "acme", "extra": 1},
        {"token": "tok", "organization": "acme"},
        {"token": "tok", "organization": "acme", "app_uuid": None},
        b"not json",
        b"[]",
    ],
)
def test_a_bad_token_body_is_400_and_writes_nothing(body: object) -> None:
    uuid = new_id()
    response = _put(uuid, body)
    assert response.status_code == 400
    assert list(answer_of(response)) == ["error"]
    assert SentryStore().get(uuid) is None


def test_an_internal_installation_without_app_uuid_is_refused_with_one_sentence() -> None:
    uuid = new_id()
    refused = _put(uuid, {"token": "tok", "organization": "acme"})
    assert refused.status_code == 400
    assert "app_uuid is required" in answer_of(refused)["error"]
    assert SentryStore().get(uuid) is None


@pytest.mark.parametrize("uuid", ["a/b", "-x", "x" * 200, "é"])
def test_a_bad_uuid_is_400_on_put_and_404_on_get(uuid: str) -> None:
    assert _put(uuid, {"token": "tok", "organization": "acme", "app_uuid": APP_UUID}).status_code == 400
    assert _get(uuid).status_code == 404


def test_an_unknown_installation_is_404() -> None:
    response = _get(new_id())
    assert response.status_code == 404
    assert list(answer_of(response)) == ["error"]


def test_a_new_token_re_authorises_a_public_installation_of_its_own_organization_only() -> None:
    from dataclasses import replace

    from shared.model.sentry import PUBLIC

    uuid = new_id()
    SentryStore().put(
        SentryInstallation(uuid, "acme", kind=PUBLIC, app_uuid=APP_UUID, token="dead", refresh_token="dead-too")
    )
    SentryStore().update(uuid, lambda current: replace(current, needs_reauth=True))
    other = _put(uuid, {"token": "fresh", "organization": "globex"})
    assert other.status_code == 400 and "acme" in answer_of(other)["error"]
    assert SentryStore().get(uuid).token == "dead"  # nothing written
    response = _put(uuid, {"token": "fresh"})  # the organization is the installation's own
    assert response.status_code == 200
    shown = answer_of(response)
    assert (shown["kind"], shown["needs_reauth"], shown["organization"], shown["app_uuid"]) == (
        PUBLIC,
        False,
        "acme",
        APP_UUID,
    )
    stored = SentryStore().get(uuid)
    assert (stored.token, stored.refresh_token) == ("fresh", None)
