"""`create_work_item`: create a work item for a tracked issue and link it (contract §12.4)."""

from __future__ import annotations

import math

import azure.functions as func

from functions.http import ado_error_response, answer, error_response, json_response, read_json_object
from shared.ado.client import AdoError
from shared.model.integration import IntegrationNotFound

bp = func.Blueprint()


@bp.function_name("create_work_item")
@bp.route(route="orgs/{org_id}/issues/{issue_id}/workitems", methods=["POST"])
def create_work_item(req: func.HttpRequest) -> func.HttpResponse:
    # Imported on first use: creating work items is rare, and other functions' cold starts should not pay for it.
    from shared.admin import workitems

    def action() -> func.HttpResponse:
        try:
            created = workitems.create_work_item(
                req.route_params["org_id"],
                req.route_params["issue_id"],
                read_json_object(req),
                req.headers.get("Idempotency-Key"),
            )
        except workitems.KeyReused as exc:
            return error_response(422, str(exc))
        except workitems.InProgress as exc:
            return error_response(409, str(exc), {"Retry-After": str(max(1, math.ceil(exc.retry_after)))})
        except (AdoError, IntegrationNotFound) as exc:
            return ado_error_response(
                exc, not_found="The project or the work item type does not exist, or cannot be read."
            )
        return json_response(created, 201)

    return answer(action)
