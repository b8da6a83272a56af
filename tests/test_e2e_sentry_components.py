"""The Sentry App's UI components end to end: the app served by the local host, the fake Sentry calling its select
fields and issue-link forms as Sentry's UI does (signed with the app's client secret), the fake Azure DevOps
behind it. A work item created or linked from Sentry's form exists in Azure DevOps, is linked on the tracked
issue, and is recorded by the fake Sentry as the issue's external issue; and how many requests that costs."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from devtools.fakes import FakeAzureDevOps, FakeSentry
from tests.sentry_e2e import APP, SentryHost, SentryWorld, fake_sentry, sentry_host, sentry_world  # noqa: F401

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("azurite")]

CREATE = "/api/sentry/issue-link/create"
LINK = "/api/sentry/issue-link/link"
OPTIONS = "/api/sentry/options/"


@pytest.fixture(scope="module")
def world(sentry_host: SentryHost) -> Iterator[SentryWorld]:  # noqa: F811
    yield sentry_world(sentry_host)


def new_sentry_issue(sentry: FakeSentry, world: SentryWorld, title: str) -> str:
    issue_id = str(uuid.uuid4().int % 10**9 + 1)
    sentry.add_issue(world.org_slug, issue_id, title, "backend")
    return issue_id


def tracked(host: SentryHost, world: SentryWorld, issue_id: str) -> dict[str, Any]:
    response = host.host.call("GET", f"/api/orgs/{world.org_id}/issues/{issue_id}")
    assert response.status_code == 200, response.text
    return response.json()


def ado_requests(ado: FakeAzureDevOps, world: SentryWorld, since: int) -> list[str]:
    """The app's requests to the world's Azure DevOps organization since the `since`-th request."""
    return [f"{r.method} {r.path}" for r in ado.requests[since:] if f"/{world.ado_org}/" in r.path]


def options(sentry: FakeSentry, world: SentryWorld, kind: str, **kwargs: Any) -> list[dict[str, str]]:
    response = sentry.select_options(world.installation_uuid, OPTIONS + kind, **kwargs)
    assert response.status_code == 200, response.text
    return response.json()


def test_the_schema_is_served_anonymously(sentry_host: SentryHost) -> None:  # noqa: F811
    response = requests.get(f"{sentry_host.host.url}/api/sentry/schema", timeout=30)
    assert response.status_code == 200
    [element] = [e for e in response.json()["elements"] if e["type"] == "issue-link"]
    assert (element["create"]["uri"], element["link"]["uri"]) == (CREATE, LINK)


def test_a_person_creates_a_work_item_from_sentrys_form(sentry_host: SentryHost, world: SentryWorld) -> None:  # noqa: F811
    ado, sentry = sentry_host.ado, sentry_host.sentry
    [project] = [o for o in options(sentry, world, "projects") if o["label"] == "proj-id"]
    assert project["value"] == f"{world.integration_id}|proj-id"
    types = options(sentry, world, "workitemtypes", dependent_data={"project": project["value"]})
    assert {"label": "Bug", "value": "Bug"} in types

    counts = []
    for title in ("ZeroDivisionError: division by zero", "KeyError: 'user'"):  # a cold, then a warm process cache
        issue_id = new_sentry_issue(sentry, world, title)
        fields = {"project": project["value"], "work_item_type": "Bug", "title": title, "description": "In *pay*"}
        ado_before, sentry_before = len(ado.requests), len(sentry.requests)
        answer = sentry.link_issue(world.installation_uuid, issue_id, CREATE, fields, by_user=101)
        assert answer.status_code == 201, answer.text
        created = answer.json()
        counts.append((ado_requests(ado, world, ado_before), sentry.requests[sentry_before:]))

        work_item = ado.work_item(world.ado_org, int(created["identifier"]))
        assert work_item["fields"]["System.Title"] == title
        assert created == {
            "webUrl": created["webUrl"],
            "project": work_item["fields"]["System.AreaPath"],
            "identifier": str(work_item["id"]),
        }
        [external] = [e for e in sentry.external_issues(world.installation_uuid) if e["issueId"] == issue_id]
        assert external["displayName"] == f"{created['project']}#{created['identifier']}"
        issue = tracked(sentry_host, world, issue_id)
        assert issue["title"] == title
        assert issue["links"] == [{"integration_id": world.integration_id, "work_item_id": work_item["id"]}]

    (cold_ado, cold_sentry), (warm_ado, warm_sentry) = counts
    # Cold: the type's fields (where the description goes), then the create; warm: the create only. Sentry: none
    # (it records the link itself from the answer).
    assert [r.split(" ")[0] for r in cold_ado] == ["GET", "POST"] and "workitemtypes/Bug" in cold_ado[0], cold_ado
    assert [r.split(" ")[0] for r in warm_ado] == ["POST"], warm_ado
    assert cold_sentry == [] and warm_sentry == []


def test_a_person_links_an_existing_work_item_found_by_its_id(sentry_host: SentryHost, world: SentryWorld) -> None:  # noqa: F811
    ado, sentry = sentry_host.ado, sentry_host.sentry
    ado.add_work_item(world.ado_org, 901, {"System.Title": "Checkout is slow"})
    [found] = [o for o in options(sentry, world, "workitems", query="901") if o["value"].endswith("|901")]
    assert found == {"label": "(901) Checkout is slow", "value": f"{world.integration_id}|901"}
    issue_id = new_sentry_issue(sentry, world, "TimeoutError: checkout")
    ado_before, sentry_before = len(ado.requests), len(sentry.requests)
    answer = sentry.link_issue(
        world.installation_uuid, issue_id, LINK, {"work_item": found["value"]}, by_user=102, action="link"
    )
    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "webUrl": f"{ado.org_url(world.ado_org)}_workitems/edit/901",
        "project": "proj-id",
        "identifier": "901",
    }
    assert [r.split(" ")[0] for r in ado_requests(ado, world, ado_before)] == ["GET"]  # the work item, once
    assert [r.method for r in sentry.requests[sentry_before:]] == ["GET"]  # the issue's title, as it was untracked
    issue = tracked(sentry_host, world, issue_id)
    assert issue["title"] == "TimeoutError: checkout"
    assert issue["links"] == [{"integration_id": world.integration_id, "work_item_id": 901}]
    assert any(e["issueId"] == issue_id for e in sentry.external_issues(world.installation_uuid))


def test_wrong_or_missing_signatures_are_401_and_create_nothing(sentry_host: SentryHost, world: SentryWorld) -> None:  # noqa: F811
    ado, sentry = sentry_host.ado, sentry_host.sentry
    issue_id = new_sentry_issue(sentry, world, "Never linked")
    body = {
        "fields": {"project": f"{world.integration_id}|proj-id", "work_item_type": "Bug", "title": "Never"},
        "installationId": world.installation_uuid,
        "issueId": int(issue_id),
        "webUrl": "http://sentry.invalid/issues/1/",
        "project": {"slug": "backend", "id": 1},
        "actor": {"type": "user", "id": 101, "name": "Dana Lee"},
    }
    raw = json.dumps(body).encode()
    ado_before = len(ado.requests)
    for headers in ({}, {"Sentry-App-Signature": "0" * 64}):
        for path in (CREATE, LINK):
            response = requests.post(f"{sentry_host.host.url}{path}", data=raw, headers=headers, timeout=30)
            assert response.status_code == 401, response.text
        params = {"installationId": world.installation_uuid, "query": "1"}
        response = requests.get(f"{sentry_host.host.url}{OPTIONS}workitems", params=params, headers=headers, timeout=30)
        assert response.status_code == 401
    assert ado_requests(ado, world, ado_before) == []
    assert sentry_host.host.call("GET", f"/api/orgs/{world.org_id}/issues/{issue_id}").status_code == 404


def test_an_unknown_installation_is_404(sentry_host: SentryHost, world: SentryWorld) -> None:  # noqa: F811
    response = sentry_host.sentry.call_app(
        OPTIONS + "projects", "GET", query={"installationId": str(uuid.uuid4())}, app=APP
    )
    assert response.status_code == 404
    assert response.json()["message"] == response.json()["error"]
