"""The fake Azure DevOps holds every request to Microsoft's published specification (`spec_table.json`): each check
refuses a request that breaks it, as Azure DevOps answers, and records a violation (which fails the test that
caused it, through tests/conftest.py). The table is what `devtools/spec_table.py` derives from the specification."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from devtools import spec_table
from devtools.fakes import FakeAzureDevOps
from devtools.fakes.ado import spec
from shared.ado import versions

ORG = "fabrikam"
PAT = "spec-pat"
AUTH = {"Authorization": "Basic " + base64.b64encode(f":{PAT}".encode()).decode(), "X-TFS-FedAuthRedirect": "Suppress"}


@pytest.fixture
def fake() -> Iterator[FakeAzureDevOps]:
    with FakeAzureDevOps() as server:
        server.add_org(ORG, "1b5d6b0c-7e4f-4c1a-9d7e-3f2a1b0c9d8e")
        server.add_pat(ORG, PAT)
        server.add_work_item(ORG, 1, {"System.Title": "One"})
        yield server


def ask(method: str, url: str, version: str | None, **kwargs) -> requests.Response:
    headers = {**AUTH, **kwargs.pop("headers", {})}
    if version:
        headers["Accept"] = f"application/json;api-version={version}"
    return requests.request(method, url, headers=headers, timeout=5, **kwargs)


def refused(fake: FakeAzureDevOps, response: requests.Response, type_key: str, status: int = 400) -> str:
    assert response.status_code == status, response.text
    if type_key:
        assert response.json()["typeKey"] == type_key
    [violation] = fake.take_violations()
    return violation


def test_a_preview_operation_without_preview_is_refused(fake) -> None:
    comments = f"{fake.org_url(ORG)}proj-id/_apis/wit/workItems/1/comments"
    answer = ask("GET", comments, "7.1")
    assert "without -preview" in refused(fake, answer, "VssInvalidPreviewVersionException")
    assert ask("GET", comments, "7.1-preview.4").status_code == 200
    assert "above the operation's" in refused(
        fake, ask("GET", comments, "7.1-preview.5"), "VssVersionOutOfRangeException"
    )
    # Not in the specification, preview all the same: connectionData and the account lookup.
    connection = ask("GET", f"{fake.org_url(ORG)}_apis/connectionData", "7.1")
    refused(fake, connection, "VssInvalidPreviewVersionException")
    assert ask("GET", f"{fake.org_url(ORG)}_apis/connectionData", "7.1-preview.1").json()["deploymentType"] == "hosted"
    lookup = fake.settings_env()["ADO_ACCOUNT_LOOKUP_URL"] % "1b5d6b0c-7e4f-4c1a-9d7e-3f2a1b0c9d8e"
    refused(fake, requests.get(lookup, headers={"Accept": "application/json;api-version=7.1"}, timeout=5),
            "VssInvalidPreviewVersionException")  # fmt: skip
    assert ask("GET", lookup, "7.1-preview.1").json()["locationUrl"] == fake.org_url(ORG).rstrip("/")
    assert fake.violations == []


def test_a_version_above_the_servers_is_refused_on_each_server() -> None:
    for server, allowed, too_high in (("services", "7.1", "7.2"), ("server-2022", "7.0", "7.1")):
        with FakeAzureDevOps(server=server) as fake:
            fake.add_org(ORG, "2b5d6b0c-7e4f-4c1a-9d7e-3f2a1b0c9d8e")
            fake.add_pat(ORG, PAT)
            fake.add_work_item(ORG, 1, {})
            url = f"{fake.org_url(ORG)}_apis/wit/workitems/1"
            assert ask("GET", url, allowed).status_code == 200
            violation = refused(fake, ask("GET", url, too_high), "VssVersionOutOfRangeException")
            assert f"above the server's {allowed}" in violation


def test_a_missing_required_parameter_an_enum_value_and_a_body_are_checked(fake) -> None:
    base = fake.org_url(ORG)
    assert "ids is missing" in refused(fake, ask("GET", f"{base}_apis/wit/workitems", "7.1"), "")
    assert ask("GET", f"{base}_apis/wit/workitems", "7.1", params={"ids": "1"}).status_code == 200
    wrong_case = ask("GET", f"{base}_apis/projects", "7.1", params={"stateFilter": "WellFormed"})
    assert "stateFilter='WellFormed'" in refused(fake, wrong_case, "")
    assert ask("GET", f"{base}_apis/projects", "7.1", params={"stateFilter": "wellFormed"}).status_code == 200
    empty = ask("POST", f"{base}_apis/wit/wiql", "7.1", headers={"Content-Type": "application/json"})
    assert "body is missing" in refused(fake, empty, "")
    unknown = ask("GET", f"{base}_apis/wit/workitems/1", "7.1", params={"expand": "all"})
    assert unknown.status_code == 200  # Azure DevOps ignores it, so the app would not get what it asked for
    assert fake.take_violations() == [f"GET /{ORG}/_apis/wit/workitems/1: query parameter 'expand' is not defined here"]


@pytest.mark.parametrize(
    ("document", "problem"),
    [
        ([], "non-empty array"),
        ({"op": "add"}, "non-empty array"),
        ([{"op": "set", "path": "/fields/System.Title", "value": "x"}], "unknown op"),
        ([{"op": "add", "path": "fields/System.Title", "value": "x"}], "path beginning with '/'"),
        ([{"op": "replace", "path": "/fields/System.Title"}], "needs a value"),
        ([{"op": "copy", "path": "/fields/System.Title"}], "needs a from"),
    ],
)
def test_a_malformed_json_patch_is_refused(fake, document, problem: str) -> None:
    answer = ask(
        "PATCH",
        f"{fake.org_url(ORG)}_apis/wit/workitems/1",
        "7.1",
        data=json.dumps(document),
        headers={"Content-Type": "application/json-patch+json"},
    )
    assert problem in refused(fake, answer, "InvalidArgumentValueException")
    assert fake.work_item(ORG, 1)["rev"] == 1


def test_a_request_matching_no_operation_is_refused_and_recorded(fake) -> None:
    answer = ask("GET", f"{fake.org_url(ORG)}_apis/wit/nothinghere", "7.1")
    assert "no operation" in refused(fake, answer, "ResourceNotFoundException", 404)
    answer = ask("DELETE", f"{fake.org_url(ORG)}_apis/wit/workitemsbatch", "7.1")
    assert "another method" in refused(fake, answer, "", 405)


def test_a_recorded_violation_fails_the_test_that_caused_it(fake) -> None:
    """What tests/conftest.py runs after every test: a violation of any live fake fails the test, naming it."""
    from tests.helpers import fail_on_ado_violations

    fail_on_ado_violations()  # nothing recorded: passes
    ask("GET", f"{fake.org_url(ORG)}_apis/connectionData", "7.1")
    expected = "would refuse:\n.*connectionData: api-version 7.1 without -preview"
    with pytest.raises(pytest.fail.Exception, match=expected):
        fail_on_ado_violations()
    assert fake.violations == []  # taken: the next test starts clean


def test_the_locations_listing_gives_each_servers_level() -> None:
    for server, level in (("services", "7.1"), ("server-2022", "7.0"), ("server-2022.1", "7.1")):
        with FakeAzureDevOps(server=server) as fake:
            fake.add_org(ORG, "4b5d6b0c-7e4f-4c1a-9d7e-3f2a1b0c9d8e")
            fake.add_pat(ORG, PAT)
            listing = requests.options(f"{fake.org_url(ORG)}_apis/", headers=AUTH, timeout=5).json()["value"]
            assert {item["maxVersion"] for item in listing} == {level}
            assert versions.level_of([item["maxVersion"] for item in listing]) == level


def test_the_apps_versions_are_the_specifications() -> None:
    """Every operation's version the app asks for, per server, is the one the table derived from the spec says."""
    table = {(o["method"], o["path"]): o["servers"] for o in spec.TABLE["operations"]}
    comments = table[("POST", "/{project}/_apis/wit/workItems/{workItemId}/comments")]
    connection = table[("GET", "/_apis/connectionData")]
    work_item = table[("PATCH", "/{project}/_apis/wit/workitems/{id}")]
    for server, level in (("services", "7.1"), ("server-2022", "7.0"), ("server-2022.1", "7.1")):
        assert versions.api_version(level, versions.COMMENTS) == comments[server]["version"]
        assert versions.api_version(level, versions.CONNECTION_DATA) == connection[server]["version"]
        assert versions.api_version(level) == work_item[server]["version"]
        assert versions.markdown_comments(level) == ("format" in comments[server]["query"])
    lookup = table[("GET", "@vssps/_apis/resourceareas/{areaId}")]
    assert versions.api_version("7.1", versions.RESOURCE_AREAS) == lookup["services"]["version"]
    released = [servers for servers in table.values() if not servers["services"]["preview"]]
    assert all(
        s[name]["version"] == level for s in released for name, level in (("services", "7.1"), ("server-2022", "7.0"))
    )


def test_the_table_is_what_the_generator_derives_from_the_specification(tmp_path: Path) -> None:
    specs = spec_table._default_specs()
    if specs is None:
        pytest.skip("the specification (the team's shared/specs/azure-devops) is not next to this clone")
    out = tmp_path / "table.json"
    assert spec_table.main(["--specs", str(specs), "--output", str(out)]) == 0
    assert json.loads(out.read_text()) == spec.TABLE
    assert spec.TABLE["source"]["commit"] == "adb28786a3e9349d5b3deb43eb2134b682c33bb2"
