"""Apply a work item update to the tracked issues linked to it (contract §5.2-5.3).

For every organization that installed the integration, for every issue of it linked to the work item:
the assignee (when `sync_reverse_assignment`) and the status (when `sync_status_reverse`) follow the work
item, each field only when the update's revision is newer than the one that last set it, so replays and
late deliveries change nothing. Done states come from the work item type's state categories in Azure
DevOps (cached in Table Storage), plus the installation's `resolve_states`; when they cannot be read, the
update is retried later (`RetryLater`), never guessed.

Storage round trips for an assignment to one linked issue: installations (query), links (query),
member (point read), issue (point read + conditional write): five.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Literal, TypeVar
from urllib.parse import quote

from azure.core.exceptions import AzureError
from azure.data.tables import UpdateMode

from shared import storage
from shared.ado_client import AdoClient, AdoError
from shared.delivery import StateChange, WorkItemUpdate
from shared.errors import RetryLater
from shared.integrations import Integration, IntegrationNotFound, IntegrationStore
from shared.lookups import call_tracking_reauth, get_client
from shared.sync_rules import done_states_from_categories, is_done, is_newer, status_action
from shared.tracker import (
    RESOLVED,
    UNRESOLVED,
    Installation,
    Link,
    Member,
    TrackedIssue,
    TrackerStore,
    activity_entry,
)

log = logging.getLogger(__name__)

STATES_TABLE = "statescache"
STATES_TTL_SECONDS = 3600
SOURCE = "vsts"
T = TypeVar("T")


@dataclass
class ApplyReport:
    linked: int = 0
    changes: list[tuple[str, str, str]] = field(default_factory=list)  # (org, issue, activity type)
    notes: list[str] = field(default_factory=list)


def decide(
    issue: TrackedIssue,
    update: WorkItemUpdate,
    installation: Installation,
    done_states: frozenset[str] | None,
    member: Member | None,
    notes: list[str],
    snapshot: bool = False,
) -> tuple[TrackedIssue | None, list[dict]]:
    """The issue after `update` (None when nothing changes) and the activity entries it adds.

    A `snapshot` is a work item's current state read by reconciliation rather than a delivered change: its
    state is compared with the last state seen for the work item (see `_snapshot_action`). Pure: plain data
    in, plain data out; `notes` says why something was not applied.
    """
    link = Link(update.integration_id, update.work_item_id)
    if link not in issue.links:
        return None, []  # a stale index entry: the issue no longer links this work item
    marks = dict(issue.watermarks.get(link.key, {}))
    entries = []
    new = issue
    assignee = update.assignee
    if assignee is not None and installation.sync_reverse_assignment:
        if is_newer(update.rev, marks.get("assignee")):
            marks["assignee"] = update.rev
            if assignee.unassign:
                if new.assignee_email is not None:
                    new = replace(new, assignee_email=None, assignee_user_id=None)
                    entries.append(activity_entry("unassigned", SOURCE, update.work_item_id, update.rev))
            elif member is not None:
                if new.assignee_email != member.email:
                    new = replace(new, assignee_email=member.email, assignee_user_id=member.user_id)
                    entries.append(activity_entry("assigned", SOURCE, update.work_item_id, update.rev))
            elif assignee.email is None:
                notes.append(f"{issue.org_id}/{issue.issue_id}: assignee unchanged, {assignee.description}")
            else:
                notes.append(f"{issue.org_id}/{issue.issue_id}: assignee unchanged, no member has that email")
        else:
            notes.append(f"{issue.org_id}/{issue.issue_id}: assignee of rev {update.rev} is stale")
    state = update.state
    if state is not None and installation.sync_status_reverse and done_states is not None:
        if is_newer(update.rev, marks.get("status")):
            marks["status"] = update.rev
            if snapshot:
                action = _snapshot_action(state.new, marks.get("state"), new.status, done_states)
            else:
                action = status_action(state, done_states)
            if isinstance(state.new, str):
                marks["state"] = state.new  # the last state seen, so a reconciliation knows where it came from
            if action == "resolve" and new.status != RESOLVED:
                new = replace(new, status=RESOLVED)
                entries.append(activity_entry("resolved", SOURCE, update.work_item_id, update.rev))
            elif action == "unresolve" and new.status != UNRESOLVED:
                new = replace(new, status=UNRESOLVED)
                entries.append(activity_entry("unresolved", SOURCE, update.work_item_id, update.rev))
        else:
            notes.append(f"{issue.org_id}/{issue.issue_id}: state of rev {update.rev} is stale")
    if marks == issue.watermarks.get(link.key, {}) and not entries:
        return None, []
    return replace(new, watermarks={**issue.watermarks, link.key: marks}).with_activity(*entries), entries


def _snapshot_action(
    current: str | None, last_seen: str | None, status: str, done_states: frozenset[str]
) -> Literal["resolve", "unresolve"] | None:
    """What a work item's current state does, given the last state seen for it.

    Never seen: a done work item resolves, but a not-done one never unresolves, since the issue may have
    been resolved by a person or by another work item it links (nothing says this one ever was done).
    """
    if current is None:
        return None
    if last_seen is not None:
        return status_action(StateChange(last_seen, current), done_states)
    return "resolve" if is_done(current, done_states) and status != RESOLVED else None


class DoneStates:
    """Done state names per (integration, project, work item type), cached in Table Storage with a TTL."""

    def __init__(self, integrations: IntegrationStore | None = None) -> None:
        self.integrations = integrations or IntegrationStore()

    def for_update(self, update: WorkItemUpdate) -> frozenset[str]:
        """The category-done states of the work item's type; raises RetryLater when they cannot be read."""
        connected: list[tuple[Integration, AdoClient]] = []

        def call(request: Callable[[AdoClient], T]) -> T:
            if not connected:  # one integration read (and client) for every request made here
                connected.append(get_client(update.integration_id, store=self.integrations))
            integration, client = connected[0]
            return call_tracking_reauth(self.integrations, integration, lambda: request(client))

        try:
            project, kind = update.project_id, update.work_item_type
            if not project or not kind:
                project, kind = self._type_of(update, call(lambda client: client.get_work_item(update.work_item_id)))
            row = f"{quote(project, safe='')}|{quote(kind, safe='')}"
            cached = self._cached(update.integration_id, row)
            if cached is not None:
                return cached
            answer = call(lambda client: client.get_work_item_type_states(project, kind))
            values = answer.get("value") if isinstance(answer, dict) else None
            if not isinstance(values, list) or not values:
                raise RetryLater(f"Azure DevOps listed no states for {kind!r}")
            done = done_states_from_categories(values)
            self._store(update.integration_id, row, done)
            return done
        except (AdoError, storage.StorageUnavailable) as exc:
            raise RetryLater(f"the done states could not be read: {exc}") from exc

    @staticmethod
    def _type_of(update: WorkItemUpdate, item: object) -> tuple[str, str]:
        """The project and type of the update, completed from the work item as Azure DevOps answered it."""
        fields = item.get("fields") if isinstance(item, dict) else None
        fields = fields if isinstance(fields, dict) else {}
        project = update.project_id or fields.get("System.TeamProject")
        kind = update.work_item_type or fields.get("System.WorkItemType")
        if not isinstance(project, str) or not isinstance(kind, str) or not project or not kind:
            raise RetryLater("the work item's type or project could not be read")
        return project, kind

    def _cached(self, integration_id: str, row: str) -> frozenset[str] | None:
        try:
            entity = storage.get_entity(storage.table(STATES_TABLE), integration_id, row)
        except AzureError as exc:
            raise storage.StorageUnavailable("reading cached states failed") from exc
        if entity is None or time.time() - float(entity.get("FetchedAt", 0)) > STATES_TTL_SECONDS:
            return None
        return frozenset(json.loads(entity.get("Done") or "[]"))

    def _store(self, integration_id: str, row: str, done: frozenset[str]) -> None:
        entity = {
            "PartitionKey": integration_id,
            "RowKey": row,
            "Done": json.dumps(sorted(done)),
            "FetchedAt": time.time(),
        }
        try:
            storage.write(storage.table(STATES_TABLE), lambda t: t.upsert_entity(entity, mode=UpdateMode.REPLACE))
        except AzureError:
            log.warning("Could not cache the done states of integration %s", integration_id)


