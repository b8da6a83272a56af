"""Admin routes of code mappings (contract §18, function key): `PUT|GET /api/orgs/{org_id}/code-mappings`."""

from __future__ import annotations

import azure.functions as func

from functions.http import MAX_ADMIN_BODY_BYTES, answer, json_response

bp = func.Blueprint()

ROUTE = "orgs/{org_id}/code-mappings"


def _body(req: func.HttpRequest) -> object:
    from shared.errors import BodyTooLarge, InvalidInput
    from shared.validation import parse_json

    body = req.get_body() or b""
    if len(body) > MAX_ADMIN_BODY_BYTES:
        raise BodyTooLarge(f"The request body is larger than {MAX_ADMIN_BODY_BYTES} bytes.")
    try:
        return parse_json(body.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        raise InvalidInput("The request body is not valid JSON.") from None


@bp.function_name("put_code_mappings")
@bp.route(route=ROUTE, methods=["PUT"])
def put_code_mappings(req: func.HttpRequest) -> func.HttpResponse:
    from shared.admin.code_mappings import put_code_mappings as put

    def action() -> func.HttpResponse:
        saved = put(req.route_params["org_id"], _body(req))
        return json_response([m.public() for m in saved])

    return answer(action)


@bp.function_name("get_code_mappings")
@bp.route(route=ROUTE, methods=["GET"])
def get_code_mappings(req: func.HttpRequest) -> func.HttpResponse:
    from shared.admin.code_mappings import get_code_mappings as get

    return answer(lambda: json_response([m.public() for m in get(req.route_params["org_id"])]))
