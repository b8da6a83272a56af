"""One queue message, as a queue function receives it: decoded, applied with storage's background timeouts (nobody
waits on a queue), and summed up in one log line. A message the app did not write raises ValueError, so the host
moves it to the poison queue for a person; StorageUnavailable (when even queueing a retry failed) propagates, so
the host retries it. Every other failure that may pass was queued again, or poisoned, by `shared.sync.queued`."""

from __future__ import annotations

import logging
from collections.abc import Callable

from shared.deliveries import InvalidDelivery
from shared.store import queues
from shared.store.deadline import background
from shared.sync.inbound import ApplyReport
from shared.sync.outbound import OutboundReport
from shared.sync.queued import Outcome, process_outbound_message, process_update_message

log = logging.getLogger(__name__)

FUNCTIONS = {queues.QUEUE_NAME: "apply_workitem_update", queues.OUTBOUND_QUEUE_NAME: "apply_outbound_change"}


def run_message(queue: str, message_id: str, body: bytes) -> Outcome:
    process = process_update_message if queue == queues.QUEUE_NAME else process_outbound_message
    return run_with(queue, FUNCTIONS[queue], message_id, body, process)


def run_with(queue: str, function: str, message_id: str, body: bytes, process: Callable[[str], Outcome]) -> Outcome:
    """`run_message` for any queue of the app: `process` reads and applies one message's text (InvalidDelivery for
    one the app did not write); `function` names the queue function in the log line."""
    text = body.decode("utf-8", errors="replace")
    try:
        with background():
            outcome = process(text)
    except InvalidDelivery as exc:
        raise ValueError(f"message {message_id} on {queue} is not one the app wrote: {exc}") from None
    if outcome.report is not None:
        log.info("%s: %s: %s", function, outcome.subject, _summary(outcome.report))
    return outcome


def _summary(report: object) -> str:
    if isinstance(report, ApplyReport):
        return f"{report.linked} linked issue(s), changes {report.changes or 'none'}"
    if isinstance(report, OutboundReport):
        return f"updated {report.updated or 'none'}, failed {[key for key, _ in report.failed] or 'none'}"
    return str(report)
