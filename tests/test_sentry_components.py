"""The Sentry App's UI components (functions/sentry_components.py) called as the Functions host calls them, on real
Azurite, with Azure DevOps and Sentry faked at the HTTP boundary (`responses`): the schema, the select options,
the create and link forms, and what a wrong signature, an unknown installation or a failing Azure DevOps gets."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from typing import Any

import azure.functions as func
import pytest
import requests
import responses

from functions import sentry_components as routes
from shared.admin import tracker as tracker_admin
from shared.admin import workitems
from shared.deliveries.sentry import signature
from shared.model.sentry import DISABLED, INTERNAL, SentryInstallation
from shared.model.tracker import Link
from shared.sentryapp import components
from shared.store.integrations import IntegrationStore
from shared.store.sentry import SentryStore
from shared.store.tracker import TrackerStore
from tests.helpers import count_storage_requests, make_integration, new_id
from tests.sync_helpers import setup_org

pytestmark = pytest.mark.usefixtures("azurite")

SECRET = "ui-client-secret-0123456789abcdef"
SENTRY = "https://sentry.example"
ORG_URL = "https://dev.azure.com/fabrikam/"
OTHER_URL = "https://dev.azure.com/contoso/"
SEARCH_URL = "https://almsearch.dev.azure.com/fabrikam/_apis/search/workitemsearchresults"
REPRO = "Microsoft.VSTS.TCM.ReproSteps"


@dataclass
class World:
    uuid: str
    slug: str
    org_id: str
    integration_id: str

    @property
    def web_url(self) -> str:
        return f"{SENTRY}/organizations/{self.slug}/issues/4242/"


@pytest.fixture
def world(ado: responses.RequestsMock, env) -> World:
    env.setenv("SENTRY_CLIENT_SECRET", SECRET)
    env.setenv("SENTRY_URL", SENTRY)
    integration = make_integration()
    slug, uuid = f"s{new_id()[:8]}", new_id()
    SentryStore().put(SentryInstallation(uuid, slug, kind=INTERNAL, token="static-token"))
    setup_org(f"sentry-{slug}", integration.id)
    workitems._type_cache.clear()
    return World(uuid, slug, f"sentry-{slug}", integration.id)


def post(handler: Any, body: Any, *, secret: str = SECRET, request_id: str | None = None) -> func.HttpResponse:
    raw = json.dumps(body).encode()
    headers = {"Sentry-App-Signature": signature(raw, secret), "Content-Type": "application/json"}
    if request_id is not None:
        headers["Request-ID"] = request_id
    return handler(func.HttpRequest("POST", "http://localhost/api/sentry/x", headers=headers, body=raw))


def get(handler: Any, params: dict[str, str], *, sign: bool = True) -> func.HttpResponse:
    headers = {"Sentry-App-Signature": signature(b"", SECRET)} if sign else {}
    return handler(func.HttpRequest("GET", "http://localhost/api/sentry/x", headers=headers, params=params, body=b""))


def body_of(response: func.HttpResponse) -> Any:
    return json.loads(response.get_body())


def form(world: World, fields: dict[str, Any], issue_id: int = 4242) -> dict[str, Any]:
    return {
        "fields": fields,
        "installationId": world.uuid,
        "issueId": issue_id,
        "webUrl": world.web_url,
        "project": {"slug": "backend", "id": 2},
        "actor": {"type": "user", "id": 101, "name": "Dana Lee"},
    }


def projects_answer(*names: str) -> dict[str, Any]:
    return {"count": len(names), "value": [{"id": new_id(), "name": n, "state": "wellFormed"} for n in names]}


def work_item(work_item_id: int, area: str = "Fabrikam\\Web", title: str = "Crash on save") -> dict[str, Any]:
    return {
        "id": work_item_id,
        "rev": 1,
        "fields": {"System.AreaPath": area, "System.Title": title},
        "_links": {"html": {"href": f"{ORG_URL}Fabrikam/_workitems/edit/{work_item_id}"}},
    }


def ado_calls(ado: responses.RequestsMock) -> list[str]:
    """The Azure DevOps requests made (the mock also sees Sentry's and may see Azurite's)."""
    return [
        f"{c.request.method} {c.request.url.split('?')[0]}"
        for c in ado.calls
        if c.request.url.startswith("https://") and SENTRY not in c.request.url
    ]


# -- the schema --------------------------------------------------------------------------------------------------


def test_the_schema_is_an_issue_link_whose_uris_are_this_apps_anonymous_routes(registered_functions) -> None:
    response = routes.sentry_schema(func.HttpRequest("GET", "http://localhost/api/sentry/schema", body=b""))
    assert response.status_code == 200
    elements = body_of(response)["elements"]
    [element] = [e for e in elements if e["type"] == "issue-link"]
    # Sentry's schema check (src/sentry/sentry_apps/api/parsers/schema.py): one element of each type; a
    # stacktrace-link has exactly `type` and a `uri` starting with "/".
    types = [e["type"] for e in elements]
    assert len(types) == len(set(types)) and set(types) <= {"issue-link", "alert-rule-action", "stacktrace-link"}
    anonymous = {
        (method.value, "/api/" + f.get_trigger().route)
        for f in registered_functions.values()
        if getattr(f.get_trigger(), "type", None) == "httpTrigger" and f.get_trigger().auth_level.value == "anonymous"
        for method in f.get_trigger().methods
    }
    for action in ("create", "link"):
        part = element[action]
        assert ("POST", part["uri"]) in anonymous
        fields = part["required_fields"] + part.get("optional_fields", [])
        for field in fields:  # what Sentry's schema validator requires of each field
            assert {"type", "name", "label"} <= set(field) and field["type"] in ("select", "text", "textarea")
            assert field.get("default") in (None, "issue.title", "issue.description")
            if field["type"] == "select" and "uri" in field:
                assert ("GET", field["uri"]) in anonymous and "options" not in field
            elif field["type"] == "select":  # a fixed list: [value, label] pairs
                assert all(len(option) == 2 for option in field["options"])
                assert set(field.get("depends_on", [])) <= {f["name"] for f in fields}
    create_fields = {f["name"]: f for f in element["create"]["required_fields"]}
    assert create_fields["work_item_type"]["depends_on"] == ["project"]
    assert create_fields["title"]["default"] == "issue.title"
    assert element["link"]["required_fields"][0]["skip_load_on_open"] is True
    [link] = [e for e in elements if e["type"] == "stacktrace-link"]
    assert set(link) == {"type", "uri"} and ("GET", link["uri"]) in anonymous
    assert SECRET not in response.get_body().decode()


# -- options -----------------------------------------------------------------------------------------------------


def test_project_options_say_which_integration_are_filtered_by_the_query_and_cached(ado, world) -> None:
    ado.get(ORG_URL + "_apis/projects", json=projects_answer("Fabrikam", "Fiber", "Website"))
    response = get(routes.sentry_options_projects, {"installationId": world.uuid})
    assert response.status_code == 200
    assert body_of(response) == [
        {"label": name, "value": f"{world.integration_id}|{name}"} for name in ("Fabrikam", "Fiber", "Website")
    ]
    response = get(routes.sentry_options_projects, {"installationId": world.uuid, "query": "F"})
    assert [o["label"] for o in body_of(response)] == ["Fabrikam", "Fiber"]
    assert ado_calls(ado) == [f"GET {ORG_URL}_apis/projects"]  # the second list came from the cache


def test_with_two_integrations_the_labels_name_the_organization_and_a_disabled_one_is_left_out(ado, world) -> None:
    other = make_integration(domain_name=OTHER_URL, name="contoso")
    setup_org(world.org_id, other.id)
    gone = make_integration(domain_name="https://dev.azure.com/gone/", name="gone")
    setup_org(world.org_id, gone.id)
    IntegrationStore().update(gone.id, lambda i: replace(i, status="disabled"))
    ado.get(ORG_URL + "_apis/projects", json=projects_answer("Fabrikam"))
    ado.get(OTHER_URL + "_apis/projects", json=projects_answer("Web"))
    options = body_of(get(routes.sentry_options_projects, {"installationId": world.uuid}))
    assert sorted(options, key=lambda o: o["label"]) == [
        {"label": "contoso / Web", "value": f"{other.id}|Web"},
        {"label": "fabrikam / Fabrikam", "value": f"{world.integration_id}|Fabrikam"},
    ]


def test_at_most_100_options_are_answered(ado, world) -> None:
    page = projects_answer(*(f"P{n:03d}" for n in range(100)))
    ado.get(ORG_URL + "_apis/projects", json=page)  # responses answers these in turn: two pages
    ado.get(ORG_URL + "_apis/projects", json=projects_answer(*(f"Q{n:03d}" for n in range(20))))
    options = body_of(get(routes.sentry_options_projects, {"installationId": world.uuid}))
    assert len(options) == components.MAX_OPTIONS


def test_work_item_types_come_from_the_chosen_project(ado, world) -> None:
    ado.get(ORG_URL + "Fabrikam/_apis/wit/workitemtypes", json={"value": [{"name": "Bug"}, {"name": "Task"}]})
    ado.get(ORG_URL + "Fabrikam/_apis/wit/workitemtypecategories", json={"value": []})
    params = {
        "installationId": world.uuid,
        "dependentData": json.dumps({"project": f"{world.integration_id}|Fabrikam"}),
    }
    response = get(routes.sentry_options_workitemtypes, params)
    assert (response.status_code, body_of(response)) == (
        200,
        [{"label": "Bug", "value": "Bug"}, {"label": "Task", "value": "Task"}],
    )
    assert body_of(get(routes.sentry_options_workitemtypes, {**params, "query": "ta"})) == [
        {"label": "Task", "value": "Task"}
    ]


def test_work_item_types_need_a_project_of_a_connected_integration(ado, world) -> None:
    response = get(routes.sentry_options_workitemtypes, {"installationId": world.uuid})
    assert (response.status_code, body_of(response)["error"]) == (400, "Choose the Azure DevOps project first.")
    other = json.dumps({"project": f"{new_id()}|Fabrikam"})
    response = get(routes.sentry_options_workitemtypes, {"installationId": world.uuid, "dependentData": other})
    assert (response.status_code, body_of(response)["error"]) == (404, components.NOT_CONNECTED)
    assert ado_calls(ado) == []


def test_a_number_finds_that_work_item_first_then_the_search(ado, world) -> None:
    ado.get(ORG_URL + "_apis/wit/workitems/17", json=work_item(17, title="Checkout fails"))
    results = [{"fields": {"system.id": "170", "system.title": "Other"}}, {"fields": {"system.id": "17"}}]
    ado.post(SEARCH_URL, json={"count": 2, "results": results})
    response = get(routes.sentry_options_workitems, {"installationId": world.uuid, "query": "17"})
    assert body_of(response) == [
        {"label": "(17) Checkout fails", "value": f"{world.integration_id}|17"},
        {"label": "(170) Other", "value": f"{world.integration_id}|170"},
    ]


def test_no_query_asks_nothing_and_a_text_query_without_search_is_404(ado, world) -> None:
    assert body_of(get(routes.sentry_options_workitems, {"installationId": world.uuid})) == []
    assert ado_calls(ado) == []
    ado.post(SEARCH_URL, status=404, json={"message": "no search"})
    response = get(routes.sentry_options_workitems, {"installationId": world.uuid, "query": "crash"})
    assert response.status_code == 404
    assert body_of(response) == {"error": components.NO_SEARCH, "message": components.NO_SEARCH}


# -- refusals before anything is read ----------------------------------------------------------------------------


ALL_ROUTES = [
    (routes.sentry_issue_link_create, "POST"),
    (routes.sentry_issue_link_link, "POST"),
    (routes.sentry_options_projects, "GET"),
    (routes.sentry_options_workitemtypes, "GET"),
    (routes.sentry_options_workitems, "GET"),
]


@pytest.mark.parametrize(("handler", "method"), ALL_ROUTES)
def test_a_wrong_or_missing_signature_is_401_and_nothing_is_read(ado, world, handler, method) -> None:
    with count_storage_requests() as storage:
        if method == "POST":
            responses_ = [post(handler, form(world, {}), secret="not-the-secret")]
        else:
            params = {"installationId": world.uuid, "query": "1"}
            responses_ = [get(handler, params, sign=False), handler(_signed_get_with_body_signature(params))]
    for response in responses_:
        assert response.status_code == 401
        assert "Sentry-App-Signature" in body_of(response)["error"]
    assert storage == [] and ado_calls(ado) == []


def _signed_get_with_body_signature(params: dict[str, str]) -> func.HttpRequest:
    """A GET signed over its query string: Sentry signs the empty string, so this is not Sentry."""
    raw = json.dumps(params).encode()
    headers = {"Sentry-App-Signature": signature(raw, SECRET)}
    return func.HttpRequest("GET", "http://localhost/api/sentry/x", headers=headers, params=params, body=b"")


@pytest.mark.parametrize("status", ["unknown", DISABLED])
def test_an_unknown_or_uninstalled_installation_is_404(ado, world, status) -> None:
    uuid = new_id() if status == "unknown" else world.uuid
    if status == DISABLED:
        SentryStore().update(uuid, lambda i: replace(i, status=DISABLED))
    response = get(routes.sentry_options_projects, {"installationId": uuid})
    assert (response.status_code, body_of(response)["error"]) == (404, components.NO_INSTALLATION)
    response = post(
        routes.sentry_issue_link_create,
        {**form(world, {"project": "P", "work_item_type": "Bug", "title": "T"}), "installationId": uuid},
    )
    assert response.status_code == 404
    assert ado_calls(ado) == [] and TrackerStore().get_issue(world.org_id, "4242") is None


def test_an_organization_without_azure_devops_is_told_to_connect_one(ado, env) -> None:
    env.setenv("SENTRY_CLIENT_SECRET", SECRET)
    uuid, slug = new_id(), f"s{new_id()[:8]}"
    SentryStore().put(SentryInstallation(uuid, slug, kind=INTERNAL, token="t"))
    response = get(routes.sentry_options_projects, {"installationId": uuid})
    assert (response.status_code, body_of(response)["error"]) == (404, components.NO_INTEGRATION)


# -- create ------------------------------------------------------------------------------------------------------


def test_create_makes_the_issue_tracked_creates_the_work_item_and_answers_sentrys_shape(ado, world) -> None:
    ado.get(ORG_URL + "Fabrikam/_apis/wit/workitemtypes/Bug", json={"fields": [{"referenceName": REPRO}]})
    ado.post(ORG_URL + "Fabrikam/_apis/wit/workitems/$Bug", json=work_item(31))
    fields = {
        "project": f"{world.integration_id}|Fabrikam",
        "work_item_type": "Bug",
        "title": "ZeroDivisionError: " + "x" * 300,
        "description": "Raised in **checkout**",
        "area_path": "Fabrikam\\Web",
    }
    response = post(routes.sentry_issue_link_create, form(world, fields), request_id="req-1")
    assert response.status_code == 201, response.get_body()
    answer = {"webUrl": f"{ORG_URL}Fabrikam/_workitems/edit/31", "project": "Fabrikam\\Web", "identifier": "31"}
    assert body_of(response) == answer
    [create_call] = [c for c in ado.calls if c.request.method == "POST"]
    patch = {op["path"]: op["value"] for op in json.loads(create_call.request.body)}
    assert patch["/fields/System.Title"] == "ZeroDivisionError: " + "x" * 233 + "..."  # cut to 255
    assert patch[f"/fields/{REPRO}"] == "<p>Raised in <strong>checkout</strong></p>"
    assert patch["/fields/System.AreaPath"] == "Fabrikam\\Web"
    assert patch["/relations/-"]["url"] == world.web_url
    issue = TrackerStore().get_issue(world.org_id, "4242")
    assert issue.title.startswith("ZeroDivisionError: xxx") and issue.url == world.web_url
    assert issue.links == (Link(world.integration_id, 31),)
    # Sentry sends the same Request-ID again: the same answer, no second work item
    again = post(routes.sentry_issue_link_create, form(world, fields), request_id="req-1")
    assert (again.status_code, body_of(again)) == (201, answer)
    assert sum(c.request.method == "POST" for c in ado.calls) == 1


def test_create_keeps_a_tracked_issues_title_and_takes_a_bare_project_with_one_integration(ado, world) -> None:
    tracker_admin.put_issue(world.org_id, "4242", {"title": "Named by a person"})
    ado.post(ORG_URL + "Fabrikam/_apis/wit/workitems/$Task", json=work_item(32, area=""))
    fields = {"project": "Fabrikam", "work_item_type": "Task", "title": "From Sentry"}
    response = post(routes.sentry_issue_link_create, form(world, fields))
    assert body_of(response) == {
        "webUrl": f"{ORG_URL}Fabrikam/_workitems/edit/32",
        "project": "Fabrikam",
        "identifier": "32",
    }
    issue = TrackerStore().get_issue(world.org_id, "4242")
    assert (issue.title, issue.url) == ("Named by a person", world.web_url)  # the url was missing: now set


def test_a_field_azure_devops_refuses_is_400_naming_it_with_a_message_for_sentry(ado, world) -> None:
    refusal = {"message": "TF401320: Rule Error for field Area Path. Error code: InvalidTreeName.", "typeKey": "x"}
    ado.post(ORG_URL + "Fabrikam/_apis/wit/workitems/$Bug", status=400, json=refusal)
    fields = {"project": f"{world.integration_id}|Fabrikam", "work_item_type": "Bug", "title": "T", "area_path": "Nope"}
    response = post(routes.sentry_issue_link_create, form(world, fields))
    assert response.status_code == 400
    assert body_of(response)["message"] == body_of(response)["error"] and "Area Path" in body_of(response)["error"]
    assert TrackerStore().get_issue(world.org_id, "4242").links == ()


def test_azure_devops_throttling_is_503_with_retry_after(ado, world) -> None:
    ado.post(ORG_URL + "Fabrikam/_apis/wit/workitems/$Bug", status=503, headers={"Retry-After": "7"})
    fields = {"project": f"{world.integration_id}|Fabrikam", "work_item_type": "Bug", "title": "T"}
    response = post(routes.sentry_issue_link_create, form(world, fields))
    assert (response.status_code, response.headers.get("Retry-After")) == (503, "7")


# -- link --------------------------------------------------------------------------------------------------------


def test_link_reads_the_work_item_once_takes_the_title_from_sentry_and_answers_sentrys_shape(ado, world) -> None:
    ado.get(ORG_URL + "_apis/wit/workitems/77", json=work_item(77))
    ado.get(f"{SENTRY}/api/0/organizations/{world.slug}/issues/4242/", json={"id": "4242", "title": "KeyError: 'id'"})
    response = post(routes.sentry_issue_link_link, form(world, {"work_item": f"{world.integration_id}|77"}))
    assert (response.status_code, body_of(response)) == (
        200,
        {"webUrl": f"{ORG_URL}_workitems/edit/77", "project": "Fabrikam\\Web", "identifier": "77"},
    )
    issue = TrackerStore().get_issue(world.org_id, "4242")
    assert (issue.title, issue.url, issue.links) == ("KeyError: 'id'", world.web_url, (Link(world.integration_id, 77),))
    assert ado_calls(ado) == [f"GET {ORG_URL}_apis/wit/workitems/77"]
    assert [c.request.headers["Authorization"] for c in ado.calls if SENTRY in c.request.url] == ["Bearer static-token"]


def test_link_of_a_tracked_issue_asks_sentry_nothing_and_a_sentry_failure_only_costs_the_title(ado, world) -> None:
    ado.get(ORG_URL + "_apis/wit/workitems/77", json=work_item(77))
    ado.get(f"{SENTRY}/api/0/organizations/{world.slug}/issues/4243/", status=500)
    response = post(routes.sentry_issue_link_link, form(world, {"work_item": "77"}, issue_id=4243))
    assert response.status_code == 200
    assert TrackerStore().get_issue(world.org_id, "4243").title == "Sentry issue 4243"
    tracker_admin.put_issue(world.org_id, "4244", {"title": "Tracked", "url": world.web_url})
    before = len(ado.calls)
    assert post(routes.sentry_issue_link_link, form(world, {"work_item": "77"}, issue_id=4244)).status_code == 200
    assert not any(SENTRY in c.request.url for c in ado.calls[before:])


def test_linking_a_missing_work_item_is_404_and_changes_nothing(ado, world) -> None:
    ado.get(ORG_URL + "_apis/wit/workitems/99", status=404, json={"message": "TF401232: Work item 99 does not exist"})
    response = post(routes.sentry_issue_link_link, form(world, {"work_item": "99"}))
    assert (response.status_code, body_of(response)["error"]) == (404, "Work item 99 does not exist or cannot be read.")
    assert TrackerStore().get_issue(world.org_id, "4242") is None


def test_a_link_value_that_is_not_a_work_item_id_is_400(ado, world) -> None:
    response = post(routes.sentry_issue_link_link, form(world, {"work_item": f"{world.integration_id}|abc"}))
    assert response.status_code == 400 and "positive whole number" in body_of(response)["error"]
    assert ado_calls(ado) == []


def test_every_answer_is_json_never_a_500(ado, world) -> None:
    """A catch-all for the mapping: storage or Azure DevOps failing in odd ways still gets a JSON 4xx/5xx."""
    ado.get(re.compile(re.escape(ORG_URL) + r".*"), body=requests.exceptions.ConnectionError("refused"))
    ado.post(re.compile(re.escape(ORG_URL) + r".*"), body=requests.exceptions.ConnectionError("refused"))
    fields = {"project": f"{world.integration_id}|Fabrikam", "work_item_type": "Bug", "title": "T"}
    for response in (
        post(routes.sentry_issue_link_create, form(world, fields)),
        post(routes.sentry_issue_link_link, form(world, {"work_item": "5"})),
        get(routes.sentry_options_projects, {"installationId": world.uuid}),
    ):
        assert response.status_code in (502, 503, 504) and body_of(response)["error"]


def test_a_form_the_create_would_refuse_is_400_before_the_issue_is_tracked(ado, world) -> None:
    fields = {"project": f"{world.integration_id}|{'P' * 65}", "work_item_type": "Bug", "title": "T"}
    response = post(routes.sentry_issue_link_create, form(world, fields))
    assert (response.status_code, body_of(response)["error"]) == (
        400,
        "project must be a non-empty string of at most 64 characters.",
    )
    assert TrackerStore().get_issue(world.org_id, "4242") is None and ado_calls(ado) == []
