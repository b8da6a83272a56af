"""Sentry's issue and comment webhooks applied by the hooks worker (contract §13.2): each action becomes a
tracker-side change of a tracked issue, queued for its work items; the app's own writes, unknown or disabled
installations and untracked issues change nothing. Real Azurite; webhooks posted through the route."""

from __future__ import annotations

import uuid as uuids
from dataclasses import replace

import pytest
import responses

from shared.deliveries.comments import is_comment_message, read_comment_message
from shared.deliveries.outbound import read_outbound_message
from shared.deliveries.sentry_messages import to_hook_message
from shared.model.sentry import DISABLED, INTERNAL, SentryInstallation
from shared.sentryapp.hooks import process_hook_message
from shared.store.comments import CommentStore
from shared.store.queues import OUTBOUND_QUEUE_NAME, SENTRY_HOOKS_QUEUE_NAME
from shared.store.sentry import APPLIED, SentryStore
from shared.store.tracker import TrackerStore
from tests.helpers import make_integration, new_id
from tests.sentry_hooks_helpers import APP_UUID, comment_data, envelope, issue_data, post, run_hooks
from tests.sync_helpers import issue_view, queued_messages, tracked_issue

pytestmark = pytest.mark.usefixtures("azurite")

DANA = {"type": "user", "id": "101", "name": "Dana Lee", "email": "Dana@Example.com"}
OWN_APP = {"type": "application", "id": APP_UUID, "name": "boards-sync"}


@pytest.fixture(autouse=True)
def sentry(sentry_http: responses.RequestsMock) -> responses.RequestsMock:
    for queue in (SENTRY_HOOKS_QUEUE_NAME, OUTBOUND_QUEUE_NAME):
        queued_messages(queue)
    World.mock = sentry_http
    return sentry_http


class World:
    """A Sentry installation (internal: a static token) and one tracked issue. `issue()` sends a webhook and
    sets what Sentry answers when the worker reads the issue: the webhook's state, unless `current` says
    otherwise (a later change the webhook does not know of)."""

    mock: responses.RequestsMock

    def __init__(self, *, tracked: bool = True) -> None:
        self.uuid, self.slug = new_id(), f"o{uuids.uuid4().hex[:8]}"
        self.org_id, self.issue_id = f"sentry-{self.slug}", str(uuids.uuid4().int % 10**9 + 1)
        SentryStore().put(SentryInstallation(self.uuid, self.slug, kind=INTERNAL, app_uuid=APP_UUID, token="t"))
        self.integration = make_integration()
        if tracked:
            tracked_issue(self.org_id, self.issue_id, self.integration.id, 77)
        queued_messages(OUTBOUND_QUEUE_NAME)

    def send(self, resource: str, action: str, data: dict, actor: dict | None = None, **options) -> None:
        assert post(envelope(self.uuid, resource, action, data, actor), resource, **options).status_code == 202

    @property
    def issue_url(self) -> str:
        return f"https://sentry.example/api/0/organizations/{self.slug}/issues/{self.issue_id}/"

    def in_sentry(self, status: str, assignee: dict | None = None, *, http_status: int = 200) -> None:
        """What Sentry answers for the issue from now on."""
        body = issue_data(self.issue_id, status, assignee)["issue"] if http_status == 200 else {"detail": "no"}
        World.mock.upsert(responses.GET, self.issue_url, json=body, status=http_status)

    def issue(
        self,
        action: str,
        status: str = "resolved",
        assignee: dict | None = None,
        *,
        current: tuple[str, dict | None] | None = None,
        **options,
    ) -> None:
        self.in_sentry(*(current or (status, assignee)))
        self.send("issue", action, issue_data(self.issue_id, status, assignee), **options)
        run_hooks()

    def comment(self, action: str, comment_id: str, text: str, actor: dict | None = None) -> None:
        self.send("comment", action, comment_data(self.issue_id, comment_id, text), actor)
        run_hooks()

    def view(self) -> dict:
        return issue_view(self.org_id, self.issue_id)


