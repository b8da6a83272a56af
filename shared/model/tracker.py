"""The tracker side as plain data: installations, members, tracked issues and their links (contract §6).

Stored by `shared.store.tracker`; changed by the pure rules of `shared.sync.rules`.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field, replace
from typing import Any

from shared.clock import iso_utc
from shared.errors import Conflict

MAX_ACTIVITY = 100
# The activity is one string property: Table Storage counts it in UTF-16 (2 bytes a character of the ASCII JSON)
# and refuses more than 64 KiB. Kept below that with room, newest first, so that no issue becomes unwritable.
MAX_ACTIVITY_BYTES = 60 * 1024
# Links, their watermarks and the activity share one entity, whose properties Table Storage caps at 64 KiB each:
# fifty links with their watermarks stay far below that.
MAX_LINKS = 50
RESOLVED = "resolved"
UNRESOLVED = "unresolved"
STATUSES = (UNRESOLVED, RESOLVED)


ANY = "*"


@dataclass(frozen=True)
class StateRule:
    """Which state a resolve or an unresolve moves a work item to (contract §12.1): the first rule whose project
    (name or id) and type match wins; a rule without the state for that direction is passed over."""

    project: str = ANY
    type: str = ANY
    resolved: str | None = None
    unresolved: str | None = None

    def matches(self, project_names: tuple[str, ...], work_item_type: str) -> bool:
        def same(wanted: str, actual: str) -> bool:
            return wanted == ANY or wanted.casefold() == actual.casefold()

        return any(same(self.project, name) for name in project_names) and same(self.type, work_item_type)

    def public(self) -> dict[str, Any]:
        rule: dict[str, Any] = {"project": self.project, "type": self.type}
        rule.update({k: v for k, v in (("resolved", self.resolved), ("unresolved", self.unresolved)) if v})
        return rule


@dataclass(frozen=True)
class FieldDefault:
    """Values for a create's fields (contract §17), for a project and a type (`*`: any), e.g. a required
    `Custom.Team` that Sentry's pasted form cannot ask for per type. A create's own values win."""

    project: str
    type: str
    fields: dict[str, Any]

    def matches(self, project: str, work_item_type: str) -> bool:
        return all(
            want == ANY or want.casefold() == have.casefold()
            for want, have in ((self.project, project), (self.type, work_item_type))
        )

    def public(self) -> dict[str, Any]:
        return {"project": self.project, "type": self.type, "fields": dict(self.fields)}


@dataclass(frozen=True)
class Installation:
    integration_id: str
    org_id: str
    sync_reverse_assignment: bool = False
    sync_status_reverse: bool = False
    resolve_states: tuple[str, ...] = ()
    sync_status_forward: bool = False
    sync_forward_assignment: bool = False
    sync_comments: bool = False
    # Comments written on linked work items reach the tracked issue, and a Sentry organization's Sentry issue (§18).
    sync_comments_reverse: bool = False
    state_rules: tuple[StateRule, ...] = ()
    field_defaults: tuple[FieldDefault, ...] = ()
    # The organization's own Azure DevOps credentials for this integration (entered on the setup page when the
    # integration's own belong to another organization); used before the integration's. Never shown.
    credentials: dict[str, Any] = field(default_factory=dict, repr=False)
    # Whether an operator shared the integration's credentials with this organization (contract §16: the admin
    # API's PUT of the installation is such a share).
    credential_shared: bool = False

    @property
    def syncs_forward(self) -> bool:
        return self.sync_status_forward or self.sync_forward_assignment or self.sync_comments

    def public(self) -> dict[str, Any]:
        return {
            "integration_id": self.integration_id,
            "org_id": self.org_id,
            "sync_reverse_assignment": self.sync_reverse_assignment,
            "sync_status_reverse": self.sync_status_reverse,
            "resolve_states": list(self.resolve_states),
            "sync_status_forward": self.sync_status_forward,
            "sync_forward_assignment": self.sync_forward_assignment,
            "sync_comments": self.sync_comments,
            "sync_comments_reverse": self.sync_comments_reverse,
            "state_rules": [rule.public() for rule in self.state_rules],
            "field_defaults": [default.public() for default in self.field_defaults],
        }

    def defaults_for(self, project: str, work_item_type: str) -> dict[str, Any]:
        """The field defaults of every matching entry, earlier entries first."""
        found: dict[str, Any] = {}
        for default in self.field_defaults:
            if default.matches(project, work_item_type):
                for name, value in default.fields.items():
                    found.setdefault(name, value)
        return found


@dataclass(frozen=True)
class Member:
    org_id: str
    email: str
    user_id: str
    name: str | None = None

    def public(self) -> dict[str, Any]:
        return {"org_id": self.org_id, "email": self.email, "user_id": self.user_id, "name": self.name}


@dataclass(frozen=True)
class Link:
    integration_id: str
    work_item_id: int

    @property
    def key(self) -> str:
        return f"{self.integration_id}|{self.work_item_id}"


@dataclass(frozen=True)
class TrackedIssue:
    org_id: str
    issue_id: str
    title: str
    status: str = UNRESOLVED
    assignee_email: str | None = None
    assignee_user_id: str | None = None
    url: str | None = None  # the issue's page in the tracker: the Hyperlink a created work item points back to
    links: tuple[Link, ...] = ()
    activity: tuple[dict[str, Any], ...] = ()
    # Per linked work item: the revision that last set each synced field, and the value last seen there, e.g.
    # {"<integration>|<id>": {"status": 3, "state": "Active", "assignee": 2, "assignee_seen": "dana@example.com"}}.
    watermarks: dict[str, dict[str, int | str]] = field(default_factory=dict)
    # A Sentry organization's issue: its status and assignee as the app last saw them in Sentry, in Sentry's
    # terms ({"status": "resolved", "assignee": "user:101"}; "" for nobody). A webhook or the reconcile timer
    # applies only what Sentry changed since, so an old or repeated webhook cannot roll the issue back.
    sentry_seen: dict[str, str] | None = None
    etag: str | None = field(default=None, compare=False)

    def public(self) -> dict[str, Any]:
        assignee = (
            {"email": self.assignee_email, "user_id": self.assignee_user_id}
            if self.assignee_email is not None
            else None
        )
        return {
            "id": self.issue_id,
            "title": self.title,
            "status": self.status,
            "assignee": assignee,
            "url": self.url,
            "links": [
                {"integration_id": link.integration_id, "work_item_id": link.work_item_id} for link in self.links
            ],
            "activity": list(self.activity),
        }

    def with_link(self, link: Link) -> TrackedIssue | None:
        """This issue linked to `link` too (None: it already is). Raises Conflict past MAX_LINKS."""
        if link in self.links:
            return None
        if len(self.links) >= MAX_LINKS:
            raise Conflict(
                f"An issue can link at most {MAX_LINKS} work items and this one links {len(self.links)}; "
                "unlink one first."
            )
        return replace(self, links=self.links + (link,))

    def without_link(self, link: Link) -> TrackedIssue | None:
        """This issue no longer linked to `link`, its watermarks for it gone too (None: it was not linked)."""
        if link not in self.links:
            return None
        watermarks = {key: marks for key, marks in self.watermarks.items() if key != link.key}
        return replace(self, links=tuple(x for x in self.links if x != link), watermarks=watermarks)

    def with_activity(self, *entries: dict[str, Any]) -> TrackedIssue:
        return replace(self, activity=newest_activity(self.activity + entries))


def activity_json(entries: tuple[dict[str, Any], ...] | list[dict[str, Any]]) -> str:
    """The activity as stored: compact JSON, ASCII only (json.dumps escapes the rest)."""
    return json.dumps(list(entries), separators=(",", ":"))


def newest_activity(entries: tuple[dict[str, Any], ...]) -> tuple[dict[str, Any], ...]:
    """The newest entries, at most MAX_ACTIVITY, whose stored JSON is at most MAX_ACTIVITY_BYTES of UTF-16."""
    budget = MAX_ACTIVITY_BYTES // 2 - 2  # ASCII JSON: one UTF-16 unit a character; less the brackets
    kept: list[dict[str, Any]] = []
    for entry in reversed(entries[-MAX_ACTIVITY:]):
        budget -= len(activity_json([entry])) - 2 + (1 if kept else 0)  # the entry, and its comma
        if budget < 0:
            break
        kept.append(entry)
    return tuple(reversed(kept))


def activity_entry(
    kind: str, source: str, work_item_id: int | None, rev: int | None, *, at: float | None = None
) -> dict[str, Any]:
    at_text = iso_utc(time.time() if at is None else at)
    return {"type": kind, "source": source, "work_item_id": work_item_id, "rev": rev, "at": at_text}
