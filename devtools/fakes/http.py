"""What every loopback fake shares: the threaded WSGI server on 127.0.0.1 (a free port) started and stopped as a
context manager, the log of the requests it received, fault injection (`fail_next`, `set_delay`), and the
loopback-only POST of what a fake sends out.

A fake subclasses `LoopbackServer`, provides `_lock` (an RLock guarding its model, made by its store),
`_dispatch(request)` (the real answer) and `_internal_error(exc)` (its service's 500 body), and may override
`_closed()` to release what it holds besides the server."""

from __future__ import annotations

import json
import math
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

import requests as http
from requests.structures import CaseInsensitiveDict
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response


@dataclass
class RecordedRequest:
    """One request the fake received. `started`/`ended` are monotonic; `time` is the wall clock at arrival."""

    method: str
    path: str
    query_string: str
    headers: CaseInsensitiveDict[str]
    body: bytes
    time: float
    started: float
    ended: float | None = None
    status: int | None = None

    @property
    def args(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(self.query_string, keep_blank_values=True).items()}

    def json(self) -> Any:
        return json.loads(self.body)


class QuietHandler(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Keep test output free of one access-log line per request."""


class Reject(Exception):
    """Raised by a handler to answer with `response` instead (bad input, missing things)."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status)
        self.response = response


def request_matches(method: str, path_regex: str | re.Pattern[str], actual_method: str, path: str) -> bool:
    """Whether a request's method matches `method` (`*` for any) and its path matches `path_regex` (re.search)."""
    return method in ("*", actual_method.upper()) and re.search(path_regex, path) is not None


def is_loopback(url: str) -> bool:
    host = (urlsplit(url).hostname or "").lower()
    return host in ("127.0.0.1", "localhost", "::1") or host.startswith("127.")


def post_loopback(
    session: http.Session, url: str, body: bytes, headers: Mapping[str, str], timeout: float
) -> tuple[int | None, str | None]:
    """POST as a service sends its webhooks, to loopback only: (status, None), or (None, why no answer came)."""
    if not is_loopback(url):
        return None, "refused: the fake delivers only to loopback addresses"
    try:
        answer = session.post(url, data=body, headers=dict(headers), timeout=timeout, allow_redirects=False)
    except http.Timeout:
        return None, "timeout"
    except http.RequestException as exc:
        return None, type(exc).__name__
    answer.close()
    return answer.status_code, None


@dataclass
class _Fault:
    method: str
    pattern: re.Pattern[str]
    status: int
    headers: dict[str, str]
    body: bytes
    remaining: int


@dataclass
class _Delay:
    method: str
    pattern: re.Pattern[str]
    seconds: float


class FaultInjection:
    """Canned answers for the next matching requests (`fail_next`) and delayed responses (`set_delay`), both
    applied before authentication, until used up or `clear_faults`. Uses the `_lock` of the class it is in."""

    _lock: threading.RLock

    def __init__(self) -> None:
        super().__init__()
        self._faults: list[_Fault] = []
        self._delays: list[_Delay] = []

    def fail_next(
        self,
        method: str,
        path_regex: str,
        status: int,
        *,
        headers: Mapping[str, str] | None = None,
        body: bytes | str | dict[str, Any] | list[Any] = b"",
        count: int = 1,
    ) -> None:
        """Answer the next `count` requests whose method matches (`*` for any) and whose path matches
        `path_regex` (re.search) with this response, before authentication, instead of the real one.
        A dict or list body is sent as JSON.
        """
        response_headers = dict(headers or {})
        if isinstance(body, dict | list):
            raw = json.dumps(body).encode()
            response_headers.setdefault("Content-Type", "application/json; charset=utf-8")
        else:
            raw = body.encode() if isinstance(body, str) else body
        with self._lock:
            self._faults.append(_Fault(method.upper(), re.compile(path_regex), status, response_headers, raw, count))

    def set_delay(self, path_regex: str, seconds: float, *, method: str = "*") -> None:
        """Delay every matching response by `seconds` (until clear_faults), without blocking other requests."""
        with self._lock:
            self._delays.append(_Delay(method.upper(), re.compile(path_regex), seconds))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()
            self._delays.clear()

    def _delay_for(self, method: str, path: str) -> float:
        """The longest delay set for this request, in seconds (0 for none). Call it holding the lock."""
        return max(
            (d.seconds for d in self._delays if request_matches(d.method, d.pattern, method, path)),
            default=0.0,
        )

    def _fault_response(self, method: str, path: str) -> Response | None:
        """The canned answer for this request, using up one of its count; None when no fault matches."""
        with self._lock:
            for fault in self._faults:
                if fault.remaining > 0 and request_matches(fault.method, fault.pattern, method, path):
                    fault.remaining -= 1
                    if fault.remaining == 0:
                        self._faults.remove(fault)
                    return Response(fault.body, status=fault.status, headers=fault.headers)
        return None


class LoopbackServer(FaultInjection):
    """The server, its lifecycle and its request log; what a request gets is `_dispatch`'s answer unless a
    fault or delay says otherwise."""

    thread_name = "fake"

    def __init__(self) -> None:
        super().__init__()
        self._log: list[RecordedRequest] = []
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    # ----------------------------------------------------------------------------------------- lifecycle

    def start(self) -> Self:
        if self._server is not None:
            raise RuntimeError("the fake is already running")
        self._server = make_server(
            "127.0.0.1", 0, self._wsgi, threaded=True, request_handler=QuietHandler, ssl_context=self._ssl_context()
        )
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name=self.thread_name, daemon=True
        )  # a short poll interval makes stop() quick
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(timeout=5)
        self._closed()

    def _closed(self) -> None:
        """Release what the fake holds besides its server (called by stop)."""

    def _ssl_context(self) -> Any:
        """None (plain http), or what werkzeug takes as `ssl_context` for a fake that must be https."""
        return None

    def __enter__(self) -> Self:
        return self.start() if self._server is None else self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("the fake is not running; call start()")
        scheme = "https" if self._ssl_context() is not None else "http"
        return f"{scheme}://127.0.0.1:{self._server.server_port}"

    # ------------------------------------------------------------------------------------------ request log

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._log)

    def count(self, method: str, path_regex: str) -> int:
        """Requests received whose method matches (`*` for any) and whose path matches (re.search)."""
        with self._lock:
            return sum(1 for r in self._log if request_matches(method, path_regex, r.method, r.path))

    def max_concurrent(self, path_regex: str, method: str = "*") -> int:
        """The highest number of matching requests that were in flight at the same time.

        A request counts from its arrival until its response was ready; the client sees the response only
        after that, so a client-side bound of N in flight can never show up here as more than N.
        """
        with self._lock:
            spans = [
                (r.started, r.ended if r.ended is not None else math.inf)
                for r in self._log
                if request_matches(method, path_regex, r.method, r.path)
            ]
        events = sorted([(start, 1) for start, _ in spans] + [(end, -1) for _, end in spans])
        current = highest = 0
        for _, step in events:  # at equal times the end (-1) sorts first: touching spans do not overlap
            current += step
            highest = max(highest, current)
        return highest

    # ----------------------------------------------------------------------------------------------- HTTP

    def _dispatch(self, request: Request) -> Response:
        raise NotImplementedError

    def _internal_error(self, exc: Exception) -> Response:
        raise NotImplementedError

    def _wsgi(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        request = Request(environ)
        body = request.get_data(cache=True)
        record = RecordedRequest(
            method=request.method,
            path=request.path,
            query_string=request.query_string.decode("latin-1"),
            headers=CaseInsensitiveDict(dict(request.headers.items())),
            body=body,
            time=time.time(),
            started=time.monotonic(),
        )
        with self._lock:
            self._log.append(record)
            delay = self._delay_for(record.method, record.path)
        if delay > 0:
            time.sleep(delay)  # outside the lock, on this request's own thread
        try:
            response = self._fault_response(record.method, record.path) or self._dispatch(request)
        except Reject as reject:
            response = reject.response
        except Exception as exc:  # a bug in the fake must show up as a clear 500, not a hung test
            response = self._internal_error(exc)
        with self._lock:
            record.status = response.status_code
            record.ended = time.monotonic()
        return response(environ, start_response)
