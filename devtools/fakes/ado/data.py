"""The fake's model: organizations, projects, work items and states, the lock that guards them, and the
methods tests use to set them up and read them back."""

from __future__ import annotations

import copy
import threading
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from devtools.fakes.ado.processes import canonical_process
from devtools.fakes.ado.protocol import iso_ms

DEFAULT_PROJECT = "proj-id"
DEFAULT_REVISED_BY = "Jamal Hartnett <fabrikamfiber4@hotmail.com>"
# Whom a request acts as when its credential was given no identity; a member of every organization.
DEFAULT_CALLER = "Fabrikam Integration <integration@fabrikam.example>"
FAR_FUTURE = "9999-01-01T00:00:00Z"  # System.RevisedDate of the current revision

STATE_CATEGORIES = ("Proposed", "InProgress", "Resolved", "Completed", "Removed")
STATE_COLORS = {
    "Proposed": "b2b2b2",
    "InProgress": "007acc",
    "Resolved": "ff9d00",
    "Completed": "339933",
    "Removed": "ffffff",
}
# The Agile process' types, so tests need set_states only for custom workflows.
DEFAULT_STATES: dict[str, list[tuple[str, str]]] = {
    "bug": [
        ("New", "Proposed"),
        ("Active", "InProgress"),
        ("Resolved", "Resolved"),
        ("Closed", "Completed"),
        ("Removed", "Removed"),
    ],
    "user story": [
        ("New", "Proposed"),
        ("Active", "InProgress"),
        ("Resolved", "Resolved"),
        ("Closed", "Completed"),
        ("Removed", "Removed"),
    ],
    "task": [("New", "Proposed"), ("Active", "InProgress"), ("Closed", "Completed"), ("Removed", "Removed")],
}


@dataclass
class Project:
    id: str
    name: str
    # None: made implicitly; it has the Agile types but the fake's historic states (DEFAULT_STATES, Bug with
    # Removed), kept so tests written before processes existed see what they always saw.
    process: str | None = None
    areas: list[str] = field(default_factory=list)  # paths below the root area, e.g. "Web\\UI"
    iterations: dict[str, tuple[str | None, str | None]] = field(default_factory=dict)  # path -> (start, finish)


@dataclass
class WorkItem:
    id: int
    project: str  # the project's id
    rev: int
    fields: dict[str, Any]
    update_count: int  # the id of the latest update (creation is update 1)
    updates: list[dict[str, Any]] = field(default_factory=list)
    relations: list[dict[str, Any]] = field(default_factory=list)
    comments: list[dict[str, Any]] = field(default_factory=list)  # as stored, deleted ones included


@dataclass
class Org:
    name: str
    host_id: str
    account_id: str
    location_url: str | None
    pats: set[str] = field(default_factory=set)
    projects: dict[str, Project] = field(default_factory=dict)  # by id, lower-cased
    work_items: dict[int, WorkItem] = field(default_factory=dict)
    states: dict[tuple[str, str], list[tuple[str, str]]] = field(default_factory=dict)  # (project id, type)
    identities: dict[str, str] = field(default_factory=dict)  # unique name (lower) -> "Display <unique name>"
    disabled_types: set[tuple[str, str]] = field(default_factory=set)  # (project id, type), lower-cased
    custom_fields: set[str] = field(default_factory=set)  # reference names, lower-cased
    # A process rule "required" on a type's field, with its allowed values (empty: any value):
    # (project id, type) lower-cased -> {reference name: allowed values}
    required_fields: dict[tuple[str, str], dict[str, tuple[str, ...]]] = field(default_factory=dict)
    type_names: dict[tuple[str, str], str] = field(default_factory=dict)  # set_states' types, as spelled
    last_comment_id: int = 0

    @property
    def key(self) -> str:
        return self.name.lower()

    def project(self, name_or_id: str) -> Project | None:
        wanted = name_or_id.lower()
        found = self.projects.get(wanted)
        if found is None:
            found = next((p for p in self.projects.values() if p.name.lower() == wanted), None)
        return found