def _apply_to_issue(
    tracker: TrackerStore,
    org: str,
    issue_id: str,
    update: WorkItemUpdate,
    installation: Installation,
    done: frozenset[str] | None,
    member: Member | None,
    notes: list[str],
    snapshot: bool,
) -> list[dict]:
    """Apply the update to one issue under its ETag; the activity entries written."""
    applied: list[dict] = []

    def change(issue: TrackedIssue) -> TrackedIssue | None:
        new, entries = decide(issue, update, installation, done, member, notes, snapshot)
        applied[:] = entries  # a lost ETag race re-applies: the last attempt's entries are the ones written
        return new

    return applied if tracker.update_issue(org, issue_id, change) is not None else []


def apply_workitem_update(
    update: WorkItemUpdate,
    *,
    tracker: TrackerStore | None = None,
    done_states: DoneStates | None = None,
    snapshot: bool = False,
) -> ApplyReport:
    """Apply one update (or, with `snapshot`, a work item's current state) to every linked tracked issue.
    Raises RetryLater for failures that may pass."""
    tracker = tracker or TrackerStore()
    report = ApplyReport()
    try:
        installations = {i.org_id: i for i in tracker.installations_of(update.integration_id)}
        if not installations:
            report.notes.append("no organization installed this integration")
            return report
        linked = [
            (org, issue)
            for org, issue in tracker.linked_issues(Link(update.integration_id, update.work_item_id))
            if org in installations
        ]
        report.linked = len(linked)
        if not linked:
            report.notes.append("no tracked issue of an installing organization links this work item")
            return report
        if update.rev is None:
            report.notes.append("the delivery has no revision, so it cannot be ordered: ignored")
            return report
        done: frozenset[str] | None = None
        if update.state is not None and any(installations[org].sync_status_reverse for org, _ in linked):
            try:
                done = (done_states or DoneStates()).for_update(update)
            except IntegrationNotFound:
                report.notes.append("the integration is disabled or gone: status not synced")
        for org, issue_id in linked:
            installation = installations[org]
            member = None
            assignee = update.assignee
            if assignee and installation.sync_reverse_assignment and not assignee.unassign and assignee.email:
                member = tracker.get_member(org, assignee.email)
            org_done = done | frozenset(installation.resolve_states) if done is not None else None

            entries = _apply_to_issue(
                tracker, org, issue_id, update, installation, org_done, member, report.notes, snapshot
            )
            report.changes += [(org, issue_id, entry["type"]) for entry in entries]
    except storage.StorageUnavailable as exc:
        raise RetryLater(str(exc)) from exc
    for note in dict.fromkeys(report.notes):
        log.info("work item %s rev %s: %s", update.work_item_id, update.rev, note)
    return report
