"""Sentry's HTTP conventions, shared by every endpoint of the fake: JSON answers, `{"detail": ...}` errors and
DRF's `{"field": ["message"]}` validation errors, JSON request bodies, signatures, timestamps."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from typing import Any

from werkzeug.wrappers import Request, Response

from devtools.fakes.http import Reject

# DRF's and Sentry's standard messages (rest_framework exceptions, sentry.api.exceptions).
NOT_FOUND = "The requested resource does not exist"
NO_PERMISSION = "You do not have permission to perform this action."
NOT_AUTHENTICATED = "Authentication credentials were not provided."


def dumps(data: Any) -> str:
    """JSON as Sentry writes it (sentry.utils.json: compact separators), so a receiver that re-serializes the
    parsed body before checking a signature fails, as it would against Sentry."""
    return json.dumps(data, separators=(",", ":"))


def json_response(data: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    return Response(dumps(data), status=status, headers=dict(headers or {}), content_type="application/json")


def detail(status: int, message: str, headers: Mapping[str, str] | None = None) -> Response:
    """Sentry's error body for authentication, permission and lookup failures."""
    return json_response({"detail": message}, status, headers)


def field_errors(errors: Mapping[str, str]) -> Response:
    """A DRF serializer's 400: each field with its list of messages."""
    return json_response({name: [message] for name, message in errors.items()}, 400)


def read_json(request: Request) -> dict[str, Any]:
    """The JSON object of a POST/PUT, or DRF's 415/400."""
    if request.mimetype != "application/json":
        raise Reject(detail(415, f'Unsupported media type "{request.mimetype}" in request.'))
    try:
        data = json.loads(request.get_data(cache=True) or b"{}")
    except ValueError as exc:
        raise Reject(detail(400, f"JSON parse error - {exc}")) from None
    if not isinstance(data, dict):
        raise Reject(detail(400, f"Invalid data. Expected a dictionary, but got {type(data).__name__}."))
    return data


def sign(secret: str, body: bytes | str) -> str:
    """Sentry's `SentryApp.build_signature`: hex HMAC-SHA256 of the exact body with the client secret."""
    raw = body.encode() if isinstance(body, str) else body
    return hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()


def iso(seconds: float) -> str:
    """DRF's datetime format as Sentry serializes it: UTC, microseconds, 'Z'."""
    whole = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    return f"{whole}.{int(round(seconds * 1_000_000)) % 1_000_000:06d}Z"
