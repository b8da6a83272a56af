"""An Azure DevOps Server 2022 collection (REST API 7.0, `http://host/tfs/{collection}/`), and a 2022.1 one (7.1),
with a PAT, end to end through the local host: the app learns the server's level and every request asks for a
version the server has (the fake refuses any other, and fails the test through its recorded violations):
lookup, search (and the sentence when the Search extension is missing), webhook delivery, outbound status
change, a comment (HTML on Server 2022, markdown on 2022.1), create, forms, and subscription_check replacing a
disabled subscription; and the setup page's check of a collection URL and a PAT."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator

import pytest

from devtools.fakes import FakeAzureDevOps
from shared.store.integrations import IntegrationStore
from tests.e2e import HostProcess, create_world, queue_length, start_host, stop_host, tracked_issue
from tests.helpers import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("azurite")]

OUTBOUND = "vsts-outbound"


LEVELS = {"server-2022": ("7.0", "7.0-preview.3"), "server-2022.1": ("7.1", "7.1-preview.4")}


@pytest.fixture(scope="module", params=list(LEVELS))
def server(request: pytest.FixtureRequest) -> Iterator[FakeAzureDevOps]:
    with FakeAzureDevOps(server=request.param) as fake:
        yield fake


@pytest.fixture(scope="module")
def server_host(azurite, server, tmp_path_factory) -> Iterator[HostProcess]:
    env = {**server.settings_env(), "QUEUE_RETRY_BASE_SECONDS": "1", "QUEUE_RETRY_MAX_SECONDS": "2"}
    host = start_host(tmp_path_factory.mktemp("server2022"), env)
    yield host
    stop_host(host)


def settled(host: HostProcess) -> None:
    wait_for(lambda: queue_length(host, OUTBOUND) in (-1, 0) and queue_length(host) in (-1, 0), 60, "the queues")


def versions_asked(fake: FakeAzureDevOps, name: str) -> set[str]:
    asked = set()
    for request in fake.requests:
        if request.path.startswith(f"/tfs/{name}/") and request.method != "OPTIONS":
            found = re.search(r"api-version=([\w.-]+)", f"{request.headers.get('Accept', '')};{request.query_string}")
            asked.add(found.group(1) if found else "none")
    return asked


def test_a_server_2022_collection_does_the_whole_loop(server_host, server) -> None:
    host, fake = server_host, server
    name, integration_id, org = create_world(host, fake)
    for email, display in (("dana@example.com", "Dana"), ("lee@example.com", "Lee")):
        fake.add_identity(name, email, display)
    assert fake.org_url(name) == f"{fake.base_url}/tfs/{name}/"
    level, comments_version = LEVELS[fake.server]
    assert IntegrationStore().get(integration_id).api_level == level  # learnt once, from OPTIONS _apis/
    assert fake.count("OPTIONS", rf"^/tfs/{name}/_apis/?$") == 1

    # Lookup and search (the collection serves search itself).
    issue = host.call("GET", f"/api/vsts/{integration_id}/issues/77")
    assert issue.status_code == 200, issue.text
    found = host.call("GET", f"/api/vsts/{integration_id}/issues", params={"q": "Item"})
    assert found.json() == [{"label": "(77) Item 77", "value": "77"}]
    assert fake.count("POST", rf"^/tfs/{name}/_apis/search/workitemsearchresults$") == 1
    fake.search_installed = False
    try:
        missing = host.call("GET", f"/api/vsts/{integration_id}/issues", params={"q": "Item"})
    finally:
        fake.search_installed = True
    assert missing.status_code == 404 and "Search extension" in missing.json()["error"]

    # Webhook: the subscription, then a change in Azure DevOps reaches the tracked issue.
    body = {"sync_status_forward": True, "sync_comments": True, "sync_reverse_assignment": True}
    body["sync_status_reverse"] = True
    body["sync_comments_reverse"] = True
    installed = host.call("PUT", f"/api/orgs/{org}/integrations/{integration_id}", json=body)
    assert installed.status_code == 200, installed.text
    created = host.call("POST", f"/api/vsts/integrations/{integration_id}/subscription")
    assert created.status_code == 201, created.text
    fake.update_work_item(name, 77, {"System.State": "Resolved", "System.AssignedTo": "Dana <dana@example.com>"})
    assert fake.deliveries[-1].status == 202
    wait_for(lambda: tracked_issue(host, org)["status"] == "resolved", what="the delivery to apply")

    # Outbound: unresolving the issue moves the work item back.
    assert host.call("PUT", f"/api/orgs/{org}/issues/I77", json={"status": "unresolved"}).status_code == 200
    wait_for(lambda: fake.work_item(name, 77)["fields"]["System.State"] == "Active", what="the outbound patch")

    # A comment: HTML on Server 2022, whose Comments API (7.0-preview.3) has no format=markdown.
    text = "**Fixed** in <b>1.2</b>\nsee notes\n\nthanks"
    added = host.call("POST", f"/api/orgs/{org}/issues/I77/comments", json={"author": "Dana & Co", "text": text})
    assert added.status_code == 201, added.text
    wait_for(lambda: fake.comments(name, 77) != [], what="the comment on the work item")
    [comment] = fake.comments(name, 77)
    if level == "7.0":
        assert comment["format"] == "html"
        assert comment["text"].startswith("<!-- tracker-comment:")
        assert "<p><b>Dana &amp; Co</b> wrote:</p>" in comment["text"]
        assert "<p>**Fixed** in &lt;b&gt;1.2&lt;/b&gt;<br>see notes</p><p>thanks</p>" in comment["text"]
    else:
        assert comment["format"] == "markdown" and comment["text"].endswith(text)
    settled(host)

    # A person's comment (HTML, as the web UI writes it) reaches the tracked issue as markdown, read through the
    # Comments API version the server has; the app's own comment above is not brought back.
    fake.add_comment(name, 77, "<div>Works <b>now</b></div>", by="Lee <lee@example.com>")
    listed = lambda: host.call("GET", f"/api/orgs/{org}/issues/I77/comments").json()  # noqa: E731
    wait_for(lambda: len(listed()) == 2, what="the work item's comment on the tracked issue")
    settled(host)
    assert [(c["source"], c["author"], c["text"]) for c in listed()] == [
        ("tracker", "Dana & Co", text),
        ("vsts", "Lee", "Works **now**"),
    ]

    # Create, and the forms it needs.
    fake.add_project(name, f"p-{uuid.uuid4().hex[:6]}", "Shop", process="Agile")
    fake.add_area(name, "Shop", "Web")
    assert "Shop" in [o["value"] for o in host.call("GET", f"/api/vsts/{integration_id}/projects").json()]
    types = host.call("GET", f"/api/vsts/{integration_id}/projects/Shop/workitemtypes").json()
    assert {"label": "Bug", "value": "Bug"} in types
    states = host.call("GET", f"/api/vsts/{integration_id}/projects/Shop/workitemtypes/Bug/states").json()
    assert states[0] == {"label": "New", "value": "New", "category": "Proposed"}
    areas = host.call("GET", f"/api/vsts/{integration_id}/projects/Shop/areas").json()
    assert "Shop\\Web" in [o["value"] for o in areas]
    new = host.call(
        "POST",
        f"/api/orgs/{org}/issues/I77/workitems",
        json={"integration_id": integration_id, "project": "Shop", "type": "Bug", "area_path": "Shop\\Web"},
    )
    assert new.status_code == 201, new.text
    assert fake.work_item(name, new.json()["work_item_id"])["fields"]["System.AreaPath"] == "Shop\\Web"

    # subscription_check replaces a subscription Azure DevOps disabled.
    old_id = IntegrationStore().get(integration_id).subscription_id
    fake.set_subscription_status(old_id, "disabledBySystem")
    host.invoke("subscription_check")
    wait_for(lambda: IntegrationStore().get(integration_id).subscription_id != old_id, what="a new subscription")
    settled(host)

    assert versions_asked(fake, name) == {level, comments_version}  # released operations, and the Comments API
    assert fake.violations == []
    # Later modules' timers share this Azurite: they must not visit a collection whose fake is gone.
    assert host.call("DELETE", f"/api/vsts/integrations/{integration_id}").status_code == 200


def test_the_setup_page_checks_a_collection_url_and_a_pat(server) -> None:
    """In process: the setup page's check learns the level first, so connectionData asks `<level>-preview.1`."""
    from shared.pages.setup_access import check_access
    from shared.pages.setup_form import parse_org_url
    from shared.settings import load_settings

    collection_id = str(uuid.uuid4())
    server.add_org("setupcoll", collection_id)
    server.add_pat("setupcoll", "pat-setup-0123456789")
    settings = load_settings({**server.settings_env(), "SECRETS_KEY": "x" * 43 + "="})
    org = parse_org_url(server.org_url("setupcoll").rstrip("/"), settings.allowed_origins)
    assert org.domain_name == server.org_url("setupcoll") and org.name == "setupcoll"
    connected = check_access(org, {"type": "pat", "token": "pat-setup-0123456789"}, settings)
    assert connected.integration_id == collection_id
    level = LEVELS[server.server][0]
    asked = [(r.method, r.headers.get("Accept")) for r in server.requests if r.path.startswith("/tfs/setupcoll/")]
    assert asked == [
        ("OPTIONS", "application/json"),
        ("GET", f"application/json;api-version={level}-preview.1"),
        ("POST", f"application/json;api-version={level}"),
    ]


