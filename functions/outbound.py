"""`apply_outbound_change` (contract §12.2): tracker-side changes applied to the linked work items, from the
queue `vsts-outbound`. A failure that may pass is queued again with back-off (or poisoned after the budget) by
`shared.sync.queued`; a message the app did not write fails, so the host moves it to `vsts-outbound-poison`."""

from __future__ import annotations

import logging

import azure.functions as func

# The queue's name (shared.store.queues.OUTBOUND_QUEUE_NAME; not imported here, so a cold start stays cheap).
OUTBOUND_QUEUE_NAME = "vsts-outbound"

bp = func.Blueprint()
log = logging.getLogger(__name__)


@bp.function_name("apply_outbound_change")
@bp.queue_trigger(arg_name="msg", queue_name=OUTBOUND_QUEUE_NAME, connection="AzureWebJobsStorage")
def apply_outbound_change(msg: func.QueueMessage) -> None:
    from shared.deliveries import InvalidDelivery
    from shared.store.deadline import background
    from shared.sync.queued import process_outbound_message

    try:
        with background():  # nobody waits on the queue: storage keeps its longer timeouts and retries
            outcome = process_outbound_message(msg.get_body().decode("utf-8", errors="replace"))
    except InvalidDelivery as exc:
        raise ValueError(f"message {msg.id} is not an outbound change: {exc}") from None
    if outcome.report is not None:
        log.info(
            "apply_outbound_change: %s: updated %s, failed %s",
            outcome.subject,
            outcome.report.updated or "none",
            [key for key, _ in outcome.report.failed] or "none",
        )
