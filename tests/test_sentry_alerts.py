"""Sentry alert rules (contract §17) on real Azurite, Azure DevOps faked at the HTTP boundary (`responses`): the
`alert-rule-action` element, the rule check Sentry asks for when a rule is saved, and `event_alert.triggered`
making at most one work item per Sentry issue and integration (a second firing, a firing while another creates,
a firing after a crash between the create and the link)."""

from __future__ import annotations

import json
import time
from typing import Any

import azure.functions as func
import pytest
import responses
from hypothesis import given
from hypothesis import settings as settings_
from hypothesis import strategies as st

from functions import sentry_alerts as routes
from functions import sentry_components
from shared.admin import workitems
from shared.deliveries.sentry import InvalidSentryPayload, SentryWebhook, signature
from shared.deliveries.sentry_alerts import alert_event
from shared.deliveries.sentry_messages import event_of
from shared.errors import RetryLater
from shared.model.tracker import Link
from shared.sentryapp import alerts
from shared.store.idempotency import CREATING, IdempotencyRecord, IdempotencyStore
from shared.store.sentry import SentryStore
from shared.store.tracker import TrackerStore
from tests.test_sentry_components import (  # noqa: F401  (the world fixture)
    ORG_URL,
    SECRET,
    World,
    body_of,
    projects_answer,
    work_item,
    world,
)

pytestmark = pytest.mark.usefixtures("azurite")

WIT = ORG_URL + "Fabrikam/_apis/wit/"
REPRO = "Microsoft.VSTS.TCM.ReproSteps"
ISSUE_PAGE = "https://sentry.example/organizations/{slug}/issues/5151/"


def save(world: World, fields: list[dict[str, Any]], *, secret: str = SECRET) -> func.HttpResponse:  # noqa: F811
    raw = json.dumps({"fields": fields, "installationId": world.uuid}).encode()
    headers = {"Sentry-App-Signature": signature(raw, secret), "Content-Type": "application/json"}
    request = func.HttpRequest("POST", "http://localhost/api/sentry/alert-rule-action", headers=headers, body=raw)
    return routes.sentry_alert_rule_action(request)


def catalog(ado: responses.RequestsMock) -> None:
    ado.get(ORG_URL + "_apis/projects", json=projects_answer("Fabrikam", "Fiber"))
    ado.get(WIT + "workitemtypes", json={"value": [{"name": "Bug"}, {"name": "Task"}]})
    ado.get(WIT + "workitemtypecategories", json={"value": []})
    iterations = {"name": "Fabrikam", "children": [{"name": "Sprint 1"}]}
    ado.get(WIT + "classificationnodes/iterations", json=iterations)


def settings(world: World, **extra: str) -> list[dict[str, Any]]:  # noqa: F811
    chosen = {"project": f"{world.integration_id}|Fabrikam", "work_item_type": "Bug", **extra}
    return [{"name": name, "value": value} for name, value in chosen.items()]


def test_the_schema_has_one_alert_rule_action_valid_by_sentrys_rules(registered_functions) -> None:
    response = sentry_components.sentry_schema(func.HttpRequest("GET", "http://localhost/api/sentry/schema", body=b""))
    elements = body_of(response)["elements"]
    [action] = [e for e in elements if e["type"] == "alert-rule-action"]
    assert set(action) == {"type", "title", "settings"} and action["title"]
    settings_ = action["settings"]
    assert settings_["type"] == "alert-rule-settings" and len(settings_["description"]) <= 140
    anonymous = {
        (method.value, "/api/" + f.get_trigger().route)
        for f in registered_functions.values()
        if getattr(f.get_trigger(), "type", None) == "httpTrigger" and f.get_trigger().auth_level.value == "anonymous"
        for method in f.get_trigger().methods
    }
    assert ("POST", settings_["uri"]) in anonymous
    fields = settings_["required_fields"] + settings_["optional_fields"]
    assert set(settings_) <= {"type", "uri", "description", "required_fields", "optional_fields"}
    for field in fields:  # Sentry's schema: select (options or uri), text, textarea; defaults only issue.*
        assert {"type", "name", "label"} <= set(field) and field["type"] in ("select", "text", "textarea")
        assert field.get("default") in (None, "issue.title", "issue.description")
        if field["type"] == "select":
            assert ("uri" in field) != ("options" in field)
            if "uri" in field:
                assert ("GET", field["uri"]) in anonymous
            else:
                assert all(len(o) == 2 and all(isinstance(v, str) for v in o) for o in field["options"])
            assert set(field.get("depends_on", [])) <= {f["name"] for f in fields}
    assert {f["name"] for f in fields} == set(alerts.RULE_FIELDS)
    assert len([e for e in elements if e["type"] == "issue-link"]) == 1


