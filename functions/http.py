"""What the HTTP adapters share: JSON responses, request bodies, and errors mapped to status codes.

Every error body is `{"error": "<one clear sentence>"}` (contract §3); nothing from a stack trace, a
credential or the request body ever reaches one.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable
from typing import Any

import azure.functions as func

from shared.ado.client import AdoError, AdoNotFound, AdoThrottled, AdoTimeout, AdoUnauthorized
from shared.errors import (
    BodyTooLarge,
    ConcurrentUpdate,
    Conflict,
    InvalidInput,
    NotFound,
    NotQueued,
    StorageUnavailable,
)
from shared.model.integration import IntegrationNotFound
from shared.settings import SettingsError
from shared.validation import parse_json

log = logging.getLogger(__name__)

MAX_ADMIN_BODY_BYTES = 64 * 1024
DEFAULT_RETRY_AFTER_SECONDS = 30


def page_response(page: Any) -> func.HttpResponse:
    """A rendered page (`shared.pages.render.Page`): HTML with its status and headers (CSP, cookies)."""
    return func.HttpResponse(
        page.html, status_code=page.status, headers=page.headers, mimetype="text/html", charset="utf-8"
    )


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> func.HttpResponse:
    return func.HttpResponse(
        json.dumps(body, separators=(",", ":")),
        status_code=status,
        headers=headers,
        mimetype="application/json",
    )


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> func.HttpResponse:
    return json_response({"error": message}, status, headers)


def read_json_object(req: func.HttpRequest, max_bytes: int = MAX_ADMIN_BODY_BYTES) -> dict[str, Any]:
    """The request body as a JSON object; InvalidInput (400) or BodyTooLarge (413) otherwise."""
    body = req.get_body() or b""
    if len(body) > max_bytes:
        raise BodyTooLarge(f"The request body is larger than {max_bytes} bytes.")
    try:
        value = parse_json(body.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        raise InvalidInput("The request body is not valid JSON.") from None
    if not isinstance(value, dict):
        raise InvalidInput("The request body must be a JSON object.")
    return value


def answer(action: Callable[[], func.HttpResponse]) -> func.HttpResponse:
    """Run a route's action; the failures all routes share become their status codes and one sentence."""
    try:
        return action()
    except InvalidInput as exc:
        return error_response(413 if isinstance(exc, BodyTooLarge) else 400, str(exc))
    except NotFound as exc:
        return error_response(404, str(exc))
    except Conflict as exc:
        return error_response(409, str(exc))
    except (StorageUnavailable, ConcurrentUpdate, SettingsError) as exc:
        return unavailable_response(exc)
    except AdoError as exc:  # a route that also reads Azure DevOps, such as the link check (contract §12.4)
        return ado_error_response(exc, not_found="Azure DevOps could not find what the request names.")


def ado_error_response(exc: Exception, *, not_found: str) -> func.HttpResponse:
    """The status code and sentence for a failure of a lookup on Azure DevOps (contract §4.1)."""
    if isinstance(exc, IntegrationNotFound):
        return error_response(404, "No active integration has that id.")
    if isinstance(exc, AdoNotFound):
        return error_response(404, not_found)
    if isinstance(exc, AdoUnauthorized):
        return error_response(
            502, "Azure DevOps refused the integration's credentials; the integration needs re-authorization."
        )
    if isinstance(exc, AdoThrottled):
        retry_after = exc.retry_after if exc.retry_after is not None else DEFAULT_RETRY_AFTER_SECONDS
        return error_response(
            503,
            "Azure DevOps is throttling or unavailable; try again later.",
            {"Retry-After": str(max(1, math.ceil(retry_after)))},
        )
    if isinstance(exc, AdoTimeout):
        return error_response(504, "Azure DevOps did not answer in time.")
    if isinstance(exc, (StorageUnavailable, ConcurrentUpdate, SettingsError)):
        return unavailable_response(exc)
    if isinstance(exc, AdoError):
        log.warning("Azure DevOps call failed: %s", exc)
        return error_response(502, _sentence(str(exc)))
    raise exc


def unavailable_response(exc: StorageUnavailable | ConcurrentUpdate | SettingsError) -> func.HttpResponse:
    """503 for what may pass: storage down or busy, or a setting the operator must fix (named, never a value)."""
    if isinstance(exc, SettingsError):
        log.error("The app is misconfigured: %s", exc)
        return error_response(503, f"The app is misconfigured: {exc}", {"Retry-After": "60"})
    log.warning("Answering 503: %s", exc)
    if isinstance(exc, NotQueued):
        return error_response(
            503,
            "The change was saved but not yet queued; send the same request again.",
            {"Retry-After": "5"},
        )
    return error_response(503, "Storage is unavailable or busy; nothing was changed, try again.", {"Retry-After": "5"})


def _sentence(text: str) -> str:
    text = " ".join(text.split())[:300]
    text = text[:1].upper() + text[1:]
    return text if text.endswith(".") else text + "."
