"""The Sentry fake itself, exercised over HTTP with plain `requests`, as the app will reach it, with a tiny
loopback receiver standing in for the app's webhook and UI component endpoints."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from requests.structures import CaseInsensitiveDict
from werkzeug.wrappers import Request, Response

from devtools.fakes import FakeSentry
from devtools.fakes.http import LoopbackServer
from tests.helpers import FakeClock, wait_for

ORG = "acme"
APP = "boards-sync"
CLIENT_ID = "client-id-1"
SECRET = "client-secret-1"
USER = 7  # a member of ORG
ISSUE = "1001"


def signature(body: bytes, secret: str = SECRET) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class Receiver(LoopbackServer):
    """The app on loopback, a loopback server like the fakes (its `requests` are what it received): webhook
    POSTs get `status`, other paths the JSON set in `answers`."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.RLock()
        self.status = 202
        self.answers: dict[str, Any] = {}
        self.hold: threading.Event | None = None  # when set, requests wait for it (to make Sentry time out)

    @property
    def url(self) -> str:
        return f"{self.base_url}/api/sentry/webhook"

    def _dispatch(self, request: Request) -> Response:
        if self.hold is not None:
            self.hold.wait(timeout=5)
        if request.path in self.answers:
            return Response(json.dumps(self.answers[request.path]), content_type="application/json")
        return Response(b"{}", status=self.status, content_type="application/json")

    def _internal_error(self, exc: Exception) -> Response:
        return Response(repr(exc), status=500)

    def webhooks(self) -> list[tuple[CaseInsensitiveDict[str], bytes]]:
        return [(r.headers, r.body) for r in self.requests if r.path == "/api/sentry/webhook"]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as server:
        yield server


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def fake(receiver: Receiver, clock: FakeClock) -> Iterator[FakeSentry]:
    with FakeSentry(clock=clock) as server:
        server.add_app(APP, CLIENT_ID, SECRET, receiver.url, ["event:write", "member:read"])
        server.add_member(ORG, USER, "Dana.Lee@acme.example", "Dana Lee")
        server.add_member(ORG, 8, "sam@acme.example", "Sam Roe")
        server.add_issue(ORG, ISSUE, "ZeroDivisionError: division by zero", "backend")
        yield server


@pytest.fixture
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        session.trust_env = False  # loopback only: never through a proxy from the environment
        yield session


def exchange(fake: FakeSentry, http: requests.Session, uuid: str, **body: str) -> requests.Response:
    url = f"{fake.base_url}/api/0/sentry-app-installations/{uuid}/authorizations/"
    payload = {"grant_type": "authorization_code", "client_id": CLIENT_ID, "client_secret": SECRET, **body}
    return http.post(url, json=payload, timeout=5)


def installed(fake: FakeSentry, http: requests.Session, receiver: Receiver) -> tuple[str, dict[str, Any]]:
    """Install the app, exchange the code from installation.created; the uuid and the token pair."""
    uuid = fake.install(APP, ORG, by_user=USER)
    code = json.loads(receiver.webhooks()[-1][1])["data"]["installation"]["code"]
    answer = exchange(fake, http, uuid, code=code)
    assert answer.status_code == 201, answer.text
    return uuid, answer.json()


def api(http: requests.Session, method: str, url: str, token: str, **kwargs: Any) -> requests.Response:
    return http.request(method, url, headers={"Authorization": f"Bearer {token}"}, timeout=5, **kwargs)


def issue_url(fake: FakeSentry, org: str = ORG, issue: str = ISSUE) -> str:
    return f"{fake.base_url}/api/0/organizations/{org}/issues/{issue}/"


# ----------------------------------------------------------------------------------- install and tokens


