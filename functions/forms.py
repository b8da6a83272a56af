"""What forms need (contract §12.5): projects, work item types, states, area and iteration paths of an
integration's organization, each `[{"label", "value"}]`, cached; `?refresh=true` reads Azure DevOps again."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import azure.functions as func

from functions.http import ado_error_response, error_response, json_response
from shared.ado.client import AdoError
from shared.errors import ConcurrentUpdate, InvalidInput, StorageUnavailable
from shared.model.integration import IntegrationNotFound
from shared.settings import SettingsError

bp = func.Blueprint()

_FAILURES = (AdoError, IntegrationNotFound, StorageUnavailable, ConcurrentUpdate, SettingsError)
PROJECT = "vsts/{integration_id}/projects/{project}"
NO_PROJECT = "The project does not exist or cannot be read with the integration's credentials."


def _forms() -> Any:
    """A `shared.lookups.forms.Forms`, imported on first use: a cold start of the webhook or of another lookup
    should not pay for this code."""
    from shared.lookups.forms import Forms

    return Forms()


def _refresh(req: func.HttpRequest) -> bool | None:
    """`refresh`: absent or false -> False, true -> True, anything else -> None (400)."""
    value = req.params.get("refresh")
    if value is None:
        return False
    return {"true": True, "false": False}.get(value.strip().lower())


def _route(name: str, route: str, method: str, *route_keys: str, not_found: str, **fixed: str) -> Callable:
    """A GET answering `Forms().<method>(integration_id, *route values, **fixed, refresh=...)` as JSON."""

    def handler(req: func.HttpRequest) -> func.HttpResponse:
        refresh = _refresh(req)
        if refresh is None:
            return error_response(400, "The query parameter refresh must be true or false.")
        args = [req.route_params.get(key, "") for key in ("integration_id", *route_keys)]
        try:
            options = getattr(_forms(), method)(*args, **fixed, refresh=refresh)
        except InvalidInput as exc:
            return error_response(400, str(exc))
        except _FAILURES as exc:
            return ado_error_response(exc, not_found=not_found)
        return json_response(options)

    handler.__name__ = handler.__qualname__ = name  # the worker and its logs know a handler by this name
    return bp.function_name(name)(bp.route(route=route, methods=["GET"])(handler))


list_projects = _route(
    "list_projects",
    "vsts/{integration_id}/projects",
    "projects",
    not_found="The organization's projects cannot be read with the integration's credentials.",
)
list_work_item_types = _route(
    "list_work_item_types", PROJECT + "/workitemtypes", "work_item_types", "project", not_found=NO_PROJECT
)
list_states = _route(
    "list_states",
    PROJECT + "/workitemtypes/{work_item_type}/states",
    "states",
    "project",
    "work_item_type",
    not_found="The project or the work item type does not exist or cannot be read.",
)
list_areas = _route("list_areas", PROJECT + "/areas", "paths", "project", not_found=NO_PROJECT, structure="areas")
list_iterations = _route(
    "list_iterations", PROJECT + "/iterations", "paths", "project", not_found=NO_PROJECT, structure="iterations"
)
