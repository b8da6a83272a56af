"""PUT/GET/DELETE /api/vsts/integrations/{id}: validation, secrets shown once, encryption at rest."""

import json

import azure.functions as func
import pytest

from functions.admin_integrations import delete, get, put
from shared.store import base as storage
from shared.store.integrations import ROW, TABLE, IntegrationStore
from tests.helpers import new_id

pytestmark = pytest.mark.usefixtures("azurite")

PAT = {"type": "pat", "token": "pat-secret-token-123"}


def _call(
    handler, method: str, integration_id: str, body: object = None, raw: bytes | None = None
) -> func.HttpResponse:
    data = raw if raw is not None else (b"" if body is None else json.dumps(body).encode())
    req = func.HttpRequest(
        method,
        f"http://localhost/api/vsts/integrations/{integration_id}",
        route_params={"integration_id": integration_id},
        body=data,
    )
    return handler(req)


def _json(response: func.HttpResponse) -> dict:
    return json.loads(response.get_body())


def _raw_entity(integration_id: str) -> dict | None:
    return storage.get_entity(storage.table(TABLE), integration_id.lower(), ROW)


def test_create_returns_a_generated_secret_once_and_never_again() -> None:
    integration_id = new_id()
    response = _call(
        put,
        "PUT",
        integration_id,
        {"name": "fabrikam", "domain_name": "https://dev.azure.com/fabrikam/", "credentials": PAT},
    )
    assert response.status_code == 201
    body = _json(response)
    secret = body["webhook_secret"]
    assert len(secret) == 64
    assert body["credentials"] == {"type": "pat"}
    assert body["status"] == "active"
    # Later answers never carry it, nor the token.
    for later in (_call(get, "GET", integration_id), _call(put, "PUT", integration_id, {"name": "fabrikam2"})):
        text = later.get_body().decode()
        assert later.status_code == 200
        assert secret not in text and "pat-secret-token-123" not in text
        assert "webhook_secret" not in _json(later)
    assert IntegrationStore().get(integration_id).webhook_secret == secret


def test_secrets_are_encrypted_at_rest() -> None:
    integration_id = new_id()
    _call(
        put,
        "PUT",
        integration_id,
        {"name": "fabrikam", "credentials": PAT, "webhook_secret": "my-own-webhook-secret-value"},
    )
    raw = json.dumps(_raw_entity(integration_id), default=str)
    assert "pat-secret-token-123" not in raw
    assert "my-own-webhook-secret-value" not in raw
    assert IntegrationStore().get(integration_id).credentials == PAT


def test_a_given_webhook_secret_is_not_echoed() -> None:
    response = _call(put, "PUT", new_id(), {"name": "fabrikam", "credentials": PAT, "webhook_secret": "x" * 20})
    assert response.status_code == 201
    assert "webhook_secret" not in _json(response)


def test_update_keeps_what_is_not_given() -> None:
    integration_id = new_id()
    _call(
        put,
        "PUT",
        integration_id,
        {"name": "fabrikam", "domain_name": "https://dev.azure.com/fabrikam/", "credentials": PAT},
    )
    before = IntegrationStore().get(integration_id)
    oauth = {"type": "oauth", "access_token": "a", "refresh_token": "r", "expires_at": "2030-01-01T00:00:00Z"}
    assert _call(put, "PUT", integration_id, {"credentials": oauth}).status_code == 200
    after = IntegrationStore().get(integration_id)
    assert after.name == "fabrikam" and after.domain_name == before.domain_name
    assert after.webhook_secret == before.webhook_secret
    assert after.credentials == {"type": "oauth", "access_token": "a", "refresh_token": "r", "expires_at": 1893456000.0}


def test_ids_are_case_insensitive() -> None:
    integration_id = new_id().upper()
    _call(put, "PUT", integration_id, {"name": "fabrikam", "credentials": PAT})
    assert _json(_call(get, "GET", integration_id.lower()))["id"] == integration_id.lower()


def test_delete_disables() -> None:
    integration_id = new_id()
    _call(put, "PUT", integration_id, {"name": "fabrikam", "credentials": PAT})
    response = _call(delete, "DELETE", integration_id)
    assert response.status_code == 200
    assert _json(response)["status"] == "disabled"
    assert _json(_call(get, "GET", integration_id))["status"] == "disabled"
    assert _call(delete, "DELETE", new_id()).status_code == 404


def test_unknown_integration_is_404() -> None:
    assert _call(get, "GET", new_id()).status_code == 404
    assert _call(get, "GET", "bad#id").status_code == 404


