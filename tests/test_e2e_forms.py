"""What forms need (contract §12.5) end to end: the local host, Azurite and the fake Azure DevOps."""

from __future__ import annotations

import base64
import urllib.parse
import uuid

import pytest
import requests
from hypothesis import given
from hypothesis import strategies as st

from tests.fuzzing import fuzz_settings
from tests.helpers import new_id

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("azurite")]

PAT = "e2e-forms-pat-0123456789"
AGILE_VISIBLE = ["Epic", "Feature", "User Story", "Task", "Bug", "Issue", "Test Case"]  # processes.py, not hidden


@pytest.fixture
def org(host, fake_ado):
    """An organization with an Agile project `Fabrikam` (areas, iterations, a disabled type) and a Scrum project,
    and its integration in the app. Returns (organization name, integration id)."""
    name, integration_id = f"org{uuid.uuid4().hex[:8]}", new_id()
    fake_ado.add_org(name, integration_id)
    fake_ado.add_pat(name, PAT)
    fake_ado.add_project(name, "fab-id", "Fabrikam", process="Agile")
    fake_ado.add_project(name, "scr-id", "Scrum Team", process="Scrum")
    fake_ado.set_type_disabled(name, "Fabrikam", "Issue")
    fake_ado.add_area(name, "Fabrikam", "Web\\Api")
    fake_ado.add_area(name, "Fabrikam", "Fabrikam\\Mobile")
    fake_ado.add_iteration(name, "Fabrikam", "Release 1\\Sprint 1", start="2026-01-05", finish="2026-01-16")
    body = {"name": name, "domain_name": fake_ado.org_url(name), "credentials": {"type": "pat", "token": PAT}}
    assert host.call("PUT", f"/api/vsts/integrations/{integration_id}", json=body).status_code == 201
    return name, integration_id


def _get(host, integration_id: str, tail: str = "", **params: str) -> requests.Response:
    return host.call("GET", f"/api/vsts/{integration_id}/projects{tail}", params=params)


