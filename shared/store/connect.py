"""Storage clients made from a `StorageConnection` (contract §19): a connection string, or an identity.

With the Functions host's identity-based settings the app's clients use the same identity as the host:
`__credential=managedidentity` takes a token from the managed identity (on App Service and Flex Consumption,
from `IDENTITY_ENDPOINT` with `IDENTITY_HEADER`; `__clientId` picks a user-assigned identity), and without
`__credential` the default credential chain (environment, workload identity, managed identity, developer
sign-ins) is used, as the host does. `azure.identity` is imported only then: a cold start with a connection
string never pays for it.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from shared.settings import StorageConnection

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential
    from azure.data.tables import TableServiceClient
    from azure.storage.queue import QueueClient

# Storage's token audience (the resource every storage service accepts).
STORAGE_SCOPE = "https://storage.azure.com/.default"
# The managed identity endpoint is local to the host: it answers at once or not at all. Bounded, so a request
# waiting for a token (health among them) fails in seconds rather than in the SDK's default minutes.
TOKEN_OPTIONS: dict[str, Any] = {"connection_timeout": 2, "read_timeout": 3, "retry_total": 1}

_credentials: dict[tuple[str | None, str | None], TokenCredential] = {}
_lock = threading.Lock()


def credential_for(connection: StorageConnection) -> TokenCredential:
    """The token credential of an identity-based connection, one per (kind, client id) per process, so tokens are
    cached across clients and invocations."""
    key = (connection.credential, connection.client_id)
    with _lock:
        found = _credentials.get(key)
        if found is None:
            found = _credentials[key] = _make_credential(connection.credential, connection.client_id)
    return found


def _make_credential(kind: str | None, client_id: str | None) -> TokenCredential:
    if kind == "managedidentity":
        from azure.identity import ManagedIdentityCredential

        return ManagedIdentityCredential(client_id=client_id, **TOKEN_OPTIONS)
    from azure.identity import DefaultAzureCredential

    return DefaultAzureCredential(
        managed_identity_client_id=client_id, exclude_interactive_browser_credential=True, **TOKEN_OPTIONS
    )


def table_service_client(connection: StorageConnection, **options: Any) -> TableServiceClient:
    from azure.data.tables import TableServiceClient

    if connection.connection_string is not None:
        return TableServiceClient.from_connection_string(connection.connection_string, **options)
    return TableServiceClient(
        endpoint=connection.service_url("table"), credential=credential_for(connection), **options
    )


def queue_client(connection: StorageConnection, queue_name: str, **options: Any) -> QueueClient:
    from azure.storage.queue import QueueClient

    if connection.connection_string is not None:
        return QueueClient.from_connection_string(connection.connection_string, queue_name, **options)
    return QueueClient(connection.service_url("queue"), queue_name, credential=credential_for(connection), **options)
