"""Creating and linking work items (contract §12.4) against real Azurite, Azure DevOps faked with `responses`:
the JSON Patch sent, where the description goes, validation before anything is written, field errors named, the
link check of PUT .../links/..., and the Idempotency-Key states (created, creating after a crash, in progress,
refused, expired)."""

from __future__ import annotations

import json
import re
from typing import Any

import azure.functions as func
import pytest
import requests
import responses

from functions.admin_tracker import put_link as put_link_route
from functions.workitems import create_work_item as create_route
from shared.admin import tracker as tracker_admin
from shared.admin import workitems
from shared.admin.workitem_request import markdown_html
from shared.model.tracker import Link
from shared.store import base
from shared.store.idempotency import TABLE as IDEMPOTENCY_TABLE
from shared.store.tracker import TrackerStore
from tests.helpers import FakeClock, make_integration, new_id
from tests.sync_helpers import issue_view, setup_org

pytestmark = pytest.mark.usefixtures("azurite")

ORG_URL = "https://dev.azure.com/fabrikam/"
TYPE_URL = ORG_URL + "proj-1/_apis/wit/workitemtypes/{}"
CREATE_URL = ORG_URL + "proj-1/_apis/wit/workitems/${}"
WIQL_URL = ORG_URL + "proj-1/_apis/wit/wiql"
ISSUE_URL = "https://tracker.example.com/acme/issues/I1"
REPRO = "Microsoft.VSTS.TCM.ReproSteps"


def type_answer(*fields: str) -> dict[str, Any]:
    return {"name": "x", "fields": [{"referenceName": f, "name": f} for f in ("System.Title", *fields)]}


def work_item(work_item_id: int, area: str = "proj-1\\Web") -> dict[str, Any]:
    html = f"{ORG_URL}web/wi.aspx?pcguid=abc&id={work_item_id}"
    return {"id": work_item_id, "rev": 1, "fields": {"System.AreaPath": area}, "_links": {"html": {"href": html}}}


def answer_for(work_item_id: int, integration_id: str) -> dict[str, Any]:
    return {
        "integration_id": integration_id,
        "work_item_id": work_item_id,
        "url": f"{ORG_URL}web/wi.aspx?pcguid=abc&id={work_item_id}",
        "display_name": f"proj-1\\Web#{work_item_id}",
    }


@pytest.fixture
def world(ado: responses.RequestsMock) -> tuple[str, str]:
    integration = make_integration()
    org = f"org-{new_id()[:8]}"
    setup_org(org, integration.id)
    tracker_admin.put_issue(org, "I1", {"title": "Checkout fails", "url": ISSUE_URL})
    workitems._type_cache.clear()
    return integration.id, org


def create(org: str, body: Any, key: str | None = None, issue: str = "I1") -> func.HttpResponse:
    headers = {"Idempotency-Key": key} if key is not None else {}
    request = func.HttpRequest(
        "POST",
        f"http://localhost/api/orgs/{org}/issues/{issue}/workitems",
        route_params={"org_id": org, "issue_id": issue},
        headers=headers,
        body=json.dumps(body).encode(),
    )
    return create_route(request)


def sent_patch(ado: responses.RequestsMock) -> list[dict[str, Any]]:
    [call] = [c for c in ado.calls if c.request.method == "POST" and "/_apis/wit/workitems/$" in c.request.url]
    assert call.request.headers["Content-Type"] == "application/json-patch+json"
    return json.loads(call.request.body)


def creates(ado: responses.RequestsMock) -> int:
    return sum(c.request.method == "POST" and "/_apis/wit/workitems/$" in c.request.url for c in ado.calls)


def error_of(response: func.HttpResponse) -> str:
    return json.loads(response.get_body())["error"]


def idempotency_rows(org: str) -> list[dict]:
    return base.query(IDEMPOTENCY_TABLE, "PartitionKey eq @pk", {"pk": f"{org}|I1"}, "test")


