"""The work item Comments API (a preview API: `api-version=7.1-preview.4`, reference
`azure-devops-platform.md` §3.2): list, add (`format=markdown|html`), edit, delete, on
`{org}/{project}/_apis/wit/workItems/{id}/comments[/{commentId}]`.

What the reference leaves open, and the fake's choice:
- Adding a comment changes fields (`System.CommentCount`, `System.History`), and fields only change through a
  revision, so it makes one: a `workitem.updated` delivery, and a `workitem.commented` one (§1.3: the work item
  with the comment HTML in `System.History` and `commentVersionRef`). Deleting one lowers `System.CommentCount`
  in a revision too; editing changes no field, so it makes none.
- Comment ids are unique in the organization (numbered from 1) and addressed under their work item.
- A deleted comment stays, flagged `isDeleted`; lists show it only with `includeDeleted=true`.
"""

from __future__ import annotations

import copy
import html
from typing import Any

from werkzeug.wrappers import Request, Response

from devtools.fakes.ado.data import DEFAULT_REVISED_BY, Org, Project, Store, WorkItem
from devtools.fakes.ado.protocol import Reject, api_version, arg, error, json_response, query_int, read_json
from devtools.fakes.ado.workitems import work_item_not_found

FORMATS = {"markdown": "markdown", "html": "html"}
COMMENTS_TOP_LIMIT = 200


def comment_not_found(comment_id: int, work_item_id: int) -> Response:
    # Exact Azure DevOps answer not in the reference.
    return error(404, f"Comment {comment_id} does not exist on work item {work_item_id}.", "CommentNotFoundException")


def render_text(text: str, fmt: str) -> str:
    """`renderedText`: HTML. Markdown is only escaped and split into paragraphs (the fake is no renderer)."""
    if fmt == "html":
        return text
    paragraphs = [p.strip() for p in text.split("\n\n") if p.strip()]
    return "".join(f"<p>{html.escape(p).replace(chr(10), '<br>')}</p>" for p in paragraphs)


