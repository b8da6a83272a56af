"""The local Functions host: loads `function_app.app` and runs its functions as Azure would.

- HTTP triggers are served under the host.json route prefix with Azure's route templates and methods
  (a WSGI app on werkzeug's routing). Like Core Tools, function keys are not checked locally.
- Timer triggers fire on their NCRONTAB schedules (`devhost.timers`).
- Queue triggers are polled from Storage with retries and the poison queue (`devhost.queues`).
- `POST /admin/functions/{name}` with `{"input": "..."}` runs a non-HTTP function now and answers 202.

Each invocation writes one log line: function, trigger, status or outcome, duration.
"""

from __future__ import annotations

import asyncio
import importlib.util
import inspect
import json
import logging
import os
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import azure.functions as func
from azure.functions import FunctionRegister
from azure.functions.decorators.http import HttpTrigger
from azure.functions.decorators.queue import QueueTrigger
from azure.functions.decorators.timer import TimerTrigger
from azure.functions.queue import QueueMessage as FunctionQueueMessage
from azure.functions.timer import TimerRequest
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from devhost.config import HostConfig, load_host_config
from devhost.queues import QueuePoller
from devhost.routing import CONVERTERS, template_to_rules
from devhost.storage import QueueConnection, resolve_connection
from devhost.timers import TimerRunner, resolve_schedule, resolve_setting, utcnow

log = logging.getLogger("devhost")

# The Functions host refuses larger request bodies (httpRuntime maxRequestBodySize, 100 MB).
MAX_REQUEST_BODY = 100 * 1024 * 1024
_ADMIN = "__admin__"


@dataclass(frozen=True)
class FunctionEntry:
    """One indexed function: its name, trigger, the parameter the trigger binds to, and the Python callable."""

    name: str
    trigger: Any
    arg_name: str
    call: Callable[..., Any]

    @property
    def kind(self) -> str:
        if isinstance(self.trigger, HttpTrigger):
            return "http"
        if isinstance(self.trigger, TimerTrigger):
            return "timer"
        if isinstance(self.trigger, QueueTrigger):
            return "queue"
        return self.trigger.type


def load_function_app(app_dir: Path) -> tuple[ModuleType, list[FunctionEntry]]:
    """Import `function_app.py` from `app_dir`, as the Python worker does, and index its functions.

    The worker requires exactly one FunctionApp at module level and indexes it once (a second
    `get_functions()` on the same app fails), so this is called once per host.
    """
    app_dir = app_dir.resolve()
    if str(app_dir) not in sys.path:
        sys.path.append(str(app_dir))  # appended: an app loaded for a test must not shadow modules of another
    path = app_dir / "function_app.py"
    # A private module name, so several apps (tests) can be loaded in one process without clashing.
    name = f"_devhost_app_{uuid.uuid4().hex[:8]}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise RuntimeError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    apps = [v for v in vars(module).values() if isinstance(v, FunctionRegister)]
    if len(apps) != 1:
        raise RuntimeError(f"{path} must define exactly one FunctionApp at module level, found {len(apps)}")
    entries = []
    for function in apps[0].get_functions():
        trigger = function.get_trigger()
        extra = [b.name for b in function.get_bindings() if b is not trigger and b.type != "http"]
        if extra:
            log.warning("Skipping %s: bindings %s are not emulated locally", function.get_function_name(), extra)
            continue
        entries.append(FunctionEntry(function.get_function_name(), trigger, trigger.name, function.get_user_function()))
    return module, entries


def run_user_function(call: Callable[..., Any], kwargs: dict[str, Any]) -> Any:
    result = call(**kwargs)
    return asyncio.run(result) if inspect.isawaitable(result) else result


