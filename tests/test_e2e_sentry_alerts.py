"""Sentry alert rules end to end: the app served by the local host, the fake Sentry saving rules and firing them
as Sentry does (the settings POSTed to the action's `uri` when a rule is saved, `event_alert.triggered` webhooks
when it fires, a resend with a new Request-ID), the fake Azure DevOps behind it. A rule is saved, or refused with
the app's message; a firing makes exactly one work item for the issue, linked and shown in Sentry, however many
firings arrive at once."""

from __future__ import annotations

import signal
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from devtools.fakes import FakeAzureDevOps, FakeSentry
from devtools.fakes.sentry.alerts import RuleRefused
from tests.e2e import start_host, stop_host
from tests.helpers import wait_for
from tests.sentry_e2e import APP, SentryHost, SentryWorld, fake_sentry, sentry_world, start_sentry_host  # noqa: F401

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("azurite")]


@pytest.fixture(scope="module")
def alert_host(azurite, fake_ado, fake_sentry, tmp_path_factory) -> Iterator[SentryHost]:  # noqa: F811
    # A firing that finds another creating the work item tries again after the queue's back-off: 1 s here.
    env = {"QUEUE_RETRY_BASE_SECONDS": "1", "QUEUE_RETRY_MAX_SECONDS": "5"}
    started = start_sentry_host(tmp_path_factory.mktemp("alert-host"), fake_ado, fake_sentry, env)
    schema = requests.get(f"{started.host.url}/api/sentry/schema", timeout=30).json()
    fake_sentry.set_schema(APP, schema)  # pasted into the integration, as a person does
    yield started
    stop_host(started.host)


@pytest.fixture(scope="module")
def world(alert_host: SentryHost) -> SentryWorld:
    return sentry_world(alert_host)


def new_issue(sentry: FakeSentry, world: SentryWorld, title: str) -> str:
    issue_id = str(uuid.uuid4().int % 10**9 + 1)
    sentry.add_issue(world.org_slug, issue_id, title, "backend")
    return issue_id


def creates(ado: FakeAzureDevOps, world: SentryWorld) -> list[Any]:
    """The app's successful create requests in the world's Azure DevOps organization."""
    return [
        r
        for r in ado.requests
        if r.method == "POST"
        and f"/{world.ado_org}/" in r.path
        and "/_apis/wit/workitems/$" in r.path
        and r.status is not None
        and r.status < 300
    ]


def linked(host: SentryHost, world: SentryWorld, issue_id: str) -> list[dict[str, Any]]:
    response = host.host.call("GET", f"/api/orgs/{world.org_id}/issues/{issue_id}")
    return response.json().get("links", []) if response.status_code == 200 else []


def rule_fields(world: SentryWorld, **extra: str) -> dict[str, str]:
    return {"project": f"{world.integration_id}|proj-id", "work_item_type": "Bug", **extra}


def test_a_rule_is_saved_with_the_apps_message_and_one_naming_a_missing_type_is_refused(alert_host, world) -> None:
    sentry = alert_host.sentry
    rule, answer = sentry.save_alert_rule(world.installation_uuid, "Errors in checkout", rule_fields(world))
    assert (
        answer.status_code == 200
        and answer.json()["message"] == "Each issue this rule fires for gets one Bug in proj-id."
    )
    with pytest.raises(RuleRefused) as refused:
        sentry.save_alert_rule(world.installation_uuid, "Incidents", rule_fields(world, work_item_type="Incident"))
    assert refused.value.answer is not None and refused.value.answer.status_code == 404
    assert refused.value.message == "The project proj-id has no work item type Incident."
    # Sentry itself refuses a priority that is not one of the select's options (the app is not asked)
    with pytest.raises(RuleRefused, match="not one of its options") as refused:
        sentry.save_alert_rule(world.installation_uuid, "Odd", rule_fields(world, priority="9"))
    assert refused.value.answer is None


def test_a_firing_creates_one_linked_work_item_with_the_chosen_fields(alert_host, world) -> None:
    ado, sentry = alert_host.ado, alert_host.sentry
    fields = rule_fields(world, priority="1", tags="sentry; checkout")
    rule, _ = sentry.save_alert_rule(world.installation_uuid, "Errors in checkout", fields)
    issue_id = new_issue(sentry, world, "KeyError: 'cart'")
    before = len(creates(ado, world))
    webhook = sentry.fire_issue_alert(rule.id, issue_id)
    assert webhook.status == 202
    [link] = wait_for(lambda: linked(alert_host, world, issue_id), 60, "the alert's work item to be linked")
    work_item = ado.work_item(world.ado_org, int(link["work_item_id"]))["fields"]
    assert work_item["System.Title"] == "KeyError: 'cart'"
    assert work_item["Microsoft.VSTS.Common.Priority"] in (1, "1")
    wait_for(lambda: _hooks_settled(alert_host), 60, "the firing to be applied")
    tags = ado.work_item(world.ado_org, int(link["work_item_id"]))["fields"]["System.Tags"].split("; ")
    assert set(tags) == {"sentry", "checkout"}  # the create's idempotency marker was taken off
    body = work_item.get("Microsoft.VSTS.TCM.ReproSteps") or work_item.get("System.Description")
    assert "Errors in checkout" in body and "Chrome 120" in body
    wait_for(
        lambda: any(e["issueId"] == issue_id for e in sentry.external_issues(world.installation_uuid)),
        30,
        "the work item to be shown on the Sentry issue",
    )
    assert len(creates(ado, world)) == before + 1


