"""Typed settings, read from the environment in one place (contract §10).

App settings become environment variables in Azure and come from `local.settings.json` locally. They are read
here, once per process, on first use: an invalid value fails with a message that names the setting, and a
required setting that is missing fails when it is first needed, not at import time, so one missing setting
never stops unrelated functions from loading.

Settings that only some paths use (the timers' schedules, concurrency and budget, the secret grace period)
are validated where they are used, by properties: a typo in one of them fails the timer that reads it, never
the webhook, the lookups or the admin routes. The three timers share `TIMER_CONCURRENCY` and
`TIMER_BUDGET_SECONDS`; their first names, `DOMAIN_CHECK_CONCURRENCY` and `DOMAIN_CHECK_BUDGET_SECONDS`, are
still read when the new ones are not set. The repr never shows a secret (see `redact`).
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from functools import cached_property
from typing import TypeVar
from urllib.parse import urlsplit

from shared.storage_connection import SettingsError, StorageConnection, storage_connections

DEFAULT_ACCOUNT_LOOKUP_URL = (
    "https://app.vssps.visualstudio.com/_apis/resourceareas/79134C72-4A58-4B42-976C-04E7115F32BF?hostId=%s"
)
DEFAULT_OAUTH_TOKEN_URL = "https://app.vssps.visualstudio.com/oauth2/token"
DEFAULT_SCHEDULES = {
    "DOMAIN_CHECK_SCHEDULE": "0 0 * * * *",
    "SUBSCRIPTION_CHECK_SCHEDULE": "0 0 */6 * * *",
    "RECONCILE_SCHEDULE": "0 30 * * * *",
    "CLEANUP_SCHEDULE": "0 45 3 * * *",  # daily: rows past their own expiry (shared.jobs.cleanup)
    "SWEEP_SCHEDULE": "0 */2 * * * *",  # wakes work stored but not applied or sent (shared.jobs.pending)
    "SENTRY_RECONCILE_SCHEDULE": "0 15 * * * *",  # hourly: Sentry issues changed without a webhook
}

# Azure table names are 3-63 alphanumerics starting with a letter; the prefix leaves room for the base name.
_TABLE_PREFIX = re.compile(r"[A-Za-z][A-Za-z0-9]{0,39}")
_NCRONTAB_FIELD = re.compile(r"[0-9A-Za-z*/,\-]+")
# Secret parts of connection strings and URLs (AccountKey=..., SharedAccessSignature=..., ?sig=..., user:pw@).
_SECRET_PART = re.compile(
    r"(?i)(SharedAccessSignature=)[^;]*"
    r"|((?:AccountKey|SharedAccessKey|Password|Pwd|sig|[a-z_]*secret|[a-z_]*token)=)[^;&\s]*"
)
_URL_PASSWORD = re.compile(r"(//[^/:@\s]*:)[^/@\s]*@")
# Read when first used (see the module docstring): a bad value fails only what needs it.
LAZY_SETTINGS = (
    "TIMER_CONCURRENCY",
    "DOMAIN_CHECK_CONCURRENCY",
    "TIMER_BUDGET_SECONDS",
    "DOMAIN_CHECK_BUDGET_SECONDS",
    "SECRET_GRACE_SECONDS",
    "SWEEP_GRACE_SECONDS",
    *DEFAULT_SCHEDULES,
)


def redact(text: str) -> str:
    """`text` without the secret parts of the connection strings or URLs in it."""
    text = _SECRET_PART.sub(lambda m: f"{m.group(1) or m.group(2)}***", text)
    return _URL_PASSWORD.sub(r"\1***@", text)


@dataclass(frozen=True, repr=False)
class Settings:
    table_storage: StorageConnection  # STORAGE_CONNECTION_STRING, else AzureWebJobsStorage (string or identity)
    queue_storage: StorageConnection  # AzureWebJobsStorage, the queue triggers' connection
    table_prefix: str
    account_lookup_url: str
    oauth_token_url: str
    allowed_origins: tuple[str, ...]
    http_timeout: float
    _lazy: Mapping[str, str] = field(repr=False, compare=False)  # raw values of LAZY_SETTINGS, as set
    search_base_url: str | None
    oauth_redirect_uri: str | None
    entra_authority_host: str | None  # AZURE_AUTHORITY_HOST: Entra ID's sign-in host (None: the public cloud)
    _secrets_key: str | None = field(repr=False)
    _webhook_public_url: str | None
    _client_secret: str | None = field(repr=False)
    # The queue's own back-off for failures that may pass (shared.sync.retry): first delay, cap, and how much
    # delay in all a message is given before it goes to the poison queue.
    queue_retry_base_seconds: float = 10.0
    queue_retry_max_seconds: float = 600.0
    queue_retry_window_seconds: float = 3600.0
    _sentry: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)  # raw SENTRY_SETTINGS

    def __repr__(self) -> str:
        shown = (f"{f.name}={redact(repr(getattr(self, f.name)))}" for f in fields(self) if f.repr)
        return f"Settings({', '.join(shown)})"

    @cached_property
    def timer_concurrency(self) -> int:
        """Work at once in each timer's sweep."""
        name = _renamed(self._lazy, "TIMER_CONCURRENCY", "DOMAIN_CHECK_CONCURRENCY")
        return _int(self._lazy, name, 8, minimum=1, maximum=64)

    @cached_property
    def timer_budget_seconds(self) -> float:
        """The time budget of one timer run; keep it below host.json's functionTimeout."""
        name = _renamed(self._lazy, "TIMER_BUDGET_SECONDS", "DOMAIN_CHECK_BUDGET_SECONDS")
        return _seconds(self._lazy, name, 240.0, maximum=3600)

    @cached_property
    def secret_grace_seconds(self) -> int:
        """How long a rotated webhook secret stays valid (subscription creation and replacement)."""
        return _int(self._lazy, "SECRET_GRACE_SECONDS", 86400, minimum=0, maximum=30 * 86400)

    def schedule(self, name: str) -> str:
        """A timer's six-field NCRONTAB schedule (`DOMAIN_CHECK_SCHEDULE`, ...), its default when not set."""
        return _schedule(self._lazy, name)

    @cached_property
    def sweep_grace_seconds(self) -> float:
        """How long accepted work may stay unapplied (or unsent) before the sweeper wakes it again."""
        return _seconds(self._lazy, "SWEEP_GRACE_SECONDS", 180.0, maximum=86400)

    @property
    def secrets_key(self) -> str:
        """The Fernet key that encrypts credentials and secrets at rest (required)."""
        return _required("SECRETS_KEY", self._secrets_key)

    @property
    def webhook_public_url(self) -> str:
        """The public URL of `vsts/issue-updated`, needed only to create subscriptions."""
        return _required("WEBHOOK_PUBLIC_URL", self._webhook_public_url)

    @property
    def client_secret(self) -> str:
        """The legacy Azure DevOps OAuth client secret, needed only to refresh `oauth` credentials."""
        return _required("ADO_CLIENT_SECRET", self._client_secret)

    # Sentry (contract §13), validated on first use like the timers' settings: a bad value fails the Sentry
    # routes only, never the Azure DevOps ones.
    @cached_property
    def sentry_url(self) -> str:
        """The origin of the Sentry the app is installed in (scheme://host[:port])."""
        return _origin(self._sentry, "SENTRY_URL", DEFAULT_SENTRY_URL)

    @property
    def sentry_client_id(self) -> str:
        return _required("SENTRY_CLIENT_ID", _text(self._sentry, "SENTRY_CLIENT_ID"))

    @property
    def sentry_client_secret(self) -> str:
        """Verifies Sentry's signatures and exchanges installation grants: never logged or shown."""
        return _required("SENTRY_CLIENT_SECRET", _text(self._sentry, "SENTRY_CLIENT_SECRET"))


