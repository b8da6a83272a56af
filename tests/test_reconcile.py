"""reconcile in-process against the fake Azure DevOps: request counts, the since-cursor, snapshot rules."""

import math
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from shared.admin import tracker as tracker_admin
from shared.deliveries import AssigneeChange, StateChange, WorkItemUpdate
from shared.jobs.reconcile import run_reconcile
from shared.model.tracker import Installation, Link, Member, TrackedIssue
from shared.store.integrations import Integration, IntegrationStore
from shared.store.tracker import TrackerStore
from shared.sync.reconcile import changed_work_items_query, snapshot_update
from shared.sync.rules import decide
from tests.helpers import new_id

pytestmark = pytest.mark.usefixtures("azurite")

PAT = "reconcile-pat-0123456789"


@pytest.fixture
def pointed_at_fake(env, fake_ado):
    env.setenv("TABLE_PREFIX", f"rc{uuid.uuid4().hex[:10]}")  # only this test's integrations are swept
    for key, value in fake_ado.settings_env().items():
        env.setenv(key, value)
    return env


def _world(fake_ado, count: int, per_issue: int = 10) -> tuple[str, str, str]:
    name, integration_id, org = f"r{uuid.uuid4().hex[:8]}", new_id(), f"org-{uuid.uuid4().hex[:8]}"
    fake_ado.add_org(name, integration_id)
    fake_ado.add_pat(name, PAT)
    IntegrationStore().create(
        Integration(
            id=integration_id, name=name, domain_name=fake_ado.org_url(name), credentials={"type": "pat", "token": PAT}
        )
    )
    tracker = TrackerStore()
    tracker.put_installation(Installation(integration_id, org, True, True))
    tracker_admin.put_member(org, "dana@example.com", {"user_id": "u-dana"})
    ids = list(range(1000, 1000 + count))
    for wid in ids:
        fake_ado.add_work_item(name, wid, {"System.State": "Active"})
    issues = [ids[i : i + per_issue] for i in range(0, count, per_issue)]

    def create(n: int) -> None:
        links = tuple(Link(integration_id, w) for w in issues[n])
        for link in links:
            tracker.add_link_index(link, org, f"I{n}")
        tracker.create_issue(TrackedIssue(org, f"I{n}", f"Issue {n}", links=links))

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(create, range(len(issues))))
    return name, integration_id, org


def test_reconciling_1000_linked_work_items_costs_5_batch_calls_and_1_wiql(pointed_at_fake, fake_ado) -> None:
    name, integration_id, org = _world(fake_ado, 1000)
    for wid in range(1000, 1000 + 1000, 7):
        fake_ado.update_work_item(name, wid, {"System.State": "Resolved"}, deliver=False)
    fake_ado.reset_log()
    report = run_reconcile()
    assert report.finished and report.failed == 0
    batches = fake_ado.count("POST", r"/_apis/wit/workitemsbatch$")
    wiql = fake_ado.count("POST", r"/_apis/wit/wiql$")
    print(f"\nreconcile of 1000 linked work items: {batches} batch calls, {wiql} WIQL calls")
    assert batches <= math.ceil(1000 / 200) and wiql == 1
    assert max(len(r.json()["ids"]) for r in fake_ado.requests if r.path.endswith("workitemsbatch")) <= 200
    # An issue is resolved exactly when one of the ten work items it links was resolved.
    for n in range(0, 100, 9):
        linked = range(1000 + n * 10, 1010 + n * 10)
        any_done = any(fake_ado.work_item(name, w)["fields"]["System.State"] == "Resolved" for w in linked)
        assert (tracker_admin.get_issue(org, f"I{n}").public()["status"] == "resolved") == any_done


def test_the_next_run_reads_only_what_changed_since(pointed_at_fake, fake_ado) -> None:
    name, integration_id, org = _world(fake_ado, 30)
    run_reconcile()
    fake_ado.update_work_item(name, 1005, {"System.AssignedTo": "Dana <dana@example.com>"}, deliver=False)
    fake_ado.reset_log()
    run_reconcile()
    [wiql] = [r for r in fake_ado.requests if r.path.endswith("/wiql")]
    assert "[System.ChangedDate] >" in wiql.json()["query"]
    batch_ids = [i for r in fake_ado.requests if r.path.endswith("workitemsbatch") for i in r.json()["ids"]]
    # Changes within the overlap window are read again (harmless); the rest are not.
    assert 1005 in batch_ids and len(batch_ids) <= 30
    assert tracker_admin.get_issue(org, "I0").public()["assignee"]["user_id"] == "u-dana"


def test_changed_work_items_query() -> None:
    assert changed_work_items_query([1, 2], None) == "SELECT [System.Id] FROM WorkItems WHERE [System.Id] IN (1, 2)"
    assert changed_work_items_query([3], "2026-01-01T00:00:00Z").endswith(
        "AND [System.ChangedDate] > '2026-01-01T00:00:00Z'"
    )


