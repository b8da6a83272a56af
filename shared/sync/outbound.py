"""Apply an outbound change (contract §12.2): bring each linked work item in line with its tracked issue.

For each link of the issue (but those the change came from), when the installation of that link's integration
syncs the field forward: read the work item, and send one JSON Patch with only the fields that differ (none when
nothing differs), guarded by a `test` of the revision read. The revision Azure DevOps answers becomes the
fields' watermark on the issue (§5.3), so the delivery of our own change is recognised as stale and changes
nothing: no echo, no loop. A refusal that retrying cannot fix (an email Azure DevOps does not know, a state
its rules refuse) is recorded as `ado_failed` and not retried; throttling, unavailability, storage trouble and a
revision that moved meanwhile are retried through the queue (`RetryLater`), for the links still to do.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from shared.ado.client import AdoClient, AdoError, AdoNotFound, AdoRequestRejected, AdoThrottled, AdoTimeout
from shared.connections.ado import CredentialNotShared, call_tracking_reauth, client_for, usable_by
from shared.deliveries.workitem import email_from_identity
from shared.errors import ConcurrentUpdate, RetryLater, StorageUnavailable
from shared.model.changes import OutboundChange
from shared.model.tracker import Installation, Link, TrackedIssue, activity_entry
from shared.store import failures
from shared.store.catalog_cache import CatalogCache
from shared.store.integrations import IntegrationStore
from shared.store.tracker import TrackerStore
from shared.sync.done_states import DoneStates, type_states
from shared.sync.forward import WorkItemView, changed_fields, patch_for, target_state
from shared.sync.inbound import apply_workitem_update
from shared.sync.reconcile import snapshot_update
from shared.sync.rules import (
    ASSIGNEE_REV,
    ASSIGNEE_SEEN,
    STATE_SEEN,
    STATUS_REV,
    UNASSIGNED,
    done_states_from_categories,
)

log = logging.getLogger(__name__)

T = TypeVar("T")
SOURCE = "api"
PRECONDITION_FAILED = 412


@dataclass
class OutboundReport:
    updated: list[tuple[str, int]] = field(default_factory=list)  # (link key, new revision)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (link key, reason): recorded, not retried
    retry: list[str] = field(default_factory=list)  # link keys to try again
    notes: list[str] = field(default_factory=list)
    retry_after: float | None = None


def apply_outbound(
    change: OutboundChange,
    *,
    tracker: TrackerStore | None = None,
    integrations: IntegrationStore | None = None,
    cache: CatalogCache | None = None,
) -> OutboundReport:
    """Apply `change`; raises RetryLater (with `only` the links still to do in the log) when some may pass."""
    tracker, integrations, cache = (
        tracker or TrackerStore(),
        integrations or IntegrationStore(),
        cache or CatalogCache(),
    )
    report = OutboundReport()
    try:
        issue = tracker.get_issue(change.org_id, change.issue_id)
    except StorageUnavailable as exc:
        raise RetryLater(str(exc)) from exc
    if issue is None:
        report.notes.append("the issue no longer exists")
        return report
    linked = {link.key for link in issue.links}
    for key, field_name, rev in change.after:
        saved = issue.watermarks.get(key, {}).get(_rev_key(field_name))
        if key in linked and (not isinstance(saved, int) or saved < rev):
            raise RetryLater(f"the change from {key} rev {rev} is not saved on the issue yet")
    for link in issue.links:
        if link.key in change.exclude or (change.only and link.key not in change.only):
            continue
        try:
            _sync_link(change, issue, link, tracker, integrations, cache, report)
        except RetryLater as exc:
            report.retry.append(link.key)
            report.retry_after = max(report.retry_after or 0, exc.retry_after or 0) or None
            report.notes.append(f"{link.key}: {exc}")
        except (StorageUnavailable, ConcurrentUpdate) as exc:
            report.retry.append(link.key)
            report.notes.append(f"{link.key}: {exc}")
    for note in report.notes:
        log.info("outbound %s/%s: %s", change.org_id, change.issue_id, note)
    return report


def _rev_key(field_name: str) -> str:
    return STATUS_REV if field_name == "status" else ASSIGNEE_REV


def _wanted(change: OutboundChange, installation: Installation | None) -> list[str]:
    if installation is None:
        return []
    enabled = {"status": installation.sync_status_forward, "assignee": installation.sync_forward_assignment}
    return [name for name in change.fields if enabled.get(name)]


def _sync_link(
    change: OutboundChange,
    issue: TrackedIssue,
    link: Link,
    tracker: TrackerStore,
    integrations: IntegrationStore,
    cache: CatalogCache,
    report: OutboundReport,
) -> None:
    installation = tracker.get_installation(link.integration_id, issue.org_id)
    fields = _wanted(change, installation)
    if not fields or installation is None:
        return
    integration = integrations.get(link.integration_id)
    if integration is None or not integration.active:
        report.notes.append(f"{link.key}: the integration is disabled or gone")
        return
    try:
        usable = usable_by(integration, installation)  # only credentials this organization may use (§16)
    except CredentialNotShared as exc:
        report.notes.append(f"{link.key}: {exc}")
        return
    connected, client = client_for(usable, store=integrations)

    def call(request: Callable[[AdoClient], T]) -> T:
        return call_tracking_reauth(integrations, connected, lambda: request(client))

    try:
        raw = call(lambda c: c.get_work_item(link.work_item_id))
        item = _view(raw)
        newer = _newer_there(issue, link, item)
        if newer:
            # A person changed these fields in Azure DevOps after the app last saw the work item: that change is
            # newer than the one queued here. It is applied inbound first, and not overwritten (contract §16).
            issue = _apply_inbound_first(link, raw, issue, item, newer, tracker, integrations, cache)
            report.notes.append(f"{link.key}: {', '.join(newer)} changed in Azure DevOps since last seen; kept")
            fields = [name for name in fields if name not in newer]
            if not fields:
                return
        # The issue as it is now, right before the patch: a worker may have held it across waits (429s).
        current = tracker.get_issue(issue.org_id, issue.issue_id)
        if current is None or link not in current.links:
            return
        issue = current
        target = None
        if "status" in fields and item.state is not None:
            states = type_states(cache, link.integration_id, item.project, item.work_item_type, call)
            done = done_states_from_categories({"name": n, "category": c} for n, c in states)
            done |= frozenset(installation.resolve_states)
            target = target_state(issue.status, item, states, done, installation.state_rules)
        operations = patch_for(issue, item, fields, target)
        if not operations:
            return
        answer = call(lambda c: c.update_work_item(link.work_item_id, operations))
    except AdoRequestRejected as exc:
        if exc.status == PRECONDITION_FAILED:
            raise RetryLater("the work item changed while it was being updated; it is read again") from exc
        _record(tracker, issue, link, None, [], failure=f"Azure DevOps refused the change: {exc}")
        report.failed.append((link.key, str(exc)))
        return
    except AdoNotFound as exc:
        _record(tracker, issue, link, None, [], failure=f"the work item does not exist or cannot be read: {exc}")
        report.failed.append((link.key, str(exc)))
        return
    except (AdoThrottled, AdoTimeout) as exc:
        raise RetryLater(str(exc), getattr(exc, "retry_after", None)) from exc
    except AdoError as exc:
        raise RetryLater(str(exc)) from exc
    rev = answer.get("rev") if isinstance(answer, dict) else None
    if not isinstance(rev, int):
        raise RetryLater("Azure DevOps answered the update without the new revision")
    _record(tracker, issue, link, rev, operations, target=target)
    report.updated.append((link.key, rev))


def _newer_there(issue: TrackedIssue, link: Link, item: WorkItemView) -> list[str]:
    """The fields changed in Azure DevOps since the app last saw this work item: at a revision above the field's
    watermark, a value other than the one last seen. Without a watermark, nothing says what was seen."""
    marks = issue.watermarks.get(link.key, {})
    newer = []
    status_rev, state_seen = marks.get(STATUS_REV), marks.get(STATE_SEEN)
    if isinstance(status_rev, int) and item.rev > status_rev and state_seen is not None and item.state != state_seen:
        newer.append("status")
    assignee_rev, assignee_seen = marks.get(ASSIGNEE_REV), marks.get(ASSIGNEE_SEEN)
    now_there = (item.assignee_email or None) if item.assigned else UNASSIGNED
    if (
        isinstance(assignee_rev, int)
        and item.rev > assignee_rev
        and assignee_seen is not None
        and now_there is not None
        and now_there != assignee_seen
    ):
        newer.append("assignee")
    return newer


def _apply_inbound_first(
    link: Link,
    raw: dict[str, Any],
    issue: TrackedIssue,
    item: WorkItemView,
    newer: list[str],
    tracker: TrackerStore,
    integrations: IntegrationStore,
    cache: CatalogCache,
) -> TrackedIssue:
    """Apply the work item as it is now to its linked issues, as its delivery would (the rules and watermarks of
    §5.3, so a late delivery of it changes nothing more); then make sure the fields are marked as seen at this
    revision even where the installation does not sync them back, so the next change from here is sent. Returns
    the issue as it is then."""
    update = snapshot_update(link.integration_id, raw)
    if update is not None:
        apply_workitem_update(
            update, tracker=tracker, integrations=integrations, done_states=DoneStates(integrations, cache)
        )

    def seen(current: TrackedIssue) -> TrackedIssue | None:
        if link not in current.links:
            return None
        marks = dict(current.watermarks.get(link.key, {}))
        if "status" in newer and item.state is not None and (marks.get(STATUS_REV) or 0) < item.rev:
            marks[STATUS_REV], marks[STATE_SEEN] = item.rev, item.state
        if "assignee" in newer and (marks.get(ASSIGNEE_REV) or 0) < item.rev:
            marks[ASSIGNEE_REV] = item.rev
            marks[ASSIGNEE_SEEN] = (item.assignee_email or UNASSIGNED) if item.assigned else UNASSIGNED
        if marks == current.watermarks.get(link.key, {}):
            return None
        return replace(current, watermarks={**current.watermarks, link.key: marks})

    return tracker.update_issue(issue.org_id, issue.issue_id, seen) or issue


def _view(item: Any) -> WorkItemView:
    fields = item.get("fields") if isinstance(item, dict) else None
    if not isinstance(fields, dict) or not isinstance(item.get("rev"), int):
        raise RetryLater("Azure DevOps answered with something that is not a work item")
    assigned = fields.get("System.AssignedTo")
    state, kind, project = (
        fields.get("System.State"),
        fields.get("System.WorkItemType"),
        fields.get("System.TeamProject"),
    )
    if not isinstance(kind, str) or not isinstance(project, str):
        raise RetryLater("the work item's type or project could not be read")
    return WorkItemView(
        rev=item["rev"],
        state=state if isinstance(state, str) else None,
        assignee_email=email_from_identity(assigned) if assigned else None,
        assigned=bool(assigned),
        work_item_type=kind,
        project=project,
    )


def _record(
    tracker: TrackerStore,
    issue: TrackedIssue,
    link: Link,
    rev: int | None,
    operations: list[dict[str, Any]],
    *,
    target: str | None = None,
    failure: str | None = None,
) -> None:
    """The outcome on the issue: the new revision as the watermark of each field sent (so its delivery is
    stale), the values now in Azure DevOps as the ones last seen there, and one activity entry."""

    def change(current: TrackedIssue) -> TrackedIssue | None:
        if link not in current.links:
            return None
        if failure is not None:
            entry = activity_entry("ado_failed", SOURCE, link.work_item_id, None)
            return current.with_activity({**entry, "reason": failure[:300]})
        marks = dict(current.watermarks.get(link.key, {}))
        sent = changed_fields(operations)
        if "System.State" in sent and target is not None:
            marks[STATUS_REV], marks[STATE_SEEN] = rev, target
        if "System.AssignedTo" in sent:
            marks[ASSIGNEE_REV], marks[ASSIGNEE_SEEN] = rev, issue.assignee_email or UNASSIGNED
        entry = {**activity_entry("ado_updated", SOURCE, link.work_item_id, rev), "fields": sent}
        return replace(current, watermarks={**current.watermarks, link.key: marks}).with_activity(entry)

    tracker.update_issue(issue.org_id, issue.issue_id, change)
    if failure is not None:  # the status page's recent failures: not retried, so a person has to act
        failures.record_failure(
            "ado_failed",
            f"{issue.org_id}/{issue.issue_id} → work item {link.work_item_id}",
            failure,
            details={"org_id": issue.org_id, "issue_id": issue.issue_id, "integration_id": link.integration_id},
        )
