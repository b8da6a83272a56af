"""Queue messages applied with the queue's own back-off (contract §5.2, §12.2): `vsts-workitem-updates` and
`vsts-outbound`.

A failure that may pass (`RetryLater`: Azure DevOps throttled or down, storage busy) puts a copy of the message
back on the queue, invisible for the delay `shared.sync.retry` gives (never less than the Retry-After the
failure carries), with its attempt count raised, and then returns normally so the host deletes the original.
The host's own retries (`visibilityTimeout` 10 s, `maxDequeueCount` 5: under a minute) are left for what
fails outright. Once the budget is spent the message, as the webhook wrote it (attempt count dropped, so a
redrive gives it the whole budget again), goes to the poison queue. Writing the poison queue here rather
than raising spares a failing Azure DevOps five more quick attempts, and says why in the log.

If putting the message back (or in the poison queue) fails too, `StorageUnavailable` is raised: the host
then retries the original, which is still there. Nothing is ever dropped.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Generic, TypeVar

from shared.deliveries import read_message, to_message
from shared.deliveries.outbound import read_outbound_message, to_outbound_message
from shared.errors import RetryLater
from shared.settings import get_settings
from shared.store import queues
from shared.sync.inbound import ApplyReport, apply_workitem_update
from shared.sync.outbound import OutboundReport, apply_outbound
from shared.sync.retry import RetryPolicy

log = logging.getLogger(__name__)

R = TypeVar("R")


@dataclass(frozen=True)
class Outcome(Generic[R]):
    """What became of one message: `applied` (with its report), `retried` in `delay` seconds, or `poisoned`."""

    result: str
    attempt: int  # failed attempts, this one included when it failed
    subject: str  # what the message is about, for the log: "work item 42 rev 3"
    delay: int | None = None
    report: R | None = None


def policy() -> RetryPolicy:
    settings = get_settings()
    return RetryPolicy(
        settings.queue_retry_base_seconds, settings.queue_retry_max_seconds, settings.queue_retry_window_seconds
    )


def with_backoff(
    queue: str,
    attempt: int,
    apply: Callable[[], R],
    again: Callable[[int], str],
    what: str,
) -> Outcome[R]:
    """Run `apply` for a message that failed `attempt` times so far. On RetryLater, put `again(failures)` back on
    `queue` after the policy's delay, or `again(0)` on its poison queue once the budget is spent."""
    try:
        return Outcome("applied", attempt, what, report=apply())
    except RetryLater as exc:
        failures = attempt + 1
        delay = policy().delay(failures, exc.retry_after)
        if delay is None:
            queues.enqueue(again(0), queue + queues.POISON_SUFFIX)
            log.error("%s: moved to the poison queue after %d failed attempts: %s", what, failures, exc)
            return Outcome("poisoned", failures, what)
        queues.enqueue(again(failures), queue, delay_seconds=delay)
        log.warning("%s: attempt %d failed (%s); queued again, due in %d s", what, failures, exc, delay)
        return Outcome("retried", failures, what, delay)


def process_update_message(text: str, queue: str = queues.QUEUE_NAME) -> Outcome[ApplyReport]:
    """Apply one queued update; InvalidDelivery for a message the webhook did not write."""
    update, attempt = read_message(text)
    return with_backoff(
        queue,
        attempt,
        lambda: apply_workitem_update(update),
        lambda failures: to_message(update, attempt=failures),
        f"work item {update.work_item_id} rev {update.rev}",
    )


def process_outbound_message(text: str, queue: str = queues.OUTBOUND_QUEUE_NAME) -> Outcome[OutboundReport]:
    """Apply one outbound change; the links that failed in a way that may pass are queued again, alone."""
    change, attempt = read_outbound_message(text)
    again = [change]

    def apply() -> OutboundReport:
        report = apply_outbound(change)
        if report.retry:
            again[0] = replace(change, only=tuple(report.retry), after=())
            raise RetryLater(f"{len(report.retry)} linked work item(s) to try again", report.retry_after)
        return report

    return with_backoff(
        queue,
        attempt,
        apply,
        lambda failures: to_outbound_message(again[0], attempt=failures),
        f"outbound {change.org_id}/{change.issue_id} {','.join(change.fields)}",
    )
