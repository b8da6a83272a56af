"""The Azure DevOps fake itself, exercised over HTTP with plain `requests`, as the app will reach it."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests
from werkzeug.serving import BaseWSGIServer, make_server
from werkzeug.wrappers import Request, Response

from devtools.fakes import FakeAzureDevOps
from devtools.fakes.ado.server import QuietHandler
from tests.helpers import wait_for

ORG = "fabrikam"
HOST_ID = "c12d0eb8-e382-443b-9f9c-c52cba5014c2"
PAT = "pat-secret-123"
JSON_71 = {"Accept": "application/json;api-version=7.1", "X-TFS-FedAuthRedirect": "Suppress"}


def basic(token: str, user: str = "") -> str:
    return "Basic " + base64.b64encode(f"{user}:{token}".encode()).decode()


@pytest.fixture
def fake() -> Iterator[FakeAzureDevOps]:
    with FakeAzureDevOps() as server:
        server.add_org(ORG, HOST_ID)
        server.add_pat(ORG, PAT)
        yield server


@pytest.fixture
def http() -> Iterator[requests.Session]:
    session = requests.Session()
    session.trust_env = False  # loopback only: never through a proxy from the environment
    yield session
    session.close()


LOOKUP = {"Accept": "application/json;api-version=7.1-preview.1"}  # the account lookup is a preview API


def call(http: requests.Session, method: str, url: str, *, token: str = PAT, **kwargs: Any) -> requests.Response:
    headers = {**JSON_71, "Authorization": basic(token), **kwargs.pop("headers", {})}
    return http.request(method, url, headers=headers, timeout=5, **kwargs)


class Receiver:
    """A tiny webhook endpoint on loopback: records each POST and answers `status`."""

    def __init__(self) -> None:
        self.status = 202
        self.received: list[tuple[dict[str, str], bytes]] = []
        self._server: BaseWSGIServer = make_server(
            "127.0.0.1", 0, self._app, threaded=True, request_handler=QuietHandler
        )
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        self.url = f"http://127.0.0.1:{self._server.server_port}/api/vsts/issue-updated"

    def _app(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        self.received.append((dict(request.headers.items()), request.get_data()))
        return Response(b"{}", status=self.status, content_type="application/json")(environ, start_response)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.stop()


def subscription_body(url: str, **inputs: str) -> dict[str, Any]:
    return {
        "publisherId": "tfs",
        "eventType": "workitem.updated",
        "resourceVersion": "1.0",
        "consumerId": "webHooks",
        "consumerActionId": "httpRequest",
        "publisherInputs": {"projectId": "proj-id"},
        "consumerInputs": {"url": url, **inputs},
    }


# ------------------------------------------------------------------------------------------------- auth


def test_pat_is_accepted_and_bad_credentials_get_401_or_the_203_sign_in_page(
    fake: FakeAzureDevOps, http: requests.Session
) -> None:
    fake.add_work_item(ORG, 7, {"System.Title": "Seven"})
    url = f"{fake.org_url(ORG)}_apis/wit/workitems/7"
    ok = call(http, "GET", url)
    assert ok.status_code == 200
    assert ok.json()["fields"]["System.Title"] == "Seven"
    assert call(http, "GET", url, headers={"Authorization": basic(PAT, user="anyone")}).status_code == 200

    refused = call(http, "GET", url, token="wrong")
    assert refused.status_code == 401
    assert refused.json()["message"] == "TF400813: The user '' is not authorized to access this resource."
    assert refused.json()["typeKey"] == "UnauthorizedRequestException"

    sign_in = http.get(url, headers={"Authorization": basic("wrong"), "Accept": JSON_71["Accept"]}, timeout=5)
    assert sign_in.status_code == 203
    assert sign_in.headers["Content-Type"].startswith("text/html")
    assert "Sign In" in sign_in.text
    assert http.get(f"{url}?api-version=7.1", timeout=5).status_code == 203  # no credential at all

    # A PAT of another organization is not valid here; a revoked one no longer is.
    fake.add_org("other", "11111111-2222-3333-4444-555555555555")
    fake.add_pat("other", "other-pat")
    assert call(http, "GET", url, token="other-pat").status_code == 401
    fake.remove_pat(ORG, PAT)
    assert call(http, "GET", url).status_code == 401


def test_api_version_is_required_from_the_query_or_accept_header(fake: FakeAzureDevOps, http: requests.Session) -> None:
    fake.add_work_item(ORG, 1, {})
    url = f"{fake.org_url(ORG)}_apis/wit/workItems/1"  # paths are case-insensitive, as in Azure DevOps
    auth = {"Authorization": basic(PAT), "X-TFS-FedAuthRedirect": "Suppress"}
    missing = http.get(url, headers=auth, timeout=5)
    assert missing.status_code == 400
    assert "No api-version was supplied" in missing.json()["message"]
    assert http.get(url, params={"api-version": "7.1"}, headers=auth, timeout=5).status_code == 200
    assert http.get(url, params={"api-version": "9.0"}, headers=auth, timeout=5).status_code == 400
    assert len(fake.take_violations()) == 2


# ----------------------------------------------------------------------------------------------- lookup


def test_account_lookup_is_anonymous_and_follows_set_location(fake: FakeAzureDevOps, http: requests.Session) -> None:
    lookup = fake.settings_env()["ADO_ACCOUNT_LOOKUP_URL"]
    answer = http.get(lookup % HOST_ID, headers=LOOKUP, timeout=5)
    assert answer.status_code == 200
    assert answer.json() == {
        "id": "79134C72-4A58-4B42-976C-04E7115F32BF",
        "name": "Core",
        "locationUrl": fake.org_url(ORG).rstrip("/"),
    }
    fake.set_location(HOST_ID, "https://fabrikam.visualstudio.com")
    assert (
        http.get(lookup % HOST_ID.upper(), headers=LOOKUP, timeout=5).json()["locationUrl"]
        == "https://fabrikam.visualstudio.com"
    )
    assert http.get(lookup % "00000000-0000-0000-0000-000000000001", headers=LOOKUP, timeout=5).status_code == 404
    assert fake.count("GET", r"^/_apis/resourceareas/") == 3


# ------------------------------------------------------------------------------------------------ OAuth


def test_oauth_refresh_rotates_the_refresh_token(fake: FakeAzureDevOps, http: requests.Session) -> None:
    fake.add_refresh_token(ORG, "refresh-1")
    token_url = fake.settings_env()["ADO_OAUTH_TOKEN_URL"]

    def refresh(assertion: str, secret: str = "fake-client-secret") -> requests.Response:
        form = {
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": secret,
            "grant_type": "refresh_token",
            "assertion": assertion,
            "redirect_uri": "https://example.invalid/callback",
        }
        return http.post(token_url, data=form, timeout=5)

    assert refresh("refresh-1", secret="wrong").status_code == 401
    assert refresh("refresh-1", secret="wrong").json() == {"Error": "invalid_client"}
    first = refresh("refresh-1")
    assert first.status_code == 200
    tokens = first.json()
    assert tokens["token_type"] == "jwt-bearer"
    assert tokens["expires_in"] == "3599"
    assert tokens["refresh_token"] != "refresh-1"

    reused = refresh("refresh-1")
    assert reused.status_code == 400
    assert reused.json()["Error"] == "invalid_grant"

    fake.add_work_item(ORG, 3, {})
    url = f"{fake.org_url(ORG)}_apis/wit/workitems/3"
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert http.get(url, headers={**JSON_71, **bearer}, timeout=5).status_code == 200
    second = refresh(tokens["refresh_token"])
    assert second.status_code == 200
    assert fake.refresh_count == 2

    fake.expire_access_token(tokens["access_token"])
    assert http.get(url, headers={**JSON_71, **bearer}, timeout=5).status_code == 401
    fake.add_access_token(ORG, "direct-token")
    assert http.get(url, headers={**JSON_71, "Authorization": "Bearer direct-token"}, timeout=5).status_code == 200


# ------------------------------------------------------------------------------------------- work items


def test_work_item_get_with_project_identities_and_the_404_body(fake: FakeAzureDevOps, http: requests.Session) -> None:
    fake.add_project(ORG, "proj-id", "Fabrikam Fiber")
    fake.add_work_item(
        ORG, 309, {"System.Title": "Crash", "System.AssignedTo": "Jamal Hartnett <fabrikamfiber4@hotmail.com>"}
    )
    base = fake.org_url(ORG)
    item = call(http, "GET", f"{base}Fabrikam%20Fiber/_apis/wit/workitems/309").json()
    assert item["id"] == 309
    assert item["rev"] == 1
    assert item["fields"]["System.AreaPath"] == "Fabrikam Fiber"
    assert item["url"].endswith("/_apis/wit/workItems/309")
    # api-version >= 5.0 answers identity objects; 4.1 the 'Name <email>' string.
    assignee = item["fields"]["System.AssignedTo"]
    assert assignee["uniqueName"] == "fabrikamfiber4@hotmail.com"
    assert assignee["displayName"] == "Jamal Hartnett"
    old = call(http, "GET", f"{base}_apis/wit/workitems/309", headers={"Accept": "application/json;api-version=4.1"})
    assert old.json()["fields"]["System.AssignedTo"] == "Jamal Hartnett <fabrikamfiber4@hotmail.com>"
    only = call(http, "GET", f"{base}_apis/wit/workitems/309", params={"fields": "System.Title"}).json()
    assert only["fields"] == {"System.Title": "Crash"}

    missing = call(http, "GET", f"{base}_apis/wit/workitems/404")
    assert missing.status_code == 404
    assert missing.json() == {
        "$id": "1",
        "innerException": None,
        "message": "TF401232: Work item 404 does not exist, or you do not have permissions to read it.",
        "typeName": "Microsoft.TeamFoundation.WorkItemTracking.Server.WorkItemUnauthorizedAccessException, "
        "Microsoft.TeamFoundation.WorkItemTracking.Server",
        "typeKey": "WorkItemUnauthorizedAccessException",
        "errorCode": 0,
        "eventId": 3200,
    }
    assert call(http, "GET", f"{base}no-such-project/_apis/wit/workitems/309").status_code == 404


def test_search_matches_titles_case_insensitively(fake: FakeAzureDevOps, http: requests.Session) -> None:
    fake.add_work_item(ORG, 2, {"System.Title": "Login crashes", "System.AssignedTo": "Ann <ann@example.com>"})
    fake.add_work_item(ORG, 3, {"System.Title": "Logout CRASH on Safari", "System.State": "Active"})
    fake.add_work_item(ORG, 4, {"System.Title": "Unrelated"})
    search_base = fake.settings_env()["ADO_SEARCH_BASE_URL"].replace("{organization}", ORG)
    url = f"{search_base}_apis/search/workitemsearchresults"
    answer = call(http, "POST", url, json={"searchText": "crash", "$top": 100, "$skip": 0})
    assert answer.status_code == 200
    body = answer.json()
    assert body["count"] == 2
    assert [r["fields"]["system.id"] for r in body["results"]] == ["2", "3"]
    first = body["results"][0]
    assert first["fields"]["system.title"] == "Login crashes"
    assert first["fields"]["system.assignedto"] == "Ann <ann@example.com>"
    assert first["project"] == {"id": "proj-id", "name": "proj-id"}
    paged = call(http, "POST", url, json={"searchText": "CRASH", "$top": 1, "$skip": 1}).json()
    assert paged["count"] == 2
    assert [r["fields"]["system.id"] for r in paged["results"]] == ["3"]
    assert call(http, "POST", url, json={"searchText": "crash", "$top": 1001}).status_code == 400
    assert call(http, "POST", url, json={"searchText": " "}).status_code == 400


def test_work_item_type_states(fake: FakeAzureDevOps, http: requests.Session) -> None:
    base = fake.org_url(ORG)
    bug = call(http, "GET", f"{base}proj-id/_apis/wit/workitemtypes/Bug/states").json()
    assert bug["count"] == 5
    assert [(s["name"], s["category"]) for s in bug["value"]] == [
        ("New", "Proposed"),
        ("Active", "InProgress"),
        ("Resolved", "Resolved"),
        ("Closed", "Completed"),
        ("Removed", "Removed"),
    ]
    fake.set_states(ORG, "proj-id", "Epic Thing", [("Open", "Proposed"), ("Shipped", "Completed")])
    custom = call(http, "GET", f"{base}proj-id/_apis/wit/workitemtypes/Epic%20Thing/states").json()
    assert [s["name"] for s in custom["value"]] == ["Open", "Shipped"]
    assert call(http, "GET", f"{base}proj-id/_apis/wit/workitemtypes/Nope/states").status_code == 404
    with pytest.raises(ValueError, match="category"):
        fake.set_states(ORG, "proj-id", "Bug", [("Done", "Finished")])


# ---------------------------------------------------------------------------------- service hooks


def test_subscription_lifecycle_and_delivery_with_the_shared_secret(
    fake: FakeAzureDevOps, http: requests.Session, receiver: Receiver
) -> None:
    subs_url = f"{fake.org_url(ORG)}_apis/hooks/subscriptions"
    incomplete = subscription_body(receiver.url)
    del incomplete["consumerActionId"]
    refused = call(http, "POST", subs_url, json=incomplete)
    assert refused.status_code == 400
    assert "consumerActionId" in refused.json()["message"]
    assert call(http, "POST", subs_url, json=subscription_body("")).status_code == 400

    created = call(http, "POST", subs_url, json=subscription_body(receiver.url, httpHeaders="shared-secret:s3cret"))
    assert created.status_code == 200
    sub = created.json()
    assert sub["status"] == "enabled"
    assert call(http, "GET", f"{subs_url}/{sub['id']}").json()["consumerInputs"]["url"] == receiver.url

    fake.add_work_item(ORG, 5, {"System.Title": "Some great new idea!", "System.State": "New"})
    payload = fake.update_work_item(ORG, 5, {"System.State": "Active"})
    assert len(receiver.received) == 1
    headers, body = receiver.received[0]
    assert headers["Shared-Secret"] == "s3cret"
    assert headers["Content-Type"] == "application/json; charset=utf-8"
    assert json.loads(body) == payload
    assert payload["subscriptionId"] == sub["id"]
    assert [(d.subscription_id, d.status) for d in fake.deliveries] == [(sub["id"], 202)]

    # Replays resend the same payload unchanged.
    fake.deliver(ORG, payload)
    assert json.loads(receiver.received[1][1]) == payload

    assert call(http, "DELETE", f"{subs_url}/{sub['id']}").status_code == 204
    assert call(http, "GET", f"{subs_url}/{sub['id']}").status_code == 404
    fake.update_work_item(ORG, 5, {"System.State": "Resolved"})
    assert len(receiver.received) == 2


def test_delivery_with_basic_auth_and_masked_password(
    fake: FakeAzureDevOps, http: requests.Session, receiver: Receiver
) -> None:
    subs_url = f"{fake.org_url(ORG)}_apis/hooks/subscriptions"
    body = subscription_body(receiver.url, basicAuthUsername="ado", basicAuthPassword="pw-123")
    shown = call(http, "POST", subs_url, json=body).json()
    assert shown["consumerInputs"]["basicAuthPassword"] == "********"
    assert fake.subscriptions(ORG)[0]["consumerInputs"]["basicAuthPassword"] == "pw-123"
    fake.add_work_item(ORG, 8, {})
    fake.update_work_item(ORG, 8, {"System.Title": "Renamed"})
    assert receiver.received[0][0]["Authorization"] == basic("pw-123", user="ado")


def test_a_failed_delivery_puts_the_subscription_on_probation_and_stops_deliveries(
    fake: FakeAzureDevOps, http: requests.Session, receiver: Receiver
) -> None:
    subs_url = f"{fake.org_url(ORG)}_apis/hooks/subscriptions"
    sub_id = call(http, "POST", subs_url, json=subscription_body(receiver.url)).json()["id"]
    fake.add_work_item(ORG, 9, {})

    receiver.status = 503  # transient: Azure DevOps retries, no probation
    fake.update_work_item(ORG, 9, {"System.Title": "a"})
    assert fake.subscriptions(ORG)[0]["status"] == "enabled"

    receiver.status = 500  # enduring failure: probation, and new events are lost
    fake.update_work_item(ORG, 9, {"System.Title": "b"})
    assert call(http, "GET", f"{subs_url}/{sub_id}").json()["status"] == "onProbation"
    receiver.status = 200
    fake.update_work_item(ORG, 9, {"System.Title": "c"})
    assert len(receiver.received) == 2

    for status in ("disabledByUser", "disabledBySystem"):
        fake.set_subscription_status(sub_id, status)
        fake.update_work_item(ORG, 9, {"System.Title": status})
        assert len(receiver.received) == 2
    fake.set_subscription_status(sub_id, "enabled")
    fake.update_work_item(ORG, 9, {"System.Title": "d"})
    assert len(receiver.received) == 3


def test_deliveries_never_leave_loopback(fake: FakeAzureDevOps, http: requests.Session) -> None:
    subs_url = f"{fake.org_url(ORG)}_apis/hooks/subscriptions"
    call(http, "POST", subs_url, json=subscription_body("http://evil.example/hook"))
    fake.add_work_item(ORG, 10, {})
    fake.update_work_item(ORG, 10, {"System.Title": "x"})
    (delivery,) = fake.deliveries
    assert delivery.status is None
    assert delivery.error is not None and "loopback" in delivery.error


def test_update_payload_shape(fake: FakeAzureDevOps) -> None:
    fake.add_work_item(ORG, 5, {"System.Title": "Idea", "System.State": "New", "System.Reason": "New defect"})
    first = fake.update_work_item(
        ORG, 5, {"System.State": "Active", "System.AssignedTo": "Jamal Hartnett <fabrikamfiber4@hotmail.com>"}
    )
    assert set(first) >= {
        "id", "eventType", "publisherId", "message", "detailedMessage", "resource", "resourceVersion",
        "resourceContainers", "createdDate", "subscriptionId", "notificationId",
    }  # fmt: skip
    assert (first["eventType"], first["publisherId"], first["resourceVersion"]) == ("workitem.updated", "tfs", "1.0")
    resource = first["resource"]
    assert (resource["id"], resource["workItemId"], resource["rev"]) == (2, 5, 2)
    changed = resource["fields"]
    assert changed["System.State"] == {"oldValue": "New", "newValue": "Active"}
    assert changed["System.AssignedTo"] == {"newValue": "Jamal Hartnett <fabrikamfiber4@hotmail.com>"}
    assert changed["System.Rev"] == {"oldValue": 1, "newValue": 2}
    assert "System.Title" not in changed
    assert resource["revision"]["fields"]["System.State"] == "Active"
    assert resource["revision"]["id"] == 5
    containers = first["resourceContainers"]
    assert containers["collection"] == {"id": HOST_ID, "baseUrl": fake.org_url(ORG)}
    assert containers["project"]["id"] == "proj-id"

    second = fake.update_work_item(ORG, 5, {"System.AssignedTo": None})
    assert second["resource"]["fields"]["System.AssignedTo"] == {
        "oldValue": "Jamal Hartnett <fabrikamfiber4@hotmail.com>"
    }
    assert second["notificationId"] > first["notificationId"]
    assert second["id"] != first["id"]
    dates = [p["resource"]["fields"]["System.ChangedDate"]["newValue"] for p in (first, second)]
    assert dates[0] < dates[1]
    assert fake.work_item(ORG, 5)["rev"] == 3
    assert [u["rev"] for u in fake.updates(ORG, 5)] == [2, 3]


# ---------------------------------------------------------------------------------------- WIQL, batch


def test_wiql_by_ids_and_changed_date(fake: FakeAzureDevOps, http: requests.Session) -> None:
    for work_item_id in (3, 1, 2, 4):
        fake.add_work_item(ORG, work_item_id, {})
    cutoff = fake.work_item(ORG, 4)["fields"]["System.ChangedDate"]
    fake.update_work_item(ORG, 2, {"System.State": "Active"})
    fake.update_work_item(ORG, 3, {"System.State": "Active"})
    url = f"{fake.org_url(ORG)}_apis/wit/wiql"

    def ids(query: str, **params: str) -> list[int]:
        answer = call(http, "POST", url, json={"query": query}, params=params)
        assert answer.status_code == 200, answer.text
        assert answer.json()["queryType"] == "flat"
        return [w["id"] for w in answer.json()["workItems"]]

    assert ids("SELECT [System.Id] FROM WorkItems") == [1, 2, 3, 4]
    assert ids("select [System.Id] from workitems where [System.Id] in (4, 1, 3)") == [1, 3, 4]
    query = f"SELECT [System.Id] FROM WorkItems WHERE [System.Id] IN (1, 2, 3) AND [System.ChangedDate] > '{cutoff}'"
    assert ids(query, timePrecision="true") == [2, 3]
    assert ids("SELECT [System.Id] FROM WorkItems WHERE [System.ChangedDate] > '2000-01-01'") == [1, 2, 3, 4]

    no_precision = call(http, "POST", url, json={"query": query})
    assert no_precision.status_code == 400
    assert "You cannot supply a time with the date" in no_precision.json()["message"]
    assert call(http, "POST", url, json={"query": "DELETE everything"}).status_code == 400
    assert fake.count("POST", r"/_apis/wit/wiql$") == 6


def test_workitemsbatch_limit_and_error_policy(fake: FakeAzureDevOps, http: requests.Session) -> None:
    fake.add_work_item(ORG, 1, {"System.Title": "one"})
    fake.add_work_item(ORG, 2, {"System.Title": "two"})
    url = f"{fake.org_url(ORG)}_apis/wit/workitemsbatch"
    too_many = call(http, "POST", url, json={"ids": list(range(1, 202))})
    assert too_many.status_code == 400
    assert too_many.json()["message"] == "VS403474: You requested 201 work items which exceeds the limit of 200"

    omitted = call(http, "POST", url, json={"ids": [2, 99, 1], "fields": ["System.Title"], "errorPolicy": "omit"})
    assert omitted.status_code == 200
    body = omitted.json()
    assert body["count"] == 3
    assert body["value"][1] is None
    assert [v["fields"] for v in (body["value"][0], body["value"][2])] == [
        {"System.Title": "two"},
        {"System.Title": "one"},
    ]
    failed = call(http, "POST", url, json={"ids": [1, 99]})
    assert failed.status_code == 404
    assert failed.json()["message"].startswith("TF401232: Work item 99 ")


# -------------------------------------------------------------------------------------------- faults


def test_fail_next_answers_instead_of_the_real_response(fake: FakeAzureDevOps, http: requests.Session) -> None:
    fake.add_work_item(ORG, 1, {})
    url = f"{fake.org_url(ORG)}_apis/wit/workitems/1"
    fake.fail_next("GET", r"/_apis/wit/workitems/\d+$", 429, headers={"Retry-After": "1"}, count=2)
    fake.fail_next("*", r"/workitems/", 503, body={"message": "down"})
    first, second, third, fourth = (call(http, "GET", url) for _ in range(4))
    assert (first.status_code, first.headers["Retry-After"]) == (429, "1")
    assert second.status_code == 429
    assert (third.status_code, third.json()) == (503, {"message": "down"})
    assert fourth.status_code == 200
    assert fake.count("GET", r"/workitems/1$") == 4
    assert [r.status for r in fake.requests] == [429, 429, 503, 200]

    fake.fail_next("GET", r"/workitems/", 203, headers={"Content-Type": "text/html"}, body="<html>sign in</html>")
    assert call(http, "GET", url).headers["Content-Type"] == "text/html"
    fake.reset_log()
    assert fake.requests == []


def test_set_delay_does_not_block_other_requests_and_max_concurrent(
    fake: FakeAzureDevOps, http: requests.Session
) -> None:
    lookup = fake.settings_env()["ADO_ACCOUNT_LOOKUP_URL"] % HOST_ID
    fake.set_delay(r"^/_apis/resourceareas/", 0.5)
    fake.set_delay(r"/_apis/wit/workitems/", 0.05)  # shorter: it must not wait for the lookups' delays
    fake.add_work_item(ORG, 1, {})

    def get(_: int) -> int:
        with requests.Session() as session:
            session.trust_env = False
            return session.get(lookup, headers=LOOKUP, timeout=5).status_code

    def lookups_in_flight() -> int:
        return sum(1 for r in fake.requests if r.path.startswith("/_apis/resourceareas/") and r.ended is None)

    with ThreadPoolExecutor(max_workers=5) as pool:
        pending = [pool.submit(get, i) for i in range(5)]
        wait_for(lambda: fake.count("GET", r"^/_apis/resourceareas/") == 5, seconds=5, what="the five lookups")
        assert call(http, "GET", f"{fake.org_url(ORG)}_apis/wit/workitems/1").status_code == 200
        # Answered, after its own delay, while all five delayed lookups were still held: neither the
        # server nor the lock nor the other delays held it up.
        assert lookups_in_flight() == 5
        assert [p.result() for p in pending] == [200] * 5
    assert lookups_in_flight() == 0
    assert fake.max_concurrent(r"^/_apis/resourceareas/") == 5  # all five were held at the same time
    assert fake.max_concurrent(r"/_apis/wit/") == 1

    fake.clear_faults()
    fake.reset_log()
    for _ in range(3):
        assert http.get(lookup, headers=LOOKUP, timeout=5).status_code == 200  # one after another
    assert fake.max_concurrent(r"^/_apis/resourceareas/") == 1
