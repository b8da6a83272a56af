"""get_issue, search and the integration routes end to end: the local host, Azurite and the fake Azure DevOps."""

import threading
import time
import uuid

import pytest

from shared.store.integrations import IntegrationStore
from tests.helpers import new_id

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("azurite")]

PAT = "e2e-pat-token-0123456789"


@pytest.fixture
def org(fake_ado):
    """A fresh organization in the fake, with one work item (309) and a PAT; and its integration in the app."""
    name = f"org{uuid.uuid4().hex[:8]}"
    host_id = new_id()
    fake_ado.add_org(name, host_id)
    fake_ado.add_pat(name, PAT)
    fake_ado.add_work_item(
        name,
        309,
        {"System.Title": "Crash on save", "System.Description": "<p>It crashes.</p>", "System.AreaPath": "Web\\UI"},
    )
    return name, host_id


def put_integration(host, integration_id: str, name: str, domain_name: str, credentials=None):
    body = {"name": name, "domain_name": domain_name, "credentials": credentials or {"type": "pat", "token": PAT}}
    response = host.call("PUT", f"/api/vsts/integrations/{integration_id}", json=body)
    assert response.status_code in (200, 201), response.text
    return response.json()


def test_get_issue_end_to_end_makes_one_azure_devops_request(host, fake_ado, org) -> None:
    name, host_id = org
    put_integration(host, host_id, name, fake_ado.org_url(name))
    fake_ado.reset_log()
    response = host.call("GET", f"/api/vsts/{host_id}/issues/309")
    assert response.status_code == 200
    assert response.json() == {
        "key": "309",
        "title": "Crash on save",
        "description": "<p>It crashes.</p>",
        "metadata": {"display_name": "Web\\UI#309"},
    }
    # The first use of an integration on a host that is not Azure DevOps Services learns its API level once.
    assert [f"{r.method} {r.path}" for r in fake_ado.requests] == [
        f"OPTIONS /{name}/_apis",
        f"GET /{name}/_apis/wit/workitems/309",
    ]
    sent = fake_ado.requests[1].headers
    assert sent["X-TFS-FedAuthRedirect"] == "Suppress"
    assert sent["Accept"] == "application/json;api-version=7.1"
    fake_ado.reset_log()
    assert host.call("GET", f"/api/vsts/{host_id}/issues/309").status_code == 200
    assert [f"{r.method} {r.path}" for r in fake_ado.requests] == [f"GET /{name}/_apis/wit/workitems/309"]


def test_get_issue_error_table_end_to_end(host, fake_ado, org) -> None:
    name, host_id = org
    put_integration(host, host_id, name, fake_ado.org_url(name))
    path = f"/api/vsts/{host_id}/issues"
    assert host.call("GET", f"{path}/abc").status_code == 400
    assert host.call("GET", f"/api/vsts/{new_id()}/issues/309").status_code == 404
    assert host.call("GET", f"{path}/404404").status_code == 404
    # Throttled beyond the wait cap: 503 with Azure DevOps' Retry-After.
    fake_ado.fail_next("GET", r"/workitems/309$", 429, headers={"Retry-After": "30"})
    response = host.call("GET", f"{path}/309")
    assert (response.status_code, response.headers.get("Retry-After")) == (503, "30")
    # Unavailable, then answering within the retries: 200.
    fake_ado.fail_next("GET", r"/workitems/309$", 503, headers={"Retry-After": "0"})
    assert host.call("GET", f"{path}/309").status_code == 200
    # A sign-in page instead of JSON.
    fake_ado.fail_next(
        "GET", r"/workitems/309$", 203, headers={"Content-Type": "text/html"}, body="<html>Sign in</html>"
    )
    assert host.call("GET", f"{path}/309").status_code == 502
    assert IntegrationStore().get(host_id).needs_reauth is True
    assert host.call("GET", f"{path}/309").status_code == 200  # works again, and the mark is cleared
    assert IntegrationStore().get(host_id).needs_reauth is False
    # No answer within ADO_HTTP_TIMEOUT (2 s for this host).
    fake_ado.set_delay(r"/workitems/309$", 3)
    try:
        assert host.call("GET", f"{path}/309").status_code == 504
    finally:
        fake_ado.clear_faults()


