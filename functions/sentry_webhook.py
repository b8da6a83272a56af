"""Sentry's webhooks and the installations they make (contract §13.1, §13.2).

`sentry_webhook` (POST /api/sentry/webhook, anonymous; each request carries Sentry's signature) verifies, records
and queues a webhook, answering well within Sentry's 1 s. `apply_sentry_webhook` applies it from
`vsts-sentry-hooks`; a message the app did not write fails, so the host moves it to `vsts-sentry-hooks-poison`.
`PUT`/`GET /api/sentry/installations/{uuid}` (function key): an internal integration's token, and what is known
of an installation (never a token).
"""

from __future__ import annotations

import azure.functions as func

from functions.http import answer, json_response, read_json_object

# The queue's name (shared.store.queues.SENTRY_HOOKS_QUEUE_NAME; not imported here, so a cold start stays cheap).
SENTRY_HOOKS_QUEUE_NAME = "vsts-sentry-hooks"
INSTALLATION_ROUTE = "sentry/installations/{uuid}"

bp = func.Blueprint()


@bp.function_name("sentry_webhook")
@bp.route(route="sentry/webhook", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
def sentry_webhook(req: func.HttpRequest) -> func.HttpResponse:
    from shared.sentryapp.intake import receive_sentry_webhook  # on first use: keeps it out of every cold start

    result = receive_sentry_webhook(req.get_body() or b"", req.headers)
    return json_response(result.body, result.status, result.headers)


@bp.function_name("apply_sentry_webhook")
@bp.queue_trigger(arg_name="msg", queue_name=SENTRY_HOOKS_QUEUE_NAME, connection="AzureWebJobsStorage")
def apply_sentry_webhook(msg: func.QueueMessage) -> None:
    from shared.sentryapp.hooks import run_hook_message

    run_hook_message(msg.id, msg.get_body())


@bp.function_name("put_sentry_installation")
@bp.route(route=INSTALLATION_ROUTE, methods=["PUT"])
def put_installation(req: func.HttpRequest) -> func.HttpResponse:
    from shared.sentryapp.installations import put_static_token

    def action() -> func.HttpResponse:
        installation, created = put_static_token(req.route_params.get("uuid", ""), read_json_object(req))
        return json_response(installation.public(), 201 if created else 200)

    return answer(action)


@bp.function_name("get_sentry_installation")
@bp.route(route=INSTALLATION_ROUTE, methods=["GET"])
def get_installation(req: func.HttpRequest) -> func.HttpResponse:
    from shared.sentryapp.installations import get_installation as read

    return answer(lambda: json_response(read(req.route_params.get("uuid", "")).public()))