def _outbound() -> list:
    return [
        read_comment_message(m)[0] if is_comment_message(m) else read_outbound_message(m)[0]
        for m in queued_messages(OUTBOUND_QUEUE_NAME)
    ]


def test_resolved_resolves_the_tracked_issue_and_queues_the_status_for_its_work_items() -> None:
    world = World()
    world.issue("resolved")
    view = world.view()
    assert view["status"] == "resolved"
    assert view["activity"][-1]["type"] == "resolved" and view["activity"][-1]["source"] == "sentry"
    [change] = _outbound()
    assert (change.org_id, change.issue_id, change.fields) == (world.org_id, world.issue_id, ("status",))


@pytest.mark.parametrize("action", ["unresolved", "ignored", "archived"])
def test_unresolved_ignored_and_archived_are_all_unresolved(action: str) -> None:
    world = World()
    world.issue("resolved")
    queued_messages(OUTBOUND_QUEUE_NAME)
    world.issue(action, status="ignored" if action != "unresolved" else "unresolved")
    assert world.view()["status"] == "unresolved"
    assert [c.fields for c in _outbound()] == [("status",)]


def test_a_change_the_issue_shows_already_adds_no_activity_but_is_still_queued() -> None:
    """It may be a second attempt after one that saved and stopped before queueing: the worker sends only what
    differs, so queueing it again is harmless and losing it is not."""
    world = World()
    world.issue("unresolved", status="unresolved")  # it is unresolved already
    assert world.view()["activity"] == []
    assert [c.fields for c in _outbound()] == [("status",)]


def test_assigned_records_the_member_and_assigns_the_issue_by_email() -> None:
    world = World()
    world.issue("assigned", status="unresolved", assignee=DANA)
    assert world.view()["assignee"] == {"email": "dana@example.com", "user_id": "101"}
    assert TrackerStore().get_member(world.org_id, "dana@example.com").name == "Dana Lee"
    assert [c.fields for c in _outbound()] == [("assignee",)]


@pytest.mark.parametrize(
    "assignee",
    [{"type": "team", "id": "5", "name": "backend"}, {"type": "user", "id": "102", "name": "No Mail"}],
    ids=["team", "no-email"],
)
def test_a_team_or_a_user_without_an_email_leaves_the_assignee(assignee: dict) -> None:
    world = World()
    world.issue("assigned", status="unresolved", assignee=DANA)
    queued_messages(OUTBOUND_QUEUE_NAME)
    world.issue("assigned", status="unresolved", assignee=assignee)
    assert world.view()["assignee"]["email"] == "dana@example.com"
    assert _outbound() == []


def test_an_assigned_event_without_an_assignee_unassigns() -> None:
    world = World()
    world.issue("assigned", status="unresolved", assignee=DANA)
    queued_messages(OUTBOUND_QUEUE_NAME)
    world.issue("assigned", status="unresolved", assignee=None)
    assert world.view()["assignee"] is None
    assert world.view()["activity"][-1]["type"] == "unassigned"


def test_comments_are_added_edited_and_deleted_under_sentrys_id_and_queued() -> None:
    world = World()
    world.comment("created", "900", "First **words**")
    comment = CommentStore().get(world.org_id, world.issue_id, "sentry-900")
    assert (comment.author, comment.text) == ("Dana Lee", "First **words**")
    world.comment("created", "900", "First **words**")  # delivered again (another request id): harmless
    assert len(CommentStore().comments_of(world.org_id, world.issue_id)) == 1  # queued again: see issue 18, 7
    world.comment("updated", "900", "Second words")
    assert CommentStore().get(world.org_id, world.issue_id, "sentry-900").text == "Second words"
    world.comment("deleted", "900", "")
    assert CommentStore().get(world.org_id, world.issue_id, "sentry-900").deleted
    assert [c.comment_id for c in _outbound()] == ["sentry-900"] * 4


def test_an_edit_of_a_comment_made_before_the_issue_was_tracked_adds_it() -> None:
    world = World()
    world.comment("updated", "901", "Edited later")
    assert CommentStore().get(world.org_id, world.issue_id, "sentry-901").text == "Edited later"


