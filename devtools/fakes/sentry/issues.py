"""Organization issues (read, resolve/unresolve/ignore, assign) and their `issue.*` webhooks, comments and
their `comment.*` webhooks, and the members list with Sentry's `query` search (`email:`, `user.id:`, ...).

Webhook rules, as Sentry's receivers have them: `issue.assigned` carries `data.assignee`, `issue.resolved`
carries `data.resolution_type`; unassigning sends nothing (Sentry connects no receiver to it); `issue.unresolved`
is sent only when the organization has the `webhooks-unresolved` feature (`set_feature`); `issue.ignored`
is sent as `issue.archived` to an app that subscribed to that name and not the old one. A change that
changes nothing sends nothing (not confirmed for Sentry)."""

from __future__ import annotations

import re
import shlex
from typing import Any

from werkzeug.wrappers import Request, Response

from devtools.fakes.http import Reject
from devtools.fakes.sentry.apps import Apps
from devtools.fakes.sentry.data import Comment, Issue, Member, Org, Token
from devtools.fakes.sentry.protocol import NOT_FOUND, detail, field_errors, iso, json_response, read_json
from devtools.fakes.sentry.webhooks import Outgoing, app_actor

# The PUT's `status` values and what each stores: (status, substatus, statusDetails, resolution_type).
STATUSES: dict[str, tuple[str, str | None, dict[str, Any], str | None]] = {
    "resolved": ("resolved", None, {}, "resolved"),
    "resolvedInNextRelease": ("resolved", None, {"inNextRelease": True}, "in_next_release"),
    "unresolved": ("unresolved", "ongoing", {}, None),
    "ignored": ("ignored", "archived_until_escalating", {}, None),
}


