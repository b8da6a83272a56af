"""The Sentry App's UI components (contract §13.1): the issue-link schema, the two issue-link forms and the select
fields' options. Anonymous routes: every request but the schema carries its own credential, `Sentry-App-Signature`
(checked first: 401, nothing read or written, when it is wrong or missing).

Error bodies are `{"error": ...}` as everywhere, plus the same sentence as `message`: Sentry shows an integrator's
`message` to the person who submitted the form, and a generic failure otherwise.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import azure.functions as func

from functions.http import ado_error_response, answer, error_response, json_response

bp = func.Blueprint()


def _secret() -> str:
    from shared.settings import get_settings

    return get_settings().sentry_client_secret  # SettingsError (503) when it is not set


def _for_sentry(response: func.HttpResponse) -> func.HttpResponse:
    """An error answer with its sentence also as `message`, which Sentry shows."""
    if response.status_code < 400:
        return response
    body = json.loads(response.get_body())
    body["message"] = body.get("error")
    return json_response(body, response.status_code, dict(response.headers))


def _ui(action: Callable[[], func.HttpResponse]) -> func.HttpResponse:
    from shared.ado.client import AdoError
    from shared.deliveries.sentry import InvalidSignature
    from shared.model.integration import IntegrationNotFound
    from shared.store.crypto import DecryptionError

    def guarded() -> func.HttpResponse:
        try:
            return action()
        except InvalidSignature as exc:
            return error_response(401, str(exc))
        except (IntegrationNotFound, AdoError) as exc:
            return ado_error_response(exc, not_found="Azure DevOps could not find what the form names.")
        except DecryptionError:  # SECRETS_KEY changed, or a stored value was altered: an operator must fix it
            message = "The app cannot read the installation's stored tokens; check SECRETS_KEY."
            return error_response(503, message, {"Retry-After": "60"})

    return _for_sentry(answer(guarded))


@bp.function_name("sentry_schema")
@bp.route(route="sentry/schema", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def sentry_schema(req: func.HttpRequest) -> func.HttpResponse:
    from shared.sentryapp.components import schema

    return json_response(schema())


def _issue_link(req: func.HttpRequest, form: str, status: int) -> func.HttpResponse:
    # Imported on first use: these forms are rare, and other functions' cold starts should not pay for them.
    from shared.deliveries.sentry_ui import issue_link_request
    from shared.sentryapp import issue_links

    def action() -> func.HttpResponse:
        request = issue_link_request(req.headers, req.get_body() or b"", _secret(), form)
        linked = issue_links.create(request) if form == "create" else issue_links.link(request)
        return json_response(linked, status)

    return _ui(action)


@bp.function_name("sentry_issue_link_create")
@bp.route(route="sentry/issue-link/create", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
def sentry_issue_link_create(req: func.HttpRequest) -> func.HttpResponse:
    return _issue_link(req, "create", 201)


@bp.function_name("sentry_issue_link_link")
@bp.route(route="sentry/issue-link/link", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
def sentry_issue_link_link(req: func.HttpRequest) -> func.HttpResponse:
    return _issue_link(req, "link", 200)


def _options_route(kind: str) -> Callable[..., Any]:
    """GET /api/sentry/options/<kind>: a select field's options."""

    def handler(req: func.HttpRequest) -> func.HttpResponse:
        from shared.deliveries.sentry_ui import options_request
        from shared.sentryapp.components import options

        return _ui(lambda: json_response(options(kind, options_request(req.headers, req.params, _secret()))))

    name = f"sentry_options_{kind}"
    handler.__name__ = handler.__qualname__ = name  # the worker and its logs know a handler by this name
    route = bp.route(route=f"sentry/options/{kind}", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
    return bp.function_name(name)(route(handler))


sentry_options_projects = _options_route("projects")
sentry_options_workitemtypes = _options_route("workitemtypes")
sentry_options_workitems = _options_route("workitems")


@bp.function_name("sentry_stacktrace_link")
@bp.route(route="sentry/stacktrace-link", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def sentry_stacktrace_link(req: func.HttpRequest) -> func.HttpResponse:
    """A stack frame's link (contract §18): a plain browser GET, unsigned; it only redirects (302) to the file in
    Azure Repos, or answers a short page (404) saying what was looked for and how to add a code mapping."""
    from functions.http import page_response
    from shared.errors import ConcurrentUpdate, StorageUnavailable
    from shared.pages.render import render
    from shared.sentryapp.stacktrace_links import Found, link_request, resolve

    request = link_request(req.params)
    try:
        result = resolve(request)
    except (StorageUnavailable, ConcurrentUpdate):
        reason = "The app's storage is unavailable; try again in a minute."
        page = render("stacktrace_missing.html", status=503, headers={"Retry-After": "60"}, reason=reason)
        return page_response(page)
    if isinstance(result, Found):
        headers = {"Location": result.url, "Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}
        return func.HttpResponse(status_code=302, headers=headers)
    page = render(
        "stacktrace_missing.html",
        status=404,
        headers={"Cache-Control": "no-store"},
        reason=result.reason,
        filename=result.filename,
        line=result.line,
        tried=result.tried,
    )
    return page_response(page)
