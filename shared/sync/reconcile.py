"""Reconciliation (contract §9): recover updates whose deliveries were lost.

While a subscription is on probation or disabled, Azure DevOps drops new events. For each active
integration, reconciliation asks which linked work items changed since its last run (WIQL on
`System.ChangedDate`, restricted to the linked ids), reads them with `workitemsbatch` (at most 200 ids a
call) and applies their current assignee and state through the same rules and per-field revision
watermarks as deliveries, so a late delivery of an older revision never undoes it.

The cursor (`reconcile:<integration>` in `state`) is a "since" and a short retry list. Each work item is
applied on its own: one that cannot be applied (its done states unreadable, storage busy) is put on the
retry list and the others go on. Work items not reached because the time budget was spent, or whose batch
could not be read, go on the list too. Once the WIQL queries have answered, every changed work item is known,
so "since" moves to the run's start (minus OVERLAP) and the next run reads what changed after that plus the
retry list, whatever their ChangedDate: a failing work item is retried every run without making every run
re-read a growing window. The list is bounded (MAX_RETRY_IDS): when more are left over, "since" stays where
it was, so the WIQL query finds them again (the window grows only while that many keep failing). A retried
work item that is no longer linked is dropped. A run whose WIQL query fails saves nothing.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from shared.ado.client import MAX_BATCH_IDS, AdoClient, AdoError
from shared.clock import SYSTEM, Clock, Deadline
from shared.connections.ado import call_tracking_reauth, get_client
from shared.deliveries.workitem import email_from_identity
from shared.errors import ConcurrentUpdate, RetryLater, StorageUnavailable
from shared.model.changes import AssigneeChange, StateChange, WorkItemUpdate
from shared.store.cursors import Cursor, CursorStore
from shared.store.integrations import Integration, IntegrationStore
from shared.store.tracker import TrackerStore
from shared.sync.done_states import DoneStates
from shared.sync.from_ado_comments import sync_work_item_comments
from shared.sync.inbound import apply_workitem_update

log = logging.getLogger(__name__)

NAME = "reconcile"
WIQL_IDS_PER_QUERY = 1000  # keeps each WIQL statement far below Azure DevOps' 32K characters
# Changes are looked for from a little before the last run started: Azure DevOps' clock and ours differ, and
# a change saved during the last run must not fall between two runs. Re-applying one is harmless.
OVERLAP = dt.timedelta(minutes=5)
MAX_RETRY_IDS = 1000  # work items remembered to retry, per integration (about 8 KB in the cursor entity)
MIN_BATCH_SECONDS = 1.0  # not worth reading a batch with less of the time budget than this left
FIELDS = [
    "System.Id",
    "System.Rev",
    "System.State",
    "System.AssignedTo",
    "System.WorkItemType",
    "System.TeamProject",
    "System.ChangedDate",
]


def _chunks(values: Sequence[int], size: int) -> Iterator[Sequence[int]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def changed_work_items_query(ids: Sequence[int], since: str | None) -> str:
    query = f"SELECT [System.Id] FROM WorkItems WHERE [System.Id] IN ({', '.join(str(int(i)) for i in ids)})"
    if since:
        query += f" AND [System.ChangedDate] > '{since}'"
    return query


def snapshot_update(integration_id: str, item: dict) -> WorkItemUpdate | None:
    """A work item's current assignee and state, as an update at its current revision."""
    fields = item.get("fields") if isinstance(item.get("fields"), dict) else {}
    work_item_id, rev = item.get("id"), item.get("rev", fields.get("System.Rev"))
    if not isinstance(work_item_id, int) or not isinstance(rev, int):
        return None
    assigned = fields.get("System.AssignedTo")
    email = email_from_identity(assigned) if assigned else None
    state = fields.get("System.State")
    return WorkItemUpdate(
        integration_id=integration_id,
        work_item_id=work_item_id,
        rev=rev,
        work_item_type=fields.get("System.WorkItemType")
        if isinstance(fields.get("System.WorkItemType"), str)
        else None,
        project_id=fields.get("System.TeamProject") if isinstance(fields.get("System.TeamProject"), str) else None,
        assignee=AssigneeChange(
            unassign=not assigned,
            email=email,
            description="no email in the current assignee" if assigned else "unassigned",
        ),
        state=StateChange(None, state) if isinstance(state, str) else None,
        changed_date=fields.get("System.ChangedDate") if isinstance(fields.get("System.ChangedDate"), str) else None,
        event_id=None,
        snapshot=True,
    )


@dataclass
class ReconcileReport:
    read: int = 0  # work items read from Azure DevOps
    applied: int = 0
    retry: list[int] = field(default_factory=list)  # left for the next run: failed, or not reached in time
    out_of_time: bool = False
    comments: int = 0  # comments added, edited or deleted from Azure DevOps (§18)