class Comments(Store):
    """Mixin of FakeAzureDevOps: work item comments."""

    def comments(self, org: str, work_item_id: int) -> list[dict[str, Any]]:
        """A work item's comments as stored, oldest first, deleted ones included (`isDeleted`), identities as
        'Display Name <email>' strings."""
        with self._lock:
            return copy.deepcopy(self._item(org, work_item_id).comments)

    # ------------------------------------------------------------------------------------------ internals

    def _record_comment(self, org: Org, item: WorkItem, text: str, fmt: str, author: str) -> dict[str, Any]:
        """Store a new comment (no revision: callers make it). Call holding the lock."""
        org.last_comment_id += 1
        now = self._next_timestamp()
        comment = {
            "id": org.last_comment_id,
            "workItemId": item.id,
            "version": 1,
            "text": text,
            "renderedText": render_text(text, fmt),
            "format": fmt,
            "createdBy": author,
            "createdDate": now,
            "modifiedBy": author,
            "modifiedDate": now,
            "isDeleted": False,
        }
        item.comments.append(comment)
        return comment

    def _render_comment(self, org: Org, project: Project, comment: dict[str, Any]) -> dict[str, Any]:
        rendered = copy.deepcopy(comment)
        for key in ("createdBy", "modifiedBy"):
            rendered[key] = self._identity_ref(comment[key])
        rendered["mentions"] = []
        rendered["reactions"] = []
        rendered["url"] = (
            f"{self.org_url(org.name)}{project.id}/_apis/wit/workItems/{comment['workItemId']}/comments/{comment['id']}"
        )
        return rendered

    def _comment_target(self, request: Request, org: Org, project: Project | None, work_item_id: int) -> WorkItem:
        """The work item the comment request is about, after the preview and existence checks. Holding the lock."""
        assert project is not None  # the routes require the project segment
        version = api_version(request) or ""
        if "-preview" not in version.lower():
            raise Reject(
                error(
                    400,
                    f'The requested version "{version}" of the resource is under preview. The -preview flag must be '
                    f'supplied in the api-version for such requests. For example: "{version}-preview"',
                    "VssInvalidPreviewVersionException",
                )
            )
        item = org.work_items.get(work_item_id)
        if item is None or item.project.lower() != project.id.lower():
            raise Reject(work_item_not_found(work_item_id))
        return item

    def _comment_format(self, request: Request) -> str:
        """The `format` asked for, lower-cased; Server 2022's comments API (7.0-preview.3) has no such parameter,
        so there every comment is HTML whatever the request says."""
        if getattr(self, "server", "services") == "server-2022":
            return ""
        return (arg(request, "format") or "").lower()

    @staticmethod
    def _comment_text(request: Request) -> str:
        body = read_json(request)
        text = body.get("text") if isinstance(body, dict) else None
        if not isinstance(text, str) or not text.strip():
            raise Reject(error(400, 'The request body must be {"text": "<the comment>"} with some text.'))
        return text

    def _comment_count_revision(self, org: Org, item: WorkItem, step: int, caller: str, history: str | None) -> Any:
        """A revision that moves System.CommentCount by `step` (and sets System.History when adding)."""
        changes: dict[str, Any] = {"System.CommentCount": max(0, int(item.fields.get("System.CommentCount", 0)) + step)}
        if history is not None:
            changes["System.History"] = history
        diff = self._apply_update(item, changes, caller)
        payloads, _ = self._updated_event(org, item, diff, caller)
        return payloads

    # -------------------------------------------------------------------------------------- endpoints

    def _handle_comments(
        self, request: Request, org: Org, project: Project | None, major: int, work_item_id: int
    ) -> Response:
        assert project is not None
        if request.method == "GET":
            top = min(query_int(request, "$top", COMMENTS_TOP_LIMIT), COMMENTS_TOP_LIMIT)
            offset = query_int(request, "continuationToken", 0)
            include_deleted = (arg(request, "includeDeleted") or "").lower() == "true"
            descending = (arg(request, "order") or "asc").lower() == "desc"
            with self._lock:
                item = self._comment_target(request, org, project, work_item_id)
                shown = [c for c in item.comments if include_deleted or not c["isDeleted"]]
                shown = list(reversed(shown)) if descending else shown
                page = [self._render_comment(org, project, c) for c in shown[offset : offset + top]]
                total = sum(1 for c in item.comments if not c["isDeleted"])
            answer: dict[str, Any] = {"totalCount": total, "count": len(page), "comments": page}
            if offset + top < len(shown):
                answer["continuationToken"] = str(offset + top)
            return json_response(answer)
        fmt_name = self._comment_format(request) or "html"
        if fmt_name not in FORMATS:
            return error(400, f"format must be markdown or html, not {arg(request, 'format')!r}.")
        text = self._comment_text(request)
        with self._lock:
            item = self._comment_target(request, org, project, work_item_id)
            caller = self._caller(request, org)
            payloads, rendered = self._add_and_address(org, project, item, text, FORMATS[fmt_name], caller)
        self._send(payloads)
        return json_response(rendered)

    def _add_and_address(
        self, org: Org, project: Project, item: WorkItem, text: str, fmt: str, caller: str
    ) -> tuple[Any, dict[str, Any]]:
        """Add a comment, with its revision (`workitem.updated`) and its `workitem.commented` event: the copies
        to send, and the comment as the API shows it. Holding the lock."""
        comment = self._record_comment(org, item, text, fmt, caller)
        payloads = self._comment_count_revision(org, item, 1, caller, comment["renderedText"])
        rendered = self._render_comment(org, project, comment)
        version_ref = {"commentId": comment["id"], "version": 1, "url": rendered["url"]}
        commented, _ = self._snapshot_event(org, item, "workitem.commented", {"commentVersionRef": version_ref})
        return payloads + commented, rendered

    # ------------------------------------------------------------------- a person, in Azure DevOps' web UI

    def add_comment(
        self, org: str, work_item_id: int, text: str, *, by: str = DEFAULT_REVISED_BY, fmt: str = "html"
    ) -> int:
        """A person comments on the work item (HTML, as the web UI writes it, or markdown): the revision and the
        `workitem.commented` delivery go before this returns. Returns the comment id."""
        with self._lock:
            o = self._org(org)
            item = self._item(org, work_item_id)
            project = o.project(item.project)
            assert project is not None
            if getattr(self, "server", "services") == "server-2022":
                fmt = "html"  # Server 2022 keeps comments as HTML only
            payloads, rendered = self._add_and_address(o, project, item, text, fmt, by)
        self._send(payloads)
        return int(rendered["id"])

    def edit_comment(self, org: str, work_item_id: int, comment_id: int, text: str) -> None:
        """A person edits their comment: a new version, and no revision, so no service hook (reference: there is
        no event for comment edits)."""
        with self._lock:
            item = self._item(org, work_item_id)
            comment = next(c for c in item.comments if c["id"] == comment_id)
            comment.update(text=text, renderedText=render_text(text, comment["format"]), version=comment["version"] + 1)
            comment.update(modifiedDate=self._next_timestamp())

    def delete_comment(self, org: str, work_item_id: int, comment_id: int) -> None:
        """A person deletes a comment: flagged `isDeleted`, and the revision lowering System.CommentCount (a
        `workitem.updated`, no `workitem.commented`)."""
        with self._lock:
            o = self._org(org)
            item = self._item(org, work_item_id)
            comment = next(c for c in item.comments if c["id"] == comment_id)
            comment.update(isDeleted=True, modifiedDate=self._next_timestamp())
            payloads = self._comment_count_revision(o, item, -1, str(comment["createdBy"]), None)
        self._send(payloads)

    def _handle_comment(
        self, request: Request, org: Org, project: Project | None, major: int, work_item_id: int, comment_id: int
    ) -> Response:
        assert project is not None
        text = self._comment_text(request) if request.method == "PATCH" else None
        fmt_name = self._comment_format(request)
        if fmt_name and fmt_name not in FORMATS:
            return error(400, f"format must be markdown or html, not {arg(request, 'format')!r}.")
        payloads: Any = []
        with self._lock:
            item = self._comment_target(request, org, project, work_item_id)
            comment = next((c for c in item.comments if c["id"] == comment_id), None)
            include_deleted = (arg(request, "includeDeleted") or "").lower() == "true"
            if comment is None or (comment["isDeleted"] and not (request.method == "GET" and include_deleted)):
                return comment_not_found(comment_id, work_item_id)
            caller = self._caller(request, org)
            if request.method == "PATCH":
                assert text is not None
                fmt = FORMATS.get(fmt_name, comment["format"])
                comment.update(
                    text=text, renderedText=render_text(text, fmt), format=fmt, version=comment["version"] + 1
                )
                comment.update(modifiedBy=caller, modifiedDate=self._next_timestamp())
            elif request.method == "DELETE":
                comment.update(isDeleted=True, modifiedBy=caller, modifiedDate=self._next_timestamp())
                payloads = self._comment_count_revision(org, item, -1, caller, None)
            rendered = self._render_comment(org, project, comment)
        self._send(payloads)
        if request.method == "DELETE":
            return Response(status=200)  # the spec lists 200 with no body
        return json_response(rendered)
