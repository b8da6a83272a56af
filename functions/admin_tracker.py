"""Admin routes of the tracker side (contract §6): installations, members, tracked issues and links."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType

import azure.functions as func

from functions.http import (
    error_response,
    invalid_input_response,
    json_response,
    read_json_object,
    unavailable_response,
)
from shared.errors import ConcurrentUpdate, InvalidInput, NotFound, StorageUnavailable
from shared.settings import SettingsError

bp = func.Blueprint()


def _tracker_admin() -> ModuleType:
    """`shared.admin.tracker`, imported on first use: admin calls are rare, and a cold start of the webhook or
    of a lookup should not pay for their code."""
    from shared.admin import tracker

    return tracker


def _handle(action: Callable[[], func.HttpResponse]) -> func.HttpResponse:
    try:
        return action()
    except InvalidInput as exc:
        return invalid_input_response(exc)
    except NotFound as exc:
        return error_response(404, str(exc))
    except (StorageUnavailable, ConcurrentUpdate, SettingsError) as exc:
        return unavailable_response(exc)


@bp.function_name("put_installation")
@bp.route(route="orgs/{org_id}/integrations/{integration_id}", methods=["PUT"])
def put_installation(req: func.HttpRequest) -> func.HttpResponse:
    def action() -> func.HttpResponse:
        p = req.route_params
        installation, created = _tracker_admin().put_installation(
            p["org_id"], p["integration_id"], read_json_object(req)
        )
        return json_response(installation.public(), 201 if created else 200)

    return _handle(action)


@bp.function_name("put_member")
@bp.route(route="orgs/{org_id}/members/{email}", methods=["PUT"])
def put_member(req: func.HttpRequest) -> func.HttpResponse:
    def action() -> func.HttpResponse:
        member, created = _tracker_admin().put_member(
            req.route_params["org_id"], req.route_params["email"], read_json_object(req)
        )
        return json_response(member.public(), 201 if created else 200)

    return _handle(action)


@bp.function_name("delete_member")
@bp.route(route="orgs/{org_id}/members/{email}", methods=["DELETE"])
def delete_member(req: func.HttpRequest) -> func.HttpResponse:
    def action() -> func.HttpResponse:
        _tracker_admin().delete_member(req.route_params["org_id"], req.route_params["email"])
        return func.HttpResponse(status_code=204)

    return _handle(action)


@bp.function_name("put_issue")
@bp.route(route="orgs/{org_id}/issues/{issue_id}", methods=["PUT"])
def put_issue(req: func.HttpRequest) -> func.HttpResponse:
    def action() -> func.HttpResponse:
        issue, created = _tracker_admin().put_issue(
            req.route_params["org_id"], req.route_params["issue_id"], read_json_object(req)
        )
        return json_response(issue.public(), 201 if created else 200)

    return _handle(action)


@bp.function_name("get_tracked_issue")
@bp.route(route="orgs/{org_id}/issues/{issue_id}", methods=["GET"])
def get_tracked_issue(req: func.HttpRequest) -> func.HttpResponse:
    return _handle(
        lambda: json_response(
            _tracker_admin().get_issue(req.route_params["org_id"], req.route_params["issue_id"]).public()
        )
    )


@bp.function_name("put_link")
@bp.route(route="orgs/{org_id}/issues/{issue_id}/links/{integration_id}/{work_item_id}", methods=["PUT"])
def put_link(req: func.HttpRequest) -> func.HttpResponse:
    p = req.route_params
    return _handle(
        lambda: json_response(
            _tracker_admin().put_link(p["org_id"], p["issue_id"], p["integration_id"], p["work_item_id"]).public()
        )
    )


@bp.function_name("delete_link")
@bp.route(route="orgs/{org_id}/issues/{issue_id}/links/{integration_id}/{work_item_id}", methods=["DELETE"])
def delete_link(req: func.HttpRequest) -> func.HttpResponse:
    p = req.route_params
    return _handle(
        lambda: json_response(
            _tracker_admin().delete_link(p["org_id"], p["issue_id"], p["integration_id"], p["work_item_id"]).public()
        )
    )
