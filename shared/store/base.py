"""What every store shares: the table clients, the one mapping of storage failures to `StorageUnavailable`,
and the one ETag-guarded read-modify-write loop.

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
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypeVar

import requests
from azure.core import MatchConditions
from azure.core.exceptions import (
    AzureError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.core.pipeline.transport import RequestsTransport
from azure.data.tables import TableClient, TableServiceClient, UpdateMode

from shared.caching import PerKey
from shared.errors import ConcurrentUpdate, StorageUnavailable, TooLargeToStore
from shared.settings import get_settings
from shared.store.connect import table_service_client
from shared.store.deadline import attempt_bound
from shared.telemetry import ensure_configured

__all__ = [
    "ResourceExistsError",
    "StorageUnavailable",
    "get_entity",
    "is_valid_key",
    "storage_errors",
    "table",
    "table_name",
    "update_with_etag",
    "write",
]

log = logging.getLogger(__name__)

HEALTH_TIMEOUT_SECONDS = 2
# What Table Storage answers for an entity over 1 MiB, a property over 64 KiB, or a body over 4 MiB.
TOO_LARGE_CODES = {"EntityTooLarge", "PropertyValueTooLarge", "RequestBodyTooLarge"}

# Table keys cannot hold / \ # ? or control characters (the service answers 400, Azurite sometimes 500).
_BAD_KEY = re.compile(r"[/\\#?\x00-\x1f\x7f-\x9f]")
MAX_KEY_LENGTH = 255

T = TypeVar("T")
E = TypeVar("E")

_services: PerKey[TableServiceClient] = PerKey()
_tables: PerKey[TableClient] = PerKey()


def is_valid_key(value: object) -> bool:
    """Whether `value` can be a PartitionKey or RowKey."""
    return (
        isinstance(value, str)
        and 0 < len(value) <= MAX_KEY_LENGTH
        and value.strip() == value
        and not _BAD_KEY.search(value)
    )


def table_name(base: str) -> str:
    """The full table name for one of the app's tables, e.g. `integrations` -> `vstsintegrations`."""
    return f"{get_settings().table_prefix}{base}"


_PROXY_VARIABLES = {"http_proxy", "https_proxy", "all_proxy"}
# The standard variables naming a CA bundle to trust (a private CA: a corporate proxy, Azurite over HTTPS), in
# the order requests reads the first two; OpenSSL's SSL_CERT_FILE last.
CA_BUNDLE_VARIABLES = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE")
_sessions: list[requests.Session] = []
_session_lock = threading.Lock()


class _StorageSession(requests.Session):
    """A session that never reads the environment per request (`trust_env` off: no ~/.netrc, whose password
    would replace the bearer token, and no half-millisecond lookup per round trip), but still sends requests
    through the proxy the environment names, honouring `no_proxy`, when one is set."""

    def __init__(self, use_env_proxies: bool) -> None:
        super().__init__()
        self.trust_env = False
        self._use_env_proxies = use_env_proxies

    def merge_environment_settings(self, url: Any, proxies: Any, stream: Any, verify: Any, cert: Any) -> Any:
        if self._use_env_proxies and url:
            proxies = {**requests.utils.get_environ_proxies(url), **(proxies or {})}
        return super().merge_environment_settings(url, proxies, stream, verify, cert)


def ca_bundle(environ: Mapping[str, str] | None = None) -> str | None:
    """The CA bundle the standard variables name, if any."""
    environ = os.environ if environ is None else environ
    return next((environ[name] for name in CA_BUNDLE_VARIABLES if environ.get(name)), None)


def sdk_transport(connection_timeout: float, read_timeout: float) -> RequestsTransport:
    """The HTTP transport for the storage SDK clients: one shared requests session, with these timeouts (a client
    given a transport ignores its own `connection_timeout`/`read_timeout` options, so they are set here), and the
    CA bundle of `REQUESTS_CA_BUNDLE`, `CURL_CA_BUNDLE` or `SSL_CERT_FILE` when one is set."""
    ensure_configured()  # storage calls traced by azure-core when APPLICATIONINSIGHTS_CONNECTION_STRING is set
    with _session_lock:
        if not _sessions:
            _sessions.append(_StorageSession(any(name.lower() in _PROXY_VARIABLES for name in os.environ)))
    return RequestsTransport(
        session=_sessions[0],
        session_owner=False,
        connection_timeout=connection_timeout,
        read_timeout=read_timeout,
        connection_verify=ca_bundle() or True,
    )


