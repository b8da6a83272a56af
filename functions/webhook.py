"""The webhook and the queue behind it (contract §5).

`vsts_webhook` (POST /api/vsts/issue-updated, anonymous; the delivery carries its own credential) checks,
authenticates and queues a delivery, and answers fast. `apply_workitem_update` applies it from the queue; a
failure that may pass is queued again with back-off (`shared.sync.queued`) and, once its retry budget is
spent, moved to `vsts-workitem-updates-poison`; anything else raises, so the host retries it and, after
`maxDequeueCount`, poisons it.
"""

from __future__ import annotations

import logging

import azure.functions as func

from functions.http import json_response

# The queue's name, as contract §3 fixes it (shared.store.queues.QUEUE_NAME; not imported here, see below).
QUEUE_NAME = "vsts-workitem-updates"

bp = func.Blueprint()
log = logging.getLogger(__name__)


@bp.function_name("vsts_webhook")
@bp.route(route="vsts/issue-updated", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
def vsts_webhook(req: func.HttpRequest) -> func.HttpResponse:
    # Imported on first use, like the sync code below: each costs every cold start otherwise, and most cold
    # starts of a function app serve something else.
    from shared.intake.webhook import receive_delivery

    answer = receive_delivery(req.get_body() or b"", req.headers)
    return json_response(answer.body, answer.status, answer.headers)


@bp.function_name("apply_workitem_update")
@bp.queue_trigger(arg_name="msg", queue_name=QUEUE_NAME, connection="AzureWebJobsStorage")
def apply_workitem_update(msg: func.QueueMessage) -> None:
    from shared.deliveries import InvalidDelivery
    from shared.store.deadline import background
    from shared.sync.queued import process_update_message

    try:
        with background():  # nobody waits on the queue: storage keeps its longer timeouts and retries
            outcome = process_update_message(msg.get_body().decode("utf-8", errors="replace"))
    except InvalidDelivery as exc:
        # Not a message the webhook wrote: fail it, so it ends in the poison queue for a human, never dropped.
        raise ValueError(f"message {msg.id} is not a work item update: {exc}") from None
    # A failure that may pass was queued again (or poisoned) by process_update_message; StorageUnavailable,
    # raised when even that failed, propagates so the host retries this message.
    if outcome.report is not None:
        log.info(
            "apply_workitem_update: %s: %d linked issue(s), changes %s",
            outcome.subject,
            outcome.report.linked,
            outcome.report.changes or "none",
        )