def test_installation_created_is_signed_over_the_raw_body_and_its_code_works_once(
    fake: FakeSentry, http: requests.Session, receiver: Receiver
) -> None:
    uuid = fake.install(APP, ORG, by_user=USER)
    [(headers, body)] = receiver.webhooks()
    assert headers["Sentry-Hook-Resource"] == "installation"
    assert headers["Sentry-Hook-Signature"] == signature(body)
    assert headers["Sentry-Hook-Signature"] != signature(json.dumps(json.loads(body)).encode())  # re-serialized
    assert headers["Sentry-Hook-Timestamp"] == str(int(fake.clock.now()))
    assert headers["Request-ID"]
    payload = json.loads(body)
    assert payload["action"] == "created"
    assert payload["installation"] == {"uuid": uuid}
    installation = payload["data"]["installation"]
    assert installation["uuid"] == uuid and installation["organization"]["slug"] == ORG
    assert installation["app"]["slug"] == APP and installation["status"] == "installed"
    assert payload["actor"] == {"type": "user", "id": USER, "name": "Dana Lee"}
    [webhook] = fake.webhooks
    assert (webhook.status, webhook.resource, webhook.action, webhook.body) == (202, "installation", "created", body)

    wrong = exchange(fake, http, uuid, code=installation["code"], client_secret="guess")
    assert (wrong.status_code, wrong.json()) == (401, {"detail": "Invalid Client ID / Secret pair"})
    first = exchange(fake, http, uuid, code=installation["code"])
    assert first.status_code == 201
    pair = first.json()
    assert pair["token"] and pair["refreshToken"] and pair["expiresAt"].endswith("Z")
    again = exchange(fake, http, uuid, code=installation["code"])
    assert (again.status_code, again.json()) == (401, {"detail": "Could not find grant for given code"})
    assert api(http, "GET", issue_url(fake), pair["token"]).status_code == 200


def test_refresh_rotates_the_pair_and_spends_the_old_one(
    fake: FakeSentry, http: requests.Session, receiver: Receiver
) -> None:
    uuid, old = installed(fake, http, receiver)
    camel = exchange(fake, http, uuid, grant_type="refresh_token", refreshToken=old["refreshToken"])
    assert (camel.status_code, camel.json()) == (400, {"refresh_token": ["This field is required."]})

    new = exchange(fake, http, uuid, grant_type="refresh_token", refresh_token=old["refreshToken"])
    assert new.status_code == 201
    pair = new.json()
    assert pair["token"] != old["token"] and pair["refreshToken"] != old["refreshToken"]
    assert fake.tokens(uuid) == [pair["token"]]
    spent = exchange(fake, http, uuid, grant_type="refresh_token", refresh_token=old["refreshToken"])
    assert (spent.status_code, spent.json()) == (401, {"detail": "Given refresh token does not exist"})
    assert api(http, "GET", issue_url(fake), old["token"]).json() == {"detail": "Invalid token"}
    assert api(http, "GET", issue_url(fake), pair["token"]).status_code == 200


def test_tokens_expire_after_eight_hours_static_tokens_never(
    fake: FakeSentry, http: requests.Session, receiver: Receiver, clock: FakeClock
) -> None:
    uuid, pair = installed(fake, http, receiver)
    fake.add_static_token(ORG, "internal-token", APP)
    clock.advance(8 * 3600 - 1)
    assert api(http, "GET", issue_url(fake), pair["token"]).status_code == 200
    clock.advance(1)
    expired = api(http, "GET", issue_url(fake), pair["token"])
    assert (expired.status_code, expired.json()) == (401, {"detail": "Token expired"})
    assert api(http, "GET", issue_url(fake), "never-issued").json() == {"detail": "Invalid token"}
    assert http.get(issue_url(fake), timeout=5).status_code == 401  # no credential at all

    renewed = exchange(fake, http, uuid, grant_type="refresh_token", refresh_token=pair["refreshToken"]).json()
    assert api(http, "GET", issue_url(fake), renewed["token"]).status_code == 200
    fake.expire_token(renewed["token"])
    assert api(http, "GET", issue_url(fake), renewed["token"]).status_code == 401
    clock.advance(365 * 24 * 3600)
    assert api(http, "GET", issue_url(fake), "internal-token").status_code == 200


def test_uninstall_sends_installation_deleted_and_kills_the_tokens(
    fake: FakeSentry, http: requests.Session, receiver: Receiver
) -> None:
    uuid, pair = installed(fake, http, receiver)
    fake.uninstall(uuid, by_user=USER)
    headers, body = receiver.webhooks()[-1]
    assert json.loads(body)["action"] == "deleted" and headers["Sentry-Hook-Signature"] == signature(body)
    assert api(http, "GET", issue_url(fake), pair["token"]).json() == {"detail": "Invalid token"}


