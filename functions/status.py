"""`GET /api/status` (function key) and its redrive form's post (contract §14): see `shared.pages.status`.

The post is anonymous at the Functions level on purpose: a browser's form cannot send the function key
without rendering it into the page, so the post is protected by the page's session cookie, its anti-forgery
token and the browser's Sec-Fetch-Site/Origin instead.
"""

from __future__ import annotations

import azure.functions as func

from functions.http import page_response

bp = func.Blueprint()


@bp.function_name("status_page")
@bp.route(route="status", methods=["GET"])
def status_page(req: func.HttpRequest) -> func.HttpResponse:
    from shared.pages.status import status_page as page  # on first use: keeps Jinja2 out of every cold start

    return page_response(page(req.url, req.headers.get("cookie")))


@bp.function_name("status_redrive")
@bp.route(route="status/redrive", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
def status_redrive(req: func.HttpRequest) -> func.HttpResponse:
    from shared.pages.status import redrive_from_form

    return page_response(redrive_from_form(req.get_body() or b"", dict(req.headers), req.url))


@bp.function_name("status_action")
@bp.route(route="status/action", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
def status_action(req: func.HttpRequest) -> func.HttpResponse:
    """A problem's action button; protected like the redrive form (see the module's docstring)."""
    from shared.pages.status import action_from_form

    return page_response(action_from_form(req.get_body() or b"", dict(req.headers), req.url))


@bp.function_name("status_view")
@bp.route(route="status/view", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def status_view(req: func.HttpRequest) -> func.HttpResponse:
    """Another page of the status page's lists, or one organization's rows: opened by the session cookie."""
    from shared.pages.status import status_view as page

    return page_response(page(req.url, req.headers.get("cookie")))
