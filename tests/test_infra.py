"""`azure.yaml` and `infra/` (Bicep), checked as text since Bicep cannot be compiled here: every setting the app
reads is set, with the contract's defaults; no storage key or connection string appears anywhere; storage has
shared-key access disabled; the roles are Azure's built-in ids; secrets are Key Vault references."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import fields
from pathlib import Path

import pytest

from shared.settings import Settings, load_settings

ROOT = Path(__file__).resolve().parent.parent
INFRA = ROOT / "infra"
APP = INFRA / "app" / "app.bicep"
RBAC = INFRA / "app" / "rbac.bicep"

# Azure's built-in role definition ids (Microsoft Learn, "Azure built-in roles": Storage, Monitor, Security; the
# same ids as Azure-Samples/functions-quickstart-python-http-azd infra/app/rbac.bicep).
BUILT_IN_ROLES = {
    "storageBlobDataOwner": "b7e6dc6d-f1e8-4753-8033-0f276bb0955b",
    "storageQueueDataContributor": "974c5e8b-45b9-4653-ba55-5f855dd0fb88",
    "storageTableDataContributor": "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3",
    "monitoringMetricsPublisher": "3913510d-42f4-4e42-8a64-420c390055eb",
    "keyVaultSecretsUser": "4633458b-17de-408a-b874-0445c86b69e6",
}
# Settings the app reads that the deployment leaves unset on purpose.
NOT_SET = {
    "AzureWebJobsStorage": "storage is identity-based: the __ settings instead of a connection string",
    "AzureWebJobsStorage__accountName": "the service URIs are set instead (they name the account)",
    "STORAGE_CONNECTION_STRING": "the tables are in the host's account, reached with the same identity",
    "DOMAIN_CHECK_CONCURRENCY": "the first name of TIMER_CONCURRENCY, read only when that is not set",
    "DOMAIN_CHECK_BUDGET_SECONDS": "the first name of TIMER_BUDGET_SECONDS, read only when that is not set",
    "AZURE_AUTHORITY_HOST": "unset means Entra ID's public cloud; set only for a sovereign cloud or Azure Stack",
}
SETTING_LINE = re.compile(r"^\s+([A-Za-z_][A-Za-z0-9_]*): ('[^']*'|[^'/\n]+?)(?:\s+//.*)?$")


def _app_settings() -> dict[str, str]:
    """The app settings app.bicep writes: name -> the Bicep expression of its value."""
    text = APP.read_text()
    block = text[text.index("resource appSettings") :]
    settings = {m.group(1): m.group(2) for line in block.splitlines() if (m := SETTING_LINE.match(line))}
    settings.pop("name", None), settings.pop("parent", None), settings.pop("properties", None)
    for name in re.findall(r"\{ ([A-Z_]+): format\(keyVaultReference", text):  # set when given
        settings[name] = "format(keyVaultReference, ...)"
    return settings


def _literal(expression: str) -> str | None:
    match = re.fullmatch(r"'([^'$]*)'", expression.strip())
    return match.group(1) if match else None


class _Recording(dict):
    """An environment that records every name the settings read."""

    read: set[str]

    def __init__(self, values: dict[str, str]) -> None:
        super().__init__(values)
        self.read = set()

    def get(self, key: str, default: object = None) -> object:
        self.read.add(key)
        return super().get(key, default)

    def __getitem__(self, key: str) -> str:
        self.read.add(key)
        return super().__getitem__(key)

    def __contains__(self, key: object) -> bool:
        self.read.add(str(key))
        return super().__contains__(key)


# What the Bicep expressions that are not literals stand for, to load the settings as Azure would.
PLACEHOLDERS = {
    "AzureWebJobsStorage__clientId": "00000000-0000-0000-0000-000000000001",
    "AzureWebJobsStorage__blobServiceUri": "https://stx.blob.core.windows.net/",
    "AzureWebJobsStorage__queueServiceUri": "https://stx.queue.core.windows.net/",
    "AzureWebJobsStorage__tableServiceUri": "https://stx.table.core.windows.net/",
    "SECRETS_KEY": "MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIzNDU2Nzg5MDE=",
    "WEBHOOK_PUBLIC_URL": "https://func-x.azurewebsites.net/api/vsts/issue-updated",
    "SENTRY_URL": "https://sentry.io",
    "SENTRY_CLIENT_ID": "client-id",
    "SENTRY_CLIENT_SECRET": "client-secret",
    "ADO_CLIENT_SECRET": "ado-secret",
}


def _as_azure_sets_them() -> dict[str, str]:
    literals = {name: _literal(value) for name, value in _app_settings().items()}
    return {name: PLACEHOLDERS.get(name, "x") if value is None else value for name, value in literals.items()}


def _read_everything(settings: Settings) -> Iterator[tuple[str, object]]:
    """Every field and property of `settings` (properties read their settings on first use); not the raw values
    the properties read."""
    for f in fields(settings):
        if not f.name.startswith("_"):
            yield f.name, getattr(settings, f.name)
    for name in dir(type(settings)):
        if isinstance(getattr(type(settings), name), property | type(Settings.timer_concurrency)):
            yield name, getattr(settings, name)


def test_every_setting_the_app_reads_is_set() -> None:
    env = _Recording(_as_azure_sets_them())
    list(_read_everything(load_settings(env)))
    expected = {name for name in env.read if name not in NOT_SET and not name.startswith("STORAGE_CONNECTION_STRING")}
    assert expected - set(_app_settings()) == set()
    assert {"SECRETS_KEY", "WEBHOOK_PUBLIC_URL", "SENTRY_CLIENT_SECRET", "AzureWebJobsStorage__credential"} <= expected


def test_the_settings_have_the_contracts_defaults() -> None:
    """Loaded from what the deployment writes, the settings are what they are with only the storage settings and the
    values the deployment computes (URLs, ids, Key Vault references) set."""
    written = _as_azure_sets_them()
    required_only = {
        name: value
        for name, value in written.items()
        if _literal(_app_settings()[name]) is None or name.startswith("AzureWebJobsStorage__")
    }
    deployed, defaults = (
        dict(_read_everything(load_settings(written))),
        dict(_read_everything(load_settings(required_only))),
    )
    assert deployed == defaults


def test_storage_is_identity_based_for_the_host_and_the_app() -> None:
    settings = load_settings(_as_azure_sets_them())
    assert settings.queue_storage.uses_identity and settings.table_storage.uses_identity
    assert settings.table_storage.credential == "managedidentity"
    assert settings.table_storage.client_id == PLACEHOLDERS["AzureWebJobsStorage__clientId"]
    assert _app_settings()["AzureWebJobsStorage__clientId"] == "identityClientId"


def _deployment_files() -> list[Path]:
    return [ROOT / "azure.yaml", *sorted(p for p in INFRA.rglob("*") if p.is_file())]


@pytest.mark.parametrize("path", _deployment_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_storage_key_or_connection_string_appears(path: Path) -> None:
    text = path.read_text()
    for forbidden in ("AccountKey", "listKeys", "DefaultEndpointsProtocol", "SharedAccessSignature"):
        assert forbidden.lower() not in text.lower(), forbidden
    assert "STORAGE_CONNECTION_STRING" not in text
    assert not re.search(r"\bAzureWebJobsStorage\s*:", text), "a plain AzureWebJobsStorage setting"


def test_storage_refuses_shared_keys() -> None:
    assert "allowSharedKeyAccess: false" in (INFRA / "main.bicep").read_text()


def test_the_roles_are_azures_built_in_ids_and_all_assigned() -> None:
    text = RBAC.read_text()
    assigned = dict(re.findall(r"^var (\w+) = '([0-9a-f-]{36})'", text, re.M))
    assert assigned == BUILT_IN_ROLES
    storage_roles = re.search(r"\[for role in \[([^\]]+)\]", text)
    assert storage_roles is not None
    assert [r.strip() for r in storage_roles.group(1).split(",")] == [
        "storageBlobDataOwner",
        "storageQueueDataContributor",
        "storageTableDataContributor",
    ]
    for role in ("monitoringMetricsPublisher", "keyVaultSecretsUser"):
        assert f"'Microsoft.Authorization/roleDefinitions', {role})" in text


def test_secrets_are_key_vault_references_never_values() -> None:
    settings = _app_settings()
    for name in ("SECRETS_KEY", "SENTRY_CLIENT_SECRET", "ADO_CLIENT_SECRET"):
        assert settings[name].startswith("format(keyVaultReference"), name
    assert "keyVaultReferenceIdentity: identityId" in APP.read_text()
    main = (INFRA / "main.bicep").read_text()
    for param in ("secretsKey", "sentryClientSecret", "adoClientSecret"):
        assert re.search(rf"@secure\(\)\n(@description\([^\n]*\)\n)?param {param} string", main), param


def test_flex_consumption_python_311_and_the_outputs() -> None:
    app, main = APP.read_text(), (INFRA / "main.bicep").read_text()
    assert "tier: 'FlexConsumption'" in main and "name: 'FC1'" in main
    assert re.search(r"runtime: \{\s+name: 'python'\s+version: '3.11'", app)
    for output in ("APP_URL", "WEBHOOK_URL", "FUNCTION_KEY_COMMAND"):
        assert f"output {output} string" in main
    assert "disableLocalAuth: true" in main
    assert (
        settings_value("APPLICATIONINSIGHTS_AUTHENTICATION_STRING")
        == "'ClientId=${identityClientId};Authorization=AAD'"
    )


def test_telemetry_is_opentelemetry_through_the_worker_with_identity_based_ingestion() -> None:
    """The documented way for a Python app: the host in OpenTelemetry mode, the worker configuring the distro."""
    host = json.loads((ROOT / "host.json").read_text())
    assert host["telemetryMode"] == "OpenTelemetry"
    assert settings_value("PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY") == "'true'"
    assert settings_value("APPLICATIONINSIGHTS_CONNECTION_STRING") == "appInsights.properties.ConnectionString"
    requirements = (ROOT / "requirements.txt").read_text().splitlines()
    assert any(line.startswith("azure-monitor-opentelemetry==") for line in requirements)


def settings_value(name: str) -> str:
    return _app_settings()[name]


def test_azure_yaml_deploys_this_folder_as_a_python_function_app_and_its_hooks_exist() -> None:
    text = (ROOT / "azure.yaml").read_text()
    assert re.search(r"services:\n  api:\n    project: \.\n    language: python\n    host: function\n", text)
    for hook in re.findall(r"run: \./(\S+)", text):
        assert (ROOT / hook).is_file(), hook
    assert {"infra", "azure.yaml", ".azure"} <= set((ROOT / ".funcignore").read_text().split())