def _required(name: str, value: str | None) -> str:
    if not value:
        raise SettingsError(f"The app setting {name} is required here but is not set.")
    return value


def _renamed(env: Mapping[str, str], name: str, old_name: str) -> str:
    """The setting to read: `name`, or its old name when only that one is set (so errors name what was set)."""
    return old_name if _text(env, name) is None and _text(env, old_name) is not None else name


N = TypeVar("N", int, float)


def _text(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name, "").strip()
    return value or None


def _number(env: Mapping[str, str], name: str, default: N, parse: Callable[[str], N], what: str) -> N:
    raw = _text(env, name)
    if raw is None:
        return default
    try:
        return parse(raw)
    except ValueError:
        raise SettingsError(f"The app setting {name} must be {what}, not {raw!r}.") from None


def _int(env: Mapping[str, str], name: str, default: int, *, minimum: int, maximum: int) -> int:
    value = _number(env, name, default, int, "a whole number")
    if not minimum <= value <= maximum:
        raise SettingsError(f"The app setting {name} must be between {minimum} and {maximum}, not {value}.")
    return value


def _seconds(env: Mapping[str, str], name: str, default: float, *, maximum: float) -> float:
    value = _number(env, name, default, float, "a number of seconds")
    if not 0 < value <= maximum:
        raise SettingsError(f"The app setting {name} must be more than 0 and at most {maximum:g} seconds.")
    return value


def _url(env: Mapping[str, str], name: str, default: str | None, schemes: str = "http(s)") -> str | None:
    value = _text(env, name) or default
    if value is None:
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https")[schemes == "https" :] or not parts.netloc:
        raise SettingsError(f"The app setting {name} must be an {schemes} URL.")
    return value