# -- what is sent -------------------------------------------------------------------------------------------------


def test_a_bug_gets_the_description_in_repro_steps_paths_tags_fields_and_a_hyperlink_and_is_linked(ado, world) -> None:
    integration_id, org = world
    ado.get(TYPE_URL.format("Bug"), json=type_answer("System.Description", REPRO))
    ado.post(CREATE_URL.format("Bug"), json=work_item(31))
    body = {
        "integration_id": integration_id,
        "project": "proj-1",
        "type": "Bug",
        "title": "Pay button <b>dead</b>",
        "description": "Steps:\n\n**Click** `Pay` on [the page](https://shop.example.com/?a=1&b=2)\n<script>x</script>",
        "area_path": "proj-1\\Web",
        "iteration_path": "proj-1\\Sprint 1",
        "tags": ["checkout", "Checkout", "p1"],
        "fields": {"Microsoft.VSTS.Common.Priority": 1, "Custom.Flag": True},
    }
    response = create(org, body)
    assert response.status_code == 201, response.get_body()
    assert json.loads(response.get_body()) == answer_for(31, integration_id)
    assert sent_patch(ado) == [
        {"op": "add", "path": "/fields/System.Title", "value": "Pay button <b>dead</b>"},
        {
            "op": "add",
            "path": f"/fields/{REPRO}",
            "value": "<p>Steps:</p><p><strong>Click</strong> <code>Pay</code> on "
            '<a href="https://shop.example.com/?a=1&amp;b=2">the page</a><br>&lt;script&gt;x&lt;/script&gt;</p>',
        },
        {"op": "add", "path": "/fields/System.AreaPath", "value": "proj-1\\Web"},
        {"op": "add", "path": "/fields/System.IterationPath", "value": "proj-1\\Sprint 1"},
        {"op": "add", "path": "/fields/System.Tags", "value": "checkout; p1"},
        {"op": "add", "path": "/fields/Microsoft.VSTS.Common.Priority", "value": 1},
        {"op": "add", "path": "/fields/Custom.Flag", "value": True},
        {
            "op": "add",
            "path": "/relations/-",
            "value": {"rel": "Hyperlink", "url": ISSUE_URL, "attributes": {"comment": "The tracked issue"}},
        },
    ]
    assert issue_view(org, "I1")["links"] == [{"integration_id": integration_id, "work_item_id": 31}]
    assert TrackerStore().linked_issues(Link(integration_id, 31)) == [(org, "I1")]


def test_a_type_without_repro_steps_gets_system_description_and_the_type_is_read_once(ado, world) -> None:
    integration_id, org = world
    ado.get(TYPE_URL.format("Task"), json=type_answer("System.Description"))
    ado.post(CREATE_URL.format("Task"), json=work_item(32))
    body = {"integration_id": integration_id, "project": "proj-1", "type": "Task", "description": "plain"}
    assert create(org, body).status_code == 201
    assert sent_patch(ado)[1] == {"op": "add", "path": "/fields/System.Description", "value": "<p>plain</p>"}
    ado.replace(responses.POST, CREATE_URL.format("Task"), json=work_item(33))
    assert create(org, body).status_code == 201
    assert [c.request.method for c in ado.calls] == ["GET", "POST", "POST"]  # warm: one request per create


def test_without_description_or_url_the_title_defaults_to_the_issues_and_no_type_is_read(ado, world) -> None:
    integration_id, org = world
    tracker_admin.put_issue(org, "I2", {"title": "x" * 300})
    ado.post(CREATE_URL.format("Bug"), json=work_item(34))
    response = create(org, {"integration_id": integration_id, "project": "proj-1", "type": "Bug"}, issue="I2")
    assert response.status_code == 201, response.get_body()
    assert sent_patch(ado) == [{"op": "add", "path": "/fields/System.Title", "value": "x" * 252 + "..."}]
    assert len(ado.calls) == 1


