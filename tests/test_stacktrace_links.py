"""Stack frame links to Azure Repos (contract §18): code mappings (admin API, validation, storage) and the
`stacktrace-link` route, with Azure DevOps faked by `responses` and real Azurite."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any
from urllib.parse import parse_qs, urlsplit

import azure.functions as func
import pytest
import responses

from functions import code_mappings as mapping_routes
from functions import sentry_components as routes
from shared.model.code_mappings import candidates, file_url, parse_mappings
from shared.model.sentry import INTERNAL, SentryInstallation
from shared.model.tracker import Installation
from shared.sentryapp import stacktrace_links
from shared.store.integrations import IntegrationStore
from shared.store.sentry import SentryStore
from shared.store.tracker import TrackerStore
from tests.helpers import count_storage_requests, make_integration, new_id
from tests.sync_helpers import setup_org

pytestmark = pytest.mark.usefixtures("azurite")

ORG_URL = "https://dev.azure.com/fabrikam/"
ITEMS = ORG_URL + "Shop/_apis/git/repositories/{repo}/items"


def mapping(**overrides: str) -> dict[str, str]:
    entry = {
        "sentry_project": "web",
        "stack_root": "app/",
        "integration_id": "x",
        "project": "Shop",
        "repository": "web",
        "branch": "main",
        "source_root": "src",
    }
    return entry | overrides


# -- the model ---------------------------------------------------------------------------------------------------


def test_the_longest_matching_stack_root_comes_first_and_a_projects_own_before_star() -> None:
    mappings = parse_mappings(
        [
            mapping(stack_root="", source_root="", repository="mono", sentry_project="*"),
            mapping(stack_root="app/", source_root="src"),
            mapping(stack_root="app/billing/", source_root="billing", repository="billing", sentry_project="*"),
            mapping(stack_root="app/billing/", source_root="pay", repository="pay"),
            mapping(stack_root="lib/", sentry_project="other"),
        ]
    )
    found = candidates(mappings, "web", "app/billing/invoice.py")
    assert [(m.repository, path) for m, path in found] == [
        ("pay", "/pay/invoice.py"),
        ("billing", "/billing/invoice.py"),
        ("web", "/src/billing/invoice.py"),
        ("mono", "/app/billing/invoice.py"),
    ]
    assert [m.repository for m, _ in candidates(mappings, "web", "lib/x.py")] == ["mono"]
    assert candidates(mappings, "web", "app/../etc/passwd") == []  # a frame cannot climb out of a root
    assert [p for _, p in candidates(mappings, "web", "app\\win\\x.py")][0] == "/src/win/x.py"


@pytest.mark.parametrize(
    ("body", "sentence"),
    [
        ({"not": "a list"}, "must be a JSON list"),
        ([mapping(sentry_project="Web Site")], "sentry_project must be a Sentry project slug"),
        ([mapping(branch="bad..branch")], "branch must be a branch name"),
        ([mapping(repository="")], "repository must be a non-empty string"),
        ([mapping(source_root="../up")], "without '..'"),
        ([mapping(), mapping(repository="other")], "repeats the Sentry project and stack root"),
        ([{**mapping(), "extra": 1}], "unknown field 'extra'"),
        ([mapping()] * 51, "at most 50"),
    ],
)
def test_a_bad_mapping_is_refused_with_one_sentence(body: Any, sentence: str) -> None:
    with pytest.raises(ValueError, match=sentence):
        parse_mappings(body)


def test_the_file_url_lands_on_the_line_in_azure_repos() -> None:
    [m] = parse_mappings([mapping(branch="refs/heads/release/1.2", project="My Shop")])
    url = file_url(ORG_URL, m, "/src/a b.py", 42)
    parts = urlsplit(url)
    assert url.startswith(ORG_URL + "My%20Shop/_git/web?")
    assert parse_qs(parts.query) == {
        "path": ["/src/a b.py"],
        "version": ["GBrelease/1.2"],
        "line": ["42"],
        "lineEnd": ["43"],
        "lineStartColumn": ["1"],
        "lineEndColumn": ["1"],
        "lineStyle": ["plain"],
        "_a": ["contents"],
    }


# -- the admin API -------------------------------------------------------------------------------------------------


def call(method: str, org_id: str, body: Any = None) -> func.HttpResponse:
    handler = mapping_routes.put_code_mappings if method == "PUT" else mapping_routes.get_code_mappings
    raw = json.dumps(body).encode() if body is not None else b""
    request = func.HttpRequest(
        method, f"http://localhost/api/orgs/{org_id}/code-mappings", body=raw, route_params={"org_id": org_id}
    )
    return handler(request)


def test_mappings_are_saved_and_read_back_and_a_bad_list_writes_nothing(env) -> None:
    integration = make_integration()
    org_id = f"org-{new_id()[:8]}"
    setup_org(org_id, integration.id)
    assert json.loads(call("GET", org_id).get_body()) == []
    wanted = [mapping(integration_id=integration.id), mapping(stack_root="", integration_id=integration.id)]
    saved = call("PUT", org_id, wanted)
    assert saved.status_code == 200, saved.get_body()
    assert json.loads(call("GET", org_id).get_body()) == wanted
    refused = call("PUT", org_id, [mapping(integration_id=integration.id, branch="a b")])
    assert refused.status_code == 400
    assert json.loads(refused.get_body())["error"].startswith("Mapping 1: branch")
    other = call("PUT", org_id, [mapping(integration_id=make_integration(name="contoso").id)])
    assert other.status_code == 400 and "has not installed integration" in json.loads(other.get_body())["error"]
    assert json.loads(call("GET", org_id).get_body()) == wanted  # nothing written by the refused ones
    assert call("PUT", org_id, None).status_code == 400


# -- the route -------------------------------------------------------------------------------------------------------


@pytest.fixture
def linked(ado: responses.RequestsMock, env) -> dict[str, str]:
    integration = make_integration()
    slug, uuid = f"s{new_id()[:8]}", new_id()
    SentryStore().put(SentryInstallation(uuid, slug, kind=INTERNAL, token="static-token"))
    org_id = f"sentry-{slug}"
    setup_org(org_id, integration.id)
    return {"uuid": uuid, "org_id": org_id, "integration_id": integration.id}


def click(uuid: str, filename: str, line: str = "12", project: str = "web") -> func.HttpResponse:
    params = {"installationId": uuid, "projectSlug": project, "filename": filename, "lineNo": line}
    return routes.sentry_stacktrace_link(
        func.HttpRequest("GET", "http://localhost/api/sentry/stacktrace-link", params=params, body=b"")
    )


def item_requests(ado: responses.RequestsMock) -> list[tuple[str, str]]:
    found = []
    for c in ado.calls:
        if "/_apis/git/" in c.request.url:
            query = parse_qs(urlsplit(c.request.url).query)
            found.append((urlsplit(c.request.url).path.rsplit("/", 2)[-2], query["path"][0]))
    return found


def put_mappings(linked: dict[str, str], *entries: dict[str, str]) -> None:
    response = call("PUT", linked["org_id"], [e | {"integration_id": linked["integration_id"]} for e in entries])
    assert response.status_code == 200, response.get_body()


def test_overlapping_roots_redirect_to_the_longest_whose_file_exists_and_checks_are_cached(ado, linked) -> None:
    put_mappings(
        linked,
        mapping(stack_root="app/", repository="web", source_root="src"),
        mapping(stack_root="app/billing/", repository="billing", source_root=""),
    )
    ado.get(ITEMS.format(repo="billing"), json={"path": "/invoice.py", "gitObjectType": "blob"})
    ado.get(ITEMS.format(repo="web"), status=404, json={"message": "TF401174", "typeKey": "GitItemNotFoundException"})
    first = click(linked["uuid"], "app/billing/invoice.py", "7")
    assert first.status_code == 302
    location = first.headers["Location"]
    assert location.startswith(ORG_URL + "Shop/_git/billing?path=/invoice.py&version=GBmain&line=7&lineEnd=8")
    assert click(linked["uuid"], "app/billing/invoice.py", "9").headers["Location"].endswith("&_a=contents")
    assert item_requests(ado) == [("billing", "/invoice.py")]  # the second click came from the cache

    ado.replace(responses.GET, ITEMS.format(repo="billing"), status=404, json={"typeKey": "GitItemNotFoundException"})
    ado.replace(responses.GET, ITEMS.format(repo="web"), json={"path": "/src/billing/tax.py", "gitObjectType": "blob"})
    fallback = click(linked["uuid"], "app/billing/tax.py")
    assert fallback.status_code == 302
    assert fallback.headers["Location"].startswith(ORG_URL + "Shop/_git/web?path=/src/billing/tax.py")
    assert item_requests(ado)[1:] == [("billing", "/tax.py"), ("web", "/src/billing/tax.py")]


def test_a_missing_file_gets_a_page_naming_it_and_how_to_add_a_mapping_revealing_nothing(ado, linked) -> None:
    put_mappings(linked, mapping(repository="secret-repo", source_root="hidden/root"))
    ado.get(ITEMS.format(repo="secret-repo"), status=404, json={"typeKey": "GitItemNotFoundException"})
    missing = click(linked["uuid"], "app/gone.py")
    assert missing.status_code == 404 and missing.mimetype == "text/html"
    page = missing.get_body().decode()
    assert "app/gone.py" in page and "code mapping" in page and "Link stack frames to code" in page
    assert "secret-repo" not in page and "hidden" not in page and "Shop" not in page
    unmapped = click(linked["uuid"], "lib/other.py").get_body().decode()
    assert stacktrace_links.NO_MAPPING in unmapped
    unknown = click(new_id(), "app/gone.py")
    assert unknown.status_code == 404 and stacktrace_links.NOT_INSTALLED in unknown.get_body().decode()
    assert click("a/b#c", "app/gone.py").status_code == 404
    script = click(linked["uuid"], "<script>alert(1)</script>").get_body().decode()
    assert "<script>alert" not in script


def test_upstream_lookups_per_click_are_bounded(ado, linked) -> None:
    roots = ["a/", "a/b/", "a/b/c/", "a/b/c/d/", "a/b/c/d/e/", "a/b/c/d/e/f/"]
    put_mappings(linked, *(mapping(stack_root=root, repository=f"r{i}") for i, root in enumerate(roots)))
    for i in range(len(roots)):
        ado.get(ITEMS.format(repo=f"r{i}"), status=404, json={"typeKey": "GitItemNotFoundException"})
    answer = click(linked["uuid"], "a/b/c/d/e/f/g.py")
    assert answer.status_code == 404
    assert len(item_requests(ado)) == stacktrace_links.MAX_LOOKUPS
    # The next click asks only about the roots further down (the first three are cached as missing) and finds the
    # file under a/b/; a third click answers from the cache alone.
    ado.replace(responses.GET, ITEMS.format(repo="r1"), json={"path": "/src/c/d/e/f/g.py", "gitObjectType": "blob"})
    assert click(linked["uuid"], "a/b/c/d/e/f/g.py").status_code == 302
    assert len(item_requests(ado)) == stacktrace_links.MAX_LOOKUPS + 2
    assert "_git/r1?" in click(linked["uuid"], "a/b/c/d/e/f/g.py").headers["Location"]
    assert len(item_requests(ado)) == stacktrace_links.MAX_LOOKUPS + 2


def test_a_mapping_never_uses_credentials_the_organization_may_not_use(ado, linked) -> None:
    owner = make_integration(name="contoso", domain_name="https://dev.azure.com/contoso/")
    TrackerStore().put_installation(Installation(integration_id=owner.id, org_id=linked["org_id"]))
    # Another organization's integration, whose credentials were neither shared nor entered by this one.
    IntegrationStore().update(owner.id, lambda i: replace(i, credential_owner="someone-else"))
    response = call("PUT", linked["org_id"], [mapping(integration_id=owner.id)])
    assert response.status_code == 200
    answer = click(linked["uuid"], "app/x.py")
    assert answer.status_code == 404
    assert item_requests(ado) == []


def test_an_azure_devops_server_collection_is_asked_at_its_level_and_linked_under_the_collection(ado, env) -> None:
    collection = "https://tfs.example/tfs/DefaultCollection/"
    env.setenv("ADO_ALLOWED_ORIGINS", "https://tfs.example")
    integration = make_integration(domain_name=collection, name="DefaultCollection", api_level="7.0")
    slug, uuid = f"s{new_id()[:8]}", new_id()
    SentryStore().put(SentryInstallation(uuid, slug, kind=INTERNAL, token="static-token"))
    setup_org(f"sentry-{slug}", integration.id)
    put_mappings({"org_id": f"sentry-{slug}", "integration_id": integration.id}, mapping())
    ado.get(collection + "Shop/_apis/git/repositories/web/items", json={"path": "/src/x.py", "gitObjectType": "blob"})
    answer = click(uuid, "app/x.py", "3")
    assert answer.status_code == 302
    assert answer.headers["Location"].startswith(collection + "Shop/_git/web?path=/src/x.py&version=GBmain&line=3")
    [request] = [c.request for c in ado.calls if "/_apis/git/" in c.request.url]
    assert "api-version=7.0" in (request.headers.get("Accept", "") + request.url)


def test_what_a_click_costs_cold_and_warm(ado, linked) -> None:
    """Counts, not time: a cold click on a frame of the longest mapping makes one Items API request; a warm click
    none; storage round trips stay a handful (installation, mappings, then per tried mapping the organization's
    installation, the integration and the cached check, plus the cache write when cold)."""
    put_mappings(linked, mapping(stack_root="app/", repository="web"), mapping(stack_root="", repository="mono"))
    ado.get(ITEMS.format(repo="web"), json={"path": "/src/x.py", "gitObjectType": "blob"})
    assert click(linked["uuid"], "app/first.py").status_code == 302  # the cache's table exists from here on
    counts = []
    for _ in range(2):
        before = len(item_requests(ado))
        with count_storage_requests() as storage:
            assert click(linked["uuid"], "app/x.py").status_code == 302
        counts.append((len(item_requests(ado)) - before, len(storage)))
    (cold_ado, cold_storage), (warm_ado, warm_storage) = counts
    assert (cold_ado, warm_ado) == (1, 0)
    assert warm_storage <= 5 and cold_storage <= warm_storage + 1, counts