# ---------------------------------------------------------------------------------------------- issues


def test_issue_get_and_put_check_organization_scope_and_input(
    fake: FakeSentry, http: requests.Session, receiver: Receiver
) -> None:
    _, pair = installed(fake, http, receiver)
    token = pair["token"]
    issue = api(http, "GET", issue_url(fake), token).json()
    assert issue["id"] == ISSUE and issue["shortId"] == "BACKEND-1" and issue["status"] == "unresolved"
    assert issue["assignedTo"] is None and issue["project"]["slug"] == "backend"
    assert issue["permalink"] == f"{fake.base_url}/organizations/{ORG}/issues/{ISSUE}/"

    done = api(http, "PUT", issue_url(fake), token, json={"status": "resolved", "assignedTo": "dana.lee@ACME.example"})
    assert done.status_code == 200
    assert done.json()["status"] == "resolved"
    assert done.json()["assignedTo"] == {
        "type": "user",
        "id": "7",
        "name": "Dana Lee",
        "email": "Dana.Lee@acme.example",
    }

    for body, errors in (
        ({"status": "closed"}, {"status": ['"closed" is not a valid choice.']}),
        ({"assignedTo": "user:99"}, {"assignedTo": ["Cannot assign to non-team member"]}),
        ({"status": "unresolved", "assignedTo": "nobody@acme.example"}, {"assignedTo": ["Unknown actor input"]}),
    ):
        refused = api(http, "PUT", issue_url(fake), token, json=body)
        assert (refused.status_code, refused.json()) == (400, errors)
    assert fake.issue(ORG, ISSUE)["status"] == "resolved"  # the refused PUTs changed nothing
    assert fake.issue(ORG, ISSUE)["assignedTo"]["id"] == "7"
    assert api(http, "GET", issue_url(fake, issue="404"), token).status_code == 404
    assert api(http, "PUT", issue_url(fake), token, data="status=resolved").status_code == 415

    fake.add_issue("globex", "2002", "Elsewhere", "web")
    other = api(http, "GET", issue_url(fake, org="globex", issue="2002"), token)
    assert (other.status_code, other.json()) == (403, {"detail": "You do not have permission to perform this action."})
    assert api(http, "GET", issue_url(fake, org="nowhere"), token).status_code == 404
    assert api(http, "GET", issue_url(fake).rstrip("/"), token).status_code == 404  # Sentry's paths end with /


def test_put_needs_event_write(fake: FakeSentry, http: requests.Session, receiver: Receiver) -> None:
    fake.add_app("reader", "client-2", "secret-2", receiver.url, ["event:read"])
    fake.add_static_token(ORG, "read-only", "reader")
    assert api(http, "GET", issue_url(fake), "read-only").status_code == 200
    assert api(http, "PUT", issue_url(fake), "read-only", json={"status": "resolved"}).status_code == 403
    assert api(http, "GET", f"{fake.base_url}/api/0/organizations/{ORG}/members/", "read-only").status_code == 403
    assert fake.issue(ORG, ISSUE)["status"] == "unresolved"


