"""`sentry_reconcile` (contract §15): linked Sentry issues compared with what the app last saw, changes Sentry sent
no webhook for applied and queued for the work items, within the timer budget and resuming from a cursor.
Sentry at the HTTP boundary (responses); real Azurite."""

from __future__ import annotations

import uuid as uuids
from dataclasses import replace

import pytest
import responses

from shared.deliveries.outbound import read_outbound_message
from shared.model.sentry import INTERNAL, SentryInstallation
from shared.sentryapp.reconcile import NAME, run_sentry_reconcile
from shared.store import sentry_parked, timer_runs
from shared.store.cursors import CursorStore
from shared.store.queues import OUTBOUND_QUEUE_NAME
from shared.store.sentry import SentryStore
from shared.store.tracker import TrackerStore
from tests.helpers import FakeClock, make_integration, new_id
from tests.sentry_hooks_helpers import APP_UUID
from tests.sync_helpers import issue_view, queued_messages, tracked_issue

pytestmark = pytest.mark.usefixtures("azurite")

DANA = {"type": "user", "id": "101", "name": "Dana Lee", "email": "dana@example.com"}


class Org:
    """A Sentry organization (internal installation) with `count` tracked, linked issues, and Sentry's answers."""

    def __init__(self, mock: responses.RequestsMock, count: int = 1) -> None:
        self.mock = mock
        self.slug = f"a{uuids.uuid4().hex[:8]}"  # sorts first among other tests' organizations
        self.org_id = f"sentry-{self.slug}"
        self.uuid = new_id()
        SentryStore().put(SentryInstallation(self.uuid, self.slug, kind=INTERNAL, app_uuid=APP_UUID, token="t"))
        integration = make_integration()
        self.issues = [str(1000 + n) for n in range(count)]
        for n, issue_id in enumerate(self.issues):
            tracked_issue(self.org_id, issue_id, integration.id, 70 + n)
        CursorStore().set(NAME, f"{self.org_id}|")  # this run starts here
        queued_messages(OUTBOUND_QUEUE_NAME)

    def url(self, issue_id: str) -> str:
        return f"https://sentry.example/api/0/organizations/{self.slug}/issues/{issue_id}/"

    def in_sentry(self, issue_id: str, status: str, assignee: dict | None = None) -> None:
        self.mock.upsert(
            responses.GET, self.url(issue_id), json={"id": issue_id, "status": status, "assignedTo": assignee}
        )

    def seen(self, issue_id: str, **seen: str) -> None:
        TrackerStore().update_issue(self.org_id, issue_id, lambda issue: replace(issue, sentry_seen=seen))

    def gets(self) -> int:
        return sum(1 for c in self.mock.calls if f"/organizations/{self.slug}/" in c.request.url)


def _outbound(org: Org) -> list[tuple[str, tuple[str, ...]]]:
    changes = [read_outbound_message(m)[0] for m in queued_messages(OUTBOUND_QUEUE_NAME)]
    return [(c.issue_id, c.fields) for c in changes if c.org_id == org.org_id]


def test_a_reopen_and_an_unassign_without_webhooks_reach_the_tracked_issue_and_are_queued(sentry_http) -> None:
    org = Org(sentry_http, count=2)
    reopened, unassigned = org.issues
    TrackerStore().update_issue(org.org_id, reopened, lambda issue: replace(issue, status="resolved"))
    org.seen(reopened, status="resolved", assignee="")
    org.in_sentry(reopened, "unresolved")
    TrackerStore().update_issue(
        org.org_id, unassigned, lambda i: replace(i, assignee_email="dana@example.com", assignee_user_id="101")
    )
    org.seen(unassigned, status="unresolved", assignee="user:101")
    org.in_sentry(unassigned, "unresolved")
    report = run_sentry_reconcile()
    assert issue_view(org.org_id, reopened)["status"] == "unresolved"
    assert issue_view(org.org_id, unassigned)["assignee"] is None
    assert [e["type"] for e in issue_view(org.org_id, unassigned)["activity"]][-1] == "unassigned"
    assert sorted(_outbound(org)) == [(reopened, ("status",)), (unassigned, ("assignee",))]
    assert org.gets() == 2 and report.changed >= 2
    record = timer_runs.timer_records()[NAME]
    assert record.worked >= 2 and not record.running
    # Nothing changed since: the next run reads again, changes nothing, queues nothing.
    CursorStore().set(NAME, f"{org.org_id}|")
    run_sentry_reconcile()
    assert org.gets() == 4 and _outbound(org) == []


