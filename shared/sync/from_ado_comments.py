"""Comments written on a work item reach its linked tracked issues, and a Sentry organization's Sentry issue
(contract §18), for installations with `sync_comments_reverse`.

One function brings a work item's comments over: the `workitem.commented` delivery's worker calls it, and so does
reconcile for the deliveries it missed and for edits and deletions (Azure DevOps sends no service hook for those).
It reads the work item's comments through the Comments API (newest first, deleted ones included, at most the last
`WINDOW_DAYS` days), never the delivery's `System.History`: that is rendered HTML, in which the app's own marker
line is gone.

- **No echo:** a comment the app wrote to Azure DevOps is recognised by its first line (the marker of
  `shared.sync.comment_text`, markdown or HTML) or by the Azure DevOps id kept on the tracker comment it copies;
  it is never brought back. The comment posted to Sentry comes back as `comment.created` with the app as actor,
  which the Sentry intake ignores.
- **Stored first:** the tracker comment `vsts-<integration>-<work item>-<comment id>` is written before Sentry is
  called; its copy on the Sentry issue is recorded after (`shared.sync.comments_to_sentry`), so a retry finds the
  comment stored and only sends what Sentry lacks.
- **Edits and deletions** are applied where the copy is still the app's: the tracker comment was not edited since
  (its version is the one the app wrote), and on Sentry the note the app posted. Deleting a Sentry note needs
  `event:admin`; without it the note stays, and the copy is marked so it is not tried again (docs/sentry.md).

Failures that may pass (Azure DevOps or Sentry throttled or down, storage busy) raise RetryLater, so the queue
tries again; a refused Sentry token or a missing permission is logged and not retried.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from shared.ado import comments as api
from shared.ado.client import AdoClient, AdoError, AdoNotFound, AdoRequestRejected
from shared.clock import SYSTEM, Clock
from shared.connections.ado import CredentialNotShared, call_tracking_reauth, client_for, usable_by
from shared.errors import ConcurrentUpdate, RetryLater, StorageUnavailable
from shared.model.comments import MAX_AUTHOR, MAX_TEXT, VSTS_PREFIX, Comment, RemoteCopy
from shared.model.sentry import is_sentry_org
from shared.model.tracker import Installation, Link
from shared.store import counters
from shared.store.comments import CommentStore
from shared.store.integrations import IntegrationStore
from shared.store.tracker import TrackerStore
from shared.sync.comment_text import is_app_comment
from shared.sync.comments_to_sentry import to_sentry
from shared.sync.html_markdown import Converted, html_to_markdown, markdown_mentions

log = logging.getLogger(__name__)

WINDOW_DAYS = 30  # how far back a work item's comments are brought over or followed for edits and deletions
MAX_PAGES = 5  # pages of 200 comments read per work item, newest first
TRUNCATED = "\n\n*(cut: the comment is longer than the tracker keeps; see the original)*"


@dataclass
class CommentsReport:
    added: list[str] = field(default_factory=list)
    edited: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    to_sentry: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def comment_id_for(integration_id: str, work_item_id: int, ado_comment_id: int) -> str:
    return f"{VSTS_PREFIX}{integration_id}-{int(work_item_id)}-{int(ado_comment_id)}"


def _epoch(value: object) -> float | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _author(comment: dict[str, Any]) -> str:
    who = comment.get("createdBy")
    name = who.get("displayName") if isinstance(who, dict) else who
    name = name if isinstance(name, str) and name.strip() else "Someone in Azure DevOps"
    # "Name <email>" (an identity string) shows the name only: the email is Azure DevOps' business.
    if name.rstrip().endswith(">") and "<" in name:
        name = name[: name.rindex("<")].strip() or name
    return " ".join(name.split())[:MAX_AUTHOR]


def to_markdown(comment: dict[str, Any], url: str) -> str:
    """The comment's text as markdown, with a link to the original when something could not carry over."""
    text = comment.get("text") if isinstance(comment.get("text"), str) else ""
    fmt = str(comment.get("format") or "").lower()
    converted = markdown_mentions(text) if fmt == "markdown" else html_to_markdown(text)
    return _with_link(converted, url)


