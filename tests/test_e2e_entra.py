"""A Microsoft Entra ID service principal end to end: the local host, pointed at a loopback Entra ID token
endpoint (https, `devtools/fakes/entra.py`) with `AZURE_AUTHORITY_HOST`, signs in with client credentials and calls
the fake Azure DevOps with the token it got; a wrong secret is a re-authorization, not a 500."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from devtools.fakes.entra import FakeEntra
from shared.store.integrations import IntegrationStore
from tests.e2e import HostProcess, start_host, stop_host

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("azurite")]

TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
CLIENT = "0b3f3c4e-8f61-4d4c-9f1e-7f0f7f6a1c2d"
SECRET = "entra-client-secret-value-0123"


@pytest.fixture(scope="module")
def entra() -> Iterator[FakeEntra]:
    with FakeEntra() as fake:
        yield fake


@pytest.fixture(scope="module")
def entra_host(azurite, fake_ado, entra, tmp_path_factory) -> Iterator[HostProcess]:
    host = start_host(tmp_path_factory.mktemp("entra"), {**fake_ado.settings_env(), **entra.settings_env()})
    yield host
    stop_host(host)


def integration(host: HostProcess, fake_ado, secret: str) -> tuple[str, str]:
    name, integration_id = f"sp{uuid.uuid4().hex[:8]}", str(uuid.uuid4())
    fake_ado.add_org(name, integration_id)
    fake_ado.add_work_item(name, 5, {"System.Title": "Five"})
    body = {
        "name": name,
        "domain_name": fake_ado.org_url(name),
        "credentials": {"type": "entra", "tenant_id": TENANT, "client_id": CLIENT, "client_secret": secret},
    }
    assert host.call("PUT", f"/api/vsts/integrations/{integration_id}", json=body).status_code == 201
    return name, integration_id


def test_a_service_principal_signs_in_at_the_authority_host_and_its_token_reaches_azure_devops(
    entra_host, fake_ado, entra
) -> None:
    token = entra.add_app(TENANT, CLIENT, SECRET)
    name, integration_id = integration(entra_host, fake_ado, SECRET)
    fake_ado.add_access_token(name, token)
    response = entra_host.call("GET", f"/api/vsts/{integration_id}/issues/5")
    assert response.status_code == 200, response.text
    assert response.json()["title"] == "Five"
    [form] = entra.token_requests()
    assert form == {
        "grant_type": ["client_credentials"],
        "client_id": [CLIENT],
        "client_secret": [SECRET],
        "scope": ["499b84ac-1321-427f-aa17-267ca6975798/.default"],
        "client_info": ["1"],
    }
    sent = [r for r in fake_ado.requests if r.path.startswith(f"/{name}/")]
    assert sent and all(r.headers["Authorization"] == f"Bearer {token}" for r in sent)
    # A second call uses the cached token: no second sign-in.
    assert entra_host.call("GET", f"/api/vsts/{integration_id}/issues/5").status_code == 200
    assert len(entra.token_requests()) == 1


def test_a_wrong_secret_is_refused_by_entra_and_marks_the_integration(entra_host, fake_ado, entra) -> None:
    entra.add_app(TENANT, CLIENT, SECRET)
    name, integration_id = integration(entra_host, fake_ado, "not-the-secret-value-0123")
    response = entra_host.call("GET", f"/api/vsts/{integration_id}/issues/5")
    assert response.status_code == 502, response.text
    assert "re-authorization" in response.json()["error"]
    assert IntegrationStore().get(integration_id).needs_reauth is True
    assert not [r for r in fake_ado.requests if r.path.startswith(f"/{name}/_apis/wit/")]