class Store:
    """The base of every mixin of FakeAzureDevOps: the model and its one lock (the server is threaded).

    The mixins share this state and call each other's methods through the FakeAzureDevOps they make up
    (`org_url` from the server, `_identity_ref` from the work item endpoints, ...).
    """

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._orgs: dict[str, Org] = {}
        self._git: dict[str, dict[str, Any]] = {}  # organization -> repository id -> Repository (repos.py)
        self._watermark = 0
        self._last_timestamp: datetime | None = None

    # -------------------------------------------------------------------------------- organizations

    def add_org(
        self, name: str, host_id: str, *, location_url: str | None = None, account_id: str | None = None
    ) -> None:
        """An organization. `host_id` is its collection id (the integration key); the lookup accepts it and
        `account_id` (default: derived from host_id), as the reference leaves open which one Azure DevOps takes.
        """
        with self._lock:
            if name.lower() in self._orgs:
                raise ValueError(f"organization {name!r} already exists")
            account = account_id or str(uuid.uuid5(uuid.NAMESPACE_URL, f"account:{host_id.lower()}"))
            org = Org(name=name, host_id=host_id, account_id=account, location_url=location_url)
            org.projects[DEFAULT_PROJECT] = Project(DEFAULT_PROJECT, DEFAULT_PROJECT)
            for member in (DEFAULT_CALLER, DEFAULT_REVISED_BY):
                org.identities[member.split("<")[1].rstrip(">").lower()] = member
            self._orgs[org.key] = org

    def set_location(self, host_id: str, url: str | None) -> None:
        """What the lookup answers as `locationUrl` for this host id; None restores the default."""
        with self._lock:
            self._org_by_host(host_id).location_url = url

    def add_project(self, org: str, project_id: str, name: str | None = None, *, process: str | None = None) -> None:
        """A project (id and name); projects used by work items or set_states are added implicitly.

        `process` ("Agile", "Scrum", "CMMI" or "Basic") gives it that process' work item types and states
        (processes.py); without it an existing project keeps its process and a new one has the fake's historic
        defaults (the Agile types, DEFAULT_STATES).
        """
        chosen = canonical_process(process) if process is not None else None
        with self._lock:
            project = self._ensure_project(self._org(org), project_id)
            project.name = name or project_id
            if chosen is not None:
                project.process = chosen

    def add_identity(self, org: str, email: str, display_name: str) -> str:
        """A member of the organization: `System.AssignedTo` accepts its email, 'Display Name <email>' or its
        display name (when no other member has it). Returns the 'Display Name <email>' form work items store."""
        identity = f"{display_name} <{email}>"
        with self._lock:
            self._org(org).identities[email.lower()] = identity
        return identity

    # --------------------------------------------------------------------------------- work items, states

    def add_work_item(
        self, org: str, work_item_id: int, fields: Mapping[str, Any], *, project: str = DEFAULT_PROJECT, rev: int = 1
    ) -> dict[str, Any]:
        """A work item; common system fields get defaults unless given. Returns {id, rev, project, fields}."""
        with self._lock:
            o = self._org(org)
            if work_item_id in o.work_items:
                raise ValueError(f"work item {work_item_id} already exists in {org!r}")
            proj = self._ensure_project(o, project)
            now = self._next_timestamp()
            self._watermark += 1
            values: dict[str, Any] = {
                "System.AreaPath": proj.name,
                "System.TeamProject": proj.name,
                "System.IterationPath": proj.name,
                "System.WorkItemType": "Bug",
                "System.State": "New",
                "System.Reason": "New",
                "System.CreatedDate": now,
                "System.ChangedDate": now,
                "System.Title": f"Work item {work_item_id}",
            }
            values.update(fields)
            values.update({"System.Id": work_item_id, "System.Rev": rev, "System.Watermark": self._watermark})
            values = {k: v for k, v in values.items() if v is not None}  # fields without values are omitted
            item = WorkItem(id=work_item_id, project=proj.id, rev=rev, fields=values, update_count=rev)
            o.work_items[work_item_id] = item
            return self._snapshot(item)

    def work_item(self, org: str, work_item_id: int) -> dict[str, Any]:
        """The current work item: {id, rev, project, fields} (identity fields as given, strings)."""
        with self._lock:
            return self._snapshot(self._item(org, work_item_id))

    def relations(self, org: str, work_item_id: int) -> list[dict[str, Any]]:
        """The work item's relations: {rel, url, attributes}."""
        with self._lock:
            return copy.deepcopy(self._item(org, work_item_id).relations)

    def updates(self, org: str, work_item_id: int) -> list[dict[str, Any]]:
        """The `resource` of every update made with update_work_item, oldest first."""
        with self._lock:
            return copy.deepcopy(self._item(org, work_item_id).updates)

    def set_states(self, org: str, project: str, work_item_type: str, states: Iterable[tuple[str, str]]) -> None:
        """The states of a work item type in a project, as (name, category) pairs."""
        states = list(states)
        for name, category in states:
            if category not in STATE_CATEGORIES:
                raise ValueError(f"state {name!r}: category must be one of {STATE_CATEGORIES}, not {category!r}")
        with self._lock:
            o = self._org(org)
            proj = self._ensure_project(o, project)
            o.states[(proj.id.lower(), work_item_type.lower())] = states
            o.type_names[(proj.id.lower(), work_item_type.lower())] = work_item_type

    # ------------------------------------------------------------------------------------------ internals

    def _org(self, name: str) -> Org:
        try:
            return self._orgs[name.lower()]
        except KeyError:
            raise KeyError(f"unknown organization {name!r}; call add_org first") from None

    def _org_by_host(self, host_id: str) -> Org:
        wanted = host_id.lower()
        for org in self._orgs.values():
            if wanted in (org.host_id.lower(), org.account_id.lower()):
                return org
        raise KeyError(f"no organization has host id {host_id!r}")

    def _item(self, org: str, work_item_id: int) -> WorkItem:
        try:
            return self._org(org).work_items[work_item_id]
        except KeyError:
            raise KeyError(f"work item {work_item_id} does not exist in {org!r}") from None

    @staticmethod
    def _ensure_project(org: Org, project: str) -> Project:
        found = org.project(project)
        if found is None:
            found = org.projects[project.lower()] = Project(project, project)
        return found

    @staticmethod
    def _snapshot(item: WorkItem) -> dict[str, Any]:
        return {"id": item.id, "rev": item.rev, "project": item.project, "fields": copy.deepcopy(item.fields)}

    def _next_timestamp(self) -> str:
        """Now (ms precision), strictly later than any timestamp given before, so ChangedDate always grows."""
        now = datetime.now(UTC)
        now = now.replace(microsecond=now.microsecond // 1000 * 1000)
        if self._last_timestamp is not None and now <= self._last_timestamp:
            now = self._last_timestamp + timedelta(milliseconds=1)
        self._last_timestamp = now
        return iso_ms(now)

    def _apply_update(self, item: WorkItem, changes: Mapping[str, Any], revised_by: str) -> dict[str, dict[str, Any]]:
        """Change fields (None clears one), bump rev and System.ChangedDate; return the diff as the
        workitem.updated resource lists it: {field: {oldValue, newValue}}."""
        now = self._next_timestamp()
        self._watermark += 1
        old = dict(item.fields)
        new = dict(old)
        for key, value in changes.items():
            if value is None:
                new.pop(key, None)
            else:
                new[key] = value
        item.rev += 1
        item.update_count += 1
        new.update(
            {
                "System.Rev": item.rev,
                "System.ChangedDate": now,
                "System.AuthorizedDate": now,
                "System.ChangedBy": revised_by,
                "System.AuthorizedAs": revised_by,
                "System.Watermark": self._watermark,
            }
        )
        diff: dict[str, dict[str, Any]] = {}
        for key in [*old, *(k for k in new if k not in old)]:
            if old.get(key) != new.get(key):
                entry: dict[str, Any] = {}
                if key in old:
                    entry["oldValue"] = old[key]
                if key in new:
                    entry["newValue"] = new[key]
                diff[key] = entry
        # The previous revision ends now; the new one is current (Azure DevOps always sends this pair).
        diff["System.RevisedDate"] = {"oldValue": now, "newValue": FAR_FUTURE}
        item.fields = new
        return diff
