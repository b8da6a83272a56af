"""The only code that speaks to Azure Table Storage.

Clients are made once per process and reused across invocations, so warm invocations pay no connection
set-up. Table names all carry the `TABLE_PREFIX` setting, so several apps or test runs share one account.
"""

from __future__ import annotations

import logging
import threading

from azure.core.exceptions import AzureError
from azure.data.tables import TableServiceClient

from shared.settings import get_settings

log = logging.getLogger(__name__)

# The health check must answer fast even when storage is down: short timeouts, no SDK retries.
HEALTH_TIMEOUT_SECONDS = 2

_lock = threading.Lock()
_services: dict[tuple[str, str], TableServiceClient] = {}


def table_name(base: str) -> str:
    """The full table name for one of the app's tables, e.g. `integrations` -> `vstsintegrations`."""
    return f"{get_settings().table_prefix}{base}"


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
                        connection_timeout=HEALTH_TIMEOUT_SECONDS,
                        read_timeout=HEALTH_TIMEOUT_SECONDS,
                        retry_total=0,
                    )
                else:
                    service = TableServiceClient.from_connection_string(conn)
                _services[key] = service
    return service


def storage_is_reachable() -> bool:
    """One cheap request (list at most one table) that proves Table Storage answers."""
    try:
        pages = table_service("health").list_tables(results_per_page=1).by_page()
        next(pages, None)
    except (AzureError, OSError, ValueError) as exc:
        log.warning("Table Storage is unreachable: %s", type(exc).__name__)
        return False
    return True