def test_a_collection_refuses_what_azure_devops_services_would_take(server) -> None:
    """The strict fake as Server 2022: 7.1 is out of range, the account lookup does not exist, comments have no
    `format`; each is recorded."""
    import requests

    if server.server != "server-2022":
        pytest.skip("Server 2022's own limits")
    server.add_org("coll", str(uuid.uuid4()))
    server.add_pat("coll", "pat-coll")
    server.add_work_item("coll", 5, {"System.Title": "Five"})
    auth = {"Authorization": "Basic " + __import__("base64").b64encode(b":pat-coll").decode()}
    url = f"{server.org_url('coll')}_apis/wit/workitems/5"
    refused = requests.get(url, headers={**auth, "Accept": "application/json;api-version=7.1"}, timeout=5)
    assert (refused.status_code, refused.json()["typeKey"]) == (400, "VssVersionOutOfRangeException")
    assert requests.get(url, headers={**auth, "Accept": "application/json;api-version=7.0"}, timeout=5).ok
    lookup = f"{server.base_url}/_apis/resourceareas/79134C72-4A58-4B42-976C-04E7115F32BF?hostId=x"
    preview = {"Accept": "application/json;api-version=7.0-preview.1"}
    assert requests.get(lookup, headers=preview, timeout=5).status_code == 404
    comments = f"{server.org_url('coll')}proj-id/_apis/wit/workItems/5/comments"
    posted = requests.post(
        comments,
        params={"format": "markdown"},
        json={"text": "**x**"},
        headers={**auth, "Accept": "application/json;api-version=7.0-preview.3"},
        timeout=5,
    )
    assert posted.ok and posted.json()["format"] == "html"  # the parameter is not there: ignored
    outside = requests.get(f"{server.base_url}/coll/_apis/wit/workitems/5", headers=auth, timeout=5)
    assert outside.status_code == 404
    violations = server.take_violations()
    assert [v.split(": ", 1)[1] for v in violations] == [
        "api-version 7.1 is above the server's 7.0",
        "no operation of the specification on server-2022",
        "query parameter 'format' is not defined here",
        "not under a collection (/tfs/{collection}/)",
    ]