def test_an_api_change_echoes_with_the_application_actor(
    fake: FakeSentry, http: requests.Session, receiver: Receiver
) -> None:
    app_uuid = fake.add_app(APP, CLIENT_ID, SECRET, receiver.url, ["event:write", "member:read"], name="Boards")
    _, pair = installed(fake, http, receiver)
    before = len(fake.webhooks)
    api(http, "PUT", issue_url(fake), pair["token"], json={"status": "resolvedInNextRelease", "assignedTo": "user:7"})
    wait_for(lambda: len(fake.webhooks) == before + 2, 10, "the issue webhooks")
    resolved, assigned = (w.payload for w in fake.webhooks[before:])
    assert [w.headers["Sentry-Hook-Resource"] for w in fake.webhooks[before:]] == ["issue", "issue"]
    assert all(w.headers["Sentry-Hook-Signature"] == signature(w.body) for w in fake.webhooks[before:])
    assert resolved["action"] == "resolved" and resolved["data"]["resolution_type"] == "in_next_release"
    assert resolved["data"]["issue"]["statusDetails"] == {"inNextRelease": True}
    assert resolved["data"]["issue"]["web_url"] == f"{fake.base_url}/organizations/{ORG}/issues/{ISSUE}/"
    assert assigned["action"] == "assigned"
    assert assigned["data"]["assignee"] == {
        "type": "user",
        "name": "Dana Lee",
        "id": 7,
        "email": "Dana.Lee@acme.example",
    }
    assert resolved["actor"] == assigned["actor"] == {"type": "application", "id": app_uuid, "name": "Boards"}

    unassigned = api(http, "PUT", issue_url(fake), pair["token"], json={"assignedTo": ""})
    assert (unassigned.status_code, unassigned.json()["assignedTo"]) == (200, None)
    api(http, "PUT", issue_url(fake), pair["token"], json={"status": "unresolved"})
    api(http, "PUT", issue_url(fake), pair["token"], json={"status": "resolved"})
    wait_for(lambda: len(fake.webhooks) == before + 3, 10, "issue.resolved")
    # Neither the unassign nor the unresolve sent anything: the organization lacks `webhooks-unresolved`.
    assert [w.action for w in fake.webhooks[before:]] == ["resolved", "assigned", "resolved"]
    fake.set_feature(ORG, "webhooks-unresolved")
    api(http, "PUT", issue_url(fake), pair["token"], json={"status": "unresolved"})
    wait_for(lambda: len(fake.webhooks) == before + 4, 10, "issue.unresolved")
    assert fake.webhooks[-1].action == "unresolved"


def test_a_change_in_sentrys_ui_has_the_user_actor(
    fake: FakeSentry, http: requests.Session, receiver: Receiver
) -> None:
    installed(fake, http, receiver)
    fake.add_app("modern", "client-3", "secret-3", receiver.url, events=["issue.archived", "issue.resolved"])
    fake.install("modern", ORG, by_user=USER)
    before = len(fake.webhooks)
    fake.change_issue(ORG, ISSUE, status="ignored", assigned_to=8, by_user=USER)
    hooks = fake.webhooks[before:]
    assert [(w.installation != hooks[0].installation, w.action) for w in hooks] == [
        (False, "ignored"),
        (True, "archived"),  # the app that subscribed to the new name
        (False, "assigned"),
        (True, "assigned"),
    ]
    assert {json.dumps(w.payload["actor"]) for w in hooks} == {
        json.dumps({"type": "user", "id": 7, "name": "Dana Lee"})
    }
    fake.change_issue(ORG, ISSUE, status="resolved", by_user=None)  # Sentry's own automation
    assert fake.webhooks[-1].payload["actor"] == {"type": "application", "id": "sentry", "name": "Sentry"}


def test_comments_send_comment_webhooks_to_subscribed_apps(
    fake: FakeSentry, http: requests.Session, receiver: Receiver
) -> None:
    uuid, _ = installed(fake, http, receiver)
    fake.add_app("issues-only", "client-4", "secret-4", receiver.url, events=["issue"])
    fake.install("issues-only", ORG)
    before = len(fake.webhooks)
    comment_id = fake.add_comment(ORG, ISSUE, "Looks like a regression", by_user=8)
    fake.edit_comment(ORG, ISSUE, comment_id, "Looks like a regression in 2.3")
    fake.delete_comment(ORG, ISSUE, comment_id)
    hooks = fake.webhooks[before:]
    assert [(w.installation, w.resource, w.action) for w in hooks] == [
        (uuid, "comment", "created"),
        (uuid, "comment", "updated"),
        (uuid, "comment", "deleted"),
    ]
    data = hooks[1].payload["data"]
    assert data["comment"] == "Looks like a regression in 2.3" and data["comment_id"] == int(comment_id)
    assert (data["issue_id"], data["project_slug"]) == (int(ISSUE), "backend") and data["timestamp"].endswith("Z")
    assert hooks[0].payload["actor"] == {"type": "user", "id": 8, "name": "Sam Roe"}


