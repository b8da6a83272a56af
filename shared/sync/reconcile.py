"""Reconciliation (contract §9): recover updates whose deliveries were lost.

While a subscription is on probation or disabled, Azure DevOps drops new events. For each active
integration, reconciliation asks which linked work items changed since its last run (WIQL on
`System.ChangedDate`, restricted to the linked ids), reads them with `workitemsbatch` (at most 200 ids a
call) and applies their current assignee and state through the same rules and per-field revision
watermarks as deliveries, so a late delivery of an older revision never undoes it.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator, Sequence

from shared.ado.client import MAX_BATCH_IDS
from shared.connections.ado import call_tracking_reauth, get_client
from shared.deliveries.workitem import email_from_identity
from shared.model.changes import AssigneeChange, StateChange, WorkItemUpdate
from shared.store.cursors import CursorStore
from shared.store.integrations import IntegrationStore
from shared.store.tracker import TrackerStore
from shared.sync.inbound import apply_workitem_update

log = logging.getLogger(__name__)

NAME = "reconcile"
WIQL_IDS_PER_QUERY = 1000  # keeps each WIQL statement far below Azure DevOps' 32K characters
# Changes are looked for from a little before the last run started: Azure DevOps' clock and ours differ, and
# a change saved during the last run must not fall between two runs. Re-applying one is harmless.
OVERLAP = dt.timedelta(minutes=5)
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


def reconcile_integration(
    integration_id: str, *, store: IntegrationStore, tracker: TrackerStore, cursors: CursorStore
) -> int:
    """Apply the current state of every linked work item changed since the last run; how many were read."""
    started = dt.datetime.now(dt.UTC)
    cursor_name = f"{NAME}:{integration_id}"
    since = cursors.get(cursor_name) or None
    linked = tracker.linked_work_items(integration_id)
    if linked:
        integration, client = get_client(integration_id, store=store)
        changed: list[int] = []
        for ids in _chunks(linked, WIQL_IDS_PER_QUERY):
            query = changed_work_items_query(ids, since)
            changed += call_tracking_reauth(store, integration, lambda q=query: client.query_work_item_ids(q))
        for ids in _chunks(sorted(set(changed)), MAX_BATCH_IDS):
            items = call_tracking_reauth(store, integration, lambda i=list(ids): client.get_work_items_batch(i, FIELDS))
            for item in items:
                update = snapshot_update(integration.id, item)
                if update is not None:
                    apply_workitem_update(update, tracker=tracker, integrations=store)
        read = len(set(changed))
    else:
        read = 0
    # Only after everything applied: a failed run is looked at again from the same point next time.
    cursors.set(cursor_name, (started - OVERLAP).strftime("%Y-%m-%dT%H:%M:%SZ"))
    log.info(
        "reconcile: integration %s: %d linked, %d changed since %s", integration_id, len(linked), read, since or "ever"
    )
    return read
