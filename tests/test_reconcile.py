"""reconcile in-process against the fake Azure DevOps: request counts, the since-cursor, snapshot rules."""

import math
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from shared.admin import tracker as tracker_admin
from shared.ado.client import AdoClient
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


def _integration(fake_ado) -> tuple[str, str, str]:
    """An integration on the fake, installed by a new organization: (fake org name, integration id, org id)."""
    name, integration_id, org = f"r{uuid.uuid4().hex[:8]}", new_id(), f"org-{uuid.uuid4().hex[:8]}"
    fake_ado.add_org(name, integration_id)
    fake_ado.add_pat(name, PAT)
    IntegrationStore().create(
        Integration(
            id=integration_id, name=name, domain_name=fake_ado.org_url(name), credentials={"type": "pat", "token": PAT}
        )
    )
    TrackerStore().put_installation(Installation(integration_id, org, True, True))
    return name, integration_id, org


def _world(fake_ado, count: int, per_issue: int = 10) -> tuple[str, str, str]:
    name, integration_id, org = _integration(fake_ado)
    tracker = TrackerStore()
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


class _Clock:
    """Time that a test moves: `now` is the wall clock plus `ahead`, `monotonic` is `t` (no sleeping)."""

    def __init__(self) -> None:
        self.ahead = 0.0
        self.t = 0.0

    def now(self) -> float:
        return time.time() + self.ahead

    def monotonic(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.t += seconds


def _resolved_world(fake_ado, count: int, tasks: tuple[int, ...] = ()) -> tuple[str, str, str]:
    """`count` done work items from 2000 (the `tasks` among them Closed Tasks, the rest Resolved Bugs), each linked
    to an unresolved issue I<id> that has never seen it: reconcile resolves each issue it applies."""
    name, integration_id, org = _integration(fake_ado)
    tracker = TrackerStore()
    ids = list(range(2000, 2000 + count))
    for wid in ids:
        fields = (
            {"System.State": "Closed", "System.WorkItemType": "Task"} if wid in tasks else {"System.State": "Resolved"}
        )
        fake_ado.add_work_item(name, wid, fields)

    def create(wid: int) -> None:
        link = Link(integration_id, wid)
        tracker.add_link_index(link, org, f"I{wid}")
        tracker.create_issue(TrackedIssue(org, f"I{wid}", f"Issue {wid}", links=(link,)))

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(create, ids))
    return name, integration_id, org


def _status(org: str, wid: int) -> str:
    return tracker_admin.get_issue(org, f"I{wid}").public()["status"]


def _batch_ids(fake_ado) -> list[int]:
    return [i for r in fake_ado.requests if r.path.endswith("workitemsbatch") for i in r.json()["ids"]]


def test_one_work_item_that_cannot_be_applied_holds_back_nothing(pointed_at_fake, fake_ado) -> None:
    name, integration_id, org = _resolved_world(fake_ado, 30, tasks=(2007,))
    fake_ado.fail_next("GET", r"/workitemtypes/Task/states$", 500)  # the Task's done states cannot be read
    clock = _Clock()
    clock.ahead = 3600  # the runs come an hour after the work items changed (beyond the overlap)
    report = run_reconcile(clock=clock)
    assert (report.worked, report.failed) == (1, 0)
    assert _status(org, 2007) == "unresolved"  # never guessed
    assert all(_status(org, w) == "resolved" for w in range(2000, 2030) if w != 2007)
    # An hour later: only the work item left over is read again, however long ago it changed.
    clock.ahead = 7200
    fake_ado.reset_log()
    run_reconcile(clock=clock)
    [wiql] = [r.json()["query"] for r in fake_ado.requests if r.path.endswith("/wiql")]
    assert "[System.ChangedDate] >" in wiql
    assert (fake_ado.count("POST", r"/workitemsbatch$"), _batch_ids(fake_ado)) == (1, [2007])
    assert _status(org, 2007) == "resolved"
    # Nothing is left over now: the next run reads nothing.
    fake_ado.reset_log()
    run_reconcile(clock=clock)
    assert fake_ado.count("POST", r"/workitemsbatch$") == 0


def test_reconcile_stops_between_batches_when_the_budget_is_spent_and_the_next_run_finishes(
    pointed_at_fake, fake_ado, monkeypatch
) -> None:
    name, integration_id, org = _resolved_world(fake_ado, 450)  # three batches: 200, 200, 50
    pointed_at_fake.setenv("TIMER_BUDGET_SECONDS", "250")
    clock = _Clock()
    clock.ahead = 3600  # the runs come an hour after the work items changed (beyond the overlap)
    read_batch = AdoClient.get_work_items_batch

    def slow_batch(self, ids, fields):  # each batch read takes 150 s of the test's clock
        answer = read_batch(self, ids, fields)
        clock.t += 150
        return answer

    monkeypatch.setattr(AdoClient, "get_work_items_batch", slow_batch)
    fake_ado.reset_log()
    report = run_reconcile(clock=clock)
    assert report.failed == 0
    assert fake_ado.count("POST", r"/workitemsbatch$") == 2  # the third batch was left for the next run
    resolved = [w for w in range(2000, 2450) if _status(org, w) == "resolved"]
    assert len(resolved) == 400
    clock.ahead, clock.t = 7200, clock.t + 3600
    fake_ado.reset_log()
    run_reconcile(clock=clock)
    assert sorted(_batch_ids(fake_ado)) == list(range(2400, 2450))  # only what was left over
    assert all(_status(org, w) == "resolved" for w in range(2000, 2450))