def test_markdown_becomes_escaped_html() -> None:
    text = "# Title <i>\n\nline one\nline two\n\n```\n<b>code</b>\n```\n[x](javascript:alert(1)) **b**"
    assert markdown_html(text) == (
        "<h1>Title &lt;i&gt;</h1><p>line one<br>line two</p><pre><code>&lt;b&gt;code&lt;/b&gt;</code></pre>"
        "<p>[x](javascript:alert(1)) <strong>b</strong></p>"
    )


# -- refused before anything is written ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"colour": "red"}, "Unknown field 'colour'"),
        ({"project": None}, "project is required"),
        ({"project": " "}, "project must be"),
        ({"type": 7}, "type must be"),
        ({"title": "t" * 256}, "at most 255"),
        ({"description": ["x"]}, "description must be"),
        ({"tags": "a; b"}, "tags must be a list"),
        ({"tags": ["a;b"]}, "must not contain ';'"),
        ({"tags": [f"t{i}" for i in range(51)]}, "at most 50 tags"),
        ({"tags": ["t" * 101]}, "at most 100 characters"),
        ({"fields": {"1bad": 1}}, "field reference name"),
        ({"fields": {"System.Title": "x"}}, "use title instead"),
        ({"fields": {"Custom.X": {"a": 1}}}, "must be a string, a number"),
        ({"fields": {"Custom.X": None}}, "must be a string, a number"),
        ({"integration_id": "a/b"}, "integration_id must be"),
    ],
)
def test_bad_bodies_are_400_with_one_sentence_and_nothing_is_sent_or_written(ado, world, change, words) -> None:
    integration_id, org = world
    body = {"integration_id": integration_id, "project": "proj-1", "type": "Bug", **change}
    body = {k: v for k, v in body.items() if v is not None}
    response = create(org, body, key="k-1")
    assert response.status_code == 400
    assert words in error_of(response) and error_of(response).endswith(".")
    assert len(ado.calls) == 0 and idempotency_rows(org) == [] and issue_view(org, "I1")["links"] == []


@pytest.mark.parametrize("key", ["", "x" * 129, "naïve", "tab\there", " padded"])
def test_a_malformed_idempotency_key_is_400(ado, world, key) -> None:
    integration_id, org = world
    response = create(org, {"integration_id": integration_id, "project": "proj-1", "type": "Bug"}, key=key)
    assert response.status_code == 400 and "Idempotency-Key" in error_of(response)
    assert len(ado.calls) == 0


def test_missing_issue_installation_or_integration_are_404_each_saying_which(ado, world) -> None:
    integration_id, org = world
    body = {"integration_id": integration_id, "project": "proj-1", "type": "Bug"}
    assert "No issue" in error_of(create(org, body, issue="NOPE"))
    other = make_integration()
    refused = create(org, {**body, "integration_id": other.id})
    assert refused.status_code == 404 and "has not installed that integration" in error_of(refused)
    setup_org(org, other.id)
    from shared.admin import integrations as integration_admin

    integration_admin.disable_integration(other.id)
    from shared.store import integrations as integrations_module

    integrations_module._recent.forget(other.id)
    disabled = create(org, {**body, "integration_id": other.id})
    assert disabled.status_code == 404 and "No active integration" in error_of(disabled)
    assert len(ado.calls) == 0


# -- Azure DevOps' answers ------------------------------------------------------------------------------------------


def rule_error(reference: str, label: str, flags: str) -> dict[str, Any]:
    message = f"TF401320: Rule Error for field {label}. Error code: {flags}."
    details = {"fieldReferenceName": reference, "fieldStatusFlags": flags.lower(), "errorMessage": message}
    return {
        "message": message,
        "typeKey": "RuleValidationException",
        "customProperties": {"RuleValidationErrors": [details]},
    }