def reconcile_integration(
    integration_id: str,
    *,
    store: IntegrationStore,
    tracker: TrackerStore,
    cursors: CursorStore,
    deadline: Deadline | None = None,
    clock: Clock = SYSTEM,
) -> ReconcileReport:
    """Apply the current state of every linked work item changed since the last run, or left to retry."""
    started = dt.datetime.fromtimestamp(clock.now(), dt.UTC)
    cursor_name = f"{NAME}:{integration_id}"
    cursor = cursors.read(cursor_name)
    since = cursor.after or None
    linked = tracker.linked_work_items(integration_id)
    report = ReconcileReport()
    if linked:
        integration, client = get_client(integration_id, store=store, deadline=deadline)
        changed = set(cursor.retry).intersection(linked)
        for ids in _chunks(linked, WIQL_IDS_PER_QUERY):
            query = changed_work_items_query(ids, since)
            changed.update(call_tracking_reauth(store, integration, lambda q=query: client.query_work_item_ids(q)))
        done_states = DoneStates(store, deadline=deadline)
        batches = list(_chunks(sorted(changed), MAX_BATCH_IDS))
        for n, ids in enumerate(batches):
            if deadline is not None and deadline.left() < MIN_BATCH_SECONDS:
                report.out_of_time = True  # the rest waits for the next run
                report.retry += [i for rest in batches[n:] for i in rest]
                break
            try:
                items = call_tracking_reauth(
                    store, integration, lambda i=list(ids): client.get_work_items_batch(i, FIELDS)
                )
            except AdoError as exc:  # throttled or down: don't press on, try these and the rest next run
                log.warning("reconcile: integration %s: a batch could not be read: %s", integration_id, exc)
                report.retry += [i for rest in batches[n:] for i in rest]
                break
            report.read += len(items)
            for item in items:
                _apply(integration_id, item, tracker, store, done_states, report)
        _reconcile_comments(integration_id, linked, tracker, store, client, integration, deadline, clock, report)
    # Keep the list's earlier entries first, so an old failure is not pushed out by newer ones.
    previous = set(cursor.retry)
    retry = sorted(set(report.retry), key=lambda i: (i not in previous, i))
    new_since = (started - OVERLAP).strftime("%Y-%m-%dT%H:%M:%SZ") if len(retry) <= MAX_RETRY_IDS else cursor.after
    cursors.write(cursor_name, Cursor(new_since, tuple(retry[:MAX_RETRY_IDS])))
    log.info(
        "reconcile: integration %s: %d linked, %d read (changed since %s or retried), %d applied, %d left to retry%s",
        integration_id,
        len(linked),
        report.read,
        since or "ever",
        report.applied,
        len(retry),
        " (out of time)" if report.out_of_time else "",
    )
    return report


def _reconcile_comments(
    integration_id: str,
    linked: Sequence[int],
    tracker: TrackerStore,
    store: IntegrationStore,
    client: AdoClient,
    integration: Integration,
    deadline: Deadline | None,
    clock: Clock,
    report: ReconcileReport,
) -> None:
    """Comments (contract §18): edits and deletions send no service hook, and a lost `workitem.commented` is not
    seen by the WIQL query either (a comment edit changes no field), so every linked work item of an installation
    with `sync_comments_reverse` has its last WINDOW_DAYS days of comments read: one batch read per 200 work
    items for their projects, and one comments list each. One that fails is left for the next run."""
    if not report.out_of_time and any(i.sync_comments_reverse for i in tracker.installations_of(integration_id)):
        for ids in _chunks(list(linked), MAX_BATCH_IDS):
            if deadline is not None and deadline.left() < MIN_BATCH_SECONDS:
                report.out_of_time = True
                return
            try:
                items = call_tracking_reauth(
                    store, integration, lambda i=list(ids): client.get_work_items_batch(i, ["System.TeamProject"])
                )
            except AdoError as exc:
                log.warning("reconcile: integration %s: comments not read: %s", integration_id, exc)
                return
            for item in items:
                project = (item.get("fields") or {}).get("System.TeamProject") if isinstance(item, dict) else None
                if not isinstance(project, str) or (deadline is not None and deadline.left() < MIN_BATCH_SECONDS):
                    continue
                try:
                    found = sync_work_item_comments(
                        integration_id, int(item["id"]), project=project, tracker=tracker, integrations=store,
                        clock=clock,
                    )  # fmt: skip
                    report.comments += len(found.added) + len(found.edited) + len(found.deleted)
                except Exception as exc:  # one work item must not hold back the others
                    expected = isinstance(exc, RetryLater | ConcurrentUpdate | StorageUnavailable)
                    log.log(
                        logging.WARNING if expected else logging.ERROR,
                        "reconcile: integration %s: comments of work item %s left for the next run: %s",
                        integration_id,
                        item.get("id"),
                        exc,
                        exc_info=not expected,
                    )


def _apply(
    integration_id: str,
    item: dict,
    tracker: TrackerStore,
    store: IntegrationStore,
    done_states: DoneStates,
    report: ReconcileReport,
) -> None:
    """Apply one work item; when that fails, it is left for the next run and the others go on."""
    update = snapshot_update(integration_id, item)
    if update is None:
        return
    try:
        apply_workitem_update(update, tracker=tracker, integrations=store, done_states=done_states)
        report.applied += 1
    except Exception as exc:  # one work item must not hold back the others (a bug is logged with its traceback)
        report.retry.append(update.work_item_id)
        expected = isinstance(exc, RetryLater | ConcurrentUpdate | StorageUnavailable)
        log.log(
            logging.WARNING if expected else logging.ERROR,
            "reconcile: integration %s: work item %s left for the next run: %s",
            integration_id,
            update.work_item_id,
            exc,
            exc_info=not expected,
        )
