"""The only code that speaks to Azure Table Storage.

Clients are made once per process and reused across invocations, so warm invocations pay no connection
set-up. Table names all carry the `TABLE_PREFIX` setting, so several apps or test runs share one account.
Tables are created on the first write that finds them missing, so reads never pay for a "create if not
exists" round trip.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import requests
from azure.core.exceptions import AzureError, ResourceExistsError, ResourceNotFoundError
from azure.core.pipeline.transport import RequestsTransport
from azure.data.tables import TableClient, TableServiceClient

from shared.errors import StorageUnavailable
from shared.settings import get_settings

__all__ = ["StorageUnavailable", "get_entity", "is_valid_key", "table", "table_name", "write"]

log = logging.getLogger(__name__)

# The health check must answer fast even when storage is down: short timeouts, no SDK retries.
HEALTH_TIMEOUT_SECONDS = 2

# Table keys cannot hold / \ # ? or control characters (the service answers 400, Azurite sometimes 500).
_BAD_KEY = re.compile(r"[/\\#?\x00-\x1f\x7f-\x9f]")
MAX_KEY_LENGTH = 255

T = TypeVar("T")

_lock = threading.Lock()
_services: dict[tuple[str, str], TableServiceClient] = {}
_tables: dict[tuple[str, str], TableClient] = {}


def is_valid_key(value: object) -> bool:
    """Whether `value` can be a PartitionKey or RowKey."""
    return (
        isinstance(value, str)
        and 0 < len(value) <= MAX_KEY_LENGTH
        and value.strip() == value
        and not _BAD_KEY.search(value)
    )


# Ids of integrations, organizations and issues: safe table keys that never hold the `|` the links table
# uses between two ids.
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}")


def is_valid_id(value: object) -> bool:
    """An integration, organization or issue id: 1-128 letters, digits and `._:-`, starting with a letter or digit."""
    return isinstance(value, str) and bool(_ID.fullmatch(value))


def table_name(base: str) -> str:
    """The full table name for one of the app's tables, e.g. `integrations` -> `vstsintegrations`."""
    return f"{get_settings().table_prefix}{base}"


_PROXY_VARIABLES = {"http_proxy", "https_proxy", "all_proxy", "no_proxy"}
_sessions: list[requests.Session] = []
_session_lock = threading.Lock()  # not _lock: table_service() holds that one while it calls sdk_transport()


def sdk_transport() -> RequestsTransport:
    """The HTTP transport for the storage SDK clients: one shared requests session.

    Unless a proxy is configured in the environment, the session does not consult the environment on every
    request (proxy variables and ~/.netrc): that lookup alone costs about half a millisecond per round trip.
    """
    with _session_lock:
        if not _sessions:
            session = requests.Session()
            session.trust_env = any(name.lower() in _PROXY_VARIABLES for name in os.environ)
            _sessions.append(session)
    return RequestsTransport(session=_sessions[0], session_owner=False)


def table_service(purpose: str = "data") -> TableServiceClient:
    """The shared TableServiceClient for the app's data (`STORAGE_CONNECTION_STRING`)."""
    conn = get_settings().storage_connection_string
    key = (purpose, conn)
    service = _services.get(key)
    if service is None:
        with _lock:
            service = _services.get(key)
            if service is None:
                if purpose == "health":
                    service = TableServiceClient.from_connection_string(
                        conn,
                        transport=sdk_transport(),
                        connection_timeout=HEALTH_TIMEOUT_SECONDS,
                        read_timeout=HEALTH_TIMEOUT_SECONDS,
                        retry_total=0,
                    )
                else:
                    # Bounded retries: an HTTP function must answer (503) long before Azure DevOps gives up.
                    service = TableServiceClient.from_connection_string(
                        conn,
                        transport=sdk_transport(),
                        connection_timeout=5,
                        read_timeout=15,
                        retry_total=3,
                        retry_backoff_factor=0.25,
                        retry_backoff_max=2,
                    )
                _services[key] = service
    return service


def table(base: str) -> TableClient:
    """The shared TableClient of one of the app's tables."""
    service = table_service()
    key = (service.url, table_name(base))
    client = _tables.get(key)
    if client is None:
        with _lock:
            client = _tables.setdefault(key, service.get_table_client(table_name(base)))
    return client


def is_table_missing(exc: ResourceNotFoundError) -> bool:
    return getattr(exc, "error_code", None) == "TableNotFound" or "TableNotFound" in str(exc)


def get_entity(client: TableClient, partition_key: str, row_key: str, **kwargs: Any) -> dict | None:
    """One point read; None when the entity (or its table) does not exist."""
    try:
        return client.get_entity(partition_key, row_key, **kwargs)
    except ResourceNotFoundError:
        return None


def write(client: TableClient, operation: Callable[[TableClient], T]) -> T:
    """Run a write, creating the table first if it does not exist yet."""
    try:
        return operation(client)
    except ResourceNotFoundError as exc:
        if not is_table_missing(exc):
            raise
    try:
        client.create_table()
    except ResourceExistsError:
        pass
    return operation(client)


def storage_is_reachable() -> bool:
    """One cheap request (list at most one table) that proves Table Storage answers."""
    try:
        pages = table_service("health").list_tables(results_per_page=1).by_page()
        next(pages, None)
    except (AzureError, OSError, ValueError) as exc:
        log.warning("Table Storage is unreachable: %s", type(exc).__name__)
        return False
    return True
