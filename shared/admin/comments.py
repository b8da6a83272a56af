"""Comments of tracked issues (contract §12.3): validate completely, then write, then queue the change for the
linked work items (`vsts-outbound`; the worker checks each installation's `sync_comments`).

Bad input raises `InvalidInput` (400) before anything is written; an unknown issue or comment raises `NotFound`
(404). The change is noted as pending work before the comment is written (docs/design.md), so whatever is saved
is sent: by its queue message, or by the sweeper when the queue did not take it. A 503 means the pending row or
the comment could not be stored; the same request sent again (the same `comment_id` for a Sentry comment) is
safe.
"""

from __future__ import annotations

import secrets
import unicodedata
from dataclasses import replace
from typing import Any

from shared.admin.tracker import get_issue
from shared.clock import SYSTEM, Clock
from shared.deliveries.comments import to_comment_message
from shared.errors import Conflict, InvalidInput, NotFound
from shared.model.comments import MAX_AUTHOR, MAX_TEXT, Comment, CommentChange
from shared.model.tracker import TrackedIssue
from shared.store import queues
from shared.store.comments import CommentStore
from shared.store.pending import PendingRef
from shared.sync import wakeups
from shared.validation import check_fields, is_valid_id, require_text

FIELDS = {"author", "text"}
_LINE_BREAKS = "\t\n\r"


def _author(body: dict[str, Any]) -> str:
    author = require_text(body, "author", MAX_AUTHOR)
    if any(unicodedata.category(ch) == "Cs" for ch in author):
        raise InvalidInput("author must be valid Unicode (it holds a lone surrogate).")
    return " ".join(author.split())


def _text(body: dict[str, Any]) -> str:
    """Markdown: line breaks and tabs allowed, no other control character; at most MAX_TEXT UTF-16 code units
    (what Table Storage counts)."""
    text = body.get("text")
    if not isinstance(text, str) or not text.strip() or len(text.encode("utf-16-le", "surrogatepass")) > 2 * MAX_TEXT:
        raise InvalidInput(
            f"text must be a non-empty string of at most {MAX_TEXT} characters (emoji and other characters outside "
            "the Basic Multilingual Plane count twice)."
        )
    if any(unicodedata.category(ch) in ("Cc", "Cs") and ch not in _LINE_BREAKS for ch in text):
        raise InvalidInput("text must not contain control characters (but line breaks and tabs) or lone surrogates.")
    return text


def new_comment_id(now: float) -> str:
    """Sortable by time (milliseconds, zero-padded), unique by its random tail: `1700000000000-9f3a01bc`."""
    return f"{int(now * 1000):013d}-{secrets.token_hex(4)}"


def _pending(issue: TrackedIssue, comment_id: str, *, clock: Clock) -> tuple[PendingRef, str] | None:
    """Note the comment change as pending before it is written (docs/design.md): whatever is saved is then sent,
    by its queue message or by the sweeper. None when the issue has no links (nothing to send)."""
    if not issue.links:
        return None
    change = CommentChange(issue.org_id, issue.issue_id, comment_id)
    ref, message = wakeups.comment_ref(change), to_comment_message(change)
    wakeups.note(ref, queues.OUTBOUND_QUEUE_NAME, message, clock=clock)
    return ref, message


def _wake(noted: tuple[PendingRef, str] | None) -> None:
    if noted is not None:
        wakeups.wake(noted[0], queues.OUTBOUND_QUEUE_NAME, noted[1])


def list_comments(org_id: str, issue_id: str) -> list[dict[str, Any]]:
    """The issue's comments, oldest first, with their source (contract §18); deleted ones are left out."""
    issue = get_issue(org_id, issue_id)
    comments = [c for c in CommentStore().comments_of(issue.org_id, issue.issue_id) if not c.deleted]
    return [c.listed() for c in sorted(comments, key=lambda c: (c.at, c.comment_id))]


def add_comment(
    org_id: str, issue_id: str, body: dict[str, Any], *, clock: Clock = SYSTEM, comment_id: str | None = None
) -> Comment:
    """Add a comment; with a `comment_id` given (a comment made elsewhere, such as `sentry-<id>`), adding it again
    changes nothing and answers the comment as it is."""
    check_fields(body, FIELDS)
    author, text = _author(body), _text(body)
    issue = get_issue(org_id, issue_id)
    now = clock.now()
    comment = Comment(issue.org_id, issue.issue_id, comment_id or new_comment_id(now), author, text, now)
    store = CommentStore()
    noted = _pending(issue, comment.comment_id, clock=clock)
    if not store.create(comment):
        existing = store.get(comment.org_id, comment.issue_id, comment.comment_id) if comment_id else None
        if existing is not None:
            _wake(noted)  # a repeat: the comment may have been saved by an attempt that never sent it
            return existing
        raise Conflict("A comment with the same id was added at the same moment; send the request again.")
    _wake(noted)
    return comment


def _comment_id(value: str) -> str:
    if not is_valid_id(value):
        raise NotFound("No comment has that id on this issue.")
    return value


def edit_comment(org_id: str, issue_id: str, comment_id: str, body: dict[str, Any]) -> Comment:
    """New text (and, optionally, a corrected author); the same text again changes nothing but is queued again."""
    check_fields(body, FIELDS)
    text = _text(body)
    author = _author(body) if "author" in body else None
    issue = get_issue(org_id, issue_id)
    comment_id = _comment_id(comment_id)

    def change(current: Comment) -> Comment | None:
        if current.deleted:
            raise NotFound("No comment has that id on this issue.")
        updated = replace(current, text=text, author=author or current.author)
        return replace(updated, version=current.version + 1) if updated != current else None

    noted = _pending(issue, comment_id, clock=SYSTEM)
    saved = CommentStore().update(issue.org_id, issue.issue_id, comment_id, change)
    if saved is None:
        raise NotFound("No comment has that id on this issue.")
    _wake(noted)
    return saved


def delete_comment(org_id: str, issue_id: str, comment_id: str) -> None:
    """Delete it (a tombstone without its text stays, for its copies to be deleted); deleting it again is
    accepted and queued again."""
    issue = get_issue(org_id, issue_id)
    comment_id = _comment_id(comment_id)

    def change(current: Comment) -> Comment | None:
        return None if current.deleted else replace(current, deleted=True, text="", version=current.version + 1)

    noted = _pending(issue, comment_id, clock=SYSTEM)
    if CommentStore().update(issue.org_id, issue.issue_id, comment_id, change) is None:
        raise NotFound("No comment has that id on this issue.")
    _wake(noted)
