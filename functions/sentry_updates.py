"""`apply_sentry_update` (contract §13.2): inbound Azure DevOps changes on a Sentry organization's issue, and links
made outside Sentry's UI, sent to Sentry from the queue `vsts-sentry-updates`. A failure that may pass is queued
again with back-off (or poisoned after the budget) by `shared.sync.queued`; a message the app did not write fails,
so the host moves it to `vsts-sentry-updates-poison`."""

from __future__ import annotations

import azure.functions as func

# The queue's name (shared.store.queues.SENTRY_UPDATES_QUEUE_NAME; not imported here, so a cold start stays cheap).
SENTRY_UPDATES_QUEUE_NAME = "vsts-sentry-updates"

bp = func.Blueprint()


@bp.function_name("apply_sentry_update")
@bp.queue_trigger(arg_name="msg", queue_name=SENTRY_UPDATES_QUEUE_NAME, connection="AzureWebJobsStorage")
def apply_sentry_update(msg: func.QueueMessage) -> None:
    from shared.sentryapp.to_sentry import run_update_message

    run_update_message(msg.id, msg.get_body())