class FunctionHost:
    """The functions of one app, with HTTP dispatch (as a WSGI app), timers, queue pollers and admin invoke."""

    def __init__(self, app_dir: Path, environ: Mapping[str, str] | None = None) -> None:
        self.app_dir = Path(app_dir).resolve()
        self.environ = os.environ if environ is None else environ
        self.config: HostConfig = load_host_config(self.app_dir)
        self.module, entries = load_function_app(self.app_dir)
        # `AzureWebJobs.<name>.Disabled` switches a function off, as in Azure and Core Tools.
        disabled = {
            e.name for e in entries if self.environ.get(f"AzureWebJobs.{e.name}.Disabled", "").lower() in ("true", "1")
        }
        for name in sorted(disabled):
            log.info("Function %s is disabled (AzureWebJobs.%s.Disabled)", name, name)
        self.functions = {entry.name: entry for entry in entries if entry.name not in disabled}
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.url_map = self._build_url_map()
        # Resolve schedules and connections now, so a bad setting fails at start, not hours later.
        self.schedules = {
            e.name: resolve_schedule(e.trigger.schedule, self.environ)
            for e in self.functions.values()
            if e.kind == "timer"
        }
        self.queue_connections = {
            e.name: self._connection(e.trigger.connection) for e in self.functions.values() if e.kind == "queue"
        }
        self.queue_names = {
            e.name: resolve_setting(e.trigger.queue_name, self.environ)
            for e in self.functions.values()
            if e.kind == "queue"
        }

    # -- HTTP ---------------------------------------------------------------------------------------

    def _build_url_map(self) -> Map:
        rules = [Rule("/admin/functions/<name>", methods=["POST"], endpoint=_ADMIN)]
        for entry in self.functions.values():
            if entry.kind != "http":
                continue
            methods = [m.value for m in entry.trigger.methods] if entry.trigger.methods else None
            for rule in template_to_rules(self.config.route_prefix, entry.trigger.route):
                rules.append(Rule(rule, methods=methods, endpoint=entry.name))
        return Map(rules, converters=CONVERTERS, strict_slashes=False, merge_slashes=False)

    def __call__(self, environ: dict, start_response: Callable) -> Any:
        return self.dispatch(Request(environ))(environ, start_response)

    def dispatch(self, request: Request) -> Response:
        adapter = self.url_map.bind_to_environ(request.environ)
        try:
            endpoint, values = adapter.match()
        except MethodNotAllowed as exc:
            return Response(status=405, headers={"Allow": ", ".join(exc.valid_methods or [])})
        except NotFound:
            return Response(status=404)
        except HTTPException as exc:  # e.g. a redirect the map asks for
            return exc.get_response(request.environ)
        if endpoint == _ADMIN:
            return self._admin_invoke(values["name"], request)
        return self._invoke_http(self.functions[endpoint], request, values)

    def _invoke_http(self, entry: FunctionEntry, request: Request, route_params: dict[str, str]) -> Response:
        if (request.content_length or 0) > MAX_REQUEST_BODY:
            return Response(status=413)
        started = time.perf_counter()
        req = func.HttpRequest(
            method=request.method,
            url=request.url,
            headers={k: v for k, v in request.headers.items()},
            params={k: v for k, v in request.args.items()},
            route_params=route_params,
            body=request.get_data(),
        )
        from shared import telemetry  # a no-op importing nothing without APPLICATIONINSIGHTS_CONNECTION_STRING

        # The host's invocation span, as Azure's host makes one in OpenTelemetry mode: the route template, not the URL.
        with telemetry.invocation(entry.name, "http", method=request.method, route=entry.trigger.route) as recorded:
            try:
                response = _to_response(run_user_function(entry.call, {entry.arg_name: req}))
            except Exception:  # the Functions host answers 500 with no body
                log.exception("Function %s raised", entry.name)
                response = Response(status=500)
            recorded.status_code(response.status_code)
        _log_invocation(entry.name, f"http {request.method} {request.path}", str(response.status_code), started)
        return response

    # -- admin invoke, timers and queues ------------------------------------------------------------

    def _admin_invoke(self, name: str, request: Request) -> Response:
        entry = self.functions.get(name) or next(
            (e for e in self.functions.values() if e.name.lower() == name.lower()), None
        )
        if entry is None:
            return _json(404, {"error": f"No function named {name!r}."})
        if entry.kind == "http":
            return _json(400, {"error": f"{entry.name} is an HTTP function: call its route instead."})
        raw = request.get_data()
        try:
            payload = json.loads(raw) if raw.strip() else {}
            text = payload.get("input", "") if isinstance(payload, dict) else None
        except ValueError:
            text = None
        if not isinstance(text, str):
            return _json(400, {"error": 'The body must be a JSON object like {"input": "..."}.'})
        threading.Thread(target=self.invoke_now, args=(entry.name, text), daemon=True).start()
        return Response(status=202)

    def invoke_now(self, name: str, text: str = "") -> bool:
        """Run a timer or queue function once, now, with `text` as the queue message; True if it succeeded."""
        entry = self.functions[name]
        if entry.kind == "timer":
            return self._fire_timer(entry, False, {"Last": None, "Next": None, "LastUpdated": utcnow().isoformat()})
        if entry.kind == "queue":
            now = utcnow()
            message = FunctionQueueMessage(
                id=str(uuid.uuid4()),
                body=text.encode("utf-8"),
                dequeue_count=1,
                insertion_time=now,
                expiration_time=None,
                time_next_visible=now,
                pop_receipt=None,
            )
            return self._run(entry, "queue (admin)", {entry.arg_name: message})
        raise ValueError(f"{name}: trigger {entry.kind} cannot be invoked locally")

    def _fire_timer(self, entry: FunctionEntry, past_due: bool, status: dict) -> bool:
        timer = TimerRequest(past_due=past_due, schedule_status=status, schedule={"AdjustForDST": True})
        return self._run(entry, "timer", {entry.arg_name: timer})

    def _run_queue_message(self, entry: FunctionEntry, body: bytes, message: Any) -> bool:
        incoming = FunctionQueueMessage(
            id=message.id,
            body=body,
            dequeue_count=message.dequeue_count,
            insertion_time=message.inserted_on,
            expiration_time=message.expires_on,
            time_next_visible=message.next_visible_on,
            pop_receipt=message.pop_receipt,
        )
        trigger = f"queue {self.queue_names[entry.name]} try {message.dequeue_count}"
        return self._run(entry, trigger, {entry.arg_name: incoming})

    def _run(self, entry: FunctionEntry, trigger: str, kwargs: dict[str, Any]) -> bool:
        from shared import telemetry

        started = time.perf_counter()
        try:
            with telemetry.invocation(entry.name, entry.kind):
                run_user_function(entry.call, kwargs)
        except Exception:
            log.exception("Function %s raised", entry.name)
            _log_invocation(entry.name, trigger, "Failed", started)
            return False
        _log_invocation(entry.name, trigger, "Succeeded", started)
        return True

    def _connection(self, setting: str) -> QueueConnection:
        return resolve_connection(setting, self.environ)

    def start(self) -> None:
        """Start the timers and queue pollers (HTTP is served by whoever serves this WSGI app)."""
        for entry in self.functions.values():
            if entry.kind == "timer":
                thread: threading.Thread = TimerRunner(
                    entry.name,
                    self.schedules[entry.name],
                    bool(entry.trigger.run_on_startup),
                    lambda past_due, status, e=entry: self._fire_timer(e, past_due, status),
                    self._stop,
                )
            elif entry.kind == "queue":
                thread = QueuePoller(
                    entry.name,
                    self.queue_names[entry.name],
                    self.queue_connections[entry.name],
                    self.config,
                    lambda body, message, e=entry: self._run_queue_message(e, body, message),
                    self._stop,
                )
            else:
                continue
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop timers and pollers, letting invocations under way finish."""
        self._stop.set()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self._threads.clear()


def _to_response(result: Any) -> Response:
    if isinstance(result, func.HttpResponse):
        response = Response(result.get_body(), status=result.status_code)
        has_type = "content-type" in result.headers  # werkzeug Headers: case-insensitive
        for key, value in result.headers.items():
            response.headers[key] = value
        if not has_type:
            response.headers["Content-Type"] = f"{result.mimetype}; charset={result.charset}"
        return response
    if isinstance(result, (str, bytes)):
        return Response(result, status=200, content_type="text/plain; charset=utf-8")
    if result is None:
        return Response(status=204)
    raise TypeError(f"an HTTP function returned {type(result).__name__}")


def _json(status: int, body: dict) -> Response:
    return Response(json.dumps(body), status=status, content_type="application/json")


def _log_invocation(name: str, trigger: str, outcome: str, started: float) -> None:
    log.info("Executed %s (%s): %s in %.1f ms", name, trigger, outcome, (time.perf_counter() - started) * 1000)
