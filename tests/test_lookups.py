"""get_issue and search through shared/ with Azure DevOps faked by `responses` and real Azurite."""

import json
import threading
import time
import urllib.parse
from dataclasses import replace

import azure.functions as func
import pytest
from responses import matchers

from functions.lookups import get_issue, search_issues
from shared.ado.client import AdoUnavailable
from shared.ado.credentials import pat_header
from shared.connections.credentials import refresh_oauth
from shared.connections.refresh import POLL_SECONDS, REFRESH_WAIT_SECONDS
from shared.settings import DEFAULT_ACCOUNT_LOOKUP_URL, get_settings
from shared.store.integrations import IntegrationStore
from tests.helpers import FakeClock, count_storage_requests, make_integration, new_id

pytestmark = pytest.mark.usefixtures("azurite")

WORK_ITEM = {
    "id": 309,
    "rev": 3,
    "fields": {
        "System.Title": "Crash on save",
        "System.Description": "<p>It crashes.</p>",
        "System.AreaPath": "Fabrikam\\Web",
        "System.State": "Active",
    },
}


def _get(integration_id: str, issue_id: str) -> func.HttpResponse:
    route = {"integration_id": integration_id, "issue_id": issue_id}
    url = f"http://localhost/api/vsts/{integration_id}/issues/{issue_id}"
    return get_issue(func.HttpRequest("GET", url, route_params=route, body=b""))


def _search(integration_id: str, params: dict) -> func.HttpResponse:
    url = f"http://localhost/api/vsts/{integration_id}/issues"
    return search_issues(
        func.HttpRequest("GET", url, route_params={"integration_id": integration_id}, params=params, body=b"")
    )


def _json(response: func.HttpResponse):
    return json.loads(response.get_body())


def _lookup_url(integration_id: str) -> str:
    return DEFAULT_ACCOUNT_LOOKUP_URL % integration_id


def test_get_issue_returns_the_seed_shape_with_one_request_and_one_table_read(ado) -> None:
    integration = make_integration()
    url = "https://dev.azure.com/fabrikam/_apis/wit/workitems/309"
    ado.get(url, json=WORK_ITEM, match=[matchers.header_matcher({"Authorization": pat_header("pat-token-value")})])
    with count_storage_requests() as storage_calls:
        response = _get(integration.id, "309")
    assert response.status_code == 200
    assert _json(response) == {
        "key": "309",
        "title": "Crash on save",
        "description": "<p>It crashes.</p>",
        "metadata": {"display_name": "Fabrikam\\Web#309"},
    }
    assert len(ado.calls) == 1
    assert len(storage_calls) == 1 and storage_calls[0].startswith("GET ")


def test_description_may_be_missing(ado) -> None:
    integration = make_integration()
    item = {"id": 7, "fields": {"System.Title": "T", "System.AreaPath": "A"}}
    ado.get("https://dev.azure.com/fabrikam/_apis/wit/workitems/7", json=item)
    assert _json(_get(integration.id, "7")) == {
        "key": "7",
        "title": "T",
        "description": None,
        "metadata": {"display_name": "A#7"},
    }


@pytest.mark.parametrize("issue_id", ["0", "-1", "abc", "1.5", "99999999999", "１２", " 1"])
def test_issue_id_must_be_a_positive_integer(issue_id: str) -> None:
    response = _get(new_id(), issue_id)
    assert response.status_code == 400
    assert _json(response) == {"error": "The issue id must be a positive whole number."}


@pytest.mark.parametrize("integration_id", ["unknown", "bad/key", "a#b", "x" * 600])
def test_unknown_integration_is_404(integration_id: str) -> None:
    response = _get(integration_id, "1")
    assert response.status_code == 404
    assert _json(response) == {"error": "No active integration has that id."}


def test_disabled_integration_is_404() -> None:
    integration = make_integration()
    IntegrationStore().update(integration.id, lambda cur: replace(cur, status="disabled"))
    assert _get(integration.id, "1").status_code == 404


def test_missing_work_item_is_404(ado) -> None:
    integration = make_integration()
    message = "TF401232: Work item 5 does not exist, or you do not have permissions to read it."
    ado.get("https://dev.azure.com/fabrikam/_apis/wit/workitems/5", status=404, json={"message": message})
    response = _get(integration.id, "5")
    assert response.status_code == 404
    assert _json(response) == {"error": "Work item 5 does not exist or cannot be read."}


