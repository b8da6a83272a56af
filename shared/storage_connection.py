"""How the app reaches a storage account (contract §19): a connection string, or the Functions host's
identity-based settings, read from the environment the way the host reads them, so that the host's queue
triggers and the app's own table and queue clients use one identity. Part of `shared.settings`."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

DEFAULT_STORAGE = "UseDevelopmentStorage=true"


class SettingsError(ValueError):
    """A setting is missing or invalid; the message names it. (Defined here, below `shared.settings`, which
    exports it, so that both raise the one error.)"""


def _error(message: str) -> SettingsError:
    return SettingsError(message)


def _text(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name, "").strip()
    return value or None


def _https_url(env: Mapping[str, str], name: str) -> str | None:
    value = _text(env, name)
    if value is None:
        return None
    parts = urlsplit(value)
    if parts.scheme != "https" or not parts.netloc:
        # Storage accepts bearer tokens over HTTPS only (and the SDK refuses to send them otherwise).
        raise _error(f"The app setting {name} must be an https URL.")
    return value.rstrip("/")


@dataclass(frozen=True)
class StorageConnection:
    """How to reach one storage account: a connection string, or the Functions host's identity-based settings
    (`<name>__accountName`, or `<name>__tableServiceUri` / `<name>__queueServiceUri`, with `<name>__credential`
    and `<name>__clientId`), read the same way for the app's own clients so one identity serves both."""

    setting: str  # the app setting it was read from, named in errors
    connection_string: str | None = None  # its secret parts are redacted in `Settings`' repr
    table_url: str | None = None
    queue_url: str | None = None
    credential: str | None = None  # None: the default credential chain; "managedidentity": only that
    client_id: str | None = None  # a user-assigned identity's client id

    @property
    def uses_identity(self) -> bool:
        return self.connection_string is None

    def service_url(self, service: str) -> str:
        """The endpoint of `service` ("table" or "queue") for an identity-based connection."""
        url = self.table_url if service == "table" else self.queue_url
        if url is None:
            raise _error(
                f"The app setting {self.setting}__{service}ServiceUri (or {self.setting}__accountName) is required "
                f"here: the app reaches {service} storage with an identity."
            )
        return url


IDENTITY_CREDENTIALS = ("managedidentity",)
_ACCOUNT_NAME = re.compile(r"[a-z0-9]{3,24}")


def storage_connection(env: Mapping[str, str], name: str, fallback: StorageConnection) -> StorageConnection:
    """The connection app setting `name` describes, as the Functions host reads it, or `fallback` when it is not
    set: its value is a connection string; without one, `name__accountName` or `name__<service>ServiceUri`."""
    text = _text(env, name)
    if text is not None:
        return StorageConnection(name, connection_string=text)
    account = _text(env, f"{name}__accountName")
    table, queue = (_https_url(env, f"{name}__{service}ServiceUri") for service in ("table", "queue"))
    if account is None and table is None and queue is None:
        return fallback
    if account is not None:
        if not _ACCOUNT_NAME.fullmatch(account):
            raise _error(f"The app setting {name}__accountName must be a storage account name, not {account!r}.")
        table = table or f"https://{account}.table.core.windows.net"
        queue = queue or f"https://{account}.queue.core.windows.net"
    credential = _text(env, f"{name}__credential")
    if credential is not None and credential.lower() not in IDENTITY_CREDENTIALS:
        raise _error(f"The app setting {name}__credential must be managedidentity, not {credential!r}.")
    return StorageConnection(
        name,
        table_url=table,
        queue_url=queue,
        credential=credential.lower() if credential else None,
        client_id=_text(env, f"{name}__clientId"),
    )


def storage_connections(env: Mapping[str, str]) -> tuple[StorageConnection, StorageConnection]:
    """(tables, queues): the app's tables use `STORAGE_CONNECTION_STRING`, else `AzureWebJobsStorage`, the queue
    triggers' connection, which is Azurite's development account when nothing is set."""
    queues = storage_connection(env, "AzureWebJobsStorage", StorageConnection("AzureWebJobsStorage", DEFAULT_STORAGE))
    return storage_connection(env, "STORAGE_CONNECTION_STRING", queues), queues