def test_wrong_credentials_are_502_and_mark_the_integration(host, fake_ado, org) -> None:
    name, host_id = org
    put_integration(host, host_id, name, fake_ado.org_url(name), {"type": "pat", "token": "not-the-pat"})
    response = host.call("GET", f"/api/vsts/{host_id}/issues/309")
    assert response.status_code == 502
    assert IntegrationStore().get(host_id).needs_reauth is True
    assert host.call("GET", f"/api/vsts/integrations/{host_id}").json()["needs_reauth"] is True


def test_a_malformed_domain_is_repaired_through_the_lookup(host, fake_ado, org) -> None:
    name, host_id = org
    put_integration(host, host_id, name, f"{name}.visualstudio.com")
    response = host.call("GET", f"/api/vsts/{host_id}/issues/309")
    assert response.status_code == 200
    assert IntegrationStore().get(host_id).domain_name == fake_ado.org_url(name)  # with its trailing slash
    lookup = [r for r in fake_ado.requests if "resourceareas" in r.path.lower() and host_id in r.query_string]
    assert lookup and "Authorization" not in lookup[-1].headers
    assert lookup[-1].headers["Accept"] == "application/json;api-version=7.1-preview.1"  # a preview API


def test_a_lookup_pointing_elsewhere_is_refused_and_nothing_is_saved(host, fake_ado, org) -> None:
    name, host_id = org
    fake_ado.set_location(host_id, "http://evil.example/")
    put_integration(host, host_id, name, f"{name}.visualstudio.com")
    response = host.call("GET", f"/api/vsts/{host_id}/issues/309")
    assert response.status_code == 502
    assert IntegrationStore().get(host_id).domain_name == f"{name}.visualstudio.com"
    assert not [r for r in fake_ado.requests if r.path == f"/{name}/_apis/wit/workitems/309"]


def test_search_end_to_end(host, fake_ado, org) -> None:
    name, host_id = org
    fake_ado.add_work_item(name, 310, {"System.Title": "Crash on load"})
    fake_ado.add_work_item(name, 311, {"System.Title": "Unrelated"})
    put_integration(host, host_id, name, fake_ado.org_url(name))
    response = host.call("GET", f"/api/vsts/{host_id}/issues", params={"q": "crash", "top": "10"})
    assert response.status_code == 200
    assert sorted(response.json(), key=lambda r: r["value"]) == [
        {"label": "(309) Crash on save", "value": "309"},
        {"label": "(310) Crash on load", "value": "310"},
    ]
    assert host.call("GET", f"/api/vsts/{host_id}/issues").status_code == 400


def test_two_concurrent_calls_on_an_expired_oauth_token_refresh_once(host, fake_ado, org) -> None:
    name, host_id = org
    fake_ado.add_refresh_token(name, "rt-e2e-1")
    fake_ado.set_delay(r"/oauth2/token$", 0.5)  # both calls find the token expired
    try:
        credentials = {
            "type": "oauth",
            "access_token": "expired-at",
            "refresh_token": "rt-e2e-1",
            "expires_at": time.time() - 60,
        }
        put_integration(host, host_id, name, fake_ado.org_url(name), credentials)
        before = fake_ado.refresh_count
        statuses: list[int] = []
        calls = [
            threading.Thread(
                target=lambda: statuses.append(host.call("GET", f"/api/vsts/{host_id}/issues/309").status_code)
            )
            for _ in range(2)
        ]
        for t in calls:
            t.start()
        for t in calls:
            t.join(60)
    finally:
        fake_ado.clear_faults()
    assert statuses == [200, 200]
    assert fake_ado.refresh_count - before == 1
    stored = IntegrationStore().get(host_id).credentials
    assert stored["refresh_token"] != "rt-e2e-1"  # the rotated one was kept


def test_delete_disables_lookups(host, fake_ado, org) -> None:
    name, host_id = org
    put_integration(host, host_id, name, fake_ado.org_url(name))
    assert host.call("DELETE", f"/api/vsts/integrations/{host_id}").status_code == 200
    assert host.call("GET", f"/api/vsts/{host_id}/issues/309").status_code == 404