def test_app_waiting_for_install_verification_gets_no_issue_webhooks(
    fake: FakeSentry, http: requests.Session, receiver: Receiver
) -> None:
    fake.add_app(APP, CLIENT_ID, SECRET, receiver.url, ["event:write"], verify_install=True)
    fake.set_feature(ORG, "webhooks-unresolved")
    uuid, pair = installed(fake, http, receiver)
    assert fake.installation(uuid)["status"] == "pending"
    fake.change_issue(ORG, ISSUE, status="resolved", by_user=USER)
    assert len(fake.webhooks) == 1  # installation.created only
    url = f"{fake.base_url}/api/0/sentry-app-installations/{uuid}/"
    assert api(http, "PUT", url, pair["token"], json={"status": "installed"}).json()["status"] == "installed"
    fake.change_issue(ORG, ISSUE, status="unresolved", by_user=USER)
    assert fake.webhooks[-1].action == "unresolved"


# ------------------------------------------------------------------------- members, external issues, UI


def test_member_search_by_email(fake: FakeSentry, http: requests.Session, receiver: Receiver) -> None:
    _, pair = installed(fake, http, receiver)
    url = f"{fake.base_url}/api/0/organizations/{ORG}/members/"

    def search(query: str) -> list[dict[str, Any]]:
        answer = api(http, "GET", url, pair["token"], params={"query": query})
        assert answer.status_code == 200
        return answer.json()

    [dana] = search("email:dana.lee@acme.example")
    assert dana["user"] == {"id": "7", "name": "Dana Lee", "username": "Dana.Lee@acme.example",
                            "email": "Dana.Lee@acme.example", "isActive": True}  # fmt: skip
    assert search("email:nobody@acme.example") == []
    assert [m["user"]["id"] for m in search('email:"sam@acme.example" email:dana.lee@acme.example')] == ["7", "8"]
    assert [m["user"]["id"] for m in search("roe")] == ["8"]
    assert search("team:backend") == []  # a key Sentry does not know matches nothing
    assert len(api(http, "GET", url, pair["token"]).json()) == 2


def test_external_issues_link_update_and_delete(fake: FakeSentry, http: requests.Session, receiver: Receiver) -> None:
    uuid, pair = installed(fake, http, receiver)
    url = f"{fake.base_url}/api/0/sentry-app-installations/{uuid}/external-issues/"
    body = {"issueId": int(ISSUE), "webUrl": "https://dev.azure.com/f/p/_workitems/edit/42", "project": "Web",
            "identifier": "42"}  # fmt: skip
    created = api(http, "POST", url, pair["token"], json=body).json()
    assert created == {"id": created["id"], "issueId": ISSUE, "serviceType": APP, "displayName": "Web#42",
                       "webUrl": body["webUrl"]}  # fmt: skip
    moved = api(http, "POST", url, pair["token"], json={**body, "identifier": "43"}).json()
    assert moved["id"] == created["id"] and fake.external_issues(uuid) == [moved]  # one link per issue and app

    assert api(http, "POST", url, pair["token"], json={**body, "issueId": 404}).status_code == 404
    missing = api(http, "POST", url, pair["token"], json={"issueId": int(ISSUE), "webUrl": body["webUrl"]})
    assert missing.json() == {"project": ["This field is required."], "identifier": ["This field is required."]}
    fake.add_app("other", "client-5", "secret-5", receiver.url)
    fake.add_static_token(ORG, "other-token", "other")
    assert api(http, "POST", url, "other-token", json=body).status_code == 403
    refused = api(http, "DELETE", f"{url}{created['id']}/", pair["token"])  # event:write is not enough
    assert (refused.status_code, refused.json()) == (
        403,
        {"detail": "You do not have permission to perform this action."},
    )
    assert len(fake.external_issues(uuid)) == 1
    fake.set_scopes(uuid, ["event:admin", "member:read"])
    assert api(http, "DELETE", f"{url}{created['id']}/", pair["token"]).status_code == 204
    assert api(http, "DELETE", f"{url}{created['id']}/", pair["token"]).status_code == 404
    assert fake.external_issues(uuid) == []


