"""The Sentry client at the HTTP boundary (responses): every call's URL, headers and body, the error mapping,
bounded retries, no redirects, credentials only to SENTRY_URL; and the SENTRY_* settings."""

from __future__ import annotations

import json

import pytest
import requests
import responses
from responses import matchers

from shared.sentry import client as sentry_client
from shared.sentry.client import (
    MAX_ATTEMPTS,
    Member,
    SentryClient,
    SentryError,
    SentryForbidden,
    SentryNotFound,
    SentryRejected,
    SentryThrottled,
    SentryTimeout,
    SentryUnauthorized,
    SentryUnavailable,
    actor,
    send,
)
from shared.sentry.tokens import TokenGrant, obtain_tokens, parse_expires_at, token_expired
from shared.settings import SettingsError, load_settings
from tests.helpers import FakeClock

ORIGIN = "https://sentry.example.com"
UUID = "eac5a0ae-60ec-418f-9318-46dc5e7e52ec"
ISSUE_URL = f"{ORIGIN}/api/0/organizations/acme/issues/1170820242/"
AUTH_URL = f"{ORIGIN}/api/0/sentry-app-installations/{UUID}/authorizations/"
LINKS_URL = f"{ORIGIN}/api/0/sentry-app-installations/{UUID}/external-issues/"
MEMBERS_URL = f"{ORIGIN}/api/0/organizations/acme/members/"


