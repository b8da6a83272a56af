"""A comment from Azure DevOps on a Sentry organization's issue, brought to the Sentry issue (contract §18): the
app's note there is added, edited or deleted to match the tracked issue's comment, whose copy `sentry` keeps the
note's id and the version it shows (recorded after the call, so a retry sends only what Sentry lacks).

Sentry refuses the same text by the same author within an hour (400 "You have already posted that comment."):
that answer means an earlier attempt's note got there, so it is looked up among the issue's notes to keep its id.
Deleting needs `event:admin`; without it the note stays and the copy is marked so it is not tried again
(docs/sentry.md). Throttling and unavailability raise RetryLater; a refused token is logged and left for later.
"""

from __future__ import annotations

from dataclasses import replace

from shared.connections.sentry import InstallationUnusable, client_for, installation_for_org
from shared.errors import RetryLater
from shared.model.comments import SENTRY_COPY, Comment, RemoteCopy
from shared.model.sentry import slug_of
from shared.sentry import notes as api
from shared.sentry.client import (
    SentryClient,
    SentryError,
    SentryForbidden,
    SentryNotFound,
    SentryRejected,
    SentryUnauthorized,
)
from shared.store import counters
from shared.store.comments import CommentStore
from shared.sync.comment_text import escape_inline


def sentry_text(comment: Comment, work_item_id: int, url: str) -> str:
    return f"**{escape_inline(comment.author)}** wrote on [work item {work_item_id}]({url}):\n\n{comment.text}"


def to_sentry(
    store: CommentStore, comment: Comment, work_item_id: int, url: str, sent: list[str], notes: list[str]
) -> None:
    """Bring the Sentry issue's copy of the comment in line: add, edit, or delete the app's note."""
    copy = comment.remote.get(SENTRY_COPY)
    if copy is not None and (copy.deleted or copy.version >= comment.version):
        return
    if comment.deleted and (copy is None or copy.ado_id is None):
        return
    installation = installation_for_org(comment.org_id)
    if installation is None:
        notes.append(f"{comment.org_id}: no active Sentry installation")
        return
    slug = slug_of(comment.org_id)
    text = sentry_text(comment, work_item_id, url)
    try:
        client = client_for(installation)
        if comment.deleted:
            assert copy is not None and copy.ado_id is not None
            try:
                api.delete_note(client, slug, comment.issue_id, str(copy.ado_id))
            except SentryForbidden:
                notes.append("the Sentry note stays: deleting it needs the event:admin scope")
            except SentryNotFound:
                pass
            new = replace(copy, deleted=True, version=comment.version)
        elif copy is not None and copy.ado_id is not None:
            api.edit_note(client, slug, comment.issue_id, str(copy.ado_id), text)
            new = replace(copy, version=comment.version)
        else:
            new = RemoteCopy(_add_note(client, slug, comment.issue_id, text), None, comment.version)
            counters.add(comment.org_id, "comments_to_sentry")
    except (SentryForbidden, SentryNotFound) as exc:
        notes.append(f"Sentry refused the comment: {exc}")
        new = RemoteCopy(copy.ado_id if copy else None, None, comment.version, deleted=True)
    except (SentryUnauthorized, InstallationUnusable) as exc:
        notes.append(f"Sentry refused the installation's token: {exc}")
        return
    except SentryRejected as exc:
        notes.append(f"Sentry refused the comment: {exc}")
        new = RemoteCopy(copy.ado_id if copy else None, None, comment.version, deleted=True)
    except SentryError as exc:
        raise RetryLater(str(exc), getattr(exc, "retry_after", None)) from exc

    def record(latest: Comment) -> Comment | None:
        stored = latest.remote.get(SENTRY_COPY)
        return None if stored is not None and stored.version >= new.version else latest.with_copy(SENTRY_COPY, new)

    store.update(comment.org_id, comment.issue_id, comment.comment_id, record)
    sent.append(comment.comment_id)


def _add_note(client: SentryClient, slug: str, issue_id: str, text: str) -> int | None:
    """The new note's id. Sentry refuses the same text by the app within an hour: an earlier attempt's note got
    there, so it is found among the issue's notes."""
    try:
        answer = api.add_note(client, slug, issue_id, text)
    except SentryRejected as exc:
        if api.DUPLICATE_NOTE not in str(exc):
            raise
        found = next(
            (n for n in api.list_notes(client, slug, issue_id) if (n.get("data") or {}).get("text") == text), {}
        )
        answer = found
    note_id = answer.get("id")
    return int(note_id) if isinstance(note_id, (int, str)) and str(note_id).isdigit() else None