def test_malformed_domain_is_repaired_from_the_lookup_and_saved(ado) -> None:
    integration = make_integration(domain_name="fabrikam.visualstudio.com")
    ado.get(_lookup_url(integration.id), json={"locationUrl": "https://fabrikam.visualstudio.com"})
    ado.get("https://fabrikam.visualstudio.com/_apis/wit/workitems/309", json=WORK_ITEM)
    response = _get(integration.id, "309")
    assert response.status_code == 200
    assert IntegrationStore().get(integration.id).domain_name == "https://fabrikam.visualstudio.com/"
    # The lookup went out without credentials; the work item request with them.
    assert "Authorization" not in ado.calls[0].request.headers
    assert ado.calls[1].request.headers["Authorization"] == pat_header("pat-token-value")


@pytest.mark.parametrize(
    "lookup",
    [
        {"json": {"locationUrl": "http://evil.example/"}},
        {"json": {"locationUrl": "https://dev.azure.com.evil.example/fabrikam"}},
        {"json": {"no": "locationUrl"}},
        {"status": 404, "json": {"message": "not found"}},
        {"status": 500, "body": "oops"},
        {"body": "not json"},
    ],
)
def test_a_failed_or_unsafe_lookup_is_502_and_saves_nothing(lookup: dict, ado) -> None:
    integration = make_integration(domain_name="fabrikam.visualstudio.com")
    ado.get(_lookup_url(integration.id), **lookup)
    response = _get(integration.id, "309")
    assert response.status_code == 502
    assert "error" in _json(response)
    assert IntegrationStore().get(integration.id).domain_name == "fabrikam.visualstudio.com"
    assert len(ado.calls) == 1  # nothing was sent to the answered origin


@pytest.mark.parametrize("status", [401, 403, 203])
def test_refused_credentials_are_502_and_mark_the_integration(status: int, ado) -> None:
    integration = make_integration()
    kwargs = {"body": "<html>sign in</html>", "content_type": "text/html"} if status == 203 else {"json": {}}
    ado.get("https://dev.azure.com/fabrikam/_apis/wit/workitems/1", status=status, **kwargs)
    response = _get(integration.id, "1")
    assert response.status_code == 502
    assert "re-authorization" in _json(response)["error"]
    assert IntegrationStore().get(integration.id).needs_reauth is True
    # A later success clears the mark.
    ado.replace(ado.GET, "https://dev.azure.com/fabrikam/_apis/wit/workitems/1", json={"id": 1, "fields": {}})
    assert _get(integration.id, "1").status_code == 200
    assert IntegrationStore().get(integration.id).needs_reauth is False


@pytest.mark.parametrize("status", [429, 503])
def test_throttling_is_503_with_retry_after(status: int, ado) -> None:
    integration = make_integration()
    ado.get("https://dev.azure.com/fabrikam/_apis/wit/workitems/1", status=status, headers={"Retry-After": "45"})
    response = _get(integration.id, "1")
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "45"


def test_no_answer_in_time_is_504(ado) -> None:
    import requests

    integration = make_integration()
    ado.get("https://dev.azure.com/fabrikam/_apis/wit/workitems/1", body=requests.ReadTimeout())
    assert _get(integration.id, "1").status_code == 504


# -- OAuth refresh -----------------------------------------------------------------------------------


def _oauth_integration(expires_at: float):
    return make_integration(
        credentials={"type": "oauth", "access_token": "old-access", "refresh_token": "rt-1", "expires_at": expires_at}
    )


def _token_endpoint(ado, delay: float = 0.0):
    def answer(request):
        time.sleep(delay)
        form = dict(urllib.parse.parse_qsl(request.body))
        assert form == {
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": "the-client-secret",
            "grant_type": "refresh_token",
            "assertion": "rt-1",
        }
        body = {"access_token": "new-access", "refresh_token": "rt-2", "expires_in": "3599", "token_type": "jwt-bearer"}
        return 200, {}, json.dumps(body)

    ado.add_callback(ado.POST, "https://app.vssps.visualstudio.com/oauth2/token", callback=answer)