def test_issue_link_and_select_requests_are_signed_as_sentry_signs_them(
    fake: FakeSentry, http: requests.Session, receiver: Receiver
) -> None:
    uuid, _ = installed(fake, http, receiver)
    receiver.answers["/api/sentry/issue-link/create"] = {"webUrl": "https://ado.example/42", "project": "Web",
                                                         "identifier": "42"}  # fmt: skip
    receiver.answers["/api/sentry/options/projects"] = [{"label": "Web", "value": "web-id"}]

    answer = fake.link_issue(uuid, ISSUE, "/api/sentry/issue-link/create", {"title": "Boom"}, by_user=USER)
    assert answer.status_code == 200
    link = receiver.requests[-1]
    assert (link.method, link.path) == ("POST", "/api/sentry/issue-link/create")
    assert link.headers["Sentry-App-Signature"] == signature(link.body)
    assert link.json() == {
        "fields": {"title": "Boom"},
        "issueId": int(ISSUE),
        "installationId": uuid,
        "webUrl": f"{fake.base_url}/organizations/{ORG}/issues/{ISSUE}/",
        "project": {"slug": "backend", "id": int(fake.issue(ORG, ISSUE)["project"]["id"])},
        "actor": {"type": "user", "id": USER, "name": "Dana Lee"},
    }
    assert [e["displayName"] for e in fake.external_issues(uuid)] == ["Web#42"]

    options = fake.select_options(uuid, "/api/sentry/options/projects", query="we", dependent_data={"a": 1})
    assert options.json() == [{"label": "Web", "value": "web-id"}]
    select = receiver.requests[-1]
    assert (select.method, select.body, select.headers["Sentry-App-Signature"]) == ("GET", b"", signature(b""))
    assert select.args == {"installationId": uuid, "query": "we", "dependentData": '{"a": 1}'}

    raw = fake.call_app("/api/sentry/options/projects", "GET", query={"installationId": uuid})
    assert raw.json() == [{"label": "Web", "value": "web-id"}]


# ---------------------------------------------------------------------------------------------- faults


def test_rate_limits_down_and_fail_next(fake: FakeSentry, http: requests.Session, receiver: Receiver) -> None:
    _, pair = installed(fake, http, receiver)
    fake.fail_next("PUT", r"/issues/", 429, headers={"Retry-After": "30"}, body={"detail": "slow down"})
    limited = api(http, "PUT", issue_url(fake), pair["token"], json={"status": "resolved"})
    assert (limited.status_code, limited.headers["Retry-After"]) == (429, "30")
    assert fake.issue(ORG, ISSUE)["status"] == "unresolved"
    assert api(http, "PUT", issue_url(fake), pair["token"], json={"status": "resolved"}).status_code == 200

    fake.rate_limit_next("*", r"/members/", reset_in=5)
    sentry_429 = api(http, "GET", f"{fake.base_url}/api/0/organizations/{ORG}/members/", pair["token"])
    assert sentry_429.status_code == 429
    assert sentry_429.headers["X-Sentry-Rate-Limit-Reset"] == str(int(fake.clock.now()) + 5)
    assert sentry_429.json()["detail"].startswith("You are attempting to use this endpoint too frequently.")

    fake.fail_next("*", r"/authorizations/", 503, count=2)
    assert [exchange(fake, http, "x").status_code for _ in range(3)] == [503, 503, 404]  # then: no such install

    fake.set_down(True)
    assert api(http, "GET", issue_url(fake), pair["token"]).status_code == 503
    assert exchange(fake, http, "x").status_code == 503
    fake.set_down(False)
    assert api(http, "GET", issue_url(fake), pair["token"]).status_code == 200
    assert fake.count("PUT", r"/issues/1001/$") == 2


def test_webhooks_stay_on_loopback_and_time_out_after_one_second(
    fake: FakeSentry, http: requests.Session, receiver: Receiver
) -> None:
    fake.add_app("remote", "client-6", "secret-6", "https://hooks.example.com/sentry")
    fake.install("remote", ORG)
    [refused] = fake.webhooks
    assert (refused.status, refused.error) == (None, "refused: the fake delivers only to loopback addresses")
    assert receiver.requests == []

    receiver.hold = threading.Event()
    fake.webhook_timeout = 0.2  # Sentry waits 1 s; a held receiver shows the same outcome sooner
    try:
        fake.install(APP, ORG)
    finally:
        receiver.hold.set()
    assert (fake.webhooks[-1].status, fake.webhooks[-1].error) == (None, "timeout")


# ---------------------------------------------------------------------------------- scopes and tokens

NO_PERMISSION_BODY = {"detail": "You do not have permission to perform this action."}