def test_ten_concurrent_firings_and_a_resend_with_a_new_request_id_make_one(alert_host, world) -> None:
    ado, sentry = alert_host.ado, alert_host.sentry
    rule, _ = sentry.save_alert_rule(world.installation_uuid, "Payments down", rule_fields(world))
    issue_id = new_issue(sentry, world, "TimeoutError: payments gateway")
    before = len(creates(ado, world))
    sent: list[Any] = []
    threads = [
        threading.Thread(target=lambda: sent.append(sentry.fire_issue_alert(rule.id, issue_id))) for _ in range(10)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert [w.status for w in sent] == [202] * 10
    again = sentry.resend(sent[0])
    assert again.status == 202 and again.headers["Request-ID"] != sent[0].headers["Request-ID"]
    [link] = wait_for(lambda: linked(alert_host, world, issue_id), 60, "the alert's work item to be linked")
    # every firing applied (none left in the queue) before counting
    wait_for(lambda: _hooks_settled(alert_host), 90, "the firings to be applied")
    assert len(creates(ado, world)) == before + 1
    assert linked(alert_host, world, issue_id) == [link]


def _hooks_settled(host: SentryHost) -> bool:
    from shared.store import queues

    return queues.depth(queues.SENTRY_HOOKS_QUEUE_NAME) == 0


def test_a_host_killed_after_the_create_was_sent_still_makes_one_linked_work_item(azurite, tmp_path_factory) -> None:
    """SIGKILL while Azure DevOps is creating the work item: the create lands, the link was never written. The
    host started again finds the recorded firing (the sweep wakes it), finds the work item it made, and links it."""
    env = {"SWEEP_SCHEDULE": "*/2 * * * * *", "SWEEP_GRACE_SECONDS": "3", "QUEUE_RETRY_BASE_SECONDS": "1"}
    tmp = tmp_path_factory.mktemp("alert-crash")
    with FakeAzureDevOps() as ado, FakeSentry() as sentry:
        started = start_sentry_host(tmp, ado, sentry, env)
        port = int(started.host.url.rsplit(":", 1)[1])
        world = sentry_world(started)
        sentry.set_schema(APP, requests.get(f"{started.host.url}/api/sentry/schema", timeout=30).json())
        rule, _ = sentry.save_alert_rule(world.installation_uuid, "Crashy", rule_fields(world))
        issue_id = new_issue(sentry, world, "MemoryError in worker")
        ado.set_delay(r"/_apis/wit/workitems/\$", 3.0, method="POST")  # the create answers late...
        assert sentry.fire_issue_alert(rule.id, issue_id).status == 202
        wait_for(lambda: any("/_apis/wit/workitems/$" in r.path for r in ado.requests), 30, "the create to be sent")
        started.host.process.send_signal(signal.SIGKILL)  # ...and the host dies before it hears the answer
        started.host.process.wait(10)
        wait_for(lambda: len(creates(ado, world)) == 1, 30, "Azure DevOps to finish the create")
        ado.clear_faults()
        restarted = SentryHost(
            start_host(
                tmp, {**ado.settings_env(), **sentry.settings_env(APP), "ADO_HTTP_TIMEOUT": "2", **env}, port=port
            ),
            ado,
            sentry,
            started.app_uuid,
        )
        try:
            [link] = wait_for(lambda: linked(restarted, world, issue_id), 90, "the made work item to be linked")
            made = ado.work_item(world.ado_org, int(link["work_item_id"]))["fields"]
            assert made["System.Title"] == "MemoryError in worker"  # the one the killed host had sent
            assert any(r.method == "POST" and r.path.endswith("/_apis/wit/wiql") for r in ado.requests)  # found
            wait_for(lambda: _hooks_settled(restarted), 90, "the firing to be applied")
            assert len(creates(ado, world)) == 1
        finally:
            stop_host(restarted.host)


CREATE = "/api/sentry/issue-link/create"
EVERY_SYNC = {
    "sync_reverse_assignment": True,
    "sync_status_reverse": True,
    "sync_status_forward": True,
    "sync_forward_assignment": True,
    "sync_comments": True,
}


def test_a_required_custom_field_is_named_when_missing_and_taken_from_extra_fields_or_its_default(
    alert_host, world
) -> None:
    ado, sentry, host = alert_host.ado, alert_host.sentry, alert_host.host
    ado.require_field(world.ado_org, "proj-id", "Task", "Custom.Team", ("Payments", "Web"))
    form = {"project": f"{world.integration_id}|proj-id", "work_item_type": "Task", "title": "Slow checkout"}
    missing = sentry.link_issue(world.installation_uuid, new_issue(sentry, world, "Slow"), CREATE, form, by_user=101)
    assert missing.status_code == 400
    message = missing.json()["message"]
    assert "Custom.Team" in message and "field defaults" in message and "proj-id / Task" in message

    chosen = {
        **form,
        "extra_fields": "Custom.Team: Web",
        "priority": "2",
        "tags": "sentry, perf",
        "parent": f"{world.integration_id}|{world.work_item_id}",
    }
    made = sentry.link_issue(world.installation_uuid, new_issue(sentry, world, "Slow"), CREATE, chosen, by_user=101)
    assert made.status_code == 201, made.text
    item = ado.work_item(world.ado_org, int(made.json()["identifier"]))
    assert item["fields"]["Custom.Team"] == "Web" and item["fields"]["Microsoft.VSTS.Common.Priority"] in (2, "2")
    assert {"sentry", "perf"} <= set(item["fields"]["System.Tags"].split("; "))
    relations = ado.relations(world.ado_org, int(made.json()["identifier"]))
    parent = [r for r in relations if r["rel"] == "System.LinkTypes.Hierarchy-Reverse"]
    assert [r["url"].rsplit("/", 1)[1] for r in parent] == [str(world.work_item_id)]

    defaults = [{"project": "proj-id", "type": "Task", "fields": {"Custom.Team": "Payments"}}]
    put = host.call(
        "PUT",
        f"/api/orgs/{world.org_id}/integrations/{world.integration_id}",
        json={**EVERY_SYNC, "field_defaults": defaults},
    )
    assert put.status_code == 200 and put.json()["field_defaults"] == defaults
    made = sentry.link_issue(world.installation_uuid, new_issue(sentry, world, "Slow"), CREATE, form, by_user=101)
    assert made.status_code == 201, made.text
    assert ado.work_item(world.ado_org, int(made.json()["identifier"]))["fields"]["Custom.Team"] == "Payments"


def test_a_metric_alert_critical_creates_one_work_item_and_resolved_comments_and_resolves_it(alert_host, world) -> None:
    ado, sentry = alert_host.ado, alert_host.sentry
    fields = rule_fields(world, on_resolve="resolve")
    rule, answer = sentry.save_alert_rule(world.installation_uuid, "Checkout error rate", fields)
    assert answer.status_code == 200
    incident = uuid.uuid4().int % 10**6 + 1
    issue_id = f"metric-{incident}"
    before = len(creates(ado, world))
    assert sentry.fire_metric_alert(rule.id, "critical", incident).status == 202
    assert sentry.fire_metric_alert(rule.id, "warning", incident).status == 202  # the same incident: no second
    [link] = wait_for(lambda: linked(alert_host, world, issue_id), 60, "the incident's work item to be linked")
    work_item_id = int(link["work_item_id"])
    assert "Checkout error rate" in ado.work_item(world.ado_org, work_item_id)["fields"]["System.Title"]
    wait_for(lambda: _hooks_settled(alert_host), 90, "the alerts to be applied")
    assert len(creates(ado, world)) == before + 1

    assert sentry.fire_metric_alert(rule.id, "resolved", incident).status == 202
    comments = wait_for(
        lambda: [c for c in ado.comments(world.ado_org, work_item_id) if "resolved" in c["text"]],
        60,
        "the resolved comment on the work item",
    )
    assert "Checkout error rate" in comments[0]["text"]
    state = wait_for(
        lambda: (
            (s := ado.work_item(world.ado_org, work_item_id)["fields"]["System.State"]) in ("Resolved", "Closed") and s
        ),
        60,
        "the work item to be resolved",
    )
    assert state in ("Resolved", "Closed")


def test_the_create_forms_last_project_and_type_are_offered_as_defaults_in_that_sentry_project(
    alert_host, world
) -> None:
    sentry = alert_host.sentry
    project = f"{world.integration_id}|proj-id"
    form = {"project": project, "work_item_type": "Task", "title": "Remember me", "extra_fields": "Custom.Team: Web"}
    alert_host.ado.require_field(world.ado_org, "proj-id", "Task", "Custom.Team", ("Payments", "Web"))
    made = sentry.link_issue(world.installation_uuid, new_issue(sentry, world, "Remember"), CREATE, form, by_user=101)
    assert made.status_code == 201, made.text

    def options(kind: str, **kwargs: Any) -> list[dict[str, Any]]:
        answer = sentry.select_options(world.installation_uuid, f"/api/sentry/options/{kind}", **kwargs)
        assert answer.status_code == 200, answer.text
        return answer.json()

    projects = options("projects", project_slug="backend")
    assert [o["value"] for o in projects if o.get("default")] == [project]
    types = options("workitemtypes", project_slug="backend", dependent_data={"project": project})
    assert [o["value"] for o in types if o.get("default")] == ["Task"]
    # another Sentry project has no last choices: nothing is marked
    assert not [o for o in options("projects", project_slug="frontend") if o.get("default")]