def test_an_expired_oauth_token_is_refreshed_once_stored_and_used(env, ado) -> None:
    env.setenv("ADO_CLIENT_SECRET", "the-client-secret")
    integration = _oauth_integration(expires_at=time.time() - 10)
    _token_endpoint(ado)
    ado.get(
        "https://dev.azure.com/fabrikam/_apis/wit/workitems/309",
        json=WORK_ITEM,
        match=[matchers.header_matcher({"Authorization": "Bearer new-access"})],
    )
    assert _get(integration.id, "309").status_code == 200
    stored = IntegrationStore().get(integration.id).credentials
    assert (stored["access_token"], stored["refresh_token"]) == ("new-access", "rt-2")
    assert stored["expires_at"] > time.time() + 3000
    # The next call uses the stored token without refreshing.
    assert _get(integration.id, "309").status_code == 200
    assert [c.request.url for c in ado.calls].count("https://app.vssps.visualstudio.com/oauth2/token") == 1


def test_two_concurrent_calls_on_an_expired_token_refresh_once(env, ado) -> None:
    env.setenv("ADO_CLIENT_SECRET", "the-client-secret")
    integration = _oauth_integration(expires_at=time.time() - 10)
    _token_endpoint(ado, delay=0.3)  # slow, so both calls find the token expired
    ado.get("https://dev.azure.com/fabrikam/_apis/wit/workitems/309", json=WORK_ITEM)
    results: list[int] = []
    threads = [
        threading.Thread(target=lambda: results.append(_get(integration.id, "309").status_code)) for _ in range(2)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert results == [200, 200]
    refreshes = [c for c in ado.calls if c.request.url.endswith("/oauth2/token")]
    assert len(refreshes) == 1
    auths = {c.request.headers["Authorization"] for c in ado.calls if "workitems" in c.request.url}
    assert auths == {"Bearer new-access"}


def test_an_instance_waits_for_another_instances_refresh_instead_of_refreshing(env, ado) -> None:
    env.setenv("ADO_CLIENT_SECRET", "the-client-secret")
    store = IntegrationStore()
    integration = _oauth_integration(expires_at=time.time() - 10)
    # Another instance holds the refresh claim, and finishes its refresh while this one waits (its first poll).
    claimed = store.update(integration.id, lambda cur: replace(cur, refresh_lock_until=time.time() + 30))

    class OtherInstanceFinishes(FakeClock):
        def sleep(self, seconds: float) -> None:
            if not self.slept:
                fresh = {**claimed.credentials, "access_token": "theirs", "expires_at": time.time() + 3600}
                store.update(integration.id, lambda cur: replace(cur, credentials=fresh, refresh_lock_until=None))
            super().sleep(seconds)

    clock = OtherInstanceFinishes()
    assert refresh_oauth(store, integration.id, get_settings(), clock=clock).credentials["access_token"] == "theirs"
    assert clock.slept == [POLL_SECONDS]  # it waited one poll, then saw the other's token
    ado.get(
        "https://dev.azure.com/fabrikam/_apis/wit/workitems/309",
        json=WORK_ITEM,
        match=[matchers.header_matcher({"Authorization": "Bearer theirs"})],
    )
    assert _get(integration.id, "309").status_code == 200
    assert not any(c.request.url.endswith("/oauth2/token") for c in ado.calls)


def test_an_instance_gives_up_waiting_for_a_refresh_that_never_finishes(env, ado) -> None:
    env.setenv("ADO_CLIENT_SECRET", "the-client-secret")
    store = IntegrationStore()
    integration = _oauth_integration(expires_at=time.time() - 10)
    store.update(integration.id, lambda cur: replace(cur, refresh_lock_until=time.time() + 3600))
    clock = FakeClock()
    with pytest.raises(AdoUnavailable, match="another instance is refreshing"):
        refresh_oauth(store, integration.id, get_settings(), clock=clock)
    assert REFRESH_WAIT_SECONDS <= sum(clock.slept) <= REFRESH_WAIT_SECONDS + POLL_SECONDS * 2  # on the fake clock
    assert not any(c.request.url.endswith("/oauth2/token") for c in ado.calls)


def test_a_refused_refresh_is_502_and_marks_the_integration(env, ado) -> None:
    env.setenv("ADO_CLIENT_SECRET", "the-client-secret")
    integration = _oauth_integration(expires_at=time.time() - 10)
    ado.post("https://app.vssps.visualstudio.com/oauth2/token", status=400, json={"Error": "invalid_grant"})
    response = _get(integration.id, "309")
    assert response.status_code == 502
    stored = IntegrationStore().get(integration.id)
    assert stored.needs_reauth is True
    assert stored.refresh_lock_until is None  # the claim was released
    assert stored.credentials["refresh_token"] == "rt-1"


# -- search ------------------------------------------------------------------------------------------


def test_search_uses_the_derived_search_host_and_lower_case_fields(ado) -> None:
    integration = make_integration()
    url = "https://almsearch.dev.azure.com/fabrikam/_apis/search/workitemsearchresults"
    results = {
        "count": 2,
        "results": [
            {"fields": {"system.id": "2", "system.title": "Crash on save"}},
            {"fields": {"system.id": "17", "system.title": "Crash on load"}},
            {"fields": {"system.title": "no id: skipped"}},
        ],
    }
    ado.post(url, json=results, match=[matchers.json_params_matcher({"searchText": "crash", "$top": 5, "$skip": 0})])
    response = _search(integration.id, {"q": "crash", "top": "5"})
    assert response.status_code == 200
    assert _json(response) == [
        {"label": "(2) Crash on save", "value": "2"},
        {"label": "(17) Crash on load", "value": "17"},
    ]


def test_search_on_a_legacy_domain_and_the_default_top(ado) -> None:
    integration = make_integration(domain_name="https://fabrikam.visualstudio.com/")
    url = "https://fabrikam.almsearch.visualstudio.com/_apis/search/workitemsearchresults"
    ado.post(
        url,
        json={"count": 0, "results": []},
        match=[matchers.json_params_matcher({"searchText": "x", "$top": 100, "$skip": 0})],
    )
    assert _json(_search(integration.id, {"q": "x"})) == []


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"q": ""},
        {"q": "   "},
        {"q": "x", "top": "0"},
        {"q": "x", "top": "1001"},
        {"q": "x", "top": "ten"},
        {"q": "x" * 1001},
    ],
)
def test_search_validates_its_query(params: dict) -> None:
    response = _search(new_id(), params)
    assert response.status_code == 400
    assert list(_json(response)) == ["error"]


