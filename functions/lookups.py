"""`get_issue` and `search_issues`: a work item as an external issue, and work item search (contract §4)."""

from __future__ import annotations

import azure.functions as func

from functions.http import ado_error_response, error_response, json_response
from shared.ado.client import AdoError
from shared.errors import ConcurrentUpdate, StorageUnavailable
from shared.lookups import issues as lookups
from shared.model.integration import IntegrationNotFound
from shared.settings import SettingsError
from shared.validation import positive_int

bp = func.Blueprint()

MAX_QUERY_LENGTH = 1000
_FAILURES = (AdoError, IntegrationNotFound, StorageUnavailable, ConcurrentUpdate, SettingsError)


@bp.function_name("get_issue")
@bp.route(route="vsts/{integration_id}/issues/{issue_id}", methods=["GET"])
def get_issue(req: func.HttpRequest) -> func.HttpResponse:
    issue_id = positive_int(req.route_params.get("issue_id"))
    if issue_id is None:
        return error_response(400, "The issue id must be a positive whole number.")
    try:
        issue = lookups.get_issue(req.route_params.get("integration_id", ""), issue_id)
    except _FAILURES as exc:
        return ado_error_response(exc, not_found=f"Work item {issue_id} does not exist or cannot be read.")
    return json_response(issue)


@bp.function_name("search_issues")
@bp.route(route="vsts/{integration_id}/issues", methods=["GET"])
def search_issues(req: func.HttpRequest) -> func.HttpResponse:
    text = (req.params.get("q") or "").strip()
    if not text:
        return error_response(400, "The query parameter q is required and must not be blank.")
    if len(text) > MAX_QUERY_LENGTH:
        return error_response(400, f"The query parameter q must be at most {MAX_QUERY_LENGTH} characters.")
    top = lookups.DEFAULT_SEARCH_TOP
    if "top" in req.params:
        top = positive_int(req.params.get("top"), lookups.MAX_SEARCH_TOP)
        if top is None:
            return error_response(
                400, f"The query parameter top must be a whole number from 1 to {lookups.MAX_SEARCH_TOP}."
            )
    try:
        results = lookups.search_issues(req.route_params.get("integration_id", ""), text, top)
    except _FAILURES as exc:
        return ado_error_response(
            exc,
            not_found="Work item search is not available for this organization: on Azure DevOps Server, the "
            "Search extension must be installed and configured for the collection.",
        )
    return json_response(results)
