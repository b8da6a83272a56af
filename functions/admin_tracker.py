"""Admin routes of the tracker side (contract §6): installations, members, tracked issues and links."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType

import azure.functions as func

from functions.http import answer, json_response, read_json_object

bp = func.Blueprint()


def _tracker_admin() -> ModuleType:
    """`shared.admin.tracker`, imported on first use: admin calls are rare, and a cold start of the webhook or
    of a lookup should not pay for their code."""
    from shared.admin import tracker

    return tracker


def _put(name: str, *route_keys: str) -> Callable[[func.HttpRequest], func.HttpResponse]:
    """A PUT handler: `shared.admin.tracker.<name>(*route values, body)` -> 201 when created, else 200."""

    def handler(req: func.HttpRequest) -> func.HttpResponse:
        def action() -> func.HttpResponse:
            args = [req.route_params[key] for key in route_keys]
            saved, created = getattr(_tracker_admin(), name)(*args, read_json_object(req))
            return json_response(saved.public(), 201 if created else 200)

        return answer(action)

    return _named(handler, name)


def _public(name: str, *route_keys: str) -> Callable[[func.HttpRequest], func.HttpResponse]:
    """A handler answering what `shared.admin.tracker.<name>(*route values)` returns, as its public view."""

    def handler(req: func.HttpRequest) -> func.HttpResponse:
        args = [req.route_params[key] for key in route_keys]
        return answer(lambda: json_response(getattr(_tracker_admin(), name)(*args).public()))

    return _named(handler, name)


def _named(handler: Callable[[func.HttpRequest], func.HttpResponse], name: str) -> Callable:
    handler.__name__ = handler.__qualname__ = name  # the worker and its logs know a handler by this name
    return handler


ISSUE = "orgs/{org_id}/issues/{issue_id}"
LINK = ISSUE + "/links/{integration_id}/{work_item_id}"
ISSUE_KEYS = ("org_id", "issue_id")
LINK_KEYS = (*ISSUE_KEYS, "integration_id", "work_item_id")


def _register(name: str, route: str, method: str, handler: Callable) -> Callable:
    return bp.function_name(name)(bp.route(route=route, methods=[method])(handler))


put_installation = _register(
    "put_installation",
    "orgs/{org_id}/integrations/{integration_id}",
    "PUT",
    _put("put_installation", "org_id", "integration_id"),
)
get_installation = _register(
    "get_installation",
    "orgs/{org_id}/integrations/{integration_id}",
    "GET",
    _public("get_installation", "org_id", "integration_id"),
)
put_member = _register("put_member", "orgs/{org_id}/members/{email}", "PUT", _put("put_member", "org_id", "email"))
put_issue = _register("put_issue", ISSUE, "PUT", _put("put_issue", *ISSUE_KEYS))
get_tracked_issue = _register("get_tracked_issue", ISSUE, "GET", _public("get_issue", *ISSUE_KEYS))
put_link = _register("put_link", LINK, "PUT", _public("put_link", *LINK_KEYS))
delete_link = _register("delete_link", LINK, "DELETE", _public("delete_link", *LINK_KEYS))


@bp.function_name("delete_member")
@bp.route(route="orgs/{org_id}/members/{email}", methods=["DELETE"])
def delete_member(req: func.HttpRequest) -> func.HttpResponse:
    def action() -> func.HttpResponse:
        _tracker_admin().delete_member(req.route_params["org_id"], req.route_params["email"])
        return func.HttpResponse(status_code=204)

    return answer(action)
