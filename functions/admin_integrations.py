"""Admin routes for integrations: `PUT`/`GET`/`DELETE /api/vsts/integrations/{integration_id}` (contract §6)."""

from __future__ import annotations

import azure.functions as func

from functions.http import BadRequest, error_response, json_response, read_json_object
from shared import storage
from shared.errors import InvalidInput, StorageUnavailable
from shared.integrations import IntegrationStore, normalize_id

bp = func.Blueprint()

ROUTE = "vsts/integrations/{integration_id}"


@bp.function_name("put_integration")
@bp.route(route=ROUTE, methods=["PUT"])
def put(req: func.HttpRequest) -> func.HttpResponse:
    from shared.integration_admin import put_integration  # on first use: keeps it out of every cold start

    try:
        result = put_integration(req.route_params.get("integration_id", ""), read_json_object(req))
    except (BadRequest, InvalidInput) as exc:
        return error_response(400, str(exc))
    except StorageUnavailable:
        return error_response(503, "Storage is unavailable; nothing was changed.", {"Retry-After": "5"})
    body = result.integration.public()
    if result.generated_secret is not None:
        body["webhook_secret"] = result.generated_secret  # shown once, here only
    return json_response(body, 201 if result.created else 200)


@bp.function_name("get_integration")
@bp.route(route=ROUTE, methods=["GET"])
def get(req: func.HttpRequest) -> func.HttpResponse:
    integration_id = normalize_id(req.route_params.get("integration_id", ""))
    if not storage.is_valid_key(integration_id):
        return error_response(404, "No integration has that id.")
    try:
        integration = IntegrationStore().get(integration_id)
    except StorageUnavailable:
        return error_response(503, "Storage is unavailable; try again later.", {"Retry-After": "5"})
    if integration is None:
        return error_response(404, "No integration has that id.")
    return json_response(integration.public())


@bp.function_name("delete_integration")
@bp.route(route=ROUTE, methods=["DELETE"])
def delete(req: func.HttpRequest) -> func.HttpResponse:
    from shared.integration_admin import disable_integration  # on first use, as above

    try:
        integration = disable_integration(req.route_params.get("integration_id", ""))
    except StorageUnavailable:
        return error_response(503, "Storage is unavailable; nothing was changed.", {"Retry-After": "5"})
    if integration is None:
        return error_response(404, "No integration has that id.")
    return json_response(integration.public())