def _schedule(env: Mapping[str, str], name: str) -> str:
    value = _text(env, name) or DEFAULT_SCHEDULES[name]
    fields = value.split()
    if len(fields) != 6 or not all(_NCRONTAB_FIELD.fullmatch(f) for f in fields):
        raise SettingsError(
            f"The app setting {name} must be a six-field NCRONTAB schedule (seconds first), not {value!r}."
        )
    return value


def _origins(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    origins = []
    for item in (env.get(name) or "").split(","):
        item = item.strip().rstrip("/")
        if not item:
            continue
        parts = urlsplit(item)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.path or parts.query:
            raise SettingsError(f"The app setting {name} must list origins such as https://ado.example.com.")
        origins.append(f"{parts.scheme}://{parts.netloc.lower()}")
    return tuple(origins)


def _fernet_key(env: Mapping[str, str], name: str) -> str | None:
    value = _text(env, name)
    if value is None:
        return None
    try:
        raw = base64.urlsafe_b64decode(value.encode("ascii"))
    except (binascii.Error, UnicodeEncodeError):
        raw = b""
    if len(raw) != 32:
        raise SettingsError(
            f"The app setting {name} must be a Fernet key (32 bytes, URL-safe base64); "
            "make one with: python -c 'import base64,os; print(base64.urlsafe_b64encode(os.urandom(32)).decode())'"
        )
    return value


DEFAULT_SENTRY_URL = "https://sentry.io"
SENTRY_SETTINGS = ("SENTRY_URL", "SENTRY_CLIENT_ID", "SENTRY_CLIENT_SECRET")
_ORIGIN_NETLOC = re.compile(r"[A-Za-z0-9.-]+(:[0-9]{1,5})?")  # a host and port: no user, no password


def _origin(env: Mapping[str, str], name: str, default: str) -> str:
    value = (_text(env, name) or default).rstrip("/")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not _ORIGIN_NETLOC.fullmatch(parts.netloc) or parts[2:] != ("", "", ""):
        raise SettingsError(f"The app setting {name} must be an origin such as https://sentry.io.")
    return f"{parts.scheme}://{parts.netloc.lower()}"


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Read and validate the settings of contract §10 that every path needs from `env` (default: the process
    environment); the others are kept as they are and validated on first use."""
    env = os.environ if env is None else env
    tables, queues = storage_connections(env)
    prefix = _text(env, "TABLE_PREFIX") or "vsts"
    if not _TABLE_PREFIX.fullmatch(prefix):
        raise SettingsError("The app setting TABLE_PREFIX must be 1-40 letters or digits, starting with a letter.")
    lookup = _url(env, "ADO_ACCOUNT_LOOKUP_URL", DEFAULT_ACCOUNT_LOOKUP_URL)
    assert lookup is not None
    if lookup.count("%s") != 1:
        raise SettingsError("The app setting ADO_ACCOUNT_LOOKUP_URL must contain %s once, for the organization id.")
    token_url = _url(env, "ADO_OAUTH_TOKEN_URL", DEFAULT_OAUTH_TOKEN_URL)
    assert token_url is not None
    return Settings(
        table_storage=tables,
        queue_storage=queues,
        table_prefix=prefix,
        account_lookup_url=lookup,
        oauth_token_url=token_url,
        allowed_origins=_origins(env, "ADO_ALLOWED_ORIGINS"),
        http_timeout=_seconds(env, "ADO_HTTP_TIMEOUT", 10.0, maximum=230),
        _lazy={name: env[name] for name in LAZY_SETTINGS if name in env},
        search_base_url=_url(env, "ADO_SEARCH_BASE_URL", None),
        oauth_redirect_uri=_url(env, "ADO_OAUTH_REDIRECT_URI", None),
        entra_authority_host=_url(env, "AZURE_AUTHORITY_HOST", None, "https"),  # azure-identity takes only https
        _secrets_key=_fernet_key(env, "SECRETS_KEY"),
        _webhook_public_url=_url(env, "WEBHOOK_PUBLIC_URL", None),
        _client_secret=_text(env, "ADO_CLIENT_SECRET"),
        queue_retry_base_seconds=_seconds(env, "QUEUE_RETRY_BASE_SECONDS", 10.0, maximum=3600),
        queue_retry_max_seconds=_seconds(env, "QUEUE_RETRY_MAX_SECONDS", 600.0, maximum=86400),
        queue_retry_window_seconds=_seconds(env, "QUEUE_RETRY_WINDOW_SECONDS", 3600.0, maximum=6 * 86400),
        _sentry={name: env[name] for name in SENTRY_SETTINGS if name in env},
    )


_cached: Settings | None = None


def get_settings() -> Settings:
    """The process's settings, read on first use and then kept (app settings change only with a restart)."""
    global _cached
    if _cached is None:
        _cached = load_settings()
    return _cached


def reset_settings() -> None:
    """Forget the cached settings, so the next `get_settings()` reads the environment again (tests)."""
    global _cached
    _cached = None