class Tokens:
    """A token callable that counts how often it is asked and hands out a new token each time."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        return f"token-{self.calls}"


def _client(clock: FakeClock | None = None, tokens: Tokens | None = None) -> SentryClient:
    return SentryClient(ORIGIN, tokens or Tokens(), timeout=3, clock=clock or FakeClock())


def _body(call: responses.Call) -> dict:
    return json.loads(call.request.body)


@responses.activate
def test_get_issue_sends_the_bearer_token_and_asks_for_json() -> None:
    responses.get(ISSUE_URL, json={"id": "1170820242", "status": "unresolved"})
    assert _client().get_issue("acme", "1170820242") == {"id": "1170820242", "status": "unresolved"}
    request = responses.calls[0].request
    assert request.headers["Authorization"] == "Bearer token-1"
    assert request.headers["Accept"] == "application/json"


@responses.activate
def test_update_issue_puts_status_and_assignee() -> None:
    responses.put(ISSUE_URL, json={"status": "resolved"})
    client = _client()
    client.update_issue("acme", "1170820242", status="resolved")
    client.update_issue("acme", "1170820242", assigned_to=actor("42"))
    client.update_issue("acme", "1170820242", assigned_to="")
    assert [_body(c) for c in responses.calls] == [
        {"status": "resolved"},
        {"assignedTo": "user:42"},
        {"assignedTo": ""},
    ]
    assert responses.calls[0].request.headers["Content-Type"] == "application/json"


def test_update_issue_refuses_what_sentry_does_not_take() -> None:
    with pytest.raises(ValueError, match="status"):
        _client().update_issue("acme", "1", status="closed")
    with pytest.raises(ValueError, match="nothing"):
        _client().update_issue("acme", "1")


@responses.activate
def test_find_member_searches_by_email_and_takes_only_a_joined_member() -> None:
    responses.get(
        MEMBERS_URL,
        match=[matchers.query_param_matcher({"query": "email:meredith@example.com"})],
        json=[
            {"id": "5", "email": "meredith@example.com", "user": None},  # an invitation: cannot be assigned
            {"id": "6", "email": "Meredith@Example.com", "name": "Meredith", "user": {"id": "42", "name": "Meredith"}},
        ],
    )
    member = _client().find_member("acme", "meredith@example.com")
    assert member == Member(member_id="6", user_id="42", email="Meredith@Example.com", name="Meredith")


@responses.activate
def test_find_member_ignores_a_member_of_another_email() -> None:
    responses.get(MEMBERS_URL, json=[{"id": "6", "email": "someone@example.com", "user": {"id": "42"}}])
    assert _client().find_member("acme", "meredith@example.com") is None


@responses.activate
def test_link_an_external_issue_and_there_is_no_unlink_which_would_need_event_admin() -> None:
    responses.post(LINKS_URL, status=201, json={"id": "77", "issueId": "1170820242", "webUrl": "https://w/1"})
    client = _client()
    link = client.link_external_issue(
        UUID, issue_id="1170820242", web_url="https://w/1", project="Fabrikam\\Web", identifier="1"
    )
    assert not hasattr(client, "unlink_external_issue")
    assert link == "77"
    assert _body(responses.calls[0]) == {
        "issueId": 1170820242,
        "webUrl": "https://w/1",
        "project": "Fabrikam\\Web",
        "identifier": "1",
    }


@responses.activate
def test_confirm_installation_puts_installed() -> None:
    responses.put(f"{ORIGIN}/api/0/sentry-app-installations/{UUID}/", json={"status": "installed"})
    _client().confirm_installation(UUID)
    assert _body(responses.calls[0]) == {"status": "installed"}


@responses.activate
def test_the_token_callable_is_asked_for_every_request() -> None:
    responses.get(ISSUE_URL, json={})
    tokens = Tokens()
    client = _client(tokens=tokens)
    client.get_issue("acme", "1170820242")
    client.get_issue("acme", "1170820242")
    assert tokens.calls == 2
    assert [c.request.headers["Authorization"] for c in responses.calls] == ["Bearer token-1", "Bearer token-2"]


@responses.activate
def test_path_values_are_quoted_so_they_cannot_change_the_path() -> None:
    responses.get(f"{ORIGIN}/api/0/organizations/a%2Fb/issues/1%3F/", json={})
    _client().get_issue("a/b", "1?")
    assert len(responses.calls) == 1
    for bad in ("..", ".", ""):
        with pytest.raises(ValueError):
            _client().get_issue(bad, "1")


@responses.activate
def test_authorization_code_exchange() -> None:
    responses.post(
        AUTH_URL,
        status=201,
        json={"token": "tok", "refreshToken": "ref", "expiresAt": "2026-01-01T08:00:00.500000Z", "scopes": []},
    )
    grant = obtain_tokens(ORIGIN, UUID, client_id="cid", client_secret="csecret", code="c0de", timeout=3)
    assert grant == TokenGrant(token="tok", refresh_token="ref", expires_at=1767254400.5)
    assert "tok" not in repr(grant) and "ref" not in repr(grant)
    request = responses.calls[0].request
    assert "Authorization" not in request.headers  # the client id and secret authenticate, in the body
    assert _body(responses.calls[0]) == {
        "grant_type": "authorization_code",
        "code": "c0de",
        "client_id": "cid",
        "client_secret": "csecret",
    }


@responses.activate
def test_refresh_token_exchange() -> None:
    responses.post(AUTH_URL, json={"token": "t2", "refreshToken": "r2", "expiresAt": "2026-01-01T16:00:00+00:00"})
    grant = obtain_tokens(ORIGIN, UUID, client_id="cid", client_secret="cs", refresh_token="r1")
    assert (grant.token, grant.refresh_token, grant.expires_at) == ("t2", "r2", 1767283200.0)
    assert _body(responses.calls[0]) == {
        "grant_type": "refresh_token",
        "refresh_token": "r1",
        "client_id": "cid",
        "client_secret": "cs",
    }


def test_exactly_one_grant_is_given() -> None:
    with pytest.raises(ValueError):
        obtain_tokens(ORIGIN, UUID, client_id="c", client_secret="s")
    with pytest.raises(ValueError):
        obtain_tokens(ORIGIN, UUID, client_id="c", client_secret="s", code="x", refresh_token="y")


@pytest.mark.parametrize("status", [400, 401, 403])
@responses.activate
def test_a_refused_exchange_means_installing_again(status: int) -> None:
    responses.post(AUTH_URL, status=status, json={"detail": "Invalid grant"})
    with pytest.raises(SentryUnauthorized):
        obtain_tokens(ORIGIN, UUID, client_id="c", client_secret="s", code="expired")


@pytest.mark.parametrize("answer", [{}, {"token": ""}, {"token": "t", "expiresAt": "tomorrow"}, ["t"]])
@responses.activate
def test_an_exchange_answer_without_a_usable_token_is_an_error(answer: object) -> None:
    responses.post(AUTH_URL, json=answer)
    with pytest.raises(SentryError):
        obtain_tokens(ORIGIN, UUID, client_id="c", client_secret="s", code="c")


def test_expires_at() -> None:
    assert parse_expires_at(None) is None  # an internal integration's token
    assert parse_expires_at("2026-01-01T08:00:00Z") == 1767254400.0
    assert parse_expires_at("2026-01-01T09:00:00+01:00") == 1767254400.0
    for bad in ("2026-01-01T08:00:00", "soon", 1767254400, ""):
        with pytest.raises(SentryError):
            parse_expires_at(bad)


def test_token_expired_before_expires_at_by_the_margin() -> None:
    assert not token_expired(None, 10**12)
    assert not token_expired(1000.0, 699.0, margin=300)
    assert token_expired(1000.0, 700.0, margin=300)
    assert token_expired(1000.0, 1001.0, margin=0)


@pytest.mark.parametrize(
    ("status", "error"),
    [(401, SentryUnauthorized), (403, SentryForbidden), (404, SentryNotFound), (500, SentryError)],
)
@responses.activate
def test_errors_are_typed_and_keep_sentrys_detail(status: int, error: type[Exception]) -> None:
    responses.get(ISSUE_URL, status=status, json={"detail": "The requested resource does not exist"})
    with pytest.raises(error, match="does not exist") as caught:
        _client(clock=FakeClock()).get_issue("acme", "1170820242")
    assert caught.value.status == status
    assert len(responses.calls) == 1  # none of them is retried


@pytest.mark.parametrize(
    ("call", "scope"),
    [
        (lambda c: c.get_issue("acme", "1170820242"), "event:read"),
        (lambda c: c.update_issue("acme", "1170820242", status="resolved"), "event:write"),
        (lambda c: c.find_member("acme", "a@example.com"), "member:read"),
        (
            lambda c: c.link_external_issue(UUID, issue_id="1", web_url="https://w/1", project="P", identifier="1"),
            "event:read",
        ),  # fmt: skip
    ],
)
@responses.activate
def test_a_403_is_a_permission_naming_the_scope_the_call_needs_not_the_token(call, scope: str) -> None:
    refused = {"detail": "You do not have permission to perform this action."}
    for method in (responses.GET, responses.PUT, responses.POST):
        responses.add(method, ISSUE_URL, status=403, json=refused)
        responses.add(method, MEMBERS_URL, status=403, json=refused)
        responses.add(method, LINKS_URL, status=403, json=refused)
    with pytest.raises(SentryForbidden) as caught:
        call(_client())
    assert not isinstance(caught.value, SentryUnauthorized) and isinstance(caught.value, SentryRejected)
    assert caught.value.scope == scope and scope in str(caught.value)
    assert len(responses.calls) == 1


@responses.activate
def test_sentrys_rate_limit_reset_is_waited_out_without_retry_after() -> None:
    clock = FakeClock()
    reset = {"X-Sentry-Rate-Limit-Limit": "40", "X-Sentry-Rate-Limit-Remaining": "0"}
    responses.get(ISSUE_URL, status=429, headers={**reset, "X-Sentry-Rate-Limit-Reset": str(int(clock.now()) + 3)})
    responses.get(ISSUE_URL, json={"id": "1170820242"})
    assert _client(clock=clock).get_issue("acme", "1170820242") == {"id": "1170820242"}
    assert len(responses.calls) == 2 and 2 <= sum(clock.slept) <= 3.5


@pytest.mark.parametrize("status", [400, 409, 422])
@responses.activate
def test_other_4xx_are_rejected_with_the_fields_error(status: int) -> None:
    responses.put(ISSUE_URL, status=status, json={"assignedTo": ["Unknown actor input"]})
    with pytest.raises(SentryRejected, match="assignedTo: Unknown actor input") as caught:
        _client().update_issue("acme", "1170820242", assigned_to="user:9")
    assert caught.value.status == status and len(responses.calls) == 1


@responses.activate
def test_429_is_retried_after_retry_after() -> None:
    clock = FakeClock()
    responses.get(ISSUE_URL, status=429, headers={"Retry-After": "2"})
    responses.get(ISSUE_URL, json={"id": "1"})
    assert _client(clock).get_issue("acme", "1170820242") == {"id": "1"}
    assert clock.slept == [2.0] and len(responses.calls) == 2


@responses.activate
def test_without_retry_after_sentrys_rate_limit_reset_is_honoured() -> None:
    clock = FakeClock(now=1_700_000_000.0)
    responses.get(ISSUE_URL, status=429, headers={"X-Sentry-Rate-Limit-Reset": "1700000003"})
    responses.get(ISSUE_URL, json={})
    _client(clock).get_issue("acme", "1170820242")
    assert clock.slept == [3.0]


@responses.activate
def test_retry_after_may_be_an_http_date() -> None:
    clock = FakeClock(now=1_700_000_000.0)
    responses.get(ISSUE_URL, status=503, headers={"Retry-After": "Tue, 14 Nov 2023 22:13:25 GMT"})  # now + 5 s
    responses.get(ISSUE_URL, json={})
    _client(clock).get_issue("acme", "1170820242")
    assert clock.slept == [5.0]


@responses.activate
def test_persistent_503_gives_up_after_the_bounded_attempts() -> None:
    clock = FakeClock()
    responses.get(ISSUE_URL, status=503, headers={"Retry-After": "1"})
    with pytest.raises(SentryUnavailable) as caught:
        _client(clock).get_issue("acme", "1170820242")
    assert len(responses.calls) == MAX_ATTEMPTS and clock.slept == [1.0] * (MAX_ATTEMPTS - 1)
    assert caught.value.retry_after == 1.0


@pytest.mark.parametrize("headers", [{}, {"Retry-After": "inf"}, {"Retry-After": "soon"}])
@responses.activate
def test_without_a_usable_wait_the_backoff_doubles(headers: dict[str, str]) -> None:
    clock = FakeClock()
    responses.get(ISSUE_URL, status=503, headers=headers)
    with pytest.raises(SentryUnavailable) as caught:
        _client(clock).get_issue("acme", "1170820242")
    assert clock.slept == [1.0, 2.0] and caught.value.retry_after is None


@responses.activate
def test_a_wait_beyond_the_cap_is_reported_not_waited() -> None:
    clock = FakeClock()
    responses.get(ISSUE_URL, status=429, headers={"Retry-After": "60"})
    with pytest.raises(SentryThrottled) as caught:
        _client(clock).get_issue("acme", "1170820242")
    assert clock.slept == [] and len(responses.calls) == 1
    assert caught.value.retry_after == 60.0


@responses.activate
def test_a_timeout_is_sentry_timeout_and_not_retried() -> None:
    responses.get(ISSUE_URL, body=requests.ReadTimeout("slow"))
    with pytest.raises(SentryTimeout):
        _client().get_issue("acme", "1170820242")
    assert len(responses.calls) == 1


@responses.activate
def test_an_unreachable_sentry_is_unavailable() -> None:
    responses.get(ISSUE_URL, body=requests.ConnectionError("refused"))
    with pytest.raises(SentryUnavailable):
        _client().get_issue("acme", "1170820242")


def test_every_request_has_a_timeout_and_follows_no_redirect(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[dict] = []

    def request(method: str, url: str, **kwargs: object) -> requests.Response:
        seen.append(kwargs)
        response = requests.Response()
        response.status_code, response._content = 200, b'{"token": "t"}'
        return response

    monkeypatch.setattr(sentry_client.SESSION, "request", request)
    client = SentryClient(ORIGIN, lambda: "t", timeout=lambda: 2.5)  # a callable: asked before each request
    client.get_issue("acme", "1")
    obtain_tokens(ORIGIN, UUID, client_id="c", client_secret="s", code="x", timeout=4)
    assert [(k["timeout"], k["allow_redirects"]) for k in seen] == [(2.5, False), (4, False)]
    assert sentry_client.SESSION.trust_env is False


@responses.activate
def test_a_redirect_is_not_followed_so_the_token_never_reaches_another_origin() -> None:
    responses.get(ISSUE_URL, status=302, headers={"Location": "https://elsewhere.example.net/steal"})
    responses.get("https://elsewhere.example.net/steal", json={})
    with pytest.raises(SentryError, match="redirect"):
        _client().get_issue("acme", "1170820242")
    assert [c.request.url for c in responses.calls] == [ISSUE_URL]


@pytest.mark.parametrize(
    "url",
    [
        "https://elsewhere.example.net/api/0/",
        "http://sentry.example.com/api/0/",  # another scheme is another origin
        "https://sentry.example.com.evil.net/api/0/",
        "https://sentry.example.com:8443/api/0/",
        "https://sentry.example.com@evil.net/api/0/",
    ],
)
@responses.activate
def test_nothing_is_sent_outside_the_configured_origin(url: str) -> None:
    with pytest.raises(SentryError, match="outside SENTRY_URL"):
        send("GET", url, origin=ORIGIN, timeout=3, authorization="Bearer secret")
    assert len(responses.calls) == 0


@pytest.mark.parametrize("origin", ["https://sentry.io/", "https://Sentry.io", "sentry.io", "https://u:p@sentry.io"])
def test_the_client_takes_only_an_origin(origin: str) -> None:
    with pytest.raises(ValueError):
        SentryClient(origin, lambda: "t")


@responses.activate
def test_a_2xx_body_that_is_not_json_is_an_error() -> None:
    responses.get(ISSUE_URL, body="<html>hello</html>", content_type="text/html")
    with pytest.raises(SentryError, match="not JSON"):
        _client().get_issue("acme", "1170820242")


def test_sentry_settings_default_and_validate_on_first_use() -> None:
    settings = load_settings({})
    assert settings.sentry_url == "https://sentry.io"
    assert load_settings({"SENTRY_URL": "http://127.0.0.1:8123/"}).sentry_url == "http://127.0.0.1:8123"
    assert load_settings({"SENTRY_URL": "https://Sentry.Example.com"}).sentry_url == "https://sentry.example.com"
    with pytest.raises(SettingsError, match="SENTRY_CLIENT_ID"):
        settings.sentry_client_id  # noqa: B018
    with pytest.raises(SettingsError, match="SENTRY_CLIENT_SECRET"):
        settings.sentry_client_secret  # noqa: B018


@pytest.mark.parametrize(
    "value", ["ftp://sentry.io", "https://u:p@sentry.io", "https://sentry.io/base", "https://sentry.io?x=1", "x"]
)
def test_a_bad_sentry_url_fails_only_what_reads_it(value: str) -> None:
    settings = load_settings({"SENTRY_URL": value, "SENTRY_CLIENT_SECRET": "hush", "SENTRY_CLIENT_ID": "cid"})
    assert settings.table_prefix == "vsts"  # everything else loads: the Azure DevOps routes keep working
    assert settings.sentry_client_id == "cid"
    with pytest.raises(SettingsError, match="SENTRY_URL"):
        settings.sentry_url  # noqa: B018
    assert "hush" not in repr(settings)
