"""Admin routes for integrations: `PUT`/`GET`/`DELETE /api/vsts/integrations/{integration_id}` (contract §6)."""

from __future__ import annotations

import azure.functions as func

from functions.http import ado_error_response, answer, error_response, json_response, read_json_object
from shared.ado.client import AdoError
from shared.errors import ConcurrentUpdate, NotFound, StorageUnavailable
from shared.model.integration import IntegrationNotFound, normalize_id
from shared.settings import SettingsError
from shared.store import base as store_base
from shared.store.integrations import IntegrationStore

bp = func.Blueprint()

ROUTE = "vsts/integrations/{integration_id}"


@bp.function_name("put_integration")
@bp.route(route=ROUTE, methods=["PUT"])
def put(req: func.HttpRequest) -> func.HttpResponse:
    from shared.admin.integrations import put_integration  # on first use: keeps it out of every cold start

    def action() -> func.HttpResponse:
        result = put_integration(req.route_params.get("integration_id", ""), read_json_object(req))
        body = result.integration.public()
        if result.generated_secret is not None:
            body["webhook_secret"] = result.generated_secret  # shown once, here only
        return json_response(body, 201 if result.created else 200)

    return answer(action)


@bp.function_name("get_integration")
@bp.route(route=ROUTE, methods=["GET"])
def get(req: func.HttpRequest) -> func.HttpResponse:
    def action() -> func.HttpResponse:
        integration_id = normalize_id(req.route_params.get("integration_id", ""))
        integration = IntegrationStore().get(integration_id) if store_base.is_valid_key(integration_id) else None
        if integration is None:
            raise NotFound("No integration has that id.")
        return json_response(integration.public())

    return answer(action)


@bp.function_name("delete_integration")
@bp.route(route=ROUTE, methods=["DELETE"])
def delete(req: func.HttpRequest) -> func.HttpResponse:
    from shared.admin.integrations import disable_integration  # on first use, as above

    def action() -> func.HttpResponse:
        integration = disable_integration(req.route_params.get("integration_id", ""))
        if integration is None:
            raise NotFound("No integration has that id.")
        return json_response(integration.public())

    return answer(action)


@bp.function_name("create_subscription")
@bp.route(route=ROUTE + "/subscription", methods=["POST"])
def create_subscription(req: func.HttpRequest) -> func.HttpResponse:
    from shared.admin.subscriptions import create_subscription
    from shared.ado.subscriptions import SubscriptionRefused  # on first use, as above

    try:
        integration = create_subscription(req.route_params.get("integration_id", ""))
    except SettingsError as exc:
        return error_response(409, f"{exc} Set it to the public URL of /api/vsts/issue-updated first.")
    except SubscriptionRefused as exc:
        return error_response(502, str(exc))
    except (AdoError, IntegrationNotFound, StorageUnavailable, ConcurrentUpdate) as exc:
        return ado_error_response(exc, not_found="Azure DevOps did not find the organization.")
    return json_response(integration.public(), 201)
