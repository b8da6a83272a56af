"""`apply_outbound_change` (contract §12.2): tracker-side changes applied to the linked work items, from the
queue `vsts-outbound`. A failure that may pass is queued again with back-off (or poisoned after the budget) by
`shared.sync.queued`; a message the app did not write fails, so the host moves it to `vsts-outbound-poison`."""

from __future__ import annotations

import azure.functions as func

# The queue's name (shared.store.queues.OUTBOUND_QUEUE_NAME; not imported here, so a cold start stays cheap).
OUTBOUND_QUEUE_NAME = "vsts-outbound"

bp = func.Blueprint()


@bp.function_name("apply_outbound_change")
@bp.queue_trigger(arg_name="msg", queue_name=OUTBOUND_QUEUE_NAME, connection="AzureWebJobsStorage")
def apply_outbound_change(msg: func.QueueMessage) -> None:
    from shared.sync.worker import run_message

    run_message(OUTBOUND_QUEUE_NAME, msg.id, msg.get_body())
