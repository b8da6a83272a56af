"""What forms need (contract §12.5) through functions/forms.py and shared/, Azure DevOps faked by `responses`,
the cache on real Azurite."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.parse
from dataclasses import replace

import azure.functions as func
import pytest
import requests
from responses import matchers

from functions import forms as routes
from shared.lookups.forms import Forms
from shared.store import base
from shared.store.catalog_cache import PART_CHARS, TABLE, CatalogCache
from shared.store.integrations import IntegrationStore
from tests.helpers import FakeClock, count_storage_requests, make_integration, new_id

pytestmark = pytest.mark.usefixtures("azurite")

ORG = "https://dev.azure.com/fabrikam/"
TYPES_URL = ORG + "Fabrikam/_apis/wit/workitemtypes"
CATEGORIES_URL = ORG + "Fabrikam/_apis/wit/workitemtypecategories"
AREAS_URL = ORG + "Fabrikam/_apis/wit/classificationnodes/areas"


def _call(handler, integration_id: str, params: dict | None = None, **route: str) -> func.HttpResponse:
    route_params = {"integration_id": integration_id, **route}
    request = func.HttpRequest(
        "GET", "http://localhost/api/x", route_params=route_params, params=params or {}, body=b""
    )
    return handler(request)


def _json(response: func.HttpResponse):
    return json.loads(response.get_body())


def _project(name: str) -> dict:
    return {"id": new_id(), "name": name, "state": "wellFormed", "url": ORG + "_apis/projects/x"}


def _node(name: str, *children: dict) -> dict:
    node: dict = {"id": 1, "name": name, "structureType": "area", "hasChildren": bool(children), "path": "ignored"}
    if children:
        node["children"] = list(children)
    return node


def _types_answer(*types: tuple[str, bool]) -> dict:
    return {"count": len(types), "value": [{"name": name, "isDisabled": disabled} for name, disabled in types]}


def _categories_answer(hidden: list[str]) -> dict:
    return {
        "count": 2,
        "value": [
            {"referenceName": "Microsoft.BugCategory", "workItemTypes": [{"name": "Bug"}]},
            {"referenceName": "Microsoft.HiddenCategory", "workItemTypes": [{"name": name} for name in hidden]},
        ],
    }


# ------------------------------------------------------------------------------------------ Azure DevOps shapes


def test_projects_are_paged_by_100_with_skip_and_answered_by_name(ado) -> None:
    integration = make_integration()
    pages = [[_project(f"P{n:03d}") for n in range(start, start + size)] for start, size in ((0, 100), (100, 100))]
    pages.append([_project("alpha"), *(_project(f"P{n:03d}") for n in range(200, 219))])
    for skip, page in zip(("0", "100", "200"), pages, strict=True):
        params = {"stateFilter": "wellFormed", "$top": "100", "$skip": skip}
        ado.get(
            ORG + "_apis/projects",
            json={"count": len(page), "value": page},
            match=[matchers.query_param_matcher(params)],
        )
    response = _call(routes.list_projects, integration.id)
    assert response.status_code == 200
    options = _json(response)
    assert len(options) == 220 and len(ado.calls) == 3
    assert options[0] == {"label": "alpha", "value": "alpha"}  # sorted by name, case-insensitively
    assert options[1:3] == [{"label": "P000", "value": "P000"}, {"label": "P001", "value": "P001"}]


def test_projects_stop_at_1000(ado) -> None:
    integration = make_integration()

    def page(request: requests.PreparedRequest) -> tuple[int, dict, str]:
        skip = int(urllib.parse.parse_qs(urllib.parse.urlsplit(request.url).query)["$skip"][0])
        value = [_project(f"P{n:05d}") for n in range(skip, skip + 100)]  # always a full page: 2000+ projects
        return 200, {}, json.dumps({"count": 100, "value": value})

    ado.add_callback("GET", ORG + "_apis/projects", callback=page)
    options = _json(_call(routes.list_projects, integration.id))
    assert len(ado.calls) == 10  # no eleventh page is asked for
    assert all(urllib.parse.parse_qs(urllib.parse.urlsplit(c.request.url).query)["$top"] == ["100"] for c in ado.calls)
    assert len(options) == 1000 and options[-1]["value"] == "P00999"


def test_work_item_types_leave_out_hidden_and_disabled_ones(ado) -> None:
    integration = make_integration()
    types = [("Bug", False), ("User Story", False), ("Code Review Request", False), ("Retired", True), ("Task", False)]
    ado.get(TYPES_URL, json=_types_answer(*types))
    ado.get(CATEGORIES_URL, json=_categories_answer(["code review REQUEST", "Test Plan"]))
    response = _call(routes.list_work_item_types, integration.id, project="Fabrikam")
    assert response.status_code == 200
    assert _json(response) == [
        {"label": "Bug", "value": "Bug"},
        {"label": "User Story", "value": "User Story"},
        {"label": "Task", "value": "Task"},
    ]
    assert len(ado.calls) == 2


def test_states_carry_their_category_in_workflow_order(ado) -> None:
    integration = make_integration()
    states = [{"name": "New", "category": "Proposed"}, {"name": "Active", "category": "InProgress"}]
    states.append({"name": "Closed", "category": "Completed", "color": "339933"})
    ado.get(ORG + "Fabrikam/_apis/wit/workitemtypes/User%20Story/states", json={"count": 3, "value": states})
    response = _call(routes.list_states, integration.id, project="Fabrikam", work_item_type="User Story")
    assert _json(response) == [
        {"label": "New", "value": "New", "category": "Proposed"},
        {"label": "Active", "value": "Active", "category": "InProgress"},
        {"label": "Closed", "value": "Closed", "category": "Completed"},
    ]


def test_areas_are_the_paths_a_work_item_takes_depth_first(ado) -> None:
    integration = make_integration()
    tree = _node("Fabrikam", _node("Web", _node("Api"), _node("UI")), _node("Mobile"))
    ado.get(AREAS_URL, json=tree, match=[matchers.query_param_matcher({"$depth": "14"})])
    assert [o["value"] for o in _json(_call(routes.list_areas, integration.id, project="Fabrikam"))] == [
        "Fabrikam",
        "Fabrikam\\Web",
        "Fabrikam\\Web\\Api",
        "Fabrikam\\Web\\UI",
        "Fabrikam\\Mobile",
    ]


def test_iterations_use_their_own_tree(ado) -> None:
    integration = make_integration()
    tree = _node("Fabrikam", _node("Release 1", _node("Sprint 1")))
    ado.get(ORG + "Fabrikam/_apis/wit/classificationnodes/iterations", json=tree)
    options = _json(_call(routes.list_iterations, integration.id, project="Fabrikam"))
    assert options == [
        {"label": "Fabrikam", "value": "Fabrikam"},
        {"label": "Fabrikam\\Release 1", "value": "Fabrikam\\Release 1"},
        {"label": "Fabrikam\\Release 1\\Sprint 1", "value": "Fabrikam\\Release 1\\Sprint 1"},
    ]


def test_names_are_quoted_as_one_path_segment(ado) -> None:
    integration = make_integration()
    project, kind = "Web & Mobile #2?/%", "Bug/Défaut"
    quoted = urllib.parse.quote(project, safe="")
    ado.get(f"{ORG}{quoted}/_apis/wit/classificationnodes/areas", json=_node("Web"))
    assert _call(routes.list_areas, integration.id, project=project).status_code == 200
    assert ado.calls[0].request.url.startswith(f"{ORG}Web%20%26%20Mobile%20%232%3F%2F%25/_apis/wit/class")
    url = f"{ORG}{quoted}/_apis/wit/workitemtypes/{urllib.parse.quote(kind, safe='')}/states"
    ado.get(url, json={"count": 0, "value": []})
    response = _call(routes.list_states, integration.id, project=project, work_item_type=kind)
    assert (response.status_code, _json(response)) == (200, [])
    assert ado.calls[1].request.url.startswith(f"{ORG}Web%20%26%20Mobile%20%232%3F%2F%25/_apis/wit/workitemtypes/")


# ------------------------------------------------------------------------------------------------------ cache


def test_the_second_call_is_answered_from_the_cache_and_refresh_reads_again(ado) -> None:
    integration = make_integration()
    ado.get(AREAS_URL, json=_node("Fabrikam", _node("Web")))
    first = _json(_call(routes.list_areas, integration.id, project="Fabrikam"))
    assert _json(_call(routes.list_areas, integration.id, project="fabrikam")) == first  # names are case-insensitive
    assert len(ado.calls) == 1
    ado.replace("GET", AREAS_URL, json=_node("Fabrikam", _node("Web"), _node("Api")))
    refreshed = _json(_call(routes.list_areas, integration.id, {"refresh": "true"}, project="Fabrikam"))
    assert len(ado.calls) == 2 and refreshed[-1]["value"] == "Fabrikam\\Api"
    assert _json(_call(routes.list_areas, integration.id, project="Fabrikam")) == refreshed  # refresh re-cached it
    assert len(ado.calls) == 2


def test_a_warm_call_is_two_point_reads_and_no_azure_devops_request(ado) -> None:
    integration = make_integration()
    ado.get(ORG + "Fabrikam/_apis/wit/workitemtypes/Bug/states", json={"count": 1, "value": [{"name": "New"}]})
    with count_storage_requests() as cold:
        _call(routes.list_states, integration.id, project="Fabrikam", work_item_type="Bug")
    with count_storage_requests() as warm:
        response = _call(routes.list_states, integration.id, project="Fabrikam", work_item_type="Bug")
    assert _json(response) == [{"label": "New", "value": "New", "category": ""}]
    assert len(ado.calls) == 1
    assert [c.split()[0] for c in warm] == ["GET", "GET"]  # the integration, the cached list
    # cold: the integration, a cache miss, the upsert (the first one also creates the table, then upserts again)
    assert [c.split()[0] for c in cold][:3] == ["GET", "GET", "PUT"]


def test_each_list_keeps_its_own_ttl(ado) -> None:
    integration, clock = make_integration(), FakeClock()
    forms = Forms(cache=CatalogCache(clock))
    ado.get(AREAS_URL, json=_node("Fabrikam"))
    ado.get(ORG + "_apis/projects", json={"count": 1, "value": [_project("Fabrikam")]})
    forms.paths(integration.id, "Fabrikam", "areas")
    forms.projects(integration.id)
    clock.advance(599)
    forms.paths(integration.id, "Fabrikam", "areas")
    assert len(ado.calls) == 2
    clock.advance(2)  # 601 s: areas are stale, projects (1 h) are not
    forms.paths(integration.id, "Fabrikam", "areas")
    forms.projects(integration.id)
    assert [c.request.url.split("?")[0] for c in ado.calls[2:]] == [AREAS_URL]
    clock.advance(3600)
    forms.projects(integration.id)
    assert len(ado.calls) == 4


def test_a_list_larger_than_one_property_is_split_and_read_back(ado) -> None:
    integration = make_integration()
    tree = _node("Fabrikam", *(_node(f"Area {n:03d} " + "é" * 100) for n in range(300)))
    ado.get(AREAS_URL, json=tree)
    first = _call(routes.list_areas, integration.id, project="Fabrikam").get_body()
    assert len(first) > 64 * 1024  # more than one string property holds (Azurite refuses it, as Azure does)
    assert _call(routes.list_areas, integration.id, project="Fabrikam").get_body() == first
    assert len(ado.calls) == 1
    row = base.query(TABLE, "PartitionKey eq @p", {"p": integration.id}, "test")[0]
    assert row["Parts"] >= 3 and all(len(row[f"Part{i}"]) <= PART_CHARS for i in range(row["Parts"]))


def test_a_list_too_large_to_cache_is_still_answered(ado) -> None:
    integration = make_integration()
    tree = _node("Fabrikam", *(_node(f"{n:04d}" + "x" * 250) for n in range(999)))
    ado.get(AREAS_URL, json=tree)
    for _ in range(2):
        response = _call(routes.list_areas, integration.id, project="Fabrikam")
        assert response.status_code == 200 and len(_json(response)) == 1000
    assert len(ado.calls) == 2  # not cached: read each time


def test_a_disabled_integration_is_404_even_with_its_lists_cached(ado) -> None:
    integration = make_integration()
    ado.get(ORG + "_apis/projects", json={"count": 1, "value": [_project("Fabrikam")]})
    assert _call(routes.list_projects, integration.id).status_code == 200
    IntegrationStore().update(integration.id, lambda cur: replace(cur, status="disabled"))
    response = _call(routes.list_projects, integration.id)
    assert response.status_code == 404 and _json(response) == {"error": "No active integration has that id."}
    assert _call(routes.list_projects, new_id()).status_code == 404


# ----------------------------------------------------------------------------------------------------- errors


def test_an_unknown_project_is_404(ado) -> None:
    integration = make_integration()
    message = "TF200016: The following project does not exist: Nope."
    ado.get(ORG + "Nope/_apis/wit/workitemtypes", status=404, json={"message": message})
    response = _call(routes.list_work_item_types, integration.id, project="Nope")
    assert response.status_code == 404
    assert _json(response)["error"] == routes.NO_PROJECT


@pytest.mark.parametrize(
    ("failure", "status"),
    [
        ({"status": 401, "json": {"message": "TF400813"}}, 502),
        ({"status": 429, "headers": {"Retry-After": "45"}}, 503),
        ({"body": requests.ReadTimeout()}, 504),
        ({"status": 500, "json": {"message": "boom"}}, 502),
        ({"status": 200, "json": {"no": "value"}}, 502),
    ],
)
def test_azure_devops_failures_map_as_for_get_issue(ado, failure: dict, status: int) -> None:
    integration = make_integration()
    ado.get(ORG + "Fabrikam/_apis/wit/classificationnodes/iterations", **failure)
    response = _call(routes.list_iterations, integration.id, project="Fabrikam")
    assert response.status_code == status
    assert set(_json(response)) == {"error"}
    if status == 503:
        assert response.headers["Retry-After"] == "45"
    assert IntegrationStore().get(integration.id).needs_reauth is (failure.get("status") == 401)
    assert base.query(TABLE, "PartitionKey eq @p", {"p": integration.id}, "test") == []  # nothing cached


@pytest.mark.parametrize(
    "route",
    [
        {"project": ""},
        {"project": "   "},
        {"project": "x" * 129},
        {"project": "a\x00b"},
        {"project": "a\nb"},
        {"project": "a\ud800"},
        {"project": ".."},
        {"project": "."},
        {"project": "Fabrikam", "work_item_type": "\x7f"},
        {"project": "Fabrikam", "work_item_type": " "},
    ],
)
def test_bad_names_are_400_and_ask_azure_devops_nothing(ado, route: dict) -> None:
    integration = make_integration()
    route = {"work_item_type": "Bug", **route}
    response = _call(routes.list_states, integration.id, **route)
    assert response.status_code == 400, route
    assert set(_json(response)) == {"error"}
    assert len(ado.calls) == 0


def test_refresh_must_be_true_or_false(ado) -> None:
    integration = make_integration()
    response = _call(routes.list_projects, integration.id, {"refresh": "yes"})
    assert response.status_code == 400
    assert _json(response) == {"error": "The query parameter refresh must be true or false."}
    assert len(ado.calls) == 0


def test_importing_the_blueprint_leaves_the_lookup_code_for_the_first_call() -> None:
    lazy = ["shared.lookups.forms", "shared.ado.catalog", "shared.store.catalog_cache", "shared.connections.ado"]
    code = f"import sys, functions.forms; print([m for m in {lazy!r} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "[]"