def test_a_first_look_records_the_baseline_and_a_change_made_in_azure_devops_is_not_undone(sentry_http) -> None:
    org = Org(sentry_http, count=2)
    unseen, pending = org.issues
    org.in_sentry(unseen, "resolved", DANA)  # never seen: recorded, not applied
    # Resolved in Azure DevOps; Sentry (unresolved, as last seen) has not been told yet.
    TrackerStore().update_issue(org.org_id, pending, lambda issue: replace(issue, status="resolved"))
    org.seen(pending, status="unresolved", assignee="")
    org.in_sentry(pending, "unresolved")
    run_sentry_reconcile()
    assert issue_view(org.org_id, unseen)["status"] == "unresolved"
    assert TrackerStore().get_issue(org.org_id, unseen).sentry_seen == {"status": "resolved", "assignee": "user:101"}
    assert issue_view(org.org_id, pending)["status"] == "resolved"
    assert _outbound(org) == []


def test_the_budget_stops_a_run_and_the_next_resumes_after_the_last_issue_done(sentry_http, monkeypatch) -> None:
    org = Org(sentry_http, count=3)
    for issue_id in org.issues:
        org.in_sentry(issue_id, "unresolved")
    clock = FakeClock()
    monkeypatch.setenv("TIMER_BUDGET_SECONDS", "10")
    from shared.settings import reset_settings

    reset_settings()

    def slow(request):  # each read of Sentry takes 4 s of the budget
        clock.advance(4)
        issue_id = request.url.rstrip("/").rpartition("/")[2]
        return 200, {}, f'{{"id": "{issue_id}", "status": "unresolved", "assignedTo": null}}'

    for issue_id in org.issues:
        sentry_http.remove(responses.GET, org.url(issue_id))
        sentry_http.add_callback(responses.GET, org.url(issue_id), callback=slow)
    first = run_sentry_reconcile(clock=clock)
    assert (first.finished, first.visited) == (False, 3)  # 0 s, 4 s, 8 s: the third starts within the budget
    # Stopped after this organization's last issue (at the next organization's first, or within this one).
    assert first.cursor == CursorStore().get(NAME) and first.cursor > f"{org.org_id}|{org.issues[1]}"
    assert not timer_runs.timer_records()[NAME].finished
    before = org.gets()
    run_sentry_reconcile(clock=clock)
    assert org.gets() == before  # resumed after the last issue done: none of this organization's read again


def test_an_installation_that_needs_a_new_token_is_not_called_and_a_healthy_one_gets_its_parked_messages(
    sentry_http,
) -> None:
    org = Org(sentry_http)
    SentryStore().update(org.uuid, lambda current: replace(current, needs_reauth=True))
    sentry_parked.park(org.org_id, "vsts-sentry-updates", '{"parked": 1}')
    run_sentry_reconcile()
    assert org.gets() == 0 and len(sentry_parked.parked(org.org_id)) == 1
    SentryStore().update(org.uuid, lambda current: replace(current, needs_reauth=False))
    org.in_sentry(org.issues[0], "unresolved")
    CursorStore().set(NAME, f"{org.org_id}|")
    report = run_sentry_reconcile()
    assert sentry_parked.parked(org.org_id) == [] and report.released >= 1
    assert '{"parked": 1}' in queued_messages("vsts-sentry-updates")