def test_a_comment_the_tracker_cannot_keep_is_logged_and_not_retried() -> None:
    world = World()
    world.comment("created", "902", "x" * 32_001)
    assert CommentStore().get(world.org_id, world.issue_id, "sentry-902") is None
    assert queued_messages(SENTRY_HOOKS_QUEUE_NAME) == []


def test_the_apps_own_writes_change_nothing() -> None:
    world = World()
    world.send("issue", "resolved", issue_data(world.issue_id), OWN_APP)
    world.send("comment", "created", comment_data(world.issue_id, "903", "echo"), OWN_APP)
    run_hooks()
    assert world.view()["status"] == "unresolved"
    assert CommentStore().get(world.org_id, world.issue_id, "sentry-903") is None
    assert _outbound() == []


def test_another_apps_write_is_applied() -> None:
    world = World()
    world.issue("resolved", actor=None)  # a person; then another application
    world.in_sentry("unresolved")
    world.send("issue", "unresolved", issue_data(world.issue_id, "unresolved"), {**OWN_APP, "id": new_id()})
    run_hooks()
    assert world.view()["status"] == "unresolved"


def test_an_unknown_or_disabled_installation_applies_nothing() -> None:
    world = World()
    SentryStore().update(world.uuid, lambda current: replace(current, status=DISABLED))
    world.issue("resolved")
    assert world.view()["status"] == "unresolved"
    stranger = envelope(new_id(), "issue", "resolved", issue_data(world.issue_id))
    assert post(stranger, "issue").status_code == 202
    run_hooks()
    assert world.view()["status"] == "unresolved"
    assert _outbound() == []


def test_an_untracked_issue_is_not_made() -> None:
    world = World(tracked=False)
    world.issue("resolved")
    world.comment("created", "904", "hello")
    assert TrackerStore().get_issue(world.org_id, world.issue_id) is None
    assert _outbound() == []


def test_a_message_delivered_twice_is_applied_once() -> None:
    world = World()
    world.in_sentry("resolved")
    world.send("issue", "resolved", issue_data(world.issue_id), request_id="twice-1")
    [message] = queued_messages(SENTRY_HOOKS_QUEUE_NAME)
    assert process_hook_message(message).report.startswith(f"issue {world.issue_id}: changed status")
    assert SentryStore().get_delivery(world.uuid, "twice-1")[1] == APPLIED
    assert process_hook_message(message).report == "applied already"
    assert len(world.view()["activity"]) == 1


def test_a_change_is_queued_even_when_a_first_attempt_saved_it_and_stopped() -> None:
    """The first attempt saved the status and stopped before queueing it: the host delivers the message again
    (attempt 0: the host's own redelivery), which finds nothing to change and still queues it."""
    world = World()
    world.in_sentry("resolved")
    world.send("issue", "resolved", issue_data(world.issue_id), request_id="retry-1")
    queued_messages(SENTRY_HOOKS_QUEUE_NAME)
    TrackerStore().update_issue(world.org_id, world.issue_id, lambda issue: replace(issue, status="resolved"))
    assert process_hook_message(to_hook_message(world.uuid, "retry-1")).result == "applied"
    assert [c.fields for c in _outbound()] == [("status",)]


@pytest.mark.parametrize("text", ["not json", '{"v":1,"kind":"sentry-hook"}', '{"v":1,"kind":"outbound"}'])
def test_a_message_the_app_did_not_write_fails_for_the_poison_queue(text: str) -> None:
    from azure.functions.queue import QueueMessage

    from functions.sentry_webhook import apply_sentry_webhook

    with pytest.raises(ValueError, match="not one the app wrote"):
        apply_sentry_webhook(QueueMessage(id="bad", body=text.encode()))


def test_a_message_whose_record_expired_applies_nothing() -> None:
    world = World()
    outcome = process_hook_message(to_hook_message(world.uuid, "never-recorded"))
    assert outcome.report == "no record: nothing applied"


# ------------------------------------------------------------------------------ a webhook is a hint