@pytest.mark.parametrize(
    ("answer", "words"),
    [
        (rule_error("System.Title", "Title", "Required, InvalidEmpty"), "field System.Title needs a value"),
        (rule_error("Custom.Team", "Team", "HasValues, LimitedToValues"), "field Custom.Team is not one of the values"),
        ({"message": "TF51535: Cannot find field Custom.Nope.", "typeKey": "X"}, "no field Custom.Nope"),
        (
            {"message": "TF401347: Invalid tree name given for work item -1, field 'System.AreaPath'."},
            "field System.AreaPath names an area or iteration that does not exist",
        ),
        ({"message": "Work item type Bug is disabled in project proj-1."}, "refused the work item: Work item type"),
    ],
)
def test_field_errors_are_400_naming_the_field_and_release_the_key(ado, world, answer, words) -> None:
    integration_id, org = world
    ado.post(CREATE_URL.format("Bug"), status=400, json=answer)
    body = {"integration_id": integration_id, "project": "proj-1", "type": "Bug"}
    response = create(org, body, key="k-field")
    assert response.status_code == 400 and words in error_of(response), error_of(response)
    assert issue_view(org, "I1")["links"] == [] and idempotency_rows(org) == []
    # Refused means nothing was created: the same key may be sent again once the cause is fixed.
    ado.replace(responses.POST, CREATE_URL.format("Bug"), json=work_item(40))
    assert create(org, body, key="k-field").status_code == 201


@pytest.mark.parametrize(
    ("status", "headers", "expected"),
    [(503, {"Retry-After": "0"}, 503), (401, {}, 502), (404, {}, 404), (500, {}, 502)],
)
def test_other_failures_map_as_lookups_do(ado, world, status, headers, expected) -> None:
    integration_id, org = world
    ado.post(CREATE_URL.format("Bug"), status=status, headers=headers, json={"message": "nope"})
    response = create(org, {"integration_id": integration_id, "project": "proj-1", "type": "Bug"})
    assert response.status_code == expected, response.get_body()
    assert issue_view(org, "I1")["links"] == []


# -- idempotency ------------------------------------------------------------------------------------------------------


def test_the_same_key_twice_creates_one_work_item_and_answers_the_same(ado, world) -> None:
    integration_id, org = world
    ado.post(CREATE_URL.format("Bug"), json=work_item(50))
    body = {"integration_id": integration_id, "project": "proj-1", "type": "Bug", "tags": ["a"]}
    first, second = create(org, body, key="key-1"), create(org, body, key="key-1")
    assert (first.status_code, second.status_code) == (201, 201)
    assert json.loads(first.get_body()) == json.loads(second.get_body()) == answer_for(50, integration_id)
    assert creates(ado) == 1 and len(ado.calls) == 1  # the repeat asked Azure DevOps nothing
    tags = next(op["value"] for op in sent_patch(ado) if op["path"] == "/fields/System.Tags")
    assert re.fullmatch(r"a; idempotency-[0-9a-f]{20}", tags)
    changed = create(org, {**body, "tags": ["b"]}, key="key-1")
    assert changed.status_code == 422 and "different request" in error_of(changed)
    assert creates(ado) == 1


