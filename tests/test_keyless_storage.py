"""Storage without a key (contract §19): the app's tables and queues, and the local host's queue pollers, reach
Azurite over HTTPS with `--oauth basic` using the tokens of a managed identity (App Service's endpoint, faked on
loopback), trusting Azurite's certificate through the standard CA variables. Azurite checks each token's
audience, issuer and lifetime; when it refuses one, health and the status page say why."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import azure.functions as func
import pytest

from devhost.azurite import Azurite, make_certificate
from devhost.storage import resolve_connection
from devtools.fakes.identity import FakeManagedIdentity
from functions.health import health
from shared.pages.status_data import gather
from shared.settings import SettingsError, load_settings
from shared.store import base, queues
from shared.store.health import storage_problem
from tests.conftest import SettingsPatch

ROOT = Path(__file__).resolve().parent.parent
CA_VARIABLES = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE")


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_certificate(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def oauth_azurite(certificate: tuple[Path, Path]) -> Iterator[Azurite]:
    server = Azurite.on_free_ports(certificate=certificate).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def identity() -> Iterator[FakeManagedIdentity]:
    with FakeManagedIdentity() as fake:
        yield fake


@pytest.fixture
def keyless(
    env: SettingsPatch, oauth_azurite: Azurite, identity: FakeManagedIdentity, certificate: tuple[Path, Path]
) -> str:
    """The app's settings as `azd up` writes them: no AzureWebJobsStorage value, the service URIs, a user-assigned
    identity (a new client id per test, so no token is reused from another test), and the CA bundle."""
    client_id = str(uuid.uuid4())
    identity.user_assigned.add(client_id)
    identity.audience, identity.token_lifetime = None, 3600.0
    env.delenv("AzureWebJobsStorage")
    for name in CA_VARIABLES:  # this machine may name its own bundle in any of them
        env.delenv(name)
    for name, value in {
        **identity.environment(),
        "AzureWebJobsStorage__tableServiceUri": oauth_azurite.service_url("table"),
        "AzureWebJobsStorage__queueServiceUri": oauth_azurite.service_url("queue"),
        "AzureWebJobsStorage__credential": "managedidentity",
        "AzureWebJobsStorage__clientId": client_id,
        "REQUESTS_CA_BUNDLE": str(certificate[0]),
    }.items():
        env.setenv(name, value)
    return client_id


def _health() -> tuple[int, dict]:
    response = health(func.HttpRequest("GET", "http://localhost/api/health", body=b""))
    return response.status_code, json.loads(response.get_body())


def test_tables_and_queues_work_with_the_identitys_tokens_and_no_key(
    keyless: str, identity: FakeManagedIdentity
) -> None:
    key = uuid.uuid4().hex
    base.upsert("keyless", {"PartitionKey": key, "RowKey": "r", "value": 7}, "a probe")
    assert base.read_entity("keyless", key, "r", "a probe")["value"] == 7
    queue = queues.queue_client(f"keyless-{key[:8]}")
    queue.create_queue()
    queue.send_message("hello")
    assert [m.content for m in queue.receive_messages()] == ["hello"]
    assert _health() == (200, {"status": "ok", "storage": "ok"})
    asked = [r for r in identity.requests if r.args.get("client_id") == keyless]
    assert asked and all(r.args["resource"] == "https://storage.azure.com" for r in asked)
    assert all(r.headers["X-IDENTITY-HEADER"] == identity.header_secret for r in asked)
    # One token served every call: the credential is shared and caches it.
    assert len(asked) == 1


@pytest.mark.parametrize("variable", CA_VARIABLES)
def test_each_standard_ca_variable_makes_azurites_certificate_trusted(
    keyless: str, env: SettingsPatch, certificate: tuple[Path, Path], variable: str
) -> None:
    env.delenv("REQUESTS_CA_BUNDLE")
    env.setenv(variable, str(certificate[0]))
    assert storage_problem() is None


def test_without_a_ca_variable_the_private_certificate_is_not_trusted(keyless: str, env: SettingsPatch) -> None:
    env.delenv("REQUESTS_CA_BUNDLE")
    assert storage_problem() == "Table Storage did not answer."
    assert _health()[0] == 503


def test_a_netrc_entry_never_replaces_the_token_and_no_proxy_is_honoured(
    keyless: str, env: SettingsPatch, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    netrc = tmp_path / ".netrc"
    netrc.write_text("machine 127.0.0.1 login someone password not-a-token\n")
    netrc.chmod(0o600)
    env.setenv("NETRC", str(netrc))
    env.setenv("HOME", str(tmp_path))
    env.setenv("https_proxy", "http://127.0.0.1:9")  # nothing listens there: a request through it would fail
    env.setenv("no_proxy", "127.0.0.1")
    monkeypatch.setattr(base, "_sessions", [])  # a new session, made with this environment
    assert storage_problem() is None


@pytest.mark.parametrize(
    ("fault", "reason"),
    [("audience", "Invalid token audience."), ("expired", "Lifetime validation failed. The token is expired.")],
)
def test_a_refused_token_is_named_on_health_and_on_the_status_page(
    keyless: str, identity: FakeManagedIdentity, fault: str, reason: str
) -> None:
    if fault == "audience":
        identity.audience = "https://vault.azure.net"
    else:
        identity.token_lifetime = -300
    status, body = _health()
    assert status == 503
    assert reason in body["error"] and "Storage refused the app's identity (AuthenticationFailed" in body["error"]
    assert "audience https://storage.azure.com" in body["error"]
    claims = identity.issued[-1]
    assert claims["aud"] == ("https://vault.azure.net" if fault == "audience" else "https://storage.azure.com")
    report = gather(0.0)
    assert reason in (report.integrations.error or "") and reason in (report.queues.error or "")


def test_an_identity_the_endpoint_does_not_know_is_named(keyless: str, env: SettingsPatch) -> None:
    env.setenv("AzureWebJobsStorage__clientId", str(uuid.uuid4()))  # not assigned to the app
    problem = storage_problem()
    assert problem is not None and problem.startswith("The app could not get a token for storage with its identity")


def test_the_local_hosts_queue_connection_reads_the_same_settings(keyless: str, env: SettingsPatch) -> None:
    import os

    connection = resolve_connection("AzureWebJobsStorage", os.environ)
    assert (connection.credential, connection.client_id) == ("managedidentity", keyless)
    name = f"devhost-{uuid.uuid4().hex[:8]}"
    queue = connection.client(name)
    queue.create_queue()
    queue.send_message("from the app")
    assert [m.content for m in queue.receive_messages()] == ["from the app"]


def test_a_connection_string_still_wins_and_needs_no_identity_import() -> None:
    code = (
        "import sys, function_app\n"
        "from shared.store.base import table_service\n"
        "table_service()\n"
        "from shared.store.queues import queue_client\n"
        "queue_client('x')\n"
        "print('azure.identity' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


# -- the settings, as the Functions host reads them -----------------------------------------------------------


def test_account_name_gives_both_service_urls() -> None:
    s = load_settings({"AzureWebJobsStorage__accountName": "vstsapp", "AzureWebJobsStorage__clientId": "c1"})
    assert s.queue_storage.queue_url == "https://vstsapp.queue.core.windows.net"
    assert s.table_storage.table_url == "https://vstsapp.table.core.windows.net"
    assert (s.table_storage.credential, s.table_storage.client_id) == (None, "c1")
    assert s.table_storage.uses_identity


def test_a_connection_string_value_wins_over_identity_settings() -> None:
    s = load_settings({"AzureWebJobsStorage": "UseDevelopmentStorage=true", "AzureWebJobsStorage__accountName": "a1b"})
    assert s.queue_storage.connection_string == "UseDevelopmentStorage=true" and not s.queue_storage.uses_identity


def test_the_tables_can_have_their_own_identity_based_connection() -> None:
    s = load_settings(
        {
            "AzureWebJobsStorage": "UseDevelopmentStorage=true",
            "STORAGE_CONNECTION_STRING__tableServiceUri": "https://data.table.core.windows.net/",
        }
    )
    assert s.table_storage.table_url == "https://data.table.core.windows.net"
    assert s.table_storage.setting == "STORAGE_CONNECTION_STRING"


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({"AzureWebJobsStorage__accountName": "Not_An_Account"}, "AzureWebJobsStorage__accountName"),
        ({"AzureWebJobsStorage__queueServiceUri": "http://127.0.0.1:1/a"}, "AzureWebJobsStorage__queueServiceUri"),
        (
            {"AzureWebJobsStorage__accountName": "abc", "AzureWebJobsStorage__credential": "clientsecret"},
            "AzureWebJobsStorage__credential",
        ),
    ],
)
def test_bad_identity_settings_fail_naming_the_setting(settings: dict[str, str], named: str) -> None:
    with pytest.raises(SettingsError, match=named):
        load_settings(settings)


def test_a_queue_only_identity_names_the_missing_table_setting() -> None:
    s = load_settings({"AzureWebJobsStorage__queueServiceUri": "https://a.queue.core.windows.net"})
    with pytest.raises(SettingsError, match="AzureWebJobsStorage__tableServiceUri"):
        s.table_storage.service_url("table")


def test_the_settings_repr_shows_no_key() -> None:
    key = "c2VjcmV0LWtleS12YWx1ZS0wMTIzNDU2Nzg5MDEyMzQ1Njc4OQ=="
    text = repr(load_settings({"AzureWebJobsStorage": f"AccountName=a;AccountKey={key};"}))
    assert key not in text and key[:20] not in text and "AccountName=a" in text


def test_the_local_host_names_what_is_missing_and_takes_an_account_name() -> None:
    with pytest.raises(ValueError, match="AzureWebJobsStorage__queueServiceUri or AzureWebJobsStorage__accountName"):
        resolve_connection("AzureWebJobsStorage", {})
    connection = resolve_connection("AzureWebJobsStorage", {"AzureWebJobsStorage__accountName": "vstsapp"})
    assert (connection.queue_url, connection.credential) == ("https://vstsapp.queue.core.windows.net", None)
    with pytest.raises(ValueError, match="__credential must be managedidentity"):
        resolve_connection(
            "AzureWebJobsStorage", {"AzureWebJobsStorage__accountName": "a", "AzureWebJobsStorage__credential": "x"}
        )


def test_an_identity_endpoint_that_does_not_answer_is_named_in_seconds_not_minutes(
    keyless: str, identity: FakeManagedIdentity
) -> None:
    identity.set_delay("/msi/token", 60)  # longer than the token request may take (shared.store.connect)
    try:
        status, body = _health()
    finally:
        identity.clear_faults()
    assert status == 503
    assert body["error"].startswith("The app could not get a token for storage with its identity")
    assert "ServiceResponseTimeoutError" in body["error"]