def test_an_old_resolved_sent_again_after_a_reopen_the_app_saw_changes_nothing() -> None:
    """Sentry resends a webhook that timed out with a new Request-ID; by then the issue was reopened (and the app
    saw it). Sentry now shows it unresolved, as the app last saw it: nothing is rolled back or queued."""
    world = World()
    world.issue("resolved", request_id="first")
    world.issue("unresolved", status="unresolved")  # the reopen (an organization with webhooks-unresolved)
    queued_messages(OUTBOUND_QUEUE_NAME)
    activity = len(world.view()["activity"])
    world.issue("resolved", request_id="resent-with-a-new-id", current=("unresolved", None))
    assert world.view()["status"] == "unresolved" and len(world.view()["activity"]) == activity
    assert [c.fields for c in _outbound()] == [("status",)]  # in line already: the worker will send nothing


def test_a_late_webhook_applies_what_sentry_shows_now() -> None:
    world = World()
    world.issue("resolved", current=("unresolved", DANA))  # reopened since, and assigned without a webhook read
    view = world.view()
    assert view["status"] == "unresolved" and view["activity"] == []
    assert view["assignee"] is None  # the assignee is not the webhook's field and was never seen: left alone
    world.issue("resolved")  # now really resolved
    assert world.view()["status"] == "resolved"


def test_a_change_made_in_azure_devops_not_yet_sent_to_sentry_is_not_undone_by_a_webhook() -> None:
    world = World()
    world.issue("assigned", status="unresolved", assignee=DANA)  # seen: unresolved, Dana
    # Azure DevOps resolves it: the tracked issue is resolved, Sentry not yet (its update is still queued).
    TrackerStore().update_issue(world.org_id, world.issue_id, lambda issue: replace(issue, status="resolved"))
    world.issue("assigned", status="unresolved", assignee=DANA)  # a resend of the assignment
    assert world.view()["status"] == "resolved"


def test_only_tracked_issues_are_read_from_sentry() -> None:
    world = World(tracked=False)
    world.issue("resolved")
    assert not [c for c in World.mock.calls if world.issue_url in c.request.url]


def test_a_403_reading_the_issue_is_recorded_with_the_scope_and_not_retried() -> None:
    world = World()
    world.in_sentry("resolved", http_status=403)
    world.send("issue", "resolved", issue_data(world.issue_id))
    run_hooks()
    view = world.view()
    assert view["status"] == "unresolved"
    [failed] = [e for e in view["activity"] if e["type"] == "sentry_failed"]
    assert "event:read" in failed["reason"] and "Permissions" in failed["reason"]
    assert queued_messages(SENTRY_HOOKS_QUEUE_NAME) == []  # not retried
    installation = SentryStore().get(world.uuid)
    assert not installation.needs_reauth and installation.token == "t"  # the credentials are left alone


def test_a_refused_token_parks_the_webhook_until_a_new_token_releases_it() -> None:
    from shared.sentryapp.installations import put_static_token
    from shared.store import sentry_parked

    world = World()
    world.in_sentry("resolved", http_status=401)
    world.send("issue", "resolved", issue_data(world.issue_id), request_id="parked-1")
    run_hooks()
    assert SentryStore().get(world.uuid).needs_reauth
    assert len(sentry_parked.parked(world.org_id)) == 1 and queued_messages(SENTRY_HOOKS_QUEUE_NAME) == []
    calls = len(World.mock.calls)
    world.send("issue", "assigned", issue_data(world.issue_id, "resolved", DANA), request_id="parked-2")
    run_hooks()
    assert len(World.mock.calls) == calls  # parked without a call to Sentry
    assert len(sentry_parked.parked(world.org_id)) == 2 and world.view()["status"] == "unresolved"

    world.in_sentry("resolved", DANA)
    put_static_token(world.uuid, {"token": "new-token"})  # a person enters a new token
    assert sentry_parked.parked(world.org_id) == [] and not SentryStore().get(world.uuid).needs_reauth
    run_hooks()
    view = world.view()
    assert view["status"] == "resolved" and view["assignee"]["email"] == "dana@example.com"
    assert World.mock.calls[-1].request.headers["Authorization"] == "Bearer new-token"
