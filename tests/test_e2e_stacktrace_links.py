"""Stack frame links end to end (contract §18): the app served by the local host, code mappings saved through its
admin API, the fake Azure DevOps (Services, and an Azure DevOps Server 2022 collection) holding the repositories,
and a browser's GET of the `stacktrace-link` URL as Sentry builds it: the webhook URL's host + the element's
`uri` + `installationId` and `projectSlug` (Sentry's backend), then `lineNo` and `filename` (its frontend)."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlencode

import pytest
import requests

from devtools.fakes import FakeAzureDevOps, FakeSentry
from tests.e2e import stop_host
from tests.sentry_e2e import SentryHost, SentryWorld, sentry_world, start_sentry_host

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("azurite")]

PROJECT = "Shop"


@pytest.fixture(scope="module", params=["services", "server-2022"])
def linked_host(request, azurite, tmp_path_factory) -> Iterator[SentryHost]:
    with FakeAzureDevOps(server=request.param) as ado, FakeSentry() as sentry:
        started = start_sentry_host(tmp_path_factory.mktemp("stacklinks"), ado, sentry, {})
        yield started
        stop_host(started.host)


@pytest.fixture(scope="module")
def world(linked_host: SentryHost) -> SentryWorld:
    made = sentry_world(linked_host)
    ado = linked_host.ado
    ado.add_project(made.ado_org, "p-shop", PROJECT)
    ado.add_repository(made.ado_org, PROJECT, "web", ["/src/app.py", "/src/billing/tax.py"])
    ado.add_repository(made.ado_org, PROJECT, "billing", {"release": ["/invoice.py"]})
    mappings = [
        {"sentry_project": "backend", "stack_root": "app/", "project": PROJECT, "repository": "web",
         "branch": "main", "source_root": "src"},
        {"sentry_project": "*", "stack_root": "app/billing/", "project": PROJECT, "repository": "billing",
         "branch": "release", "source_root": ""},
    ]  # fmt: skip
    body = [m | {"integration_id": made.integration_id} for m in mappings]
    saved = linked_host.host.call("PUT", f"/api/orgs/{made.org_id}/code-mappings", json=body)
    assert saved.status_code == 200, saved.text
    assert linked_host.host.call("GET", f"/api/orgs/{made.org_id}/code-mappings").json() == body
    return made


def frame_link(host: SentryHost, world: SentryWorld, filename: str, line: int) -> str:
    schema = host.host.call("GET", "/api/sentry/schema").json()
    [element] = [e for e in schema["elements"] if e["type"] == "stacktrace-link"]
    query = {"installationId": world.installation_uuid, "projectSlug": "backend"}
    return f"{host.host.url}{element['uri']}?{urlencode(query)}&{urlencode({'lineNo': line, 'filename': filename})}"


def item_checks(ado: FakeAzureDevOps, since: int) -> list[str]:
    return [r.path for r in ado.requests[since:] if "/_apis/git/" in r.path]


def test_frames_redirect_to_the_longest_root_whose_file_exists(linked_host: SentryHost, world: SentryWorld) -> None:
    ado = linked_host.ado
    base = ado.org_url(world.ado_org)
    before = len(ado.requests)
    cases = [
        ("app/billing/invoice.py", 10, f"{base}{PROJECT}/_git/billing?path=/invoice.py&version=GBrelease&line=10"),
        ("app/billing/tax.py", 20, f"{base}{PROJECT}/_git/web?path=/src/billing/tax.py&version=GBmain&line=20"),
        ("app/app.py", 30, f"{base}{PROJECT}/_git/web?path=/src/app.py&version=GBmain&line=30"),
    ]
    for filename, line, expected in cases:
        answer = requests.get(frame_link(linked_host, world, filename, line), allow_redirects=False, timeout=30)
        assert answer.status_code == 302, answer.text
        assert answer.headers["Location"].startswith(expected + f"&lineEnd={line + 1}&lineStartColumn=1")
    # invoice (billing), tax (billing: missing, then web), app (web): four checks, each at the server's version.
    assert len(item_checks(ado, before)) == 4
    level = "7.0" if ado.server == "server-2022" else "7.1"
    git = [r for r in ado.requests[before:] if "/_apis/git/" in r.path]
    assert all(f"api-version={level}" in (r.headers.get("Accept", "") + r.query_string) for r in git)
    again = len(ado.requests)
    answer = requests.get(frame_link(linked_host, world, "app/billing/tax.py", 21), allow_redirects=False, timeout=30)
    assert answer.status_code == 302 and "_git/web?" in answer.headers["Location"]
    assert item_checks(ado, again) == []  # both checks came from the cache
    assert ado.violations == []


def test_a_missing_file_gets_its_page(linked_host: SentryHost, world: SentryWorld) -> None:
    answer = requests.get(frame_link(linked_host, world, "app/gone.py", 5), allow_redirects=False, timeout=30)
    assert answer.status_code == 404
    assert answer.headers["Content-Type"].startswith("text/html")
    page = answer.text
    assert "app/gone.py" in page and "line 5" in page and "code mapping" in page
    assert "billing" not in page and PROJECT not in page
    unmapped = requests.get(frame_link(linked_host, world, "vendor/x.py", 1), allow_redirects=False, timeout=30)
    assert unmapped.status_code == 404 and "No code mapping" in unmapped.text
