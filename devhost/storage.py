"""The storage connection a queue trigger names, read as the Functions host reads it: the app setting's value is a
connection string; without one, `<name>__queueServiceUri` (or `<name>__accountName`) with an identity:
`<name>__credential=managedidentity` takes tokens from the managed identity endpoint the way App Service gives
them (`IDENTITY_ENDPOINT` and `IDENTITY_HEADER`), for `<name>__clientId` when set; without `__credential`, the
default Azure credential chain (a developer's sign-in locally).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from azure.storage.queue import QueueClient


@dataclass(frozen=True)
class QueueConnection:
    setting: str
    connection_string: str | None = None
    queue_url: str | None = None
    credential: str | None = None
    client_id: str | None = None

    def client(self, queue_name: str, **options: Any) -> QueueClient:
        if self.connection_string is not None:
            return QueueClient.from_connection_string(self.connection_string, queue_name, **options)
        assert self.queue_url is not None
        return QueueClient(self.queue_url, queue_name, credential=_credential(self), **options)


_credentials: dict[tuple[str | None, str | None], Any] = {}


def _credential(connection: QueueConnection) -> Any:
    key = (connection.credential, connection.client_id)
    if key not in _credentials:
        if connection.credential == "managedidentity":
            from azure.identity import ManagedIdentityCredential

            _credentials[key] = ManagedIdentityCredential(client_id=connection.client_id)
        else:
            from azure.identity import DefaultAzureCredential

            _credentials[key] = DefaultAzureCredential(managed_identity_client_id=connection.client_id)
    return _credentials[key]


def resolve_connection(setting: str, environ: Mapping[str, str]) -> QueueConnection:
    """The connection app setting `setting` (or `AzureWebJobs<setting>`) names; ValueError when it is not set."""
    for name in (setting, f"AzureWebJobs{setting}"):
        value = (environ.get(name) or "").strip()
        if value:
            return QueueConnection(name, connection_string=value)
        account = (environ.get(f"{name}__accountName") or "").strip()
        url = (environ.get(f"{name}__queueServiceUri") or "").strip() or (
            f"https://{account}.queue.core.windows.net" if account else ""
        )
        if url:
            credential = (environ.get(f"{name}__credential") or "").strip().lower() or None
            if credential not in (None, "managedidentity"):
                raise ValueError(f"the app setting {name}__credential must be managedidentity, not {credential!r}")
            client_id = (environ.get(f"{name}__clientId") or "").strip() or None
            return QueueConnection(name, queue_url=url.rstrip("/"), credential=credential, client_id=client_id)
    raise ValueError(
        f"the queue trigger's connection names the app setting {setting}, which is not set "
        f"(nor {setting}__queueServiceUri or {setting}__accountName)"
    )