def test_a_crash_between_azure_devops_and_our_write_is_completed_by_the_retry(ado, world) -> None:
    """The write of the `created` record fails (storage answers 503): the work item exists but nothing says so.
    The retry finds it by its tag, links it and answers it; Azure DevOps created one work item in all."""
    integration_id, org = world
    ado.post(CREATE_URL.format("Bug"), json=work_item(60))
    records = re.compile(rf"http://127\.0\.0\.1:\d+/[^/]+/\w*{IDEMPOTENCY_TABLE}\(.*")
    ado.add(responses.PUT, records, status=503)
    body = {"integration_id": integration_id, "project": "proj-1", "type": "Bug"}
    assert create(org, body, key="crash-1").status_code == 503
    [row] = idempotency_rows(org)
    assert row["State"] == "creating"
    marker = next(op["value"] for op in sent_patch(ado) if op["path"] == "/fields/System.Tags")
    ado.reset()
    ado.add_passthru(re.compile(r"http://127\.0\.0\.1:\d+/"))
    ado.post(WIQL_URL, json={"workItems": [{"id": 60, "url": "x"}]})
    ado.get(ORG_URL + "_apis/wit/workitems/60", json=work_item(60))
    ado.post(CREATE_URL.format("Bug"), json=work_item(61))  # would be a second work item
    retried = create(org, body, key="crash-1")
    assert retried.status_code == 201 and json.loads(retried.get_body()) == answer_for(60, integration_id)
    assert creates(ado) == 0
    [wiql] = [c for c in ado.calls if c.request.url.startswith(WIQL_URL)]
    assert f"[System.Tags] CONTAINS '{marker}'" in json.loads(wiql.request.body)["query"]
    assert issue_view(org, "I1")["links"] == [{"integration_id": integration_id, "work_item_id": 60}]
    assert [r["State"] for r in idempotency_rows(org)] == ["created"]


def test_a_request_in_progress_makes_the_second_wait_then_the_lease_ends_and_it_takes_over(ado, world) -> None:
    integration_id, org = world
    clock = FakeClock()
    body = {"integration_id": integration_id, "project": "proj-1", "type": "Bug"}
    seen: list[str] = []

    def first_create(request: requests.PreparedRequest) -> tuple[int, dict, str]:
        # While the first request waits for Azure DevOps, the same request comes in again.
        with pytest.raises(workitems.InProgress) as waiting:
            workitems.create_work_item(org, "I1", body, "key-2", clock=clock)
        seen.append(f"retry after {waiting.value.retry_after:g}")
        raise requests.Timeout("no answer")

    ado.add_callback(responses.POST, CREATE_URL.format("Bug"), callback=first_create)
    ado.post(WIQL_URL, json={"workItems": []})
    with pytest.raises(Exception) as timed_out:
        workitems.create_work_item(org, "I1", body, "key-2", clock=clock)
    assert type(timed_out.value).__name__ == "AdoTimeout"
    assert seen and seen[0].startswith("retry after")
    # A timeout may have created the work item: the claim is kept, and until its lease ends a retry waits.
    with pytest.raises(workitems.InProgress):
        workitems.create_work_item(org, "I1", body, "key-2", clock=clock)
    clock.advance(60)
    ado.replace(responses.POST, CREATE_URL.format("Bug"), json=work_item(70))
    assert workitems.create_work_item(org, "I1", body, "key-2", clock=clock) == answer_for(70, integration_id)
    assert creates(ado) == 2  # the timed-out one and the takeover; the fake search found nothing in between


def test_a_key_expires_after_a_day(ado, world) -> None:
    integration_id, org = world
    clock = FakeClock()
    body = {"integration_id": integration_id, "project": "proj-1", "type": "Bug"}
    ado.post(CREATE_URL.format("Bug"), json=work_item(80))
    workitems.create_work_item(org, "I1", body, "key-3", clock=clock)
    clock.advance(23 * 3600)
    workitems.create_work_item(org, "I1", body, "key-3", clock=clock)
    assert creates(ado) == 1
    clock.advance(2 * 3600)
    ado.post(WIQL_URL, json={"workItems": []})
    workitems.create_work_item(org, "I1", body, "key-3", clock=clock)
    assert creates(ado) == 2 and len(idempotency_rows(org)) == 1  # the expired record was replaced, not added


def test_without_a_key_each_request_creates_a_work_item(ado, world) -> None:
    integration_id, org = world
    ado.post(CREATE_URL.format("Bug"), json=work_item(90))
    ado.post(CREATE_URL.format("Bug"), json=work_item(91))
    body = {"integration_id": integration_id, "project": "proj-1", "type": "Bug"}
    assert create(org, body).status_code == create(org, body).status_code == 201
    assert creates(ado) == 2 and idempotency_rows(org) == []
    assert "idempotency-" not in json.dumps(sent_patches(ado))


