"""Sentry alert rules (contract §17): `POST /api/sentry/alert-rule-action`, where Sentry sends an alert rule's
settings when a person saves it (`Sentry-App-Signature` over the body; 401 when it is wrong or missing). A 2xx
saves the rule and Sentry shows its `message`; a 4xx blocks the save and shows the `message` saying what is wrong.
The rule's firings arrive as webhooks (`functions/sentry_webhook.py`)."""

from __future__ import annotations

import azure.functions as func

from functions.http import json_response
from functions.sentry_components import _secret, _ui

bp = func.Blueprint()


@bp.function_name("sentry_alert_rule_action")
@bp.route(route="sentry/alert-rule-action", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
def sentry_alert_rule_action(req: func.HttpRequest) -> func.HttpResponse:
    from shared.deliveries.sentry_ui import alert_rule_request
    from shared.sentryapp.alerts import check_rule

    def action() -> func.HttpResponse:
        request = alert_rule_request(req.headers, req.get_body() or b"", _secret())
        return json_response(check_rule(request.installation_uuid, request.settings))

    return _ui(action)
