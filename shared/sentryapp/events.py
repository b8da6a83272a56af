"""A recorded Sentry webhook applied (contract §13.2): Sentry's issue and comment changes become tracker-side
changes (§12) of the installation's organization, `sentry-<slug>`, with activity source `sentry`.

Only tracked issues change (an issue never linked is not tracked, and nothing is made for it). The app's own
writes (actor: the app) are ignored outright, which stops echoes. Every other change is queued for the linked
work items even when the tracked issue shows it already: the delivery may be applied a second time because a
first attempt saved the change and then stopped before queueing it, and the outbound worker sends only what
differs, so a change that was queued already costs one read per link and nothing more.

Resolved is `resolved`; unresolved, ignored and archived are `unresolved`. The assignee is matched by email:
the member is recorded (the Sentry user's id and name) so the outbound worker can assign the work item to that
email; a team, or a user without an email, leaves the assignee as it is. Comments keep Sentry's id as
`sentry-<id>`, so a repeated or late delivery finds the same comment.
"""

from __future__ import annotations

import logging

from shared.admin.changes import forward_change, with_status_and_assignee
from shared.admin.comments import add_comment, delete_comment, edit_comment
from shared.deliveries.sentry import Assignee, CommentEvent, IssueEvent
from shared.errors import InvalidInput, NotFound
from shared.model.sentry import SentryInstallation
from shared.model.tracker import RESOLVED, UNRESOLVED, Member, TrackedIssue
from shared.store.tracker import TrackerStore
from shared.validation import normalize_email

log = logging.getLogger(__name__)

SOURCE = "sentry"
STATUS_OF = {"resolved": RESOLVED, "unresolved": UNRESOLVED, "ignored": UNRESOLVED, "archived": UNRESOLVED}
COMMENT_PREFIX = "sentry-"
UNKNOWN_AUTHOR = "Sentry"


def apply_issue_event(event: IssueEvent, installation: SentryInstallation) -> str:
    """Apply `issue.<action>` to the tracked issue and queue it for the linked work items (see above); what
    became of it, for the log."""
    org_id, tracker = installation.org_id, TrackerStore()
    status, assign, member = STATUS_OF.get(event.action), False, None
    if event.action == "assigned":
        assign, member = _assignee(tracker, org_id, event.assignee)
        if not assign:
            return "assignee left as it is"
    if status is None and not assign:
        return f"issue.{event.action} changes nothing here"
    named = tuple(name for name, given in (("status", status is not None), ("assignee", assign)) if given)
    changed: list[tuple[str, ...]] = [()]

    def change(issue: TrackedIssue) -> TrackedIssue | None:
        updated = with_status_and_assignee(issue, status, assign, member, SOURCE)
        changed[0] = tuple(name for name in named if _value(updated, name) != _value(issue, name))
        return updated if changed[0] else None

    saved = tracker.update_issue(org_id, event.issue_id, change)
    if saved is None:
        return f"issue {event.issue_id} is not tracked"
    forward_change(saved, named)
    return f"issue {event.issue_id}: changed {', '.join(changed[0]) or 'nothing'}"


def _value(issue: TrackedIssue, name: str) -> str | None:
    return issue.status if name == "status" else issue.assignee_email


def _assignee(tracker: TrackerStore, org_id: str, assignee: Assignee | None) -> tuple[bool, Member | None]:
    """(whether to change the assignee, the member to assign; None: unassign)."""
    if assignee is None:  # Sentry sends no webhook on unassigning; an assigned event without one means unassigned
        return True, None
    email = normalize_email(assignee.email) if assignee.email else None
    if assignee.type != "user" or email is None:
        log.info("Sentry assigned a %s without an email address; the tracked issue's assignee is left", assignee.type)
        return False, None
    member = Member(org_id, email, assignee.id, assignee.name)
    if tracker.get_member(org_id, email) != member:
        tracker.put_member(member)
    return True, member


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
