"""The Azure DevOps client at the HTTP boundary (responses): headers, errors, retries, origins."""

import pytest
import requests
import responses

from shared.ado.client import (
    MAX_ATTEMPTS,
    AdoClient,
    AdoError,
    AdoNotFound,
    AdoRequestRejected,
    AdoThrottled,
    AdoTimeout,
    AdoUnauthorized,
    AdoUnavailable,
    OriginNotAllowed,
    parse_retry_after,
    send,
)

BASE = "https://dev.azure.com/fabrikam/"
WI = BASE + "_apis/wit/workitems/5"


def _client(base: str = BASE) -> AdoClient:
    return AdoClient(base, lambda: "Basic OnNlY3JldA==", allowed_origins=(), timeout=3)


def _send(url: str = WI, **kwargs):
    return send("GET", url, authorization="Bearer t", allowed_origins=(), timeout=3, **kwargs)


@responses.activate
def test_every_request_carries_the_api_version_and_suppresses_the_sign_in_redirect() -> None:
    responses.get(WI, json={"id": 5, "fields": {}})
    assert _client().get_work_item(5) == {"id": 5, "fields": {}}
    headers = responses.calls[0].request.headers
    assert headers["Accept"] == "application/json;api-version=7.1"
    assert headers["X-TFS-FedAuthRedirect"] == "Suppress"
    assert headers["Authorization"] == "Basic OnNlY3JldA=="


@responses.activate
def test_each_operation_asks_for_its_version_on_the_clients_server() -> None:
    """Released operations the server's level, preview ones their `-preview.N` there (Server 2022 is 7.0, and its
    Comments API 7.0-preview.3 without `format`)."""
    from shared.ado import comments
    from shared.ado.connection import organization_id

    instance = "3f5e9a4c-8a6b-4a5e-9a3e-2a1b1c3d4e5f"
    responses.get(WI, json={"id": 5})
    responses.get(BASE + "_apis/connectionData", json={"instanceId": instance})
    responses.post(BASE + "p/_apis/wit/workItems/5/comments", json={"id": 1})
    for level, comments_version, query in (("7.1", "7.1-preview.4", "format=markdown"), ("7.0", "7.0-preview.3", "")):
        client = _client()
        client.api_level = level
        client.get_work_item(5)
        assert organization_id(client) == instance
        comments.add_comment(client, "p", 5, "text")
        accepts = [call.request.headers["Accept"].split("=", 1)[1] for call in responses.calls[-3:]]
        assert accepts == [level, f"{level}-preview.1", comments_version]
        assert (responses.calls[-1].request.url.split("?") + [""])[1] == query


@responses.activate
def test_not_found_keeps_azure_devops_message() -> None:
    message = "TF401232: Work item 5 does not exist, or you do not have permissions to read it."
    responses.get(WI, status=404, json={"message": message})
    with pytest.raises(AdoNotFound, match="TF401232"):
        _client().get_work_item(5)


@pytest.mark.parametrize(
    ("status", "kwargs"),
    [
        (401, {"json": {"message": "TF400813: The user '' is not authorized to access this resource."}}),
        (403, {"json": {}}),
        (203, {"body": "<html><body>Sign in</body></html>", "content_type": "text/html"}),
        (200, {"body": "<html>Sign in</html>", "content_type": "text/html; charset=utf-8"}),
        (302, {"headers": {"Location": "https://spsprodweu5.vssps.visualstudio.com/_signin"}}),
    ],
)
@responses.activate
def test_refused_credentials_in_every_form_are_unauthorized(status: int, kwargs: dict) -> None:
    responses.get(WI, status=status, **kwargs)
    with pytest.raises(AdoUnauthorized):
        _client().get_work_item(5)
    assert len(responses.calls) == 1  # never retried, redirects never followed


@responses.activate
def test_429_is_retried_honouring_retry_after() -> None:
    responses.get(WI, status=429, headers={"Retry-After": "0"})
    responses.get(WI, json={"id": 5})
    assert _client().get_work_item(5) == {"id": 5}
    assert len(responses.calls) == 2


@responses.activate
def test_persistent_503_gives_up_after_bounded_attempts() -> None:
    responses.get(WI, status=503, headers={"Retry-After": "2"})
    waits: list[float] = []
    with pytest.raises(AdoUnavailable) as caught:
        _send(sleep=waits.append)
    assert len(responses.calls) == MAX_ATTEMPTS
    assert waits == [2.0] * (MAX_ATTEMPTS - 1)
    assert caught.value.retry_after == 2.0


@responses.activate
def test_a_long_retry_after_is_not_waited_for_but_reported() -> None:
    responses.get(WI, status=429, headers={"Retry-After": "120"})
    waits: list[float] = []
    with pytest.raises(AdoThrottled) as caught:
        _send(sleep=waits.append)
    assert waits == []
    assert len(responses.calls) == 1
    assert caught.value.retry_after == 120.0


@responses.activate
def test_without_retry_after_the_backoff_grows_within_the_cap() -> None:
    responses.get(WI, status=503)
    waits: list[float] = []
    with pytest.raises(AdoUnavailable):
        _send(sleep=waits.append)
    assert waits == [1.0, 2.0]


@pytest.mark.parametrize("status", [400, 409, 410, 422])
@responses.activate
def test_other_4xx_are_never_retried(status: int) -> None:
    responses.get(WI, status=status, json={"message": "VS403474: too many"})
    with pytest.raises(AdoRequestRejected, match="VS403474"):
        _send(sleep=lambda s: pytest.fail("retried"))
    assert len(responses.calls) == 1


@responses.activate
def test_500_is_an_error_and_not_retried() -> None:
    responses.get(WI, status=500, body="oops")
    with pytest.raises(AdoError, match="500"):
        _send()
    assert len(responses.calls) == 1


@responses.activate
def test_timeouts_and_connection_failures() -> None:
    responses.get(WI, body=requests.ConnectTimeout())
    with pytest.raises(AdoTimeout):
        _send()
    responses.replace(responses.GET, WI, body=requests.ConnectionError())
    with pytest.raises(AdoUnavailable):
        _send()


@responses.activate
def test_credentials_never_go_to_an_origin_that_is_not_allowed() -> None:
    with pytest.raises(OriginNotAllowed):
        _client("http://evil.example/").get_work_item(5)
    with pytest.raises(OriginNotAllowed):
        _client("https://dev.azure.com.evil.example/x/").get_work_item(5)
    assert len(responses.calls) == 0


@responses.activate
def test_a_non_json_success_is_an_error() -> None:
    responses.get(WI, body="not json", content_type="application/json")
    with pytest.raises(AdoError, match="not JSON"):
        _client().get_work_item(5)


def test_parse_retry_after() -> None:
    assert parse_retry_after("5") == 5
    assert parse_retry_after("0.5") == 0.5
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0  # in the past
