"""Azure DevOps' HTTP conventions, shared by every endpoint of the fake: JSON answers and WrappedException
error bodies, query parameters (case-insensitive names), the api-version, request bodies, date formats."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from werkzeug.http import parse_options_header
from werkzeug.wrappers import Request, Response

from devtools.fakes.http import Reject


def json_response(data: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    return Response(
        json.dumps(data), status=status, headers=dict(headers or {}), content_type="application/json; charset=utf-8"
    )


def error(
    status: int,
    message: str,
    type_key: str = "InvalidArgumentValueException",
    *,
    type_name: str | None = None,
    event_id: int = 3000,
    headers: Mapping[str, str] | None = None,
    custom_properties: Mapping[str, Any] | None = None,
) -> Response:
    """Azure DevOps' WrappedException error body (`customProperties` first when given, as Azure DevOps orders it)."""
    body: dict[str, Any] = {"$id": "1"}
    if custom_properties is not None:
        body["customProperties"] = dict(custom_properties)
    body |= {
        "innerException": None,
        "message": message,
        "typeName": type_name
        or f"Microsoft.VisualStudio.Services.WebApi.{type_key}, Microsoft.VisualStudio.Services.WebApi",
        "typeKey": type_key,
        "errorCode": 0,
        "eventId": event_id,
    }
    return json_response(body, status, headers)


def iso_ms(moment: datetime) -> str:
    """Azure DevOps' field date format: UTC, milliseconds, 'Z'."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def iso_7(moment: datetime) -> str:
    """The envelope's createdDate format: seven fractional digits."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond:06d}0Z"


def parse_iso(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def arg(request: Request, name: str) -> str | None:
    """A query parameter by name, case-insensitively (Azure DevOps ignores the case of parameter names)."""
    wanted = name.lower()
    for key, value in request.args.items(multi=True):
        if key.lower() == wanted:
            return value
    return None


def api_version(request: Request) -> str | None:
    """The api-version from the query, else from an `Accept: application/json;api-version=X` media type."""
    value = arg(request, "api-version")
    if value:
        return value.strip()
    for media_type in request.headers.get("Accept", "").split(","):
        _, params = parse_options_header(media_type)
        for key, param in params.items():
            if key.lower() == "api-version" and param.strip():
                return param.strip()
    return None


def read_json(request: Request) -> Any:
    """The JSON body of a POST/PUT; Azure DevOps binds bodies only from JSON media types."""
    if request.mimetype not in ("application/json", "application/json-patch+json"):
        raise Reject(
            error(
                415,
                f"The request's Content-Type '{request.mimetype or 'none'}' is not supported; send application/json.",
                "VssRequestContentTypeNotSupportedException",
            )  # fmt: skip
        )
    try:
        return json.loads(request.get_data(cache=True) or b"null")
    except ValueError:
        raise Reject(error(400, "The request body is not valid JSON.")) from None


def query_int(request: Request, name: str, default: int) -> int:
    """A non-negative integer query parameter, or a 400 naming it."""
    text = arg(request, name)
    if text is None or text == "":
        return default
    if not text.isdigit():
        raise Reject(error(400, f"{name} must be a non-negative integer, not {text!r}."))
    return int(text)


def int_or_reject(value: Any, name: str, default: int) -> int:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise Reject(error(400, f"{name} must be a non-negative integer."))
    return value
