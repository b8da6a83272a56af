"""Optional telemetry: traces to Application Insights through OpenTelemetry, only when
`APPLICATIONINSIGHTS_CONNECTION_STRING` is set (docs/deploy.md, "Telemetry").

Without the setting nothing here imports OpenTelemetry: a cold start pays one environment lookup.

With it, the process is configured once, on first use: before its first storage or Azure DevOps call (shared/store,
shared/ado; Sentry's calls always follow a storage read) or the local host's first invocation, never at import:
- On Azure, the documented way: host.json's `"telemetryMode": "OpenTelemetry"` and the app setting
  `PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY=true`. The Python worker then calls `configure_azure_monitor()` at its
  start and runs each invocation under the host's invocation span; here only `ScrubSecrets` is added.
- Anywhere else (the local host `devhost`, or that setting off): `configure_azure_monitor()` here, with `ScrubSecrets`.
The identity is the exporter's own: `APPLICATIONINSIGHTS_AUTHENTICATION_STRING` (`Authorization=AAD;ClientId=...`).

The invocation span is the host's (Azure's, or `devhost`'s through `invocation`); the spans of Azure DevOps and
Sentry calls come from the distro's `requests` instrumentation, storage calls from azure-core's tracing.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit, urlunsplit

log = logging.getLogger(__name__)

CONNECTION_SETTING = "APPLICATIONINSIGHTS_CONNECTION_STRING"
WORKER_SETTING = "PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY"  # the Python worker configures the distro itself
# Span attributes that may hold a URL: the old and the current semantic conventions.
URL_ATTRIBUTES = ("http.url", "url.full", "http.target")
DROPPED_ATTRIBUTES = ("url.query",)
# The distro's instrumentations for libraries the app does not use (its HTTP goes through requests, storage's
# through azure-core on requests): skipping them saves ~100 ms at the first use; urllib3's would double requests'.
UNUSED_INSTRUMENTATIONS = ("django", "fastapi", "flask", "httpx", "httpx2", "psycopg2", "urllib", "urllib3")

_lock = threading.Lock()
_configured: bool | None = None  # None: not tried yet in this process; False: tried and failed (logged once)


def enabled(environ: Mapping[str, str] | None = None) -> bool:
    environ = os.environ if environ is None else environ
    return bool(environ.get(CONNECTION_SETTING, "").strip())


def ensure_configured() -> bool:
    """Configure telemetry once in this process if the setting is present; True when spans are exported."""
    if _configured is not None:
        return _configured
    if not enabled():
        return False  # not remembered: the check costs one lookup, and a setting added later still counts
    return _configure_once()


def _configure_once() -> bool:
    global _configured
    with _lock:
        if _configured is None:
            try:
                _configure()
                _configured = True
            except Exception as exc:  # telemetry must never stop the app: say so once, carry on without it
                log.warning("Telemetry is not sent: configuring Application Insights failed (%s).", type(exc).__name__)
                _configured = False
        return _configured


def _configure() -> None:
    from opentelemetry import trace

    provider = trace.get_tracer_provider()
    if _worker_configures() and hasattr(provider, "add_span_processor"):
        provider.add_span_processor(ScrubSecrets())  # on_start: its place among the processors does not matter
        return
    from azure.monitor.opentelemetry import configure_azure_monitor

    configure_azure_monitor(
        connection_string=os.environ[CONNECTION_SETTING].strip(),
        span_processors=[ScrubSecrets()],
        instrumentation_options={name: {"enabled": False} for name in UNUSED_INSTRUMENTATIONS},
    )


def _worker_configures() -> bool:
    return os.environ.get(WORKER_SETTING, "").strip().lower() in ("true", "1")


def without_query(url: str) -> str:
    """The URL without its query, fragment and user info (a function key, a SAS signature, a password)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return ""
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


class ScrubSecrets:
    """A span processor that removes query strings and user info from URL attributes when a span starts.

    The instrumentations set the URL when they create the span, so it is scrubbed before anything can export it,
    whatever the order of the processors. Request and response headers are never recorded (the instrumentations
    capture none unless `OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_*` asks for them), so no Authorization either.
    """

    def on_start(self, span: Any, parent_context: Any = None) -> None:
        attributes = getattr(span, "attributes", None) or {}
        for name in URL_ATTRIBUTES:
            value = attributes.get(name)
            if isinstance(value, str) and ("?" in value or "@" in value or "#" in value):
                span.set_attribute(name, without_query(value) if "://" in value else value.split("?", 1)[0])
        for name in DROPPED_ATTRIBUTES:
            if name in attributes:
                span.set_attribute(name, "")

    def on_end(self, span: Any) -> None:
        pass

    def _on_ending(self, span: Any) -> None:  # called by newer SDKs before a span ends
        pass

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


class Invocation:
    """What a host records about one invocation: its result (an HTTP status) and whether it failed."""

    def __init__(self, span: Any = None) -> None:
        self._span = span

    def status_code(self, code: int) -> None:
        if self._span is not None:
            self._span.set_attribute("http.response.status_code", code)
            if code >= 500:
                from opentelemetry.trace import Status, StatusCode

                self._span.set_status(Status(StatusCode.ERROR))


_KINDS = {"http": "SERVER", "queue": "CONSUMER"}
_TRIGGERS = {"http": "http", "queue": "pubsub", "timer": "timer"}


@contextmanager
def invocation(
    function_name: str, trigger: str, *, method: str | None = None, route: str | None = None
) -> Iterator[Invocation]:
    """The span of one invocation, as the Functions host makes it, for a host that is not Azure's (`devhost`).

    Only what cannot carry a secret: the function's name, its trigger, the HTTP method and the route template
    (never the URL, its query or a header). A no-op, importing nothing, without the setting.
    """
    if not ensure_configured():
        yield Invocation()
        return
    from opentelemetry import trace

    attributes: dict[str, str] = {"faas.name": function_name, "faas.trigger": _TRIGGERS.get(trigger, "other")}
    if method:
        attributes["http.request.method"] = method
    if route is not None:
        attributes["http.route"] = route
    kind = getattr(trace.SpanKind, _KINDS.get(trigger, "INTERNAL"))
    tracer = trace.get_tracer(__name__)
    with tracer.start_as_current_span(function_name, kind=kind, attributes=attributes) as span:
        yield Invocation(span)
