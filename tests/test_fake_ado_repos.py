"""The fake Azure DevOps' Git repositories and items (devtools/fakes/ado/repos.py): held to the specification's
Git area (versions per server, query parameters), and refusing what Azure DevOps refuses."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import pytest
import requests

from devtools.fakes import FakeAzureDevOps

ORG = "fabrikam"
PAT = "repos-pat"
AUTH = {"Authorization": "Basic " + base64.b64encode(f":{PAT}".encode()).decode()}


@pytest.fixture(params=["services", "server-2022"])
def fake(request) -> Iterator[FakeAzureDevOps]:
    with FakeAzureDevOps(server=request.param) as server:
        server.add_org(ORG, "4c1a1b5d-6b0c-7e4f-9d7e-3f2a1b0c9d8e")
        server.add_pat(ORG, PAT)
        server.add_project(ORG, "p1", "Shop")
        server.add_repository(ORG, "Shop", "web", {"main": ["/src/app.py"], "release": ["/src/old.py"]})
        server.add_repository(ORG, "Shop", "api", ["/api/main.py"])
        yield server


def get(fake: FakeAzureDevOps, route: str, version: str | None = None, **params: str) -> requests.Response:
    level = version or ("7.0" if fake.server == "server-2022" else "7.1")
    return requests.get(fake.org_url(ORG) + route, params={"api-version": level, **params}, headers=AUTH, timeout=5)


def test_repositories_of_a_project_are_listed(fake) -> None:
    answer = get(fake, "Shop/_apis/git/repositories")
    assert answer.status_code == 200
    assert [r["name"] for r in answer.json()["value"]] == ["api", "web"]
    assert answer.json()["value"][1]["defaultBranch"] == "refs/heads/main"


def test_an_item_is_found_on_its_branch_only(fake) -> None:
    branch = {"versionDescriptor.version": "main", "versionDescriptor.versionType": "branch"}
    found = get(fake, "Shop/_apis/git/repositories/web/items", path="/src/app.py", **branch)
    assert found.status_code == 200 and found.json()["path"] == "/src/app.py"
    missing = get(fake, "Shop/_apis/git/repositories/web/items", path="/src/old.py", **branch)
    assert missing.status_code == 404 and missing.json()["typeKey"] == "GitItemNotFoundException"
    other = {"versionDescriptor.version": "release", "versionDescriptor.versionType": "branch"}
    assert get(fake, "Shop/_apis/git/repositories/web/items", path="src/old.py", **other).status_code == 200
    nobranch = {"versionDescriptor.version": "nope", "versionDescriptor.versionType": "branch"}
    answer = get(fake, "Shop/_apis/git/repositories/web/items", path="/src/app.py", **nobranch)
    assert answer.status_code == 404 and answer.json()["typeKey"] == "GitUnresolvableToCommitException"
    norepo = get(fake, "Shop/_apis/git/repositories/nope/items", path="/src/app.py")
    assert norepo.status_code == 404 and norepo.json()["typeKey"] == "GitRepositoryNotFoundException"
    assert fake.violations == []


def test_the_specification_is_enforced_on_git_requests(fake) -> None:
    shelf = {"versionDescriptor.versionType": "shelf"}
    bad_enum = get(fake, "Shop/_apis/git/repositories/web/items", path="/src/app.py", **shelf)
    assert bad_enum.status_code == 400
    assert any("versionType" in v for v in fake.take_violations())
    above = get(fake, "Shop/_apis/git/repositories", version="7.2")
    assert above.status_code == 400
    assert fake.take_violations()