# -- Entra ID service principal ------------------------------------------------------------------------


def _entra_endpoints(ado, tenant: str, token_status: int = 200) -> None:
    login = f"https://login.microsoftonline.com/{tenant}"
    ado.get(
        f"{login}/v2.0/.well-known/openid-configuration",
        json={
            "token_endpoint": f"{login}/oauth2/v2.0/token",
            "authorization_endpoint": f"{login}/oauth2/v2.0/authorize",
            "issuer": f"{login}/v2.0",
        },
    )
    # On a failure msal asks for the cloud's instance metadata (and retries while it cannot get it).
    ado.get(
        "https://login.microsoftonline.com/common/discovery/instance",
        json={"tenant_discovery_endpoint": f"{login}/v2.0/.well-known/openid-configuration", "metadata": []},
    )
    if token_status == 200:
        ado.post(
            f"{login}/oauth2/v2.0/token",
            json={"access_token": "entra-token", "expires_in": 3600, "token_type": "Bearer"},
        )
    else:
        ado.post(
            f"{login}/oauth2/v2.0/token",
            status=token_status,
            json={"error": "invalid_client", "error_description": "bad secret"},
        )


def test_entra_service_principal_gets_a_token_for_the_azure_devops_scope_once(ado) -> None:
    tenant = new_id()
    integration = make_integration(
        credentials={"type": "entra", "tenant_id": tenant, "client_id": new_id(), "client_secret": "sp-secret"}
    )
    _entra_endpoints(ado, tenant)
    ado.get(
        "https://dev.azure.com/fabrikam/_apis/wit/workitems/309",
        json=WORK_ITEM,
        match=[matchers.header_matcher({"Authorization": "Bearer entra-token"})],
    )
    assert _get(integration.id, "309").status_code == 200
    assert _get(integration.id, "309").status_code == 200
    token_calls = [c for c in ado.calls if c.request.url.endswith("/oauth2/v2.0/token")]
    assert len(token_calls) == 1  # cached until it expires
    form = dict(urllib.parse.parse_qsl(token_calls[0].request.body))
    assert form["scope"] == "499b84ac-1321-427f-aa17-267ca6975798/.default"
    assert form["grant_type"] == "client_credentials"


def test_entra_refusing_the_service_principal_is_502_and_marks_the_integration(ado) -> None:
    tenant = new_id()
    integration = make_integration(
        credentials={"type": "entra", "tenant_id": tenant, "client_id": new_id(), "client_secret": "wrong"}
    )
    _entra_endpoints(ado, tenant, token_status=401)
    response = _get(integration.id, "309")
    assert response.status_code == 502
    assert IntegrationStore().get(integration.id).needs_reauth is True
