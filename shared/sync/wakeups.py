"""Accepted work is stored first, then woken (docs/design.md, contract §16).

`accept` notes a piece of work in `shared.store.pending` and then sends its queue message; the message is only a
wake-up: when the queue does not take it, the sweeper (`shared.jobs.pending`) sends it after the grace period.
A worker reads the row before applying (`claim`) and deletes it after (`settle`), under the ETag it read, so a
change accepted again while it ran is woken again.
"""

from __future__ import annotations

import logging

from shared.clock import SYSTEM, Clock
from shared.errors import StorageUnavailable
from shared.model.changes import OutboundChange
from shared.model.comments import CommentChange
from shared.model.sentry import SentryUpdate
from shared.settings import get_settings
from shared.store import pending, queues
from shared.store.pending import Pending, PendingRef

log = logging.getLogger(__name__)


def hook_ref(uuid: str, request_id: str) -> PendingRef:
    return PendingRef(pending.SENTRY_HOOK, f"{uuid}|{request_id}")


def outbound_ref(change: OutboundChange) -> PendingRef | None:
    """The row of a tracker-side change; None for a change inbound sync queued (it is stored in its delivery)."""
    if change.exclude or change.after:
        return None
    return PendingRef(pending.OUTBOUND, f"{change.org_id}|{change.issue_id}|{','.join(sorted(change.fields))}")


def comment_ref(change: CommentChange) -> PendingRef:
    return PendingRef(pending.COMMENT, f"{change.org_id}|{change.issue_id}|{change.comment_id}")


def sentry_update_ref(update: SentryUpdate) -> PendingRef | None:
    """The row of a link announcement; None for a change inbound sync queued (stored in its delivery)."""
    if update.link is None or update.after or update.fields:
        return None
    return PendingRef(pending.SENTRY_UPDATE, f"{update.org_id}|{update.issue_id}|{update.link}")


def note(ref: PendingRef, queue: str, message: str, *, clock: Clock = SYSTEM) -> None:
    """Store the work (StorageUnavailable: nothing was accepted)."""
    pending.note(ref, queue, message, now=clock.now(), grace=get_settings().sweep_grace_seconds)


def wake(ref: PendingRef, queue: str, message: str) -> bool:
    """Send the wake-up of noted work; False (logged) when the queue did not take it: the sweeper sends it."""
    try:
        queues.enqueue(message, queue)
        return True
    except StorageUnavailable as exc:
        log.warning(
            "%s %s is stored but its queue message was not sent (%s); the sweeper sends it", ref.kind, ref.key, exc
        )
        return False


def accept(ref: PendingRef, queue: str, message: str, *, clock: Clock = SYSTEM) -> bool:
    """`note`, then `wake`: StorageUnavailable when the work could not be stored; otherwise whether it was woken."""
    note(ref, queue, message, clock=clock)
    return wake(ref, queue, message)


def claim(ref: PendingRef | None) -> Pending | None:
    """The row of work about to be applied (None: nothing noted); StorageUnavailable propagates."""
    return pending.get(ref) if ref is not None else None


def settle(row: Pending | None) -> None:
    """The work was applied (or poisoned, for a person): its row goes, unless it was noted again meanwhile. A
    failure is logged: the sweeper wakes it again, and applying it twice changes nothing more."""
    if row is None:
        return
    try:
        pending.settle(row)
    except StorageUnavailable as exc:
        log.warning(
            "%s %s was applied but its pending row stays (%s); it is woken once more", row.ref.kind, row.ref.key, exc
        )


def postpone(row: Pending | None, delay: float, *, clock: Clock = SYSTEM) -> None:
    """The work's message was queued again `delay` seconds ahead: the sweeper leaves it alone till then."""
    if row is None:
        return
    try:
        pending.postpone(row, wake_at=clock.now() + delay + get_settings().sweep_grace_seconds)
    except StorageUnavailable as exc:
        log.warning(
            "%s %s: its wake time could not be moved (%s); it may be woken early", row.ref.kind, row.ref.key, exc
        )