def test_no_token_or_secret_reaches_a_log_line_a_response_or_a_table_in_clear(host, fake_ado, org) -> None:
    from shared.store import base as storage
    from shared.store.integrations import ROW, TABLE

    name, host_id = org
    fake_ado.add_refresh_token(name, "rt-secret-xyz")
    secrets = [PAT, "rt-secret-xyz", "expired-access-secret", fake_ado.client_secret]
    bodies = []
    created = host.call(
        "PUT",
        f"/api/vsts/integrations/{host_id}",
        json={"name": name, "domain_name": fake_ado.org_url(name), "credentials": {"type": "pat", "token": PAT}},
    )
    webhook_secret = created.json()["webhook_secret"]
    bodies.append(created.text.replace(webhook_secret, ""))  # shown once, by design, in the creating response only
    secrets.append(webhook_secret)
    for method, path, kwargs in [
        ("GET", f"/api/vsts/{host_id}/issues/309", {}),
        ("GET", f"/api/vsts/integrations/{host_id}", {}),
        (
            "PUT",
            f"/api/vsts/integrations/{host_id}",
            {
                "json": {
                    "credentials": {
                        "type": "oauth",
                        "access_token": "expired-access-secret",
                        "refresh_token": "rt-secret-xyz",
                        "expires_at": 0,
                    }
                }
            },
        ),
        ("GET", f"/api/vsts/{host_id}/issues/309", {}),
        ("GET", f"/api/vsts/{host_id}/issues", {"params": {"q": "crash"}}),
        (
            "PUT",
            f"/api/vsts/integrations/{host_id}",
            {"json": {"credentials": {"type": "pat", "token": "wrong-" + PAT}}},
        ),
        ("GET", f"/api/vsts/{host_id}/issues/309", {}),
        (
            "POST",
            "/api/vsts/issue-updated",
            {
                "headers": {"Shared-Secret": webhook_secret + "x"},
                "json": {"eventType": "workitem.updated", "resourceContainers": {"collection": {"id": host_id}}},
            },
        ),
        ("GET", f"/api/vsts/integrations/{host_id}", {}),
    ]:
        bodies.append(host.call(method, path, **kwargs).text)
    secrets.append("wrong-" + PAT)
    secrets += [c for c in (IntegrationStore().get(host_id).credentials.get("access_token"),) if c]
    log = host.log()
    raw = str(storage.get_entity(storage.table(TABLE), host_id, ROW))
    for secret in secrets:
        assert secret not in log
        assert all(secret not in body for body in bodies)
        assert secret not in raw


def test_a_second_get_issue_reuses_the_connection_and_reads_one_table_entity(env, fake_ado, org) -> None:
    """In-process against the fake: one Azure DevOps request and one point read per warm call, on one connection."""
    import azure.functions as func

    from functions.lookups import get_issue
    from shared.ado.client import SESSION
    from tests.helpers import count_storage_requests, make_integration

    for key, value in fake_ado.settings_env().items():
        env.setenv(key, value)
    name, host_id = org
    make_integration(
        integration_id=host_id,
        name=name,
        domain_name=fake_ado.org_url(name),
        credentials={"type": "pat", "token": PAT},
        api_level="7.1",  # learnt already (a first use asks OPTIONS _apis/ once and saves it)
    )
    request = func.HttpRequest("GET", "http://x", route_params={"integration_id": host_id, "issue_id": "309"}, body=b"")
    manager = SESSION.get_adapter(fake_ado.base_url).poolmanager
    port = int(fake_ado.base_url.rsplit(":", 1)[1])

    def pools():  # urllib3 keeps one pool per host and port (and TLS settings)
        return [manager.pools[key] for key in manager.pools.keys() if key.key_port == port]  # noqa: SIM118

    opened_before = sum(p.num_connections for p in pools())
    fake_ado.reset_log()
    for _ in range(2):
        with count_storage_requests() as storage_calls:
            assert get_issue(request).status_code == 200
        assert len(storage_calls) == 1 and storage_calls[0].startswith("GET ")
    assert [r.path for r in fake_ado.requests] == [f"/{name}/_apis/wit/workitems/309"] * 2
    assert sum(p.num_requests for p in pools()) >= 2
    assert sum(p.num_connections for p in pools()) - opened_before <= 1  # the second call reused the connection
