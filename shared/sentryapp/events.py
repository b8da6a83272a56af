"""A recorded Sentry webhook applied (contract §13.2, §15): Sentry's issue and comment changes become tracker-side
changes (§12) of the installation's organization, `sentry-<slug>`, with activity source `sentry`.

Only tracked issues change (an issue never linked is not tracked, and nothing is made for it, nor asked of
Sentry). The app's own writes (actor: the app) are ignored outright, which stops echoes. An issue webhook is a
hint: the issue is read from Sentry and what changed there since the app last saw it is applied
(`shared.sentryapp.sentry_state`), so a late or repeated webhook cannot roll the issue back. Reading it costs one
Sentry request per webhook of a tracked issue. Comments keep Sentry's id as `sentry-<id>`, so a repeated or late
delivery finds the same comment.
"""

from __future__ import annotations

import logging

from shared.admin.comments import add_comment, delete_comment, edit_comment
from shared.clock import SYSTEM, Clock
from shared.deliveries.sentry import CommentEvent, IssueEvent
from shared.errors import InvalidInput, NotFound
from shared.model.sentry import SentryInstallation
from shared.sentryapp.sentry_state import Unread, apply_current, read_current
from shared.store.sentry import SentryStore
from shared.store.tracker import TrackerStore

log = logging.getLogger(__name__)

SOURCE = "sentry"
# The fields each issue webhook says changed. `issue.ignored` is Sentry's current name for archiving,
# `issue.archived` the legacy one; `issue.unresolved` only comes with the `webhooks-unresolved` feature.
HINTED = {
    "resolved": ("status",),
    "unresolved": ("status",),
    "ignored": ("status",),
    "archived": ("status",),
    "assigned": ("assignee",),
}
COMMENT_PREFIX = "sentry-"
UNKNOWN_AUTHOR = "Sentry"


def apply_issue_event(
    event: IssueEvent, installation: SentryInstallation, *, store: SentryStore | None = None, clock: Clock = SYSTEM
) -> str:
    """Apply `issue.<action>` as a hint (see above); what became of it, for the log. NeedsReauth: park the
    message; RetryLater: reading Sentry may pass."""
    hinted = HINTED.get(event.action)
    if hinted is None:
        return f"issue.{event.action} changes nothing here"
    tracker = TrackerStore()
    issue = tracker.get_issue(installation.org_id, event.issue_id)
    if issue is None:
        return f"issue {event.issue_id} is not tracked"
    try:
        current = read_current(installation, issue, tracker=tracker, store=store or SentryStore(), clock=clock)
    except Unread as exc:
        log.warning("Sentry issue %s could not be read; the webhook changed nothing: %s", event.issue_id, exc)
        return f"issue {event.issue_id}: not read from Sentry, nothing applied"
    applied = apply_current(tracker, issue, current, hinted)
    return f"issue {event.issue_id}: changed {', '.join(applied) or 'nothing'}"


def apply_comment_event(event: CommentEvent, installation: SentryInstallation) -> str:
    """Add, edit or delete the tracked issue's comment `sentry-<id>`, queued for the linked work items."""
    org_id, comment_id = installation.org_id, COMMENT_PREFIX + event.comment_id
    body = {"author": event.author or UNKNOWN_AUTHOR, "text": event.text}
    try:
        if event.action == "deleted":
            delete_comment(org_id, event.issue_id, comment_id)
            return f"comment {comment_id} deleted"
        if event.action == "updated":
            try:
                edit_comment(org_id, event.issue_id, comment_id, {"text": event.text})
                return f"comment {comment_id} edited"
            except NotFound:
                if TrackerStore().get_issue(org_id, event.issue_id) is None:
                    raise
                # Made before the issue was tracked: added as it is now (one deleted here stays deleted).
        add_comment(org_id, event.issue_id, body, comment_id=comment_id)
        return f"comment {comment_id} added"
    except NotFound:
        return f"comment {comment_id}: issue {event.issue_id} is not tracked, or the comment is unknown here"
    except InvalidInput as exc:  # e.g. a comment longer than the tracker keeps: never applied, so not retried
        log.warning("Sentry comment %s on issue %s was not applied: %s", comment_id, event.issue_id, exc)
        return f"comment {comment_id} refused: {exc}"