def _route(fake: FakeSentry, uuid: str, name: str) -> tuple[str, str, dict[str, Any] | None]:
    """One route the fake serves, as (method, url, json body)."""
    installation = f"{fake.base_url}/api/0/sentry-app-installations/{uuid}/"
    link = {"issueId": int(ISSUE), "webUrl": "https://dev.azure.com/f/p/_workitems/edit/42", "project": "Web",
            "identifier": "42"}  # fmt: skip
    return {
        "get issue": ("GET", issue_url(fake), None),
        "put issue": ("PUT", issue_url(fake), {"status": "resolved"}),
        "members": ("GET", f"{fake.base_url}/api/0/organizations/{ORG}/members/", None),
        "link": ("POST", f"{installation}external-issues/", link),
        "unlink": ("DELETE", f"{installation}external-issues/1/", None),
        "verify": ("PUT", installation, {"status": "installed"}),
    }[name]


# Each route, a grant that lacks what its permission class asks for (403), and one that has just enough.
SCOPE_CASES = [
    ("get issue", ["member:read"], ["event:read"]),
    ("put issue", ["event:read", "member:read"], ["event:write"]),
    ("put issue", ["event:read"], ["event:admin"]),
    ("members", ["event:admin"], ["member:read"]),
    ("link", ["member:read", "org:read"], ["event:read"]),
    ("unlink", ["event:read", "event:write"], ["event:admin"]),
]


@pytest.mark.parametrize(("route", "lacking", "enough"), SCOPE_CASES)
def test_each_route_answers_403_without_the_scope_its_permission_class_asks_for(
    fake: FakeSentry, http: requests.Session, receiver: Receiver, route: str, lacking: list[str], enough: list[str]
) -> None:
    uuid, pair = installed(fake, http, receiver)
    method, url, body = _route(fake, uuid, route)
    fake.set_scopes(uuid, lacking)
    refused = api(http, method, url, pair["token"], json=body)
    assert (refused.status_code, refused.json()) == (403, NO_PERMISSION_BODY)
    assert fake.issue(ORG, ISSUE)["status"] == "unresolved" and fake.external_issues(uuid) == []  # nothing done
    fake.set_scopes(uuid, enough)
    if route == "unlink":
        _, link_url, link = _route(fake, uuid, "link")
        fake.set_scopes(uuid, [*enough, "event:write"])
        linked = api(http, "POST", link_url, pair["token"], json=link).json()
        url = f"{link_url}{linked['id']}/"
    assert api(http, method, url, pair["token"], json=body).status_code in (200, 201, 204)


def test_the_token_carries_the_installations_grant_and_verifying_the_install_needs_no_scope(
    fake: FakeSentry, http: requests.Session, receiver: Receiver
) -> None:
    fake.add_app(APP, CLIENT_ID, SECRET, receiver.url, ["event:read", "event:write", "member:read"])
    uuid = fake.install(APP, ORG, by_user=USER, scopes=["event:read"])
    code = json.loads(receiver.webhooks()[-1][1])["data"]["installation"]["code"]
    pair = exchange(fake, http, uuid, code=code).json()
    assert pair["scopes"] == ["event:read"]
    assert api(http, "GET", issue_url(fake), pair["token"]).status_code == 200
    assert api(http, "PUT", issue_url(fake), pair["token"], json={"status": "resolved"}).status_code == 403
    method, url, body = _route(fake, uuid, "verify")
    assert api(http, method, url, pair["token"], json=body).status_code == 200


def test_a_bad_or_expired_token_is_401_before_any_scope_or_lookup(
    fake: FakeSentry, http: requests.Session, receiver: Receiver
) -> None:
    uuid, pair = installed(fake, http, receiver)
    fake.set_scopes(uuid, [])  # a missing scope would be 403: authentication comes first
    for name in ("get issue", "put issue", "members", "link", "unlink", "verify"):
        method, url, body = _route(fake, uuid, name)
        assert api(http, method, url, "not-a-token", json=body).status_code == 401, name
        missing = http.request(method, url, json=body, timeout=5)
        assert (missing.status_code, missing.json()) == (
            401,
            {"detail": "Authentication credentials were not provided."},
        )
    fake.expire_token(pair["token"])
    expired = api(http, "GET", issue_url(fake), pair["token"])
    assert (expired.status_code, expired.json()) == (401, {"detail": "Token expired"})
    fake.revoke_tokens(uuid)
    refresh = exchange(fake, http, uuid, grant_type="refresh_token", refresh_token=pair["refreshToken"])
    assert refresh.status_code == 401  # revoked with its refresh token