def _values(response: requests.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [option["value"] for option in response.json()]


def test_each_list_end_to_end(host, fake_ado, org) -> None:
    name, integration_id = org
    assert _values(_get(host, integration_id)) == ["Fabrikam", "proj-id", "Scrum Team"]  # by name, any case
    types = _get(host, integration_id, "/Fabrikam/workitemtypes").json()
    assert types == [{"label": t, "value": t} for t in AGILE_VISIBLE if t != "Issue"]  # hidden and disabled left out
    scrum = _values(_get(host, integration_id, "/Scrum%20Team/workitemtypes"))
    assert scrum == ["Epic", "Feature", "Product Backlog Item", "Task", "Bug", "Impediment", "Test Case"]
    assert _get(host, integration_id, "/Fabrikam/workitemtypes/Bug/states").json() == [
        {"label": "New", "value": "New", "category": "Proposed"},
        {"label": "Active", "value": "Active", "category": "InProgress"},
        {"label": "Resolved", "value": "Resolved", "category": "Resolved"},
        {"label": "Closed", "value": "Closed", "category": "Completed"},
    ]
    areas = _values(_get(host, integration_id, "/Fabrikam/areas"))
    assert areas == ["Fabrikam", "Fabrikam\\Web", "Fabrikam\\Web\\Api", "Fabrikam\\Mobile"]
    iterations = _values(_get(host, integration_id, "/Fabrikam/iterations"))
    assert iterations == ["Fabrikam", "Fabrikam\\Release 1", "Fabrikam\\Release 1\\Sprint 1"]
    # Every path offered is one a work item takes (the fake checks System.AreaPath / IterationPath on create).
    for field, paths in (("System.AreaPath", areas), ("System.IterationPath", iterations)):
        for path in paths:
            patch = [{"op": "add", "path": "/fields/System.Title", "value": "t"}]
            patch.append({"op": "add", "path": f"/fields/{field}", "value": path})
            answer = requests.post(
                f"{fake_ado.org_url(name)}Fabrikam/_apis/wit/workitems/$Bug?validateOnly=true&api-version=7.1",
                json=patch,
                headers={"Content-Type": "application/json-patch+json", "Authorization": _basic(PAT)},
                timeout=10,
            )
            assert answer.status_code == 200, (path, answer.text)


def _basic(token: str) -> str:
    return "Basic " + base64.b64encode(f":{token}".encode()).decode()


ROUTES = {  # route tail -> Azure DevOps requests a cold call makes
    "": 1,
    "/Fabrikam/workitemtypes": 2,
    "/Fabrikam/workitemtypes/Bug/states": 1,
    "/Fabrikam/areas": 1,
    "/Fabrikam/iterations": 1,
}


@pytest.mark.parametrize("tail", list(ROUTES))
def test_a_warm_call_asks_azure_devops_nothing_and_refresh_asks_again(host, fake_ado, org, tail: str) -> None:
    name, integration_id = org
    org_path = f"^/{name}/"

    def asked() -> int:  # every method but OPTIONS, which learns the server's API level once, on first use
        return sum(fake_ado.count(method, org_path) for method in ("GET", "POST"))

    before = asked()
    cold = _get(host, integration_id, tail)
    assert cold.status_code == 200
    assert fake_ado.count("OPTIONS", org_path) == 1
    assert asked() - before == ROUTES[tail]
    assert _get(host, integration_id, tail).json() == cold.json()
    assert asked() - before == ROUTES[tail]  # warm: from the cache
    assert _get(host, integration_id, tail, refresh="true").json() == cold.json()
    assert asked() - before == 2 * ROUTES[tail]
    assert fake_ado.count("OPTIONS", org_path) == 1


def test_a_new_area_shows_after_refresh(host, fake_ado, org) -> None:
    name, integration_id = org
    assert "Fabrikam\\Ops" not in _values(_get(host, integration_id, "/Fabrikam/areas"))
    fake_ado.add_area(name, "Fabrikam", "Ops")
    assert "Fabrikam\\Ops" not in _values(_get(host, integration_id, "/Fabrikam/areas"))  # cached for 10 minutes
    assert "Fabrikam\\Ops" in _values(_get(host, integration_id, "/Fabrikam/areas", refresh="true"))
    assert "Fabrikam\\Ops" in _values(_get(host, integration_id, "/Fabrikam/areas"))


def test_not_found_and_bad_input(host, fake_ado, org) -> None:
    name, integration_id = org
    for tail in ("/Nope/workitemtypes", "/Nope/areas", "/Nope/iterations", "/Fabrikam/workitemtypes/Nope/states"):
        response = _get(host, integration_id, tail)
        assert response.status_code == 404, tail
        assert list(response.json()) == ["error"]
    assert _get(host, new_id()).status_code == 404
    assert _get(host, integration_id, "/" + "x" * 129 + "/areas").status_code == 400
    assert _get(host, integration_id, "/%20%20/areas").status_code == 400
    assert _get(host, integration_id, "/a%01b/workitemtypes").status_code == 400
    assert _get(host, integration_id, "/Fabrikam/areas", refresh="maybe").status_code == 400
    assert _get(host, integration_id).status_code == 200  # cached now
    assert host.call("DELETE", f"/api/vsts/integrations/{integration_id}").status_code in (200, 204)
    disabled = _get(host, integration_id)
    assert disabled.status_code == 404 and disabled.json() == {"error": "No active integration has that id."}


HOSTILE = st.one_of(
    st.text(max_size=140),
    st.sampled_from(
        ["..", ".", "%2E%2E", "a/b", "a\\b", "_apis", "Fabrikam/../x", "?x=1", "#", "%", "\x00", "\ufeff", "x" * 128]
    ),
)


def test_hostile_route_values_never_5xx(host, fake_ado, org) -> None:
    _, integration_id = org
    seen: set[int] = set()

    @fuzz_settings(120)
    @given(
        project=HOSTILE,
        kind=HOSTILE,
        tail=st.sampled_from(["/workitemtypes", "/areas", "/iterations", "/workitemtypes/{type}/states"]),
    )
    def check(project: str, kind: str, tail: str) -> None:
        quote = lambda text: urllib.parse.quote(text, safe="")  # noqa: E731
        path = f"/{quote(project)}{tail.replace('{type}', quote(kind))}"
        response = _get(host, integration_id, path)
        seen.add(response.status_code)
        assert response.status_code < 500, (project, kind, tail, response.text)
        if response.status_code != 200 and response.content:
            assert list(response.json()) == ["error"]

    check()
    assert {400, 404} <= seen
