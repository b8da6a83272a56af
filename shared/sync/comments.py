"""Apply a comment change (contract §12.3): bring the comment's copy on each linked work item in line with it.

For each link of the issue whose installation has `sync_comments` (the issue's links as they are now):

- no copy there yet: read the work item (for its project), claim the add in the comment's entity (ETag-guarded),
  add the comment through the Comments API, and keep the id Azure DevOps answers;
- a copy behind the comment's version: edit it (PATCH); a copy of a deleted comment: delete it (404: gone already).

An add is the one step a retry could repeat: Azure DevOps may have added the comment when the answer, or the
write of its id, was lost. So the claim says an add is under way. While it holds, other attempts wait (RetryLater);
once the attempt fails, or its claim runs out (it was cut off), the next attempt looks for the copy among the
work item's comments by its marker (`shared.sync.comment_text`) before adding it again. A comment is never added
twice unless an attempt outlives its claim, which is far longer than one call's bounded retries.

A refusal that retrying cannot fix (the work item gone or unreadable, Azure DevOps refusing the text) is recorded
as `ado_failed` and not retried; throttling, unavailability and storage trouble are retried through the queue
(`RetryLater`), for the links still to do. Each result adds one activity entry to the issue: `ado_updated` with
`fields: ["comment"]`, `comment_id` and `action` (`added`, `edited` or `deleted`), or `ado_failed` with a reason.
The comment's own delivery (`workitem.updated` with `System.CommentCount`/`System.History`) changes no synced
field, so the inbound sync does nothing with it.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from dataclasses import replace
from typing import Any, TypeVar

from shared.ado import comments as api
from shared.ado.client import AdoClient, AdoError, AdoNotFound, AdoRequestRejected
from shared.clock import SYSTEM, Clock
from shared.connections.ado import CredentialNotShared, call_tracking_reauth, client_for, usable_by
from shared.errors import RetryLater, StorageUnavailable
from shared.model.comments import Comment, CommentChange, RemoteCopy
from shared.model.tracker import Link, activity_entry
from shared.store import counters
from shared.store.comments import CommentStore
from shared.store.integrations import IntegrationStore
from shared.store.tracker import TrackerStore
from shared.sync.comment_text import is_copy_of, render, render_for, render_html
from shared.sync.outbound import OutboundReport

log = logging.getLogger(__name__)
MAX_EDIT_ROUNDS = 3  # an edit, and the newer ones accepted while it was sent

T = TypeVar("T")
Call = Callable[[Callable[[AdoClient], T]], T]
SOURCE = "api"
# How long an add holds its claim: far beyond one call (ADO_HTTP_TIMEOUT per attempt, three attempts, at most
# 10 s of waits between them), so only an attempt that was cut off loses it.
CLAIM_SECONDS = 120
MAX_LIST_PAGES = 5  # newest first: a copy cut off a moment ago is on the first page


def apply_comment(
    change: CommentChange,
    *,
    tracker: TrackerStore | None = None,
    integrations: IntegrationStore | None = None,
    comments: CommentStore | None = None,
    clock: Clock = SYSTEM,
) -> OutboundReport:
    """Apply `change`; the links that failed in a way that may pass are in the report's `retry`.
    `updated` holds (link key, Azure DevOps comment id)."""
    tracker, integrations = tracker or TrackerStore(), integrations or IntegrationStore()
    store = comments or CommentStore()
    report = OutboundReport()
    try:
        comment = store.get(change.org_id, change.issue_id, change.comment_id)
        issue = tracker.get_issue(change.org_id, change.issue_id) if comment is not None else None
    except StorageUnavailable as exc:
        raise RetryLater(str(exc)) from exc
    if comment is None or issue is None:
        report.notes.append("the comment or its issue no longer exists")
        return report
    entries: list[dict[str, Any]] = []
    for link in issue.links:
        if change.only and link.key not in change.only:
            continue
        try:
            entry = _sync_link(comment, link, tracker, integrations, store, clock, report)
        except (RetryLater, StorageUnavailable) as exc:
            report.retry.append(link.key)
            report.retry_after = max(report.retry_after or 0, getattr(exc, "retry_after", None) or 0) or None
            report.notes.append(f"{link.key}: {exc}")
            continue
        if entry is not None:
            entries.append({**entry, "comment_id": comment.comment_id})
    if entries:
        try:
            tracker.update_issue(issue.org_id, issue.issue_id, lambda current: current.with_activity(*entries))
        except StorageUnavailable as exc:  # Azure DevOps is done and the copies are recorded: only the entries are lost
            log.warning("comment %s: the activity entries could not be saved: %s", comment.comment_id, exc)
    for note in report.notes:
        log.info("comment %s/%s/%s: %s", change.org_id, change.issue_id, change.comment_id, note)
    return report


def _sync_link(
    comment: Comment,
    link: Link,
    tracker: TrackerStore,
    integrations: IntegrationStore,
    store: CommentStore,
    clock: Clock,
    report: OutboundReport,
) -> dict[str, Any] | None:
    """One link: the activity entry of what was done, or None when nothing was to do."""
    copy = comment.remote.get(link.key)
    if copy is not None and copy.origin:
        return None  # the person's own comment there, which the tracker's copy came from: never written (§18)
    if comment.deleted and (copy is None or copy.deleted):
        return None
    if (copy is not None and copy.deleted) or _current(comment, copy):
        return None  # up to date, or deleted in Azure DevOps (never added back)
    installation = tracker.get_installation(link.integration_id, comment.org_id)
    if installation is None or not installation.sync_comments:
        return None
    integration = integrations.get(link.integration_id)
    if integration is None or not integration.active:
        report.notes.append(f"{link.key}: the integration is disabled or gone")
        return None
    try:
        usable = usable_by(integration, installation)  # only credentials this organization may use (§16)
    except CredentialNotShared as exc:
        report.notes.append(f"{link.key}: {exc}")
        return None
    connected, client = client_for(usable, store=integrations)

    def call(request: Callable[[AdoClient], T]) -> T:
        return call_tracking_reauth(integrations, connected, lambda: request(client))

    try:
        action, copy = _bring_in_line(comment, link, copy, call, store, clock)
    except AdoError as exc:
        if not isinstance(exc, (AdoRequestRejected, AdoNotFound)):
            raise RetryLater(str(exc), getattr(exc, "retry_after", None)) from exc
        reason = str(exc) if isinstance(exc, AdoRequestRejected) else f"not found in Azure DevOps: {exc}"
        report.failed.append((link.key, reason))
        return {**activity_entry("ado_failed", SOURCE, link.work_item_id, None), "reason": reason[:300]}
    if action is None:
        return None
    if action == "added":
        counters.add(comment.org_id, "comments_to_ado")  # for the status page (§18)
    report.updated.append((link.key, copy.ado_id or 0))
    entry = activity_entry("ado_updated", SOURCE, link.work_item_id, None)
    return {**entry, "fields": ["comment"], "action": action}


def _current(comment: Comment, copy: RemoteCopy | None) -> bool:
    return not comment.deleted and copy is not None and copy.ado_id is not None and copy.version >= comment.version


def _bring_in_line(
    comment: Comment, link: Link, copy: RemoteCopy | None, call: Call, store: CommentStore, clock: Clock
) -> tuple[str | None, RemoteCopy]:
    """What was done (None: nothing) and the copy as it is now."""
    action = None
    if copy is None or copy.ado_id is None:
        project, found = _locate(comment, link, copy, call, clock)
        if found is None and comment.deleted:
            return None, _save(store, comment, link, RemoteCopy(project=project, deleted=True))  # never added
        if found is None:
            found = _add(comment, link, copy, project, call, store, clock)
        copy = _save(store, comment, link, found)
        # Added by this attempt, or by one cut off before it could record it (unless deleted there since).
        action = None if comment.deleted or copy.deleted else "added"
    if copy.deleted:
        return action, copy
    if comment.deleted:
        copy, _ = _on_copy(link, copy, call, lambda c, p: api.delete_comment(c, p, link.work_item_id, copy.ado_id))
        return "deleted", _save(store, comment, link, replace(copy, deleted=True))
    for _ in range(MAX_EDIT_ROUNDS):
        if copy.version >= comment.version:
            break
        edited, ado_id = comment, copy.ado_id
        copy, there = _on_copy(
            link,
            copy,
            call,
            lambda c, p, ado_id=ado_id, edited=edited: api.update_comment(
                c, p, link.work_item_id, ado_id, render_for(c.markdown_comments, edited)
            ),
        )
        if not there:
            _save(store, comment, link, replace(copy, deleted=True))
            raise AdoNotFound(f"comment {copy.ado_id} on work item {link.work_item_id} was deleted there")
        copy = _save(store, comment, link, replace(copy, version=comment.version))
        action = action or "edited"
        # Right after the edit, the comment as it is now: a newer edit accepted meanwhile may have been sent by
        # another worker before this one's older text landed over it. Then the newest is sent again.
        latest = store.get(comment.org_id, comment.issue_id, comment.comment_id)
        if latest is None or latest.deleted or latest.version <= comment.version:
            break
        comment, copy = latest, replace(copy, version=comment.version)
    return action, copy


def _locate(
    comment: Comment, link: Link, copy: RemoteCopy | None, call: Call, clock: Clock
) -> tuple[str, RemoteCopy | None]:
    """The work item's project, and the copy an earlier attempt left there, if any. RetryLater while another
    attempt holds its claim."""
    now = clock.now()
    if copy is not None and copy.claimed_until > now:
        raise RetryLater("another attempt is adding the comment to this work item", copy.claimed_until - now)
    project = copy.project if copy is not None and copy.project else _project(call, link)
    if copy is None:
        return project, None  # never tried: nothing to look for
    found = call(
        lambda c: api.find_comment(
            c, project, link.work_item_id, lambda x: is_copy_of(x.get("text"), comment), MAX_LIST_PAGES
        )
    )
    if found is None or not isinstance(found.get("id"), int):
        return project, None
    current = found.get("text") in (render(comment), render_html(comment))
    version = comment.version if current else 0  # an older text is edited below
    return project, RemoteCopy(found["id"], project, version, deleted=bool(found.get("isDeleted")))


def _add(
    comment: Comment,
    link: Link,
    copy: RemoteCopy | None,
    project: str,
    call: Call,
    store: CommentStore,
    clock: Clock,
) -> RemoteCopy:
    claim = RemoteCopy(project=project, claim=secrets.token_hex(8), claimed_until=clock.now() + CLAIM_SECONDS)
    saved = store.update(
        comment.org_id,
        comment.issue_id,
        comment.comment_id,
        lambda current: current.with_copy(link.key, claim) if current.remote.get(link.key) == copy else None,
    )
    if saved is None or saved.remote.get(link.key) != claim:
        raise RetryLater("another attempt is adding the comment to this work item")
    try:
        answer = call(
            lambda c: api.add_comment(c, project, link.work_item_id, render_for(c.markdown_comments, comment))
        )
        ado_id = answer.get("id") if isinstance(answer, dict) else None
        if not isinstance(ado_id, int):
            raise AdoError("Azure DevOps answered the new comment without its id")
    except AdoError:
        # Added or not, the next attempt looks first: give up the claim so that it need not wait for it.
        try:
            _save(store, comment, link, replace(claim, claim=None, claimed_until=0.0))
        except StorageUnavailable:
            pass  # the claim then runs out by itself
        raise
    return RemoteCopy(ado_id, project, comment.version)


def _on_copy(
    link: Link, copy: RemoteCopy, call: Call, request: Callable[[AdoClient, str], Any]
) -> tuple[RemoteCopy, bool]:
    """Run `request(client, project)` on the copy: (the copy, with the project it is in now, and whether the
    comment was there). A 404 may mean the work item moved to another project: it is read, and if it did,
    the request is sent there."""
    if copy.project is None:  # every recorded copy has its project; read it rather than guess
        copy = replace(copy, project=_project(call, link))
    try:
        call(lambda c: request(c, copy.project or ""))
        return copy, True
    except AdoNotFound:
        project = _project(call, link)  # AdoNotFound again: the work item itself is gone
    if project == copy.project:
        return copy, False
    moved = replace(copy, project=project)
    try:
        call(lambda c: request(c, project))
    except AdoNotFound:
        return moved, False
    return moved, True


def _project(call: Call, link: Link) -> str:
    item = call(lambda c: c.get_work_item(link.work_item_id))
    fields = item.get("fields") if isinstance(item, dict) else None
    project = fields.get("System.TeamProject") if isinstance(fields, dict) else None
    if not isinstance(project, str) or not project:
        raise RetryLater("the work item's project could not be read")
    return project


def _save(store: CommentStore, comment: Comment, link: Link, copy: RemoteCopy) -> RemoteCopy:
    """Record the copy on one link (whatever else changed in the comment meanwhile stays). A stored copy's version
    only grows, and a copy deleted there stays deleted: a slower worker never records an older state over it."""

    def newest(current: Comment) -> Comment:
        stored = current.remote.get(link.key)
        kept = copy
        if stored is not None and stored.ado_id is not None and stored.ado_id == copy.ado_id:
            kept = replace(kept, version=max(stored.version, copy.version), deleted=stored.deleted or copy.deleted)
        return current.with_copy(link.key, kept)

    store.update(comment.org_id, comment.issue_id, comment.comment_id, newest)
    return copy