def table_service(purpose: str = "data") -> TableServiceClient:
    """The shared TableServiceClient for the app's data (`STORAGE_CONNECTION_STRING`, else `AzureWebJobsStorage`:
    a connection string or an identity)."""
    connection = get_settings().table_storage
    if purpose == "health":
        # The health check must answer fast even when storage is down: short timeouts, no SDK retries.
        connect, read, retries = HEALTH_TIMEOUT_SECONDS, HEALTH_TIMEOUT_SECONDS, 0
    else:
        # HTTP paths are cut shorter per request (shared.store.deadline); these hold for the queue worker and timers.
        connect, read, retries = 5, 15, 3
    options: dict[str, Any] = {"retry_total": retries, "retry_backoff_factor": 0.25, "retry_backoff_max": 2}
    return _services.get(
        (purpose, connection),
        lambda: table_service_client(
            connection,
            transport=sdk_transport(connect, read),
            raw_request_hook=attempt_bound(connect, read),
            **options,
        ),
    )


def table(base: str) -> TableClient:
    """The shared TableClient of one of the app's tables."""
    service = table_service()
    name = table_name(base)
    return _tables.get((get_settings().table_storage, name), lambda: service.get_table_client(name))


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


@contextmanager
def storage_errors(what: str) -> Iterator[None]:
    """Turn storage failures into StorageUnavailable("<what> failed: ..."). The outcomes a caller handles itself
    (an entity that is missing, exists already, or changed under its ETag) pass through unchanged."""
    try:
        yield
    except (ResourceNotFoundError, ResourceExistsError, ResourceModifiedError):
        raise
    except AzureError as exc:
        if getattr(exc, "error_code", None) in TOO_LARGE_CODES:
            raise TooLargeToStore(f"{what} failed: it is too large for Table Storage ({exc.error_code}).") from exc
        raise StorageUnavailable(f"{what} failed: {type(exc).__name__}") from exc


def replace_entity_if_unchanged(client: TableClient, entity: dict[str, Any], etag: str | None) -> str | None:
    """Replace `entity` only if the stored one still has `etag`: the new ETag, or None when another writer won
    (or the entity went away)."""
    try:
        meta = client.update_entity(
            entity, mode=UpdateMode.REPLACE, etag=etag, match_condition=MatchConditions.IfNotModified
        )
    except (ResourceModifiedError, ResourceNotFoundError):
        return None
    return meta.get("etag")


def update_with_etag(
    read: Callable[[], E | None],
    change: Callable[[E], E | None],
    save: Callable[[E, E], E | None],
    *,
    attempts: int,
    what: str,
) -> E | None:
    """The one read-modify-write loop: read, apply `change` (None: leave it as it is), save under the ETag that
    was read; when another writer won (`save` answers None), read again and re-apply `change` to what is there.

    Returns what is stored at the end, or None when there is nothing to change (missing). Raises ConcurrentUpdate
    when every attempt lost.
    """
    for _ in range(attempts):
        current = read()
        if current is None:
            return None
        updated = change(current)
        if updated is None or updated == current:
            return current
        saved = save(current, updated)
        if saved is not None:
            return saved
        log.info("%s changed under us; re-applying the update", what)
    raise ConcurrentUpdate(f"{what} kept changing during an update")


def upsert(base: str, entity: dict[str, Any], what: str) -> None:
    """Create or replace one entity (creating the table when it does not exist yet)."""
    with storage_errors(what):
        write(table(base), lambda t: t.upsert_entity(entity, mode=UpdateMode.REPLACE))


def read_entity(base: str, partition_key: str, row_key: str, what: str) -> dict | None:
    """One point read of one of the app's tables, failures mapped to StorageUnavailable."""
    with storage_errors(what):
        return get_entity(table(base), partition_key, row_key)


def query(
    base: str,
    text: str,
    parameters: dict[str, Any],
    what: str,
    *,
    select: list[str] | None = None,
    results_per_page: int | None = None,
    limit: int | None = None,
) -> list[dict]:
    """The entities a query selects (at most `limit`); none when the table does not exist yet."""
    found: list[dict] = []
    with storage_errors(what):
        try:
            entities = table(base).query_entities(
                text, parameters=parameters, select=select, results_per_page=results_per_page
            )
            for entity in entities:
                if limit is not None and len(found) >= limit:
                    break
                found.append(entity)
        except ResourceNotFoundError:
            pass  # no table yet: nothing stored
    return found
