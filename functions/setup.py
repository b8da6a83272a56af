"""The setup page (contract §14): `GET /api/setup` and its form posts (anonymous routes with their own
protection: a one-time link or Sentry's redirect opens a signed session cookie, and every form carries the
session's anti-forgery token), and `POST /api/setup/links` (function key), which makes a one-time link."""

from __future__ import annotations

from urllib.parse import urlsplit

import azure.functions as func

from functions.http import answer, json_response, page_response, read_json_object

bp = func.Blueprint()


def _page_request(req: func.HttpRequest) -> object:
    from shared.pages.setup import PageRequest

    headers = {name.lower(): value for name, value in req.headers.items()}
    return PageRequest(req.method, req.url, headers, dict(req.params), req.get_body() or b"")


@bp.function_name("setup_page")
@bp.route(route="setup", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def setup_page(req: func.HttpRequest) -> func.HttpResponse:
    from shared.pages.setup import show

    return page_response(show(_page_request(req)))


def _form_route(step: str) -> None:
    """`POST /api/setup/<step>`: one function per step, so every route is a literal one (none shadows links)."""

    def handler(req: func.HttpRequest) -> func.HttpResponse:
        from shared.pages.setup import post

        return page_response(post(step, _page_request(req)))

    name = f"setup_{step}"
    handler.__name__ = handler.__qualname__ = name  # the worker and its logs know a handler by this name
    bp.function_name(name)(
        bp.route(route=f"setup/{step}", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)(handler)
    )


for _step in ("open", "connect", "sync", "rules", "defaults", "hook", "code"):
    _form_route(_step)


@bp.function_name("create_setup_link")
@bp.route(route="setup/links", methods=["POST"])
def create_setup_link(req: func.HttpRequest) -> func.HttpResponse:
    def action() -> func.HttpResponse:
        import time

        from shared.pages.setup_entry import create_link

        parts = urlsplit(req.url)
        link = create_link(read_json_object(req), base_url=f"{parts.scheme}://{parts.netloc}", now=time.time())
        return json_response(link, 201)

    return answer(action)