def test_snapshot_update_reads_identity_objects_and_missing_assignees() -> None:
    item = {
        "id": 7,
        "rev": 4,
        "fields": {
            "System.State": "Active",
            "System.AssignedTo": {"displayName": "Dana", "uniqueName": "Dana@Example.com"},
        },
    }
    update = snapshot_update("i", item)
    assert (update.rev, update.assignee.email, update.assignee.unassign, update.state.new) == (
        4,
        "dana@example.com",
        False,
        "Active",
    )
    assert snapshot_update("i", {"id": 7, "rev": 4, "fields": {"System.State": "New"}}).assignee.unassign is True
    assert snapshot_update("i", {"id": "x"}) is None


def _snapshot(rev: int, state: str) -> WorkItemUpdate:
    return WorkItemUpdate("i", 7, rev, "Bug", "p", None, StateChange(None, state), None, None, snapshot=True)


DONE = frozenset({"Resolved", "Closed"})
INSTALL = Installation("i", "o", True, True)


@pytest.mark.parametrize(
    ("status", "last_seen", "current", "expected"),
    [
        ("unresolved", None, "Resolved", "resolved"),  # never seen: follow the work item
        ("resolved", None, "Active", "resolved"),  # never seen: not-done never unresolves (a person may have)
        ("unresolved", "Resolved", "Closed", "unresolved"),  # done -> done, as a delivery would: no change
        ("resolved", "New", "Active", "resolved"),  # not-done -> not-done: no change
        ("unresolved", "Active", "Resolved", "resolved"),
    ],
)
def test_snapshot_status_rules(status, last_seen, current, expected) -> None:
    marks = {"status": 2, "state": last_seen} if last_seen else {}
    issue = TrackedIssue("o", "I", "t", status, links=(Link("i", 7),), watermarks={"i|7": marks} if marks else {})
    new, _ = decide(issue, _snapshot(5, current), INSTALL, DONE, None, [])
    assert (new or issue).status == expected


def test_a_snapshot_older_than_the_watermark_changes_nothing() -> None:
    issue = TrackedIssue(
        "o", "I", "t", "unresolved", links=(Link("i", 7),), watermarks={"i|7": {"status": 9, "state": "Active"}}
    )
    new, entries = decide(issue, _snapshot(5, "Resolved"), INSTALL, DONE, None, [])
    assert new is None and entries == []


def _assignee_snapshot(rev: int, email: str | None) -> WorkItemUpdate:
    change = AssigneeChange(email is None, email, "from a snapshot")
    return WorkItemUpdate("i", 7, rev, "Bug", "p", change, None, None, None, snapshot=True)


def test_unassign_from_snapshot_when_the_work_item_was_seen_assigned() -> None:
    issue = TrackedIssue(
        "o",
        "I",
        "t",
        assignee_email="d@x.com",
        assignee_user_id="u",
        links=(Link("i", 7),),
        watermarks={"i|7": {"assignee": 2, "assignee_seen": "d@x.com"}},
    )
    new, entries = decide(issue, _assignee_snapshot(3, None), INSTALL, DONE, None, [])
    assert new.assignee_email is None and [e["type"] for e in entries] == ["unassigned"]


def test_a_snapshot_never_undoes_an_assignee_it_did_not_set() -> None:
    """Unseen on this work item, the issue's assignee came from elsewhere (a person, another work item)."""
    issue = TrackedIssue("o", "I", "t", assignee_email="d@x.com", assignee_user_id="u", links=(Link("i", 7),))
    new, entries = decide(issue, _assignee_snapshot(3, None), INSTALL, DONE, None, [])
    assert entries == [] and (new or issue).assignee_email == "d@x.com"


def test_a_snapshot_showing_what_was_last_seen_keeps_a_later_change_by_a_person() -> None:
    """Seen assigned to A; a person then assigned B in the tracker; an unrelated edit (rev 5) shows A again."""
    issue = TrackedIssue(
        "o",
        "I",
        "t",
        assignee_email="b@x.com",
        assignee_user_id="ub",
        links=(Link("i", 7),),
        watermarks={"i|7": {"assignee": 2, "assignee_seen": "a@x.com"}},
    )
    member_a = Member("o", "a@x.com", "ua")
    new, entries = decide(issue, _assignee_snapshot(5, "a@x.com"), INSTALL, DONE, member_a, [])
    assert entries == [] and (new or issue).assignee_email == "b@x.com"
    moved, entries = decide(issue, _assignee_snapshot(6, "c@x.com"), INSTALL, DONE, Member("o", "c@x.com", "uc"), [])
    assert [e["type"] for e in entries] == ["assigned"] and moved.assignee_email == "c@x.com"