class Issues(Apps):
    """Mixin of FakeSentry: issues, comments and members."""

    def _permalink(self, org: Org, issue: Issue) -> str:
        return f"{self.base_url}/organizations/{org.slug}/issues/{issue.id}/"

    def _user_json(self, org: Org, user_id: str) -> dict[str, Any]:
        member = org.members.get(user_id)
        return {
            "type": "user",
            "id": user_id,
            "name": member.name if member else user_id,
            "email": member.email if member else "",
        }

    def _issue_json(self, org: Org, issue: Issue) -> dict[str, Any]:
        """The fields of Sentry's group serializer that an integration reads."""
        project_id = org.projects[issue.project]
        return {
            "id": issue.id,
            "shortId": issue.short_id,
            "title": issue.title,
            "culprit": "",
            "permalink": self._permalink(org, issue),
            "level": "error",
            "status": issue.status,
            "substatus": issue.substatus,
            "statusDetails": dict(issue.status_details),
            "isPublic": False,
            "platform": "python",
            "project": {"id": project_id, "name": issue.project, "slug": issue.project, "platform": "python"},
            "type": "error",
            "metadata": {"title": issue.title},
            "numComments": len(issue.comments),
            "assignedTo": None if issue.assigned_to is None else self._user_json(org, issue.assigned_to),
            "issueType": "error",
            "issueCategory": "error",
            "firstSeen": iso(issue.first_seen),
            "lastSeen": iso(issue.first_seen),
        }

    def issue(self, org: str, issue_id: str | int) -> dict[str, Any]:
        """An issue as the API shows it."""
        with self._lock:
            o = self._org(org)
            return self._issue_json(o, o.issues[str(issue_id)])

    # ------------------------------------------------------------------------------------- the endpoint

    def _handle_issue(self, request: Request, token: Token, org: Org, issue_id: str) -> Response:
        """`GET|PUT /api/0/organizations/{org}/issues/{id}/` (event:read / event:write, checked by dispatch)."""
        body = read_json(request) if request.method == "PUT" else {}
        with self._lock:
            issue = org.issues.get(issue_id)
            if issue is None:
                return detail(404, NOT_FOUND)
            if request.method == "GET":
                return json_response(self._issue_json(org, issue))
            outgoing = self._update(org, issue, body, app_actor(token.installation.app))
            answer = json_response(self._issue_json(org, issue))
        self._send_later(outgoing)
        return answer

    def change_issue(
        self,
        org: str,
        issue_id: str | int,
        *,
        status: str | None = None,
        assigned_to: str | int | None = None,
        by_user: str | int | None,
    ) -> None:
        """A person (`by_user`, a user id; None: Sentry's own automation) changing the issue in Sentry's UI:
        `status` as the API takes it, `assigned_to` a user id or "" to unassign. Webhooks go before this
        returns."""
        body: dict[str, Any] = {}
        if status is not None:
            body["status"] = status
        if assigned_to is not None:
            body["assignedTo"] = f"user:{assigned_to}" if str(assigned_to) else ""
        with self._lock:
            o = self._org(org)
            outgoing = self._update(o, o.issues[str(issue_id)], body, self._user_actor(o, by_user))
        self._send_now(outgoing)

    def _update(self, org: Org, issue: Issue, body: dict[str, Any], actor: dict[str, Any]) -> list[Outgoing]:
        """Validate all, then apply; the webhooks to send (call holding the lock)."""
        status = body.get("status")
        if status is not None and status not in STATUSES:
            raise Reject(field_errors({"status": f'"{status}" is not a valid choice.'}))
        assignee: str | None = issue.assigned_to
        if "assignedTo" in body:
            assignee = self._resolve_actor(org, body["assignedTo"])
        events: list[tuple[str, dict[str, Any]]] = []
        if status is not None:
            new_status, substatus, details, resolution = STATUSES[status]
            if (new_status, details) != (issue.status, issue.status_details):
                issue.status, issue.substatus, issue.status_details = new_status, substatus, dict(details)
                events.append((new_status, {"resolution_type": resolution} if resolution else {}))
        if assignee != issue.assigned_to:
            issue.assigned_to = assignee
            if assignee is not None:
                events.append(("assigned", {"assignee": self._assignee(org, assignee)}))
        return [out for action, data in events for out in self._issue_event(org, issue, action, data, actor)]

    def _resolve_actor(self, org: Org, value: Any) -> str | None:
        """`assignedTo` as Sentry's ActorField reads it: "" or null unassigns; `user:<id>` or a bare id; else
        a username or email of a member."""
        if value in ("", None):
            return None
        text = str(value)
        if text.startswith("team:"):
            raise Reject(field_errors({"assignedTo": "Unknown actor input"}))  # teams are not modelled
        user_id = text.removeprefix("user:")
        if user_id.isdigit() or text.startswith("user:"):
            if user_id not in org.members:
                raise Reject(field_errors({"assignedTo": "Cannot assign to non-team member"}))
            return user_id
        member = next((m for m in org.members.values() if m.email.lower() == text.lower()), None)
        if member is None:
            raise Reject(field_errors({"assignedTo": "Unknown actor input"}))
        return member.user_id

    def _assignee(self, org: Org, user_id: str) -> dict[str, Any]:
        member = org.members[user_id]
        return {"type": "user", "name": member.name, "id": int(user_id) if user_id.isdigit() else user_id,
                "email": member.email}  # fmt: skip

    def _issue_event(
        self, org: Org, issue: Issue, action: str, data: dict[str, Any], actor: dict[str, Any]
    ) -> list[Outgoing]:
        serialized = self._issue_json(org, issue)
        serialized |= {
            "url": f"{self.base_url}/api/0/organizations/{org.slug}/issues/{issue.id}/",
            "web_url": self._permalink(org, issue),
            "project_url": f"{self.base_url}/organizations/{org.slug}/issues/?project={org.projects[issue.project]}",
        }
        if action == "unresolved" and "webhooks-unresolved" not in org.features:
            return []  # Sentry sends issue.unresolved only behind this organization feature (receivers/sentry_apps.py)
        outgoing = []
        for install in self._subscribed(org, "issue"):
            named = action
            if (
                action == "ignored"
                and "issue.archived" in install.app.events
                and "issue.ignored" not in install.app.events
            ):
                named = "archived"
            outgoing.append(self._build(install, "issue", named, {**data, "issue": serialized}, actor))
        return outgoing

    # ------------------------------------------------------------------------------------------ comments

    def add_comment(self, org: str, issue_id: str | int, text: str, *, by_user: str | int) -> str:
        """A person commenting on the issue in Sentry; `comment.created` goes before this returns. Returns
        the comment id."""
        with self._lock:
            o = self._org(org)
            issue = o.issues[str(issue_id)]
            comment = Comment(self._next_id(), text, str(by_user), self.clock.now())
            issue.comments[comment.id] = comment
            outgoing = self._comment_event(o, issue, comment, "created")
        self._send_now(outgoing)
        return comment.id

    def edit_comment(self, org: str, issue_id: str | int, comment_id: str, text: str) -> None:
        with self._lock:
            o = self._org(org)
            issue = o.issues[str(issue_id)]
            comment = issue.comments[comment_id]
            comment.text = text
            outgoing = self._comment_event(o, issue, comment, "updated")
        self._send_now(outgoing)

    def delete_comment(self, org: str, issue_id: str | int, comment_id: str) -> None:
        with self._lock:
            o = self._org(org)
            issue = o.issues[str(issue_id)]
            outgoing = self._comment_event(o, issue, issue.comments.pop(comment_id), "deleted")
        self._send_now(outgoing)

    def notes(self, org: str, issue_id: str | int) -> list[dict[str, Any]]:
        """An issue's comments as stored, oldest first: `{"id", "text", "user_id", "by_app"}`."""
        with self._lock:
            issue = self._org(org).issues[str(issue_id)]
            return [
                {"id": c.id, "text": c.text, "user_id": c.user_id, "by_app": c.app is not None}
                for c in sorted(issue.comments.values(), key=lambda c: (c.created, int(c.id)))
            ]

    def _note_json(self, org: Org, comment: Comment) -> dict[str, Any]:
        """Sentry's activity serializer for a note (the fields an integration reads)."""
        user = None if comment.app is not None else self._user_json(org, comment.user_id)
        return {"id": comment.id, "user": user, "type": "note", "data": {"text": comment.text},
                "dateCreated": iso(comment.created)}  # fmt: skip

    def _handle_notes(self, request: Request, token: Token, org: Org, issue_id: str, _kind: str) -> Response:
        """`GET|POST /api/0/organizations/{org}/issues/{id}/comments/` (GroupNotesEndpoint, group_notes.py).

        POST: NoteSerializer wants `text`; the same data by the same user on the group within the last hour is
        refused 400 "You have already posted that comment."; a note made with an app's token is its proxy user's,
        and `comment.created` names the app as actor. GET: newest first (`order_by="-datetime"`)."""
        body = read_json(request) if request.method == "POST" else {}
        app = token.installation.app
        user_id = f"app:{app.uuid}"
        with self._lock:
            issue = org.issues.get(issue_id)
            if issue is None:
                return detail(404, NOT_FOUND)
            if request.method == "GET":
                notes = sorted(issue.comments.values(), key=lambda c: (c.created, int(c.id)), reverse=True)
                return json_response([self._note_json(org, c) for c in notes])
            text = body.get("text") if isinstance(body, dict) else None
            if not isinstance(text, str) or not text.strip():
                blank = "This field is required." if text is None else "This field may not be blank."
                return field_errors({"text": blank})
            now = self.clock.now()
            if any(
                c.user_id == user_id and c.text == text and c.created >= now - 3600 for c in issue.comments.values()
            ):
                return detail(400, "You have already posted that comment.")
            comment = Comment(self._next_id(), text, user_id, now, app)
            issue.comments[comment.id] = comment
            outgoing = self._comment_event(org, issue, comment, "created")
            answer = json_response(self._note_json(org, comment), 201)
        self._send_later(outgoing)
        return answer

    def _handle_note(
        self, request: Request, token: Token, org: Org, issue_id: str, _kind: str, note_id: str
    ) -> Response:
        """`PUT|DELETE …/comments/{note_id}/` (GroupNotesDetailsEndpoint): only the caller's own note is found
        (404 otherwise); PUT answers 200 with the note, DELETE 204."""
        body = read_json(request) if request.method == "PUT" else {}
        user_id = f"app:{token.installation.app.uuid}"
        with self._lock:
            issue = org.issues.get(issue_id)
            comment = issue.comments.get(note_id) if issue is not None else None
            if issue is None or comment is None or comment.user_id != user_id:
                return detail(404, NOT_FOUND)
            if request.method == "DELETE":
                outgoing = self._comment_event(org, issue, issue.comments.pop(note_id), "deleted")
                answer = Response(status=204)
            else:
                text = body.get("text") if isinstance(body, dict) else None
                if not isinstance(text, str) or not text.strip():
                    return field_errors({"text": "This field is required."})
                comment.text = text
                outgoing = self._comment_event(org, issue, comment, "updated")
                answer = json_response(self._note_json(org, comment))
        self._send_later(outgoing)
        return answer

    def _comment_event(self, org: Org, issue: Issue, comment: Comment, action: str) -> list[Outgoing]:
        data = {
            "comment_id": int(comment.id),
            "issue_id": int(issue.id) if issue.id.isdigit() else issue.id,
            "project_slug": issue.project,
            "timestamp": iso(self.clock.now()),
            "comment": comment.text,
        }
        actor = app_actor(comment.app) if comment.app is not None else self._user_actor(org, comment.user_id)
        return [self._build(i, "comment", action, data, actor) for i in self._subscribed(org, "comment")]

    # ------------------------------------------------------------------------------------------- members

    def _handle_members(self, request: Request, token: Token, org: Org) -> Response:
        """`GET /api/0/organizations/{org}/members/?query=...` (member:read)."""
        try:
            filters = tokenize_query(request.args.get("query", ""))
        except ValueError:
            filters = {"query": [request.args.get("query", "")]}
        with self._lock:
            found = [m for m in org.members.values() if all(matches(m, k, v) for k, v in filters.items())]
            return json_response([self._member_json(m, org) for m in sorted(found, key=lambda m: int(m.id))])

    def _member_json(self, member: Member, org: Org) -> dict[str, Any]:
        user = {"id": member.user_id, "name": member.name, "username": member.email, "email": member.email,
                "isActive": True}  # fmt: skip
        return {"id": member.id, "email": member.email, "name": member.name, "user": user, "orgRole": member.role,
                "role": member.role, "pending": False, "expired": False}  # fmt: skip


def tokenize_query(text: str) -> dict[str, list[str]]:
    """Sentry's `tokenize_query`: `key:value` terms (values may be quoted) by key; other words under `query`."""
    terms: dict[str, list[str]] = {}
    for word in shlex.split(text):
        key, sep, value = word.partition(":")
        if sep and key and re.fullmatch(r"[\w.]+", key):
            terms.setdefault(key, []).append(value)
        else:
            terms.setdefault("query", []).append(word)
    return terms


def matches(member: Member, key: str, values: list[str]) -> bool:
    """One filter of the members list, as Sentry's endpoint applies it; an unknown key matches nothing."""
    if key == "email":
        return member.email.lower() in {v.lower() for v in values}
    if key == "user.id":
        return member.user_id in values
    if key == "id":
        return member.id in values
    if key == "role":
        return member.role in values
    if key == "query":
        text = " ".join(values).lower()
        return text in member.email.lower() or text in member.name.lower()
    return False
