"""`health`: GET /api/health, anonymous. Says whether the app is up and Table Storage answers."""

from __future__ import annotations

import azure.functions as func

from functions.http import json_response
from shared.store.base import storage_is_reachable

bp = func.Blueprint()


@bp.function_name("health")
@bp.route(route="health", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def health(req: func.HttpRequest) -> func.HttpResponse:
    if storage_is_reachable():
        return json_response({"status": "ok", "storage": "ok"})
    return json_response({"status": "degraded", "storage": "unavailable"}, 503, {"Retry-After": "5"})