def test_a_rule_naming_what_exists_is_saved_with_a_message(ado, world) -> None:  # noqa: F811
    catalog(ado)
    response = save(world, settings(world, iteration_path="Fabrikam\\Sprint 1", priority="2", tags="sentry; web"))
    assert response.status_code == 200, response.get_body()
    assert body_of(response) == {"message": "Each issue this rule fires for gets one Bug in Fabrikam."}


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        ({"work_item_type": "Epic"}, "has no work item type Epic"),
        ({"iteration_path": "Fabrikam\\Sprint 9"}, "has no iteration path Fabrikam\\Sprint 9"),
        ({"priority": "7"}, "priority must be 1, 2, 3 or 4"),
        ({"extra_fields": "Team Payments"}, "Line 1 of the extra fields"),
        ({"colour": "red"}, "does not know: colour"),
        ({"extra_fields": "System.Title: x"}, "must not set System.Title"),
    ],
)
def test_a_rule_naming_what_does_not_exist_is_refused_with_one_sentence(ado, world, extra, words) -> None:  # noqa: F811
    catalog(ado)
    response = save(world, settings(world, **extra))
    assert 400 <= response.status_code < 500
    body = body_of(response)
    assert words in body["message"] and body["message"] == body["error"]


def test_a_rule_for_a_project_that_does_not_exist_or_a_wrong_signature_is_refused(ado, world) -> None:  # noqa: F811
    catalog(ado)
    fields = settings(world)
    fields[0]["value"] = f"{world.integration_id}|Nope"
    response = save(world, fields)
    assert response.status_code == 404 and "project Nope does not exist" in body_of(response)["message"]
    assert save(world, settings(world), secret="wrong").status_code == 401


def fired(world: World, **settings_: str) -> alerts.AlertEvent:  # noqa: F811
    chosen = {"project": f"{world.integration_id}|Fabrikam", "work_item_type": "Bug", **settings_}
    data = {
        "event": {
            "issue_id": "5151",
            "title": "ZeroDivisionError: division by zero",
            "culprit": "app.pay in checkout",
            "level": "error",
            "environment": "production",
            "tags": [["browser", "Chrome 120"], ["level", "error"]],
            "web_url": ISSUE_PAGE.format(slug=world.slug) + "events/abc123/",
            "issue_url": "https://sentry.example/api/0/issues/5151/",
        },
        "triggered_rule": "Errors in checkout",
        "issue_alert": {
            "id": 7,
            "title": "Errors in checkout",
            "sentry_app_id": 12,
            "settings": [{"name": k, "value": v, "label": v} for k, v in chosen.items()],
        },
    }
    webhook = SentryWebhook("event_alert", "triggered", world.uuid, None, None, None, data)
    return alert_event(webhook)


def apply(world: World, event: alerts.AlertEvent) -> str:  # noqa: F811
    installation = SentryStore().get(world.uuid)
    assert installation is not None
    return alerts.apply_alert_event(event, installation)


