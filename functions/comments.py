"""Comments of tracked issues (contract §12.3): add, edit, delete; the linked work items follow behind the queue
`vsts-outbound`."""

from __future__ import annotations

from types import ModuleType

import azure.functions as func

from functions.http import answer, json_response, read_json_object

bp = func.Blueprint()

COMMENTS = "orgs/{org_id}/issues/{issue_id}/comments"
COMMENT = COMMENTS + "/{comment_id}"
# A text of 32,000 characters may take six bytes a character in JSON (`\u` escapes).
MAX_COMMENT_BODY_BYTES = 256 * 1024


def _comments_admin() -> ModuleType:
    """`shared.admin.comments`, imported on first use: a cold start of another route should not pay for it."""
    from shared.admin import comments

    return comments


@bp.function_name("list_comments")
@bp.route(route=COMMENTS, methods=["GET"])
def list_comments(req: func.HttpRequest) -> func.HttpResponse:
    def action() -> func.HttpResponse:
        listed = _comments_admin().list_comments(req.route_params["org_id"], req.route_params["issue_id"])
        return json_response(listed)

    return answer(action)


@bp.function_name("add_comment")
@bp.route(route=COMMENTS, methods=["POST"])
def add_comment(req: func.HttpRequest) -> func.HttpResponse:
    def action() -> func.HttpResponse:
        body = read_json_object(req, MAX_COMMENT_BODY_BYTES)
        saved = _comments_admin().add_comment(req.route_params["org_id"], req.route_params["issue_id"], body)
        return json_response(saved.public(), 201)

    return answer(action)


@bp.function_name("edit_comment")
@bp.route(route=COMMENT, methods=["PUT"])
def edit_comment(req: func.HttpRequest) -> func.HttpResponse:
    def action() -> func.HttpResponse:
        body = read_json_object(req, MAX_COMMENT_BODY_BYTES)
        params = req.route_params
        saved = _comments_admin().edit_comment(params["org_id"], params["issue_id"], params["comment_id"], body)
        return json_response(saved.public())

    return answer(action)


@bp.function_name("delete_comment")
@bp.route(route=COMMENT, methods=["DELETE"])
def delete_comment(req: func.HttpRequest) -> func.HttpResponse:
    def action() -> func.HttpResponse:
        params = req.route_params
        _comments_admin().delete_comment(params["org_id"], params["issue_id"], params["comment_id"])
        return func.HttpResponse(status_code=204)

    return answer(action)
