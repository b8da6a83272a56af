"""Queue messages applied with the queue's own back-off (contract §5.2, §12.2): `vsts-workitem-updates` and
`vsts-outbound` (field changes and comment changes).

A failure that may pass (`RetryLater`: Azure DevOps throttled or down, storage busy) puts a copy of the message
back on the queue, invisible for the delay `shared.sync.retry` gives (never less than the Retry-After the
failure carries), with its attempt count raised, and then returns normally so the host deletes the original.
The host's own retries (`visibilityTimeout` 10 s, `maxDequeueCount` 5: under a minute) are left for what
fails outright. Once the budget is spent the message, as the webhook wrote it (attempt count dropped, so a
redrive gives it the whole budget again), goes to the poison queue, where it stays until a person redrives or
deletes it (it never expires). Writing the poison queue here rather
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
from shared.deliveries.comments import is_comment_message, read_comment_message, to_comment_message
from shared.deliveries.outbound import read_outbound_message, to_outbound_message
from shared.errors import RetryLater
from shared.settings import get_settings
from shared.store import queues
from shared.store.pending import PendingRef
from shared.sync import wakeups
from shared.sync.comments import apply_comment
from shared.sync.inbound import ApplyReport, apply_workitem_update
from shared.sync.outbound import OutboundReport, apply_outbound
from shared.sync.retry import RetryPolicy

log = logging.getLogger(__name__)

R = TypeVar("R")
C = TypeVar("C")


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
    pending: PendingRef | None = None,
) -> Outcome[R]:
    """Run `apply` for a message that failed `attempt` times so far. On RetryLater, put `again(failures)` back on
    `queue` after the policy's delay, or `again(0)` on its poison queue (kept until redriven or deleted) once the
    budget is spent. The work's `pending` row (docs/design.md) is read first, and settled once the work is
    applied or poisoned; a retry moves its wake time past the delay."""
    row = wakeups.claim(pending)
    try:
        report = apply()
    except RetryLater as exc:
        failures = attempt + 1
        delay = policy().delay(failures, exc.retry_after)
        if delay is None:
            queues.enqueue_poison(again(0), queue)
            log.error("%s: moved to the poison queue after %d failed attempts: %s", what, failures, exc)
            wakeups.settle(row)  # the poison queue holds it now, for a person
            return Outcome("poisoned", failures, what)
        queues.enqueue(again(failures), queue, delay_seconds=delay)
        log.warning("%s: attempt %d failed (%s); queued again, due in %d s", what, failures, exc, delay)
        wakeups.postpone(row, delay)
        return Outcome("retried", failures, what, delay)
    wakeups.settle(row)
    return Outcome("applied", attempt, what, report=report)


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
    """Apply one outbound change (a field change, or a comment change: §12.3); the links that failed in a way
    that may pass are queued again, alone."""
    if is_comment_message(text):
        comment, attempt = read_comment_message(text)
        return _links_with_backoff(
            queue,
            attempt,
            comment,
            apply_comment,
            lambda c, keys: replace(c, only=keys),
            lambda c, failures: to_comment_message(c, attempt=failures),
            f"comment {comment.org_id}/{comment.issue_id}/{comment.comment_id}",
            wakeups.comment_ref(comment),
        )
    change, attempt = read_outbound_message(text)
    return _links_with_backoff(
        queue,
        attempt,
        change,
        apply_outbound,
        lambda c, keys: replace(c, only=keys, after=()),
        lambda c, failures: to_outbound_message(c, attempt=failures),
        f"outbound {change.org_id}/{change.issue_id} {','.join(change.fields)}",
        wakeups.outbound_ref(change),
    )


def _links_with_backoff(
    queue: str,
    attempt: int,
    change: C,
    apply: Callable[[C], OutboundReport],
    narrow: Callable[[C, tuple[str, ...]], C],
    write: Callable[[C, int], str],
    what: str,
    pending: PendingRef | None,
) -> Outcome[OutboundReport]:
    """`with_backoff` for a change applied link by link: what is queued again is `narrow`ed to the links to retry."""
    again = [change]

    def run() -> OutboundReport:
        report = apply(change)
        if report.retry:
            again[0] = narrow(change, tuple(report.retry))
            raise RetryLater(f"{len(report.retry)} linked work item(s) to try again", report.retry_after)
        return report

    return with_backoff(queue, attempt, run, lambda failures: write(again[0], failures), what, pending)