def test_a_firing_creates_one_linked_work_item_and_a_second_firing_none(ado, world, monkeypatch) -> None:  # noqa: F811
    announced: list[Link] = []
    monkeypatch.setattr(workitems, "announce_link", lambda org, issue, link: announced.append(link))
    ado.get(WIT + "workitemtypes/Bug", json={"fields": [{"referenceName": REPRO}]})
    ado.post(WIT + "workitems/$Bug", json=work_item(41))
    result = apply(world, fired(world, priority="2", tags="sentry"))
    assert "work item 41 created" in result
    [create] = [c for c in ado.calls if c.request.method == "POST"]
    patch = {op["path"]: op["value"] for op in json.loads(create.request.body)}
    assert patch["/fields/System.Title"] == "ZeroDivisionError: division by zero"
    assert patch["/fields/Microsoft.VSTS.Common.Priority"] == 2
    assert "Errors in checkout" in patch[f"/fields/{REPRO}"] and "Chrome 120" in patch[f"/fields/{REPRO}"]
    assert patch["/relations/-"]["url"] == ISSUE_PAGE.format(slug=world.slug)
    assert "sentry" in patch["/fields/System.Tags"].split("; ")
    issue = TrackerStore().get_issue(world.org_id, "5151")
    assert issue.links == (Link(world.integration_id, 41),) and announced == [Link(world.integration_id, 41)]
    # a resend (a new Request-ID) or the next firing: the issue links a work item of the integration already
    assert "already linked to work item 41" in apply(world, fired(world, priority="3"))
    assert sum(c.request.method == "POST" for c in ado.calls) == 1


def claim(world: World, lease_until: float) -> None:  # noqa: F811
    """What a firing that claimed the create and then crashed (or is still at work) left behind."""
    scope, key = f"{world.org_id}|5151", alerts.IDEMPOTENCY_KEY.format(integration_id=world.integration_id)
    record = IdempotencyRecord(
        scope, workitems._sha(key), workitems._sha(alerts.FINGERPRINT), CREATING, lease_until, lease_until + 86400
    )
    assert IdempotencyStore().claim(record, None) is not None


def test_a_firing_while_another_creates_retries_later_and_creates_nothing(ado, world) -> None:  # noqa: F811
    alerts._tracked(SentryStore().get(world.uuid), fired(world))
    claim(world, time.time() + 60)
    ado.post(WIT + "wiql", json={"workItems": []})
    with pytest.raises(RetryLater):
        apply(world, fired(world))
    assert not [c for c in ado.calls if "workitems/$" in c.request.url]


def test_after_a_crash_between_create_and_link_the_retry_links_the_work_item_it_made(ado, world, monkeypatch) -> None:  # noqa: F811
    monkeypatch.setattr(workitems, "announce_link", lambda org, issue, link: None)
    alerts._tracked(SentryStore().get(world.uuid), fired(world))
    claim(world, time.time() - 1)  # the lease ran out: the creator is gone
    ado.post(WIT + "wiql", json={"workItems": [{"id": 43}]})
    ado.get(ORG_URL + "_apis/wit/workitems/43", json=work_item(43))
    assert "work item 43 created and linked" in apply(world, fired(world))
    assert TrackerStore().get_issue(world.org_id, "5151").links == (Link(world.integration_id, 43),)
    assert not [c for c in ado.calls if "workitems/$" in c.request.url]


def test_a_firing_azure_devops_refuses_creates_nothing_and_says_why(ado, world) -> None:  # noqa: F811
    refusal = {"message": "TF401320: Rule Error for field Team. Error code: Required, HasValues.", "typeKey": "x"}
    ado.get(WIT + "workitemtypes/Bug", json={"fields": [{"referenceName": REPRO}]})
    ado.post(WIT + "workitems/$Bug", status=400, json=refusal)
    assert "Team" in apply(world, fired(world))
    assert TrackerStore().get_issue(world.org_id, "5151").links == ()


odd = st.one_of(
    st.none(), st.booleans(), st.integers(), st.text(max_size=12), st.lists(st.text(max_size=4), max_size=3)
)


@settings_(max_examples=150, deadline=None)
@given(
    st.fixed_dictionaries(
        {},
        optional={
            "event": st.fixed_dictionaries({}, optional={"issue_id": odd, "web_url": odd, "tags": odd, "title": odd})
            | odd,
            "triggered_rule": odd,
            "issue_alert": st.fixed_dictionaries(
                {}, optional={"settings": st.lists(st.dictionaries(st.sampled_from(["name", "value"]), odd)) | odd}
            )
            | odd,
        },
    )
)
def test_odd_alert_webhooks_raise_only_invalid_payload(data: dict[str, Any]) -> None:
    webhook = SentryWebhook("event_alert", "triggered", "u-1", None, None, None, data)
    try:
        event = event_of(webhook)
    except InvalidSentryPayload:
        return
    assert isinstance(event, alerts.AlertEvent) and event.issue_id.isdigit()
