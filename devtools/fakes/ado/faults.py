"""Fault injection: canned answers for the next matching requests (`fail_next`) and delayed responses
(`set_delay`), both applied before authentication, until used up or `clear_faults`."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from werkzeug.wrappers import Response

from devtools.fakes.ado.data import Store
from devtools.fakes.ado.protocol import request_matches


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


class Faults(Store):
    """Mixin of FakeAzureDevOps: fault injection."""

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
