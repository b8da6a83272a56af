"""The tracker side in Table Storage: installations, members, tracked issues and their links (contract §6).

Tables, chosen so that the delivery path uses point reads and single-partition queries only:

| table           | PartitionKey                    | RowKey              | what                                  |
|-----------------|---------------------------------|---------------------|---------------------------------------|
| `installations` | integration id                  | org id              | an org's sync settings for it         |
| `members`       | org id                          | email (lower-case)  | a member, for assignee matching       |
| `issues`        | org id                          | issue id            | a tracked issue: status, assignee,    |
|                 |                                 |                     | its links, activity, watermarks       |
| `links`         | `integration id|work item id`   | `org id|issue id`   | which issues link a work item         |

A link lives in the issue (the truth, shown by GET) and in the `links` index (for the delivery path); the
index is written first and removed last, and a delivery ignores an index entry its issue does not confirm.
Issues are updated read-modify-write under their ETag, so concurrent deliveries never lose an update.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import AzureError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import UpdateMode

from shared import storage
from shared.errors import ConcurrentUpdate

INSTALLATIONS = "installations"
MEMBERS = "members"
ISSUES = "issues"
LINKS = "links"
MAX_ACTIVITY = 100
MAX_UPDATE_ATTEMPTS = 20  # many deliveries for one work item may race on one issue
RESOLVED = "resolved"
UNRESOLVED = "unresolved"
STATUSES = (UNRESOLVED, RESOLVED)

_EMAIL = re.compile(r"[^@\s/\\#?|\x00-\x1f\x7f]{1,64}@[A-Za-z0-9.-]{1,190}\.[A-Za-z0-9-]{1,63}")


def normalize_email(value: object) -> str | None:
    """The lower-cased email, or None when it is not a plausible address that can be a table key."""
    if not isinstance(value, str) or len(value) > 254 or not _EMAIL.fullmatch(value.strip()):
        return None
    return value.strip().lower()


@dataclass(frozen=True)
class Installation:
    integration_id: str
    org_id: str
    sync_reverse_assignment: bool = False
    sync_status_reverse: bool = False
    resolve_states: tuple[str, ...] = ()

    def public(self) -> dict[str, Any]:
        return {
            "integration_id": self.integration_id,
            "org_id": self.org_id,
            "sync_reverse_assignment": self.sync_reverse_assignment,
            "sync_status_reverse": self.sync_status_reverse,
            "resolve_states": list(self.resolve_states),
        }


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
    links: tuple[Link, ...] = ()
    activity: tuple[dict[str, Any], ...] = ()
    # Per linked work item and synced field, the revision that last set it: {"<integration>|<id>": {"status": 3}}.
    watermarks: dict[str, dict[str, int]] = field(default_factory=dict)
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
            "links": [
                {"integration_id": link.integration_id, "work_item_id": link.work_item_id} for link in self.links
            ],
            "activity": list(self.activity),
        }

    def with_activity(self, *entries: dict[str, Any]) -> TrackedIssue:
        return replace(self, activity=(self.activity + entries)[-MAX_ACTIVITY:])


def activity_entry(kind: str, source: str, work_item_id: int | None, rev: int | None) -> dict[str, Any]:
    at = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + f".{int(time.time() * 1000) % 1000:03d}Z"
    return {"type": kind, "source": source, "work_item_id": work_item_id, "rev": rev, "at": at}


def _issue_entity(issue: TrackedIssue) -> dict[str, Any]:
    entity: dict[str, Any] = {
        "PartitionKey": issue.org_id,
        "RowKey": issue.issue_id,
        "Title": issue.title,
        "Status": issue.status,
        "Links": json.dumps([[link.integration_id, link.work_item_id] for link in issue.links]),
        "Activity": json.dumps(list(issue.activity), separators=(",", ":")),
        "Watermarks": json.dumps(issue.watermarks, separators=(",", ":")),
    }
    if issue.assignee_email is not None:
        entity["AssigneeEmail"] = issue.assignee_email
        entity["AssigneeUserId"] = issue.assignee_user_id or ""
    return entity


def _issue_from(entity: dict[str, Any]) -> TrackedIssue:
    return TrackedIssue(
        org_id=entity["PartitionKey"],
        issue_id=entity["RowKey"],
        title=entity.get("Title", ""),
        status=entity.get("Status", UNRESOLVED),
        assignee_email=entity.get("AssigneeEmail") or None,
        assignee_user_id=entity.get("AssigneeUserId") or None,
        links=tuple(Link(i, int(w)) for i, w in json.loads(entity.get("Links") or "[]")),
        activity=tuple(json.loads(entity.get("Activity") or "[]")),
        watermarks=json.loads(entity.get("Watermarks") or "{}"),
        etag=entity.metadata.get("etag") if hasattr(entity, "metadata") else None,
    )


class TrackerStore:
    """Installations, members, tracked issues and links. Storage failures raise `storage.StorageUnavailable`."""

    # -- installations -------------------------------------------------------------------------------

    def put_installation(self, installation: Installation) -> bool:
        """Create or replace; True when it was created."""
        entity = {
            "PartitionKey": installation.integration_id,
            "RowKey": installation.org_id,
            "SyncReverseAssignment": installation.sync_reverse_assignment,
            "SyncStatusReverse": installation.sync_status_reverse,
            "ResolveStates": json.dumps(list(installation.resolve_states)),
        }
        with _storage_errors("saving an installation"):
            existed = storage.get_entity(storage.table(INSTALLATIONS), entity["PartitionKey"], entity["RowKey"])
            storage.write(storage.table(INSTALLATIONS), lambda t: t.upsert_entity(entity, mode=UpdateMode.REPLACE))
        return existed is None

    def installations_of(self, integration_id: str) -> list[Installation]:
        """Every organization's installation of an integration: one single-partition query."""
        with _storage_errors("reading installations"):
            entities = _query(INSTALLATIONS, "PartitionKey eq @pk", {"pk": integration_id})
        return [
            Installation(
                integration_id=e["PartitionKey"],
                org_id=e["RowKey"],
                sync_reverse_assignment=bool(e.get("SyncReverseAssignment")),
                sync_status_reverse=bool(e.get("SyncStatusReverse")),
                resolve_states=tuple(json.loads(e.get("ResolveStates") or "[]")),
            )
            for e in entities
        ]

    # -- members ---------------------------------------------------------------------------------------

    def put_member(self, member: Member) -> bool:
        entity = {"PartitionKey": member.org_id, "RowKey": member.email, "UserId": member.user_id}
        if member.name is not None:
            entity["Name"] = member.name
        with _storage_errors("saving a member"):
            existed = storage.get_entity(storage.table(MEMBERS), member.org_id, member.email)
            storage.write(storage.table(MEMBERS), lambda t: t.upsert_entity(entity, mode=UpdateMode.REPLACE))
        return existed is None

    def get_member(self, org_id: str, email: str) -> Member | None:
        with _storage_errors("reading a member"):
            entity = storage.get_entity(storage.table(MEMBERS), org_id, email)
        if entity is None:
            return None
        return Member(org_id, email, entity.get("UserId", ""), entity.get("Name"))

    def delete_member(self, org_id: str, email: str) -> bool:
        with _storage_errors("deleting a member"):
            if storage.get_entity(storage.table(MEMBERS), org_id, email) is None:
                return False
            storage.table(MEMBERS).delete_entity(org_id, email)
        return True

    # -- issues ----------------------------------------------------------------------------------------

    def get_issue(self, org_id: str, issue_id: str) -> TrackedIssue | None:
        with _storage_errors("reading an issue"):
            entity = storage.get_entity(storage.table(ISSUES), org_id, issue_id)
        return _issue_from(entity) if entity is not None else None

    def create_issue(self, issue: TrackedIssue) -> TrackedIssue | None:
        """Insert; None when an issue with that id exists already."""
        from azure.core.exceptions import ResourceExistsError

        try:
            with _storage_errors("creating an issue"):
                meta = storage.write(storage.table(ISSUES), lambda t: t.create_entity(_issue_entity(issue)))
        except ResourceExistsError:
            return None
        return replace(issue, etag=meta.get("etag"))

    def update_issue(
        self, org_id: str, issue_id: str, change: Callable[[TrackedIssue], TrackedIssue | None]
    ) -> TrackedIssue | None:
        """Apply `change` under the issue's ETag, re-reading and re-applying it when another writer won.

        `change` returns the new issue, or None for no change. Returns the stored issue (None if missing).
        """
        table = storage.table(ISSUES)
        for _ in range(MAX_UPDATE_ATTEMPTS):
            current = self.get_issue(org_id, issue_id)
            if current is None:
                return None
            updated = change(current)
            if updated is None or updated == current:
                return current
            try:
                with _storage_errors("updating an issue"):
                    meta = table.update_entity(
                        _issue_entity(updated),
                        mode=UpdateMode.REPLACE,
                        etag=current.etag,
                        match_condition=MatchConditions.IfNotModified,
                    )
            except ResourceModifiedError:
                continue
            except ResourceNotFoundError:
                return None
            return replace(updated, etag=meta.get("etag"))
        raise ConcurrentUpdate(f"issue {org_id}/{issue_id} kept changing during an update")

    # -- links -----------------------------------------------------------------------------------------

    def add_link_index(self, link: Link, org_id: str, issue_id: str) -> None:
        entity = {"PartitionKey": link.key, "RowKey": f"{org_id}|{issue_id}", "OrgId": org_id, "IssueId": issue_id}
        with _storage_errors("saving a link"):
            storage.write(storage.table(LINKS), lambda t: t.upsert_entity(entity, mode=UpdateMode.REPLACE))

    def remove_link_index(self, link: Link, org_id: str, issue_id: str) -> None:
        try:
            with _storage_errors("removing a link"):
                storage.table(LINKS).delete_entity(link.key, f"{org_id}|{issue_id}")
        except ResourceNotFoundError:
            pass  # already gone

    def linked_issues(self, link: Link) -> list[tuple[str, str]]:
        """(org id, issue id) of every issue linked to the work item: one single-partition query."""
        with _storage_errors("reading links"):
            entities = _query(LINKS, "PartitionKey eq @pk", {"pk": link.key}, select=["OrgId", "IssueId"])
        return [(e["OrgId"], e["IssueId"]) for e in entities]

    def linked_work_items(self, integration_id: str) -> list[int]:
        """Every work item of the integration that some issue links (a key-range query, for the reconcile timer;
        `}` is the character after the `|` that ends the integration id in the key)."""
        with _storage_errors("reading links"):
            entities = _query(
                LINKS,
                "PartitionKey ge @low and PartitionKey lt @high",
                {"low": f"{integration_id}|", "high": f"{integration_id}}}"},
                select=["PartitionKey"],
            )
        return sorted({w for w in (_work_item_of(e["PartitionKey"]) for e in entities) if w is not None})


def _work_item_of(partition_key: str) -> int | None:
    _, _, work_item = partition_key.rpartition("|")
    return int(work_item) if work_item.isdigit() else None


def _query(table: str, query: str, parameters: dict[str, Any], select: list[str] | None = None) -> list[dict]:
    try:
        return list(storage.table(table).query_entities(query, parameters=parameters, select=select))
    except ResourceNotFoundError:
        return []  # no table yet: nothing stored


class _storage_errors:
    """Turn Azure storage failures (other than the ones a caller handles) into StorageUnavailable."""

    def __init__(self, what: str) -> None:
        self.what = what

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: object) -> bool:
        if exc is None or not isinstance(exc, AzureError):
            return False
        if (
            isinstance(exc, (ResourceModifiedError, ResourceNotFoundError))
            or type(exc).__name__ == "ResourceExistsError"
        ):
            return False
        raise storage.StorageUnavailable(f"{self.what} failed: {type(exc).__name__}") from exc
