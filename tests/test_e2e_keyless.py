"""The whole local loop without a storage key (contract §19): the host and the app reach Azurite over HTTPS with
`--oauth basic`, with tokens from a managed identity (App Service's endpoint, faked on loopback) and the settings
`azd up` writes (`AzureWebJobsStorage__queueServiceUri`/`__tableServiceUri`, `__credential`, `__clientId`, no
`AzureWebJobsStorage`). The admin API, a webhook delivery through the queue worker, a timer and the pages all
run; a token Azurite refuses is named on health and on the status page."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from devhost.azurite import Azurite, make_certificate
from devtools.fakes import FakeAzureDevOps
from devtools.fakes.identity import FakeManagedIdentity
from tests.e2e import HostProcess, create_world, start_host, stop_host, tracked_issue
from tests.helpers import wait_for

pytestmark = pytest.mark.slow

SECRET = "e2e-keyless-webhook-secret-0123456789"
CA_VARIABLES = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE")


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_certificate(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def oauth_azurite(certificate: tuple[Path, Path]) -> Iterator[Azurite]:
    server = Azurite.on_free_ports(certificate=certificate).start()
    yield server
    server.stop()


def keyless_env(azurite: Azurite, identity: FakeManagedIdentity, client_id: str, ca: Path) -> dict[str, str]:
    return {
        **identity.environment(),
        "AzureWebJobsStorage__queueServiceUri": azurite.service_url("queue"),
        "AzureWebJobsStorage__tableServiceUri": azurite.service_url("table"),
        "AzureWebJobsStorage__credential": "managedidentity",
        "AzureWebJobsStorage__clientId": client_id,
        "REQUESTS_CA_BUNDLE": str(ca),
    }


def start_keyless_host(tmp: Path, fake_ado: FakeAzureDevOps, env: dict[str, str]) -> HostProcess:
    return start_host(
        tmp, {**fake_ado.settings_env(), "ADO_HTTP_TIMEOUT": "2", **env}, unset=("AzureWebJobsStorage", *CA_VARIABLES)
    )


def test_the_local_loop_runs_on_an_identity_without_a_key(
    oauth_azurite: Azurite, fake_ado: FakeAzureDevOps, certificate: tuple[Path, Path], tmp_path: Path
) -> None:
    client_id = str(uuid.uuid4())
    with FakeManagedIdentity((client_id,)) as identity:
        host = start_keyless_host(tmp_path, fake_ado, keyless_env(oauth_azurite, identity, client_id, certificate[0]))
        try:
            assert "AccountKey" not in str(host.env) and "AzureWebJobsStorage" not in host.env
            assert host.call("GET", "/api/health").json() == {"status": "ok", "storage": "ok"}
            # The admin API writes the tables; a delivery goes through the queue to the worker.
            name, integration_id, org = create_world(host, fake_ado, webhook_secret=SECRET)
            payload = fake_ado.update_work_item(name, 77, {"System.State": "Resolved"}, deliver=False)
            delivered = host.call("POST", "/api/vsts/issue-updated", json=payload, headers={"Shared-Secret": SECRET})
            assert delivered.status_code == 202, delivered.text
            wait_for(lambda: tracked_issue(host, org)["status"] == "resolved", 60, "the queued delivery to apply")
            assert "Executed apply_workitem_update (queue vsts-workitem-updates try 1): Succeeded" in host.log()
            # A timer runs and records its run in the tables; the status page shows it and the integration.
            host.invoke("cleanup")

            def cleanup_row() -> str | None:
                page = host.call("GET", "/api/status").text
                row = re.search(r'<tr id="timer-cleanup">.*?</tr>', page, re.S)
                return row.group(0) if row and "finished (" in row.group(0) else None

            assert "finished (" in wait_for(cleanup_row, 60, "the cleanup timer's run on the status page")
            page = host.call("GET", "/api/status")
            assert page.status_code == 200 and f'id="integration-{integration_id}"' in page.text
            assert "could not be read" not in page.text
            # Every token came from the identity endpoint, for storage, for the app's user-assigned identity.
            asked = identity.requests
            assert asked and {(r.args["resource"], r.args["client_id"]) for r in asked} == {
                ("https://storage.azure.com", client_id)
            }
        finally:
            stop_host(host, drain=False)


def test_a_token_for_another_audience_is_named_on_health_and_the_status_page(
    oauth_azurite: Azurite, fake_ado: FakeAzureDevOps, certificate: tuple[Path, Path], tmp_path: Path
) -> None:
    client_id = str(uuid.uuid4())
    with FakeManagedIdentity((client_id,)) as identity:
        identity.audience = "https://management.azure.com"  # a token the identity may get, for the wrong service
        host = start_keyless_host(tmp_path, fake_ado, keyless_env(oauth_azurite, identity, client_id, certificate[0]))
        try:
            health = host.call("GET", "/api/health")
            assert health.status_code == 503
            assert "Invalid token audience." in health.json()["error"]
            page = host.call("GET", "/api/status").text
            assert "Storage refused the app&#39;s identity (AuthenticationFailed: Invalid token audience.)" in page
        finally:
            stop_host(host, drain=False)
