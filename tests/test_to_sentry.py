"""Inbound changes on a Sentry organization's issue sent to Sentry (contract §13.2, `shared.sentryapp.to_sentry`):
the tracked issue and the installation in Azurite, Sentry faked with `responses` (`sentry_http`), the queue real."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import responses
from azure.core.exceptions import ResourceNotFoundError

from shared.deliveries.sentry_messages import read_update_message, to_update_message
from shared.errors import RetryLater
from shared.model.sentry import SentryInstallation, SentryUpdate
from shared.model.tracker import Link, Member, TrackedIssue
from shared.sentryapp.installations import put_static_token
from shared.sentryapp.to_sentry import apply_sentry_update, process_update_message
from shared.store import failures, sentry_parked
from shared.store.queues import SENTRY_UPDATES_QUEUE_NAME, queue_client
from shared.store.sentry import SentryStore
from shared.store.tracker import TrackerStore
from tests.helpers import FakeClock, new_id
from tests.sync_helpers import queued_messages

pytestmark = pytest.mark.usefixtures("azurite")

SENTRY = "https://sentry.example"
LINK = Link("c0ffee00-0000-4000-8000-000000000001", 77)
DANA = {"id": "900", "email": "dana@example.com", "user": {"id": "101", "email": "dana@example.com", "name": "Dana"}}


def clear_updates_queue() -> None:
    """Every message off the queue, those queued with a delay too (they count in its length)."""
    try:
        queue_client(SENTRY_UPDATES_QUEUE_NAME).clear_messages()
    except ResourceNotFoundError:
        pass  # never used yet


@pytest.fixture(autouse=True)
def sentry(sentry_http: responses.RequestsMock) -> responses.RequestsMock:
    clear_updates_queue()
    yield sentry_http
    clear_updates_queue()


class World:
    """A Sentry organization with the app installed and tracked issue 123 linked to LINK, rev 5 of it saved."""

    def __init__(self, clock: FakeClock, **issue: object) -> None:
        self.slug = f"s{new_id()[:8]}"
        self.org = f"sentry-{self.slug}"
        self.clock = clock
        self.installation = SentryStore().put(
            SentryInstallation(
                new_id(),
                self.slug,
                app_uuid="app-uuid",
                token="old-token",
                refresh_token="old-refresh",
                expires_at=clock.now() + 8 * 3600,
            )
        )
        marks = {LINK.key: {"status": 5, "assignee": 5}}
        tracked = TrackedIssue(self.org, "123", "ZeroDivisionError", links=(LINK,), watermarks=marks)
        TrackerStore().create_issue(replace(tracked, **issue))

    @property
    def issue_url(self) -> str:
        return f"{SENTRY}/api/0/organizations/{self.slug}/issues/123/"

    @property
    def members_url(self) -> str:
        return f"{SENTRY}/api/0/organizations/{self.slug}/members/"

    def update(self, *fields: str, rev: int = 5) -> SentryUpdate:
        return SentryUpdate(self.org, "123", fields, after=tuple((LINK.key, name, rev) for name in fields))

    def apply(self, *fields: str) -> object:
        return apply_sentry_update(self.update(*fields), clock=self.clock)

    def activity(self) -> list[dict]:
        issue = TrackerStore().get_issue(self.org, "123")
        return [entry for entry in issue.activity if entry["type"].startswith("sentry_")]


def sentry_issue(status: str = "unresolved", assigned_to: str | None = None) -> dict:
    return {"id": "123", "status": status, "assignedTo": {"type": "user", "id": assigned_to} if assigned_to else None}


def calls(sentry: responses.RequestsMock) -> list:
    """The requests to Sentry (the mock also sees those to Azurite, which it passes through)."""
    return [call for call in sentry.calls if call.request.url.startswith(SENTRY)]


def puts(sentry: responses.RequestsMock) -> list[dict]:
    return [json.loads(call.request.body) for call in calls(sentry) if call.request.method == "PUT"]


def requests_to(sentry: responses.RequestsMock, path: str) -> int:
    return sum(1 for call in calls(sentry) if path in call.request.url)


def queue_count() -> int:
    try:
        return queue_client(SENTRY_UPDATES_QUEUE_NAME).get_queue_properties().approximate_message_count
    except ResourceNotFoundError:
        return 0


def test_a_resolved_issue_resolves_the_sentry_issue_with_one_read_and_one_put(sentry) -> None:
    world = World(FakeClock(), status="resolved")
    sentry.get(world.issue_url, json=sentry_issue("unresolved"))
    sentry.put(world.issue_url, json=sentry_issue("resolved"))
    report = world.apply("status")
    assert puts(sentry) == [{"status": "resolved"}] and len(calls(sentry)) == 2
    assert report.sent == ["status"]
    [entry] = world.activity()
    assert (entry["type"], entry["source"], entry["work_item_id"], entry["rev"]) == ("sentry_updated", "vsts", 77, 5)
    assert entry["fields"] == ["status"]
    assert calls(sentry)[1].request.headers["Authorization"] == "Bearer old-token"


@pytest.mark.parametrize(
    ("status", "shown"), [("resolved", "resolved"), ("unresolved", "unresolved"), ("unresolved", "ignored")]
)
def test_nothing_is_sent_when_sentry_already_shows_it_and_an_ignored_issue_stays_ignored(
    sentry, status: str, shown: str
) -> None:
    """So the webhook that our own PUT causes, or a message applied twice, sends no second PUT."""
    world = World(FakeClock(), status=status, assignee_email="dana@example.com", assignee_user_id="101")
    sentry.get(world.issue_url, json=sentry_issue(shown, assigned_to="101"))
    report = world.apply("status", "assignee")
    assert puts(sentry) == [] and len(calls(sentry)) == 1
    assert report.sent == [] and world.activity() == []


def test_an_assignee_is_found_in_sentry_by_email_once_then_kept_as_a_member(sentry) -> None:
    world = World(FakeClock(), assignee_email="dana@example.com")
    sentry.get(world.members_url, json=[DANA])
    sentry.get(world.issue_url, json=sentry_issue())
    sentry.put(world.issue_url, json=sentry_issue(assigned_to="101"))
    world.apply("assignee")
    assert puts(sentry) == [{"assignedTo": "user:101"}]
    assert "query=email%3Adana%40example.com" in calls(sentry)[0].request.url
    cached = Member(world.org, "dana@example.com", "101", "Dana")
    assert TrackerStore().get_member(world.org, "dana@example.com") == cached
    assert TrackerStore().get_issue(world.org, "123").assignee_user_id == "101"
    assert world.activity()[-1]["fields"] == ["assignedTo"]
    # Another issue of the organization assigned to her: no members request (warm: two requests).
    other = TrackedIssue(world.org, "124", "KeyError", assignee_email="dana@example.com", links=(LINK,))
    TrackerStore().create_issue(other)
    other_url = world.issue_url.replace("/123/", "/124/")
    sentry.get(other_url, json={**sentry_issue(), "id": "124"})
    sentry.put(other_url, json=sentry_issue(assigned_to="101"))
    before = len(calls(sentry))
    apply_sentry_update(SentryUpdate(world.org, "124", ("assignee",)), clock=world.clock)
    assert requests_to(sentry, "/members/") == 1 and len(calls(sentry)) - before == 2
    assert puts(sentry)[-1] == {"assignedTo": "user:101"}


def test_an_unassigned_issue_unassigns_the_sentry_issue(sentry) -> None:
    world = World(FakeClock())
    sentry.get(world.issue_url, json=sentry_issue(assigned_to="101"))
    sentry.put(world.issue_url, json=sentry_issue())
    world.apply("assignee")
    assert puts(sentry) == [{"assignedTo": ""}]


def test_an_email_sentry_has_no_member_for_is_sentry_failed_and_not_retried(sentry) -> None:
    world = World(FakeClock(), assignee_email="ghost@example.com")
    sentry.get(world.members_url, json=[])
    outcome = process_update_message(to_update_message(world.update("assignee")), clock=world.clock)
    assert outcome.result == "applied" and outcome.report.failed
    assert len(calls(sentry)) == 1 and puts(sentry) == []  # the members request only
    [entry] = world.activity()
    assert entry["type"] == "sentry_failed" and "ghost@example.com" in entry["reason"]
    assert queued_messages(SENTRY_UPDATES_QUEUE_NAME) == []
    from shared.store.failures import recent_failures

    shown = [f for f in recent_failures() if f.kind == "sentry_failed" and world.slug in f.subject]
    assert shown and "ghost@example.com" in shown[0].reason  # on the status page's recent failures too


def test_a_token_that_expires_mid_run_is_refreshed_once_and_the_put_succeeds(sentry) -> None:
    clock = FakeClock()
    world = World(clock, status="resolved")
    SentryStore().update(world.installation.uuid, lambda cur: replace(cur, expires_at=clock.now() + 400))

    def read(request):
        clock.advance(200)  # the token is due (5 minutes before it expires) by the time the PUT goes
        return 200, {}, json.dumps(sentry_issue())

    sentry.add_callback(responses.GET, world.issue_url, callback=read)
    sentry.post(
        f"{SENTRY}/api/0/sentry-app-installations/{world.installation.uuid}/authorizations/",
        json={"token": "new-token", "refreshToken": "new-refresh", "expiresAt": "2030-01-01T00:00:00Z"},
        status=201,
    )
    sentry.put(world.issue_url, json=sentry_issue("resolved"))
    world.apply("status")
    used = [(c.request.method, c.request.headers.get("Authorization")) for c in calls(sentry)]
    assert used == [("GET", "Bearer old-token"), ("POST", None), ("PUT", "Bearer new-token")]
    assert SentryStore().get(world.installation.uuid).token == "new-token"


def _retried_delay(world: World) -> int:
    queued = queue_count()
    outcome = process_update_message(to_update_message(world.update("status")), clock=world.clock)
    assert outcome.result == "retried" and outcome.attempt == 1
    assert queue_count() == queued + 1
    return outcome.delay


def test_a_rate_limit_is_retried_through_the_queue_no_sooner_than_sentry_asked(sentry) -> None:
    clock = FakeClock()
    world = World(clock, status="resolved")
    reset = {"X-Sentry-Rate-Limit-Reset": str(int(clock.now()) + 120), "X-Sentry-Rate-Limit-Remaining": "0"}
    sentry.get(world.issue_url, json={"detail": "slow down"}, status=429, headers=reset)
    assert _retried_delay(world) >= 120
    assert puts(sentry) == []


def test_sentry_unavailable_is_retried_through_the_queue_no_sooner_than_sentry_asked(sentry) -> None:
    world = World(FakeClock(), status="resolved")
    sentry.get(world.issue_url, json=sentry_issue())
    sentry.put(world.issue_url, body="down", status=503, headers={"Retry-After": "45"})
    assert _retried_delay(world) >= 45
    assert world.activity() == []


def test_the_retried_message_applies_when_sentry_is_back_and_a_spent_budget_poisons_it(sentry, env) -> None:
    env.setenv("QUEUE_RETRY_WINDOW_SECONDS", "1")
    env.setenv("QUEUE_RETRY_BASE_SECONDS", "1")
    world = World(FakeClock(), status="resolved")
    sentry.get(world.issue_url, body="down", status=503, headers={"Retry-After": "1"})
    outcome = process_update_message(to_update_message(world.update("status"), attempt=1), clock=world.clock)
    assert outcome.result == "poisoned"
    [poisoned] = queued_messages(SENTRY_UPDATES_QUEUE_NAME + "-poison")
    assert read_update_message(poisoned) == (world.update("status"), 0)


def test_a_refused_token_whose_refresh_is_refused_too_marks_the_installation_and_parks_the_message(sentry) -> None:
    world = World(FakeClock(), status="resolved")
    sentry.get(world.issue_url, json={"detail": "Invalid token"}, status=401)
    authorizations = f"{SENTRY}/api/0/sentry-app-installations/{world.installation.uuid}/authorizations/"
    sentry.post(authorizations, json={"detail": "Invalid grant"}, status=401)
    outcome = process_update_message(to_update_message(world.update("status")), clock=world.clock)
    assert outcome.result == "applied" and "parked" in outcome.report.notes[-1]  # completed: not retried
    assert SentryStore().get(world.installation.uuid).needs_reauth
    assert [c.request.method for c in sentry.calls] == ["GET", "POST"]  # the refresh was tried once
    assert queued_messages(SENTRY_UPDATES_QUEUE_NAME) == []
    # Parked: the next message calls neither the API nor the token endpoint.
    process_update_message(to_update_message(world.update("status")), clock=world.clock)
    assert len(sentry.calls) == 2 and len(sentry_parked.parked(world.org)) == 1  # one row per message
    # A new token entered through the admin route releases it, and it is applied.
    sentry.replace(responses.GET, world.issue_url, json=sentry_issue("unresolved"))
    sentry.put(world.issue_url, json=sentry_issue("resolved"))
    put_static_token(world.installation.uuid, {"token": "entered-by-a-person"})
    [released] = queued_messages(SENTRY_UPDATES_QUEUE_NAME)
    assert process_update_message(released, clock=world.clock).report.sent == ["status"]
    assert sentry.calls[-1].request.headers["Authorization"] == "Bearer entered-by-a-person"
    installation = SentryStore().get(world.installation.uuid)
    assert not installation.needs_reauth and installation.kind == world.installation.kind  # public stays public


def test_a_403_is_recorded_naming_the_scope_and_neither_refreshed_retried_nor_flagged(sentry) -> None:
    world = World(FakeClock(), status="resolved")
    before = SentryStore().get(world.installation.uuid)
    refused = {"detail": "You do not have permission to perform this action."}
    sentry.get(world.issue_url, json=sentry_issue())
    sentry.put(world.issue_url, json=refused, status=403)
    outcome = process_update_message(to_update_message(world.update("status")), clock=world.clock)
    assert outcome.result == "applied" and queued_messages(SENTRY_UPDATES_QUEUE_NAME) == []
    [entry] = world.activity()
    assert entry["type"] == "sentry_failed" and "event:write" in entry["reason"] and "Permissions" in entry["reason"]
    assert [c.request.method for c in sentry.calls] == ["GET", "PUT"]  # no refresh
    after = SentryStore().get(world.installation.uuid)
    assert (after.token, after.refresh_token, after.needs_reauth) == (before.token, before.refresh_token, False)
    [failure] = [f for f in failures.recent_failures() if f.subject.startswith(f"{world.org}/123")]
    assert failure.kind == "sentry_failed" and "event:write" in failure.reason and "403" in failure.advice


@pytest.mark.parametrize(("status", "words"), [(400, "refused"), (404, "does not have")])
def test_a_refusal_or_an_issue_sentry_does_not_have_is_sentry_failed_and_not_retried(
    sentry, status: int, words: str
) -> None:
    world = World(FakeClock(), status="resolved")
    sentry.get(world.issue_url, json=sentry_issue())
    sentry.put(world.issue_url, json={"status": ["not allowed"]}, status=status)
    outcome = process_update_message(to_update_message(world.update("status")), clock=world.clock)
    assert outcome.result == "applied"
    [entry] = world.activity()
    assert entry["type"] == "sentry_failed" and words in entry["reason"]
    assert queued_messages(SENTRY_UPDATES_QUEUE_NAME) == []


def test_an_update_queued_before_its_save_waits_for_it(sentry) -> None:
    world = World(FakeClock(), status="resolved")
    with pytest.raises(RetryLater, match="not saved"):
        apply_sentry_update(world.update("status", rev=6), clock=world.clock)
    assert calls(sentry) == []


def test_without_an_active_installation_nothing_is_sent(sentry) -> None:
    world = World(FakeClock(), status="resolved")
    SentryStore().update(world.installation.uuid, lambda cur: replace(cur, status="disabled"))
    report = world.apply("status")
    assert calls(sentry) == [] and "no active Sentry installation" in report.notes[0]


def test_a_message_the_app_did_not_write_fails_so_the_host_poisons_it() -> None:
    from shared.sentryapp.to_sentry import run_update_message

    with pytest.raises(ValueError, match="not one the app wrote"):
        run_update_message("m1", b'{"v":1,"kind":"sentry-update","org_id":"sentry-x","issue_id":"1"}')
    with pytest.raises(ValueError):
        run_update_message("m2", b"not json")