def sent_patches(ado: responses.RequestsMock) -> list[Any]:
    return [json.loads(c.request.body) for c in ado.calls if "/_apis/wit/workitems/$" in c.request.url]


# -- PUT .../links/... checks the work item ----------------------------------------------------------------------------


def link_route(org: str, integration_id: str, work_item_id: int) -> func.HttpResponse:
    route = {"org_id": org, "issue_id": "I1", "integration_id": integration_id, "work_item_id": str(work_item_id)}
    return put_link_route(func.HttpRequest("PUT", "http://localhost/api/orgs/x", route_params=route, body=b""))


def test_linking_a_missing_work_item_is_404_and_writes_nothing(ado, world) -> None:
    integration_id, org = world
    missing = "TF401232: Work item 404 does not exist, or you do not have permissions to read it."
    ado.get(ORG_URL + "_apis/wit/workitems/404", status=404, json={"message": missing})
    response = link_route(org, integration_id, 404)
    assert response.status_code == 404
    assert error_of(response) == "Work item 404 does not exist or cannot be read."
    assert issue_view(org, "I1")["links"] == [] and TrackerStore().linked_issues(Link(integration_id, 404)) == []
    ado.get(ORG_URL + "_apis/wit/workitems/5", json=work_item(5))
    assert link_route(org, integration_id, 5).status_code == 200
    assert link_route(org, integration_id, 5).status_code == 200  # linked already: not read again
    assert sum("workitems/5" in c.request.url for c in ado.calls) == 1


def test_linking_when_azure_devops_is_unavailable_is_503_and_writes_nothing(ado, world) -> None:
    integration_id, org = world
    ado.get(ORG_URL + "_apis/wit/workitems/6", status=503, headers={"Retry-After": "0"}, json={"message": "down"})
    response = link_route(org, integration_id, 6)
    assert response.status_code == 503 and "Retry-After" in response.headers
    assert issue_view(org, "I1")["links"] == []


def test_of_two_claims_of_one_key_only_one_wins_first_or_on_takeover() -> None:
    """Two requests that both read "no record" (or the same stale one) race on the conditional write."""
    from shared.store.idempotency import CREATING, IdempotencyRecord, IdempotencyStore

    store, scope = IdempotencyStore(), f"org-{new_id()[:8]}|I1"
    fresh = IdempotencyRecord(scope, "a" * 64, "h", CREATING, lease_until=10.0, expires_at=100.0)
    won = store.claim(fresh, None)
    assert won is not None and store.claim(fresh, None) is None
    stale, etag = store.get(scope, "a" * 64, now=50.0)
    assert stale is not None and etag == won.etag
    assert store.claim(fresh, etag) is not None and store.claim(fresh, etag) is None  # the second lost the ETag
    assert store.get(scope, "a" * 64, now=200.0)[0] is None  # expired: read as absent


def test_the_link_cap_refuses_a_new_create_first_but_not_the_repeat_of_one_that_filled_it(ado, world) -> None:
    from dataclasses import replace

    from shared.model.tracker import MAX_LINKS

    integration_id, org = world
    others = tuple(Link(integration_id, n) for n in range(1000, 1000 + MAX_LINKS - 1))
    TrackerStore().update_issue(org, "I1", lambda issue: replace(issue, links=others))
    ado.post(CREATE_URL.format("Bug"), json=work_item(99))
    body = {"integration_id": integration_id, "project": "proj-1", "type": "Bug"}
    filled = create(org, body, key="last-one")
    assert filled.status_code == 201 and len(issue_view(org, "I1")["links"]) == MAX_LINKS
    assert create(org, body, key="last-one").get_body() == filled.get_body()
    refused = create(org, body, key="one-more")
    assert refused.status_code == 409 and str(MAX_LINKS) in error_of(refused)
    assert creates(ado) == 1