@pytest.mark.parametrize(
    ("body", "raw", "message"),
    [
        (None, b"{not json", "not valid JSON"),
        (None, b"[1, 2]", "JSON object"),
        (None, b'{"name": NaN}', "not valid JSON"),
        (None, b"\xff\xfe", "not valid JSON"),
        ({"name": "fabrikam"}, None, "needs name and credentials"),
        ({"credentials": PAT}, None, "needs name and credentials"),
        ({"name": 5, "credentials": PAT}, None, "name must be"),
        ({"name": "bad name/..", "credentials": PAT}, None, "organization name"),
        ({"name": "fabrikam", "credentials": "pat"}, None, "credentials must be"),
        ({"name": "fabrikam", "credentials": {"type": "basic"}}, None, "credentials.type"),
        ({"name": "fabrikam", "credentials": {"type": "pat"}}, None, "credentials.token"),
        ({"name": "fabrikam", "credentials": {"type": "pat", "token": ""}}, None, "credentials.token"),
        ({"name": "fabrikam", "credentials": {"type": "pat", "token": "t", "extra": 1}}, None, "take only"),
        (
            {
                "name": "fabrikam",
                "credentials": {"type": "oauth", "access_token": "a", "refresh_token": "r", "expires_at": "soon"},
            },
            None,
            "expires_at",
        ),
        (
            {
                "name": "fabrikam",
                "credentials": {"type": "oauth", "access_token": "a", "refresh_token": "r", "expires_at": True},
            },
            None,
            "expires_at",
        ),
        (
            {"name": "fabrikam", "credentials": {"type": "entra", "tenant_id": "t", "client_id": "c"}},
            None,
            "client_secret",
        ),
        ({"name": "fabrikam", "credentials": PAT, "webhook_secret": "short"}, None, "webhook_secret"),
        (
            {"name": "fabrikam", "credentials": PAT, "webhook_secret": "has spaces in it, sixteen+"},
            None,
            "webhook_secret",
        ),
        ({"name": "fabrikam", "credentials": PAT, "domain_name": "https://x/\x00"}, None, "control characters"),
        ({"name": "fabrikam", "credentials": PAT, "surprise": True}, None, "Unknown field"),
    ],
)
def test_bad_input_is_400_and_writes_nothing(body, raw, message: str) -> None:
    integration_id = new_id()
    response = _call(put, "PUT", integration_id, body, raw)
    assert response.status_code == 400
    error = _json(response)["error"]
    assert message in error
    assert _raw_entity(integration_id) is None


def test_a_bad_update_changes_nothing() -> None:
    integration_id = new_id()
    _call(put, "PUT", integration_id, {"name": "fabrikam", "credentials": PAT})
    before = _raw_entity(integration_id)
    assert _call(put, "PUT", integration_id, {"name": "new-name", "credentials": {"type": "pat"}}).status_code == 400
    assert _raw_entity(integration_id) == before


@pytest.mark.parametrize("integration_id", ["a/b", "a#b", "a?b", "x" * 200, " ", "a\\b"])
def test_ids_tables_cannot_hold_are_400(integration_id: str) -> None:
    response = _call(put, "PUT", integration_id, {"name": "fabrikam", "credentials": PAT})
    assert response.status_code == 400


def test_an_oversized_body_is_413_and_writes_nothing() -> None:
    integration_id = new_id()
    response = _call(put, "PUT", integration_id, None, b'{"name": "' + b"x" * 70000 + b'"}')
    assert response.status_code == 413
    assert "larger than" in _json(response)["error"]
    assert _raw_entity(integration_id) is None


def test_a_changed_secrets_key_does_not_break_the_integration(env) -> None:
    import base64
    import os

    from functions.lookups import get_issue
    from tests.sync_helpers import delivery, post

    integration_id = new_id()
    _call(
        put,
        "PUT",
        integration_id,
        {"name": "fabrikam", "domain_name": "https://dev.azure.com/fabrikam/", "credentials": PAT},
    )
    env.setenv("SECRETS_KEY", base64.urlsafe_b64encode(os.urandom(32)).decode())  # a new key: old values unreadable
    view = _call(get, "GET", integration_id)
    assert view.status_code == 200 and _json(view)["needs_reauth"] is True
    route = {"integration_id": integration_id, "issue_id": "1"}
    lookup = get_issue(func.HttpRequest("GET", "http://localhost/x", route_params=route, body=b""))
    assert lookup.status_code == 502  # needs re-authorization, not a 500
    assert post(delivery(integration_id, 1, 2), headers={"Shared-Secret": "anything"}).status_code == 401
    # New credentials (and a new secret) can be entered with the new key.
    body = {"credentials": PAT, "webhook_secret": "new-secret-after-rotation"}
    assert _call(put, "PUT", integration_id, body).status_code == 200
    assert IntegrationStore().get(integration_id).credentials == PAT


def test_a_missing_secrets_key_is_503_naming_the_setting(env) -> None:
    env.delenv("SECRETS_KEY")
    response = _call(put, "PUT", new_id(), {"name": "fabrikam", "credentials": PAT})
    assert response.status_code == 503
    assert "SECRETS_KEY" in _json(response)["error"]