def test_a_missing_scope_is_403_before_a_missing_issue_or_installation_is_404(
    fake: FakeSentry, http: requests.Session, receiver: Receiver
) -> None:
    uuid, pair = installed(fake, http, receiver)
    fake.set_scopes(uuid, ["member:read"])
    assert api(http, "GET", issue_url(fake, issue="999"), pair["token"]).status_code == 403
    fake.set_scopes(uuid, ["event:read"])
    assert api(http, "GET", issue_url(fake, issue="999"), pair["token"]).status_code == 404


def test_rate_limit_answers_429_with_sentrys_headers_and_no_retry_after(
    fake: FakeSentry, http: requests.Session, receiver: Receiver, clock: FakeClock
) -> None:
    _, pair = installed(fake, http, receiver)
    fake.rate_limit_next("GET", r"/issues/", reset_in=7)
    limited = api(http, "GET", issue_url(fake), pair["token"])
    assert limited.status_code == 429 and "Retry-After" not in limited.headers
    assert limited.headers["X-Sentry-Rate-Limit-Reset"] == str(int(clock.now()) + 7)  # epoch seconds
    assert limited.headers["X-Sentry-Rate-Limit-Remaining"] == "0" and limited.headers["X-Sentry-Rate-Limit-Limit"]
    assert api(http, "GET", issue_url(fake), pair["token"]).status_code == 200


def test_the_fake_imports_nothing_of_the_app() -> None:
    """Built from Sentry's behaviour, never from the app's code: no module of the fake imports `shared`."""
    import ast
    from pathlib import Path

    import devtools.fakes.sentry as package

    for path in Path(package.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            assert not [n for n in names if n == "shared" or n.startswith("shared.")], path.name


def test_notes_route_as_sentrys_group_notes_endpoints(
    fake: FakeSentry, http: requests.Session, receiver: Receiver, clock: FakeClock
) -> None:
    """`…/issues/{id}/comments/` (and `notes/`): POST needs event:write, the same text by the same user within an
    hour is refused 400, the app's note echoes as comment.created with the app as actor; PUT and DELETE find only
    the caller's own notes, and DELETE needs event:admin (getsentry/sentry group_notes*.py, GroupPermission)."""
    app_uuid = fake.add_app(APP, CLIENT_ID, SECRET, receiver.url, ["event:write"], name="Boards")
    _, pair = installed(fake, http, receiver)
    token, notes = pair["token"], f"{issue_url(fake)}comments/"
    before = len(fake.webhooks)
    added = api(http, "POST", notes, token, json={"text": "From a work item"})
    assert added.status_code == 201 and added.json()["data"] == {"text": "From a work item"}
    wait_for(lambda: len(fake.webhooks) == before + 1, 10, "comment.created")
    echo = fake.webhooks[-1]
    assert (echo.resource, echo.action) == ("comment", "created")
    assert echo.payload["actor"] == {"type": "application", "id": app_uuid, "name": "Boards"}
    again = api(http, "POST", f"{issue_url(fake)}notes/", token, json={"text": "From a work item"})
    assert (again.status_code, again.json()) == (400, {"detail": "You have already posted that comment."})
    assert api(http, "POST", notes, token, json={}).status_code == 400
    listed = api(http, "GET", notes, token).json()
    assert [n["data"]["text"] for n in listed] == ["From a work item"]
    clock.advance(3601)  # an hour later the same text is a new note
    assert api(http, "POST", notes, token, json={"text": "From a work item"}).status_code == 201
    note_id = added.json()["id"]
    assert api(http, "PUT", f"{notes}{note_id}/", token, json={"text": "Edited"}).status_code == 200
    assert api(http, "DELETE", f"{notes}{note_id}/", token).status_code == 403  # no event:admin
    person = fake.add_comment(ORG, ISSUE, "A person's", by_user=8)
    assert api(http, "PUT", f"{notes}{person}/", token, json={"text": "x"}).status_code == 404  # not the app's
    assert [n["text"] for n in fake.notes(ORG, ISSUE)][0] == "Edited"
