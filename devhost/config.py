"""What the local host reads before it loads the app: host.json and the Values of local.settings.json."""

from __future__ import annotations

import json
import os
import re
from collections.abc import MutableMapping
from dataclasses import dataclass
from pathlib import Path

_TIMESPAN = re.compile(r"(?:(\d+)\.)?(\d{1,2}):(\d{2}):(\d{2})(?:\.(\d+))?")


def parse_timespan(value: str) -> float:
    """Seconds in a .NET TimeSpan string as host.json writes them: `hh:mm:ss`, `d.hh:mm:ss`, `hh:mm:ss.fff`."""
    match = _TIMESPAN.fullmatch(value.strip())
    if not match:
        raise ValueError(f"not a TimeSpan (hh:mm:ss): {value!r}")
    days, hours, minutes, seconds, fraction = match.groups()
    total = int(days or 0) * 86400 + int(hours) * 3600 + int(minutes) * 60 + int(seconds)
    return total + (float(f"0.{fraction}") if fraction else 0.0)


@dataclass(frozen=True)
class HostConfig:
    """The parts of host.json the local host honours, with the Functions host's defaults."""

    route_prefix: str = "api"
    max_dequeue_count: int = 5
    visibility_timeout: float = 0.0
    max_polling_interval: float = 60.0
    batch_size: int = 16
    message_encoding: str = "base64"


def load_host_config(app_dir: Path) -> HostConfig:
    path = app_dir / "host.json"
    if not path.exists():
        return HostConfig()
    data = json.loads(path.read_text())
    extensions = data.get("extensions") or {}
    http = extensions.get("http") or {}
    queues = extensions.get("queues") or {}
    defaults = HostConfig()
    encoding = str(queues.get("messageEncoding", defaults.message_encoding)).lower()
    if encoding not in ("base64", "none"):
        raise ValueError(f"host.json: extensions.queues.messageEncoding must be base64 or none, not {encoding!r}")
    return HostConfig(
        route_prefix=str(http.get("routePrefix", defaults.route_prefix)).strip("/"),
        max_dequeue_count=int(queues.get("maxDequeueCount", defaults.max_dequeue_count)),
        visibility_timeout=parse_timespan(queues["visibilityTimeout"])
        if "visibilityTimeout" in queues
        else defaults.visibility_timeout,
        max_polling_interval=parse_timespan(queues["maxPollingInterval"])
        if "maxPollingInterval" in queues
        else defaults.max_polling_interval,
        batch_size=max(1, min(32, int(queues.get("batchSize", defaults.batch_size)))),
        message_encoding=encoding,
    )


def load_local_settings(app_dir: Path, environ: MutableMapping[str, str] | None = None) -> dict[str, str]:
    """Copy the `Values` of local.settings.json into the environment, as Core Tools does.

    Variables already set win, so a value can be overridden for one run from the shell.
    """
    environ = os.environ if environ is None else environ
    path = app_dir / "local.settings.json"
    if not path.exists():
        return {}
    values = {str(k): str(v) for k, v in (json.loads(path.read_text()).get("Values") or {}).items()}
    for key, value in values.items():
        environ.setdefault(key, value)
    return values
