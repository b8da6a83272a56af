"""`health`: GET /api/health, anonymous. Says whether the app is up and Table Storage answers, and if not, why
(storage refused the app's identity or key, or did not answer)."""

from __future__ import annotations

import azure.functions as func

from functions.http import json_response
from shared.store.health import storage_problem

bp = func.Blueprint()


@bp.function_name("health")
@bp.route(route="health", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def health(req: func.HttpRequest) -> func.HttpResponse:
    problem = storage_problem()
    if problem is None:
        return json_response({"status": "ok", "storage": "ok"})
    return json_response({"status": "degraded", "storage": "unavailable", "error": problem}, 503, {"Retry-After": "5"})