def _with_link(converted: Converted, url: str) -> str:
    markdown = converted.markdown or "*(no text)*"
    if converted.dropped:
        markdown += f"\n\n*(mentions or images left out: [see the original]({url}))*"
    if len(markdown.encode("utf-16-le", "surrogatepass")) > 2 * (MAX_TEXT - 200):
        markdown = markdown[: MAX_TEXT // 2] + TRUNCATED
    return markdown


def _app_ids(comments: list[Comment], link_key: str) -> set[int]:
    """The Azure DevOps ids of the comments the app wrote on that work item (copies, not origins)."""
    return {
        copy.ado_id
        for c in comments
        for key, copy in c.remote.items()
        if key == link_key and not copy.origin and copy.ado_id is not None
    }


def read_comments(client: AdoClient, project: str, work_item_id: int, since: float) -> list[dict[str, Any]]:
    """The work item's comments changed or made since `since`, deleted ones included, oldest first."""
    found: list[dict[str, Any]] = []
    token: str | None = None
    for _ in range(MAX_PAGES):
        answer = api.list_comments(client, project, work_item_id, token)
        page = [c for c in answer.get("comments") or [] if isinstance(c, dict)] if isinstance(answer, dict) else []
        found += page
        token = answer.get("continuationToken") if isinstance(answer, dict) else None
        oldest = min((_epoch(c.get("createdDate")) or 0.0 for c in page), default=0.0)
        if not isinstance(token, str) or not token or oldest < since:
            break
    recent = [c for c in found if max(_epoch(c.get("createdDate")) or 0, _epoch(c.get("modifiedDate")) or 0) >= since]
    return sorted(recent, key=lambda c: (_epoch(c.get("createdDate")) or 0.0, int(c.get("id") or 0)))


def sync_work_item_comments(
    integration_id: str,
    work_item_id: int,
    *,
    project: str | None = None,
    tracker: TrackerStore | None = None,
    integrations: IntegrationStore | None = None,
    clock: Clock = SYSTEM,
) -> CommentsReport:
    """Bring one work item's comments (the last WINDOW_DAYS days) to its linked issues. RetryLater for failures
    that may pass."""
    tracker = tracker or TrackerStore()
    integrations = integrations or IntegrationStore()
    report = CommentsReport()
    try:
        installations = {i.org_id: i for i in tracker.installations_of(integration_id) if i.sync_comments_reverse}
        link = Link(integration_id, work_item_id)
        linked = [(org, issue) for org, issue in tracker.linked_issues(link) if org in installations]
        if not linked:
            report.notes.append("no linked issue of an installation with sync_comments_reverse")
            return report
        integration = integrations.get(integration_id)
        if integration is None or not integration.active:
            report.notes.append("the integration is disabled or gone")
            return report
        try:
            usable = usable_by(integration, installations[linked[0][0]])
        except CredentialNotShared as exc:
            report.notes.append(str(exc))
            return report
        connected, client = client_for(usable, store=integrations)
        since = clock.now() - WINDOW_DAYS * 86400
        try:
            project = project or _project(client, work_item_id)
            listed = call_tracking_reauth(
                integrations, connected, lambda: read_comments(client, project or "", work_item_id, since)
            )
        except AdoNotFound:
            report.notes.append("the work item is gone or unreadable")
            return report
        except AdoRequestRejected as exc:
            report.notes.append(f"Azure DevOps refused the comments list: {exc}")
            return report
        except AdoError as exc:
            raise RetryLater(str(exc), getattr(exc, "retry_after", None)) from exc
        url = f"{client.base_url}_workitems/edit/{int(work_item_id)}"
        for org, issue_id in linked:
            _sync_issue(org, issue_id, link, listed, installations[org], url, project or "", clock, report)
    except (StorageUnavailable, ConcurrentUpdate) as exc:
        raise RetryLater(str(exc)) from exc
    for note in dict.fromkeys(report.notes):
        log.info("work item %s comments: %s", work_item_id, note)
    return report


def _project(client: AdoClient, work_item_id: int) -> str:
    item = client.get_work_item(work_item_id)
    fields = item.get("fields") if isinstance(item, dict) else None
    project = fields.get("System.TeamProject") if isinstance(fields, dict) else None
    if not isinstance(project, str) or not project:
        raise RetryLater("the work item's project could not be read")
    return project


def _sync_issue(
    org: str,
    issue_id: str,
    link: Link,
    listed: list[dict[str, Any]],
    installation: Installation,
    url: str,
    project: str,
    clock: Clock,
    report: CommentsReport,
) -> None:
    store = CommentStore()
    stored = {c.comment_id: c for c in store.comments_of(org, issue_id)}
    app_ids = _app_ids(list(stored.values()), link.key)
    since = clock.now() - WINDOW_DAYS * 86400
    for remote in listed:
        ado_id = remote.get("id")
        if not isinstance(ado_id, int) or ado_id in app_ids or is_app_comment(remote.get("text")):
            continue  # the app's own comment (or not one at all): never brought back
        comment_id = comment_id_for(link.integration_id, link.work_item_id, ado_id)
        current = stored.get(comment_id)
        version = remote.get("version") if isinstance(remote.get("version"), int) else 1
        deleted = bool(remote.get("isDeleted"))
        if current is None:
            created = _epoch(remote.get("createdDate")) or clock.now()
            if deleted or created < since:
                continue
            copy = RemoteCopy(ado_id, project, 1, origin=True, ado_version=version, url=url)
            comment = Comment(org, issue_id, comment_id, _author(remote), to_markdown(remote, url), created)
            comment = comment.with_copy(link.key, copy)
            if store.create(comment):
                report.added.append(comment_id)
                counters.add(org, "comments_from_ado")
            current = store.get(org, issue_id, comment_id)
        elif current is not None:
            current = _follow(store, current, link.key, remote, version, deleted, url, report)
        if current is not None and is_sentry_org(org):
            to_sentry(store, current, link.work_item_id, url, report.to_sentry, report.notes)


def _follow(
    store: CommentStore,
    current: Comment,
    link_key: str,
    remote: dict[str, Any],
    version: int,
    deleted: bool,
    url: str,
    report: CommentsReport,
) -> Comment | None:
    """An edit or a deletion in Azure DevOps, applied while the tracker comment is still the app's copy."""
    copy = current.remote.get(link_key)
    if copy is None or not copy.origin or current.deleted or copy.version != current.version:
        return current  # deleted already, or a person edited the tracker's copy since: theirs now
    if not deleted and version <= copy.ado_version:
        return current

    def change(latest: Comment) -> Comment | None:
        mine = latest.remote.get(link_key)
        if mine is None or latest.deleted or mine.version != latest.version:
            return None
        if deleted:
            updated = replace(latest, deleted=True, text="", version=latest.version + 1)
        else:
            updated = replace(latest, text=to_markdown(remote, url), version=latest.version + 1)
        return updated.with_copy(link_key, replace(mine, version=updated.version, ado_version=version, deleted=deleted))

    saved = store.update(current.org_id, current.issue_id, current.comment_id, change)
    if saved is not None and saved.version != current.version:
        (report.deleted if deleted else report.edited).append(current.comment_id)
    return saved
