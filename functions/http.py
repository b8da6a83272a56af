"""JSON responses shared by the HTTP adapters (contract §3: every error body is `{"error": "..."}`)."""

from __future__ import annotations

import json
from typing import Any

import azure.functions as func


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> func.HttpResponse:
    return func.HttpResponse(
        json.dumps(body, separators=(",", ":")),
        status_code=status,
        headers=headers,
        mimetype="application/json",
    )


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> func.HttpResponse:
    return json_response({"error": message}, status, headers)
