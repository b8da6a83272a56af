"""POST /api/sentry/webhook (contract §13.1): verified, recorded once per request id, queued; every failure,
against real Azurite."""

from __future__ import annotations

import hashlib
import json
import os

import pytest
import responses
from hypothesis import given
from hypothesis import strategies as st

from devhost.azurite import connection_string, free_port
from shared.deliveries.sentry_messages import read_hook_message
from shared.store import pending
from shared.store.queues import SENTRY_HOOKS_QUEUE_NAME
from shared.store.sentry import RECEIVED, SentryStore
from shared.sync import wakeups
from tests.fuzzing import fuzz_settings
from tests.helpers import count_storage_requests, new_id
from tests.sentry_hooks_helpers import (
    SECRET,
    answer_of,
    comment_data,
    envelope,
    headers_for,
    issue_data,
    post,
    post_raw,
)
from tests.sync_helpers import queued_messages

pytestmark = pytest.mark.usefixtures("azurite")


@pytest.fixture(autouse=True)
def sentry(sentry_http: responses.RequestsMock) -> responses.RequestsMock:
    return sentry_http


@pytest.fixture(autouse=True)
def empty_queue():
    queued_messages(SENTRY_HOOKS_QUEUE_NAME)
    yield
    queued_messages(SENTRY_HOOKS_QUEUE_NAME)


def _resolved(installation: str) -> dict:
    return envelope(installation, "issue", "resolved", issue_data("1170820242"))


def test_a_signed_webhook_is_recorded_with_its_actor_queued_and_answered_202() -> None:
    installation = new_id()
    response = post(_resolved(installation), "issue", request_id="req-1")
    assert response.status_code == 202
    assert answer_of(response) == {"status": "queued"}
    [message] = queued_messages(SENTRY_HOOKS_QUEUE_NAME)
    assert read_hook_message(message) == (installation, "req-1", 0)
    event, state = SentryStore().get_delivery(installation, "req-1")
    assert state == RECEIVED
    assert (event["resource"], event["action"], event["issue_id"]) == ("issue", "resolved", "1170820242")
    assert event["actor"] == {"type": "user", "id": "101", "name": "Dana Lee"}


def test_a_replayed_request_id_is_a_duplicate_and_queues_nothing_more() -> None:
    installation = new_id()
    assert post(_resolved(installation), "issue", request_id="req-2").status_code == 202
    again = post(_resolved(installation), "issue", request_id="req-2")
    assert again.status_code == 200
    assert answer_of(again) == {"status": "duplicate"}
    assert len(queued_messages(SENTRY_HOOKS_QUEUE_NAME)) == 1


@pytest.mark.parametrize("request_id", [None, "a/b", "x#y", "with space", "é"])
def test_without_a_usable_request_id_the_bodys_hash_is_the_id(request_id: str | None) -> None:
    installation = new_id()
    body = json.dumps(_resolved(installation)).encode()
    headers = headers_for(body, "issue", request_id=request_id)
    assert post_raw(body, headers).status_code == 202
    assert answer_of(post_raw(body, headers)) == {"status": "duplicate"}
    [message] = queued_messages(SENTRY_HOOKS_QUEUE_NAME)
    assert read_hook_message(message)[1] == "sha256:" + hashlib.sha256(body).hexdigest()


@pytest.mark.parametrize(
    "change",
    [
        {"Sentry-Hook-Signature": None},
        {"Sentry-Hook-Signature": ""},
        {"Sentry-Hook-Signature": "0" * 64},
        {"Sentry-Hook-Signature": "not hex"},
        {"secret": "another-secret"},
    ],
    ids=["missing", "blank", "wrong", "not-hex", "other-secret"],
)
def test_a_missing_or_wrong_signature_is_401_and_nothing_is_stored_or_queued(change: dict) -> None:
    body = json.dumps(_resolved(new_id())).encode()
    headers = headers_for(body, "issue", secret=change.get("secret", SECRET))
    if "Sentry-Hook-Signature" in change:
        headers.pop("Sentry-Hook-Signature")
        if change["Sentry-Hook-Signature"] is not None:
            headers["Sentry-Hook-Signature"] = change["Sentry-Hook-Signature"]
    with count_storage_requests() as calls:
        response = post_raw(body, headers)
    assert response.status_code == 401
    assert list(answer_of(response)) == ["error"]
    assert calls == []
    assert queued_messages(SENTRY_HOOKS_QUEUE_NAME) == []


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"not json", 400),
        (b"\xff\xfe", 400),
        (b"[1, 2]", 400),
        (b'{"action": "resolved"}', 400),
        (b"{" * 100_000, 400),
        (b" " * (1024 * 1024 + 1), 413),
    ],
    ids=["text", "not-utf8", "array", "no-installation", "deep", "oversized"],
)
def test_a_signed_body_that_is_not_a_webhook_is_refused_and_nothing_is_stored(body: bytes, status: int) -> None:
    with count_storage_requests() as calls:
        response = post_raw(body, headers_for(body, "issue"))
    assert response.status_code == status
    assert list(answer_of(response)) == ["error"]
    assert calls == []


@pytest.mark.parametrize(
    ("resource", "action"), [("issue", "created"), ("metric_alert", "triggered"), ("installation", "updated")]
)
def test_what_the_app_does_not_handle_is_200_ignored_and_nothing_is_stored(resource: str, action: str) -> None:
    payload = envelope(new_id(), resource, action, {"issue": {"id": 1}})
    with count_storage_requests() as calls:
        response = post(payload, resource)
    assert (response.status_code, answer_of(response)) == (200, {"status": "ignored"})
    assert calls == []


def test_without_a_client_secret_the_app_answers_503_saying_so(env) -> None:
    env.delenv("SENTRY_CLIENT_SECRET")
    response = post(_resolved(new_id()), "issue")
    assert response.status_code == 503
    assert "client secret" in answer_of(response)["error"]
    assert SECRET not in response.get_body().decode()


def test_storage_down_is_503_and_nothing_is_recorded(env) -> None:
    closed = free_port()
    env.setenv("AzureWebJobsStorage", connection_string(closed, closed, closed))
    env.setenv("STORAGE_CONNECTION_STRING", connection_string(closed, closed, closed))
    response = post(_resolved(new_id()), "issue")
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert list(answer_of(response)) == ["error"]


def test_a_queue_that_fails_still_accepts_the_recorded_webhook_for_the_sweep_to_wake(env) -> None:
    installation, tables = new_id(), os.environ["AzureWebJobsStorage"]
    closed = free_port()
    env.setenv("STORAGE_CONNECTION_STRING", tables)  # tables still work
    env.setenv("AzureWebJobsStorage", connection_string(closed, closed, closed))  # the queue does not
    response = post(_resolved(installation), "issue", request_id="req-3")
    assert response.status_code == 202
    assert SentryStore().get_delivery(installation, "req-3")[1] == RECEIVED
    assert pending.get(wakeups.hook_ref(installation, "req-3")) is not None  # what the sweep wakes
    env.setenv("AzureWebJobsStorage", tables)
    assert post(_resolved(installation), "issue", request_id="req-3").status_code == 200  # a duplicate now


def test_an_event_too_large_to_record_is_413_and_nothing_is_left() -> None:
    installation = new_id()
    payload = envelope(installation, "comment", "created", comment_data("1", "2", "x" * 40_000))
    response = post(payload, "comment", request_id="req-4")
    assert response.status_code == 413
    assert SentryStore().get_delivery(installation, "req-4") is None
    assert queued_messages(SENTRY_HOOKS_QUEUE_NAME) == []


@pytest.mark.parametrize("text", ["lone \ud800 surrogate", "日本" * 12_000, "\x00\x1b[31m", "<script>"])
def test_hostile_or_long_comment_texts_are_recorded_as_they_came(text: str) -> None:
    installation = new_id()
    payload = envelope(installation, "comment", "created", comment_data("1", "2", text))
    assert post(payload, "comment", request_id="req-5").status_code == 202
    event, _ = SentryStore().get_delivery(installation, "req-5")
    assert event["text"] == text  # whether the tracker takes it is the worker's business


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=20,
)
_hostile_text = st.text(max_size=40) | st.sampled_from(["../..", "a/b", "\x00", "\ud800", "' or 1=1", "%2F", "#"])


def _hostile_webhooks():
    envelope_ = st.fixed_dictionaries(
        {
            "action": st.sampled_from(["resolved", "assigned", "created", "deleted"]) | _hostile_text,
            "installation": st.fixed_dictionaries({"uuid": _hostile_text}) | _json_values,
            "data": st.fixed_dictionaries(
                {"issue": st.dictionaries(st.sampled_from(["id", "status", "assignedTo"]), _json_values)}
            )
            | _json_values,
            "actor": _json_values,
        }
    )
    return st.one_of(st.binary(max_size=200), envelope_.map(lambda d: json.dumps(d).encode()))


def test_hostile_signed_and_unsigned_webhooks_never_get_a_5xx() -> None:
    statuses: list[int] = []

    @fuzz_settings(200)
    @given(
        body=_hostile_webhooks(),
        resource=st.sampled_from(["issue", "comment", "installation"]) | _hostile_text,
        signed=st.booleans(),
        request_id=_hostile_text | st.none(),
    )
    def check(body: bytes, resource: str, signed: bool, request_id: str | None) -> None:
        headers = headers_for(body, "issue", secret=SECRET if signed else "wrong", request_id=request_id)
        headers["Sentry-Hook-Resource"] = resource
        response = post_raw(body, headers)
        statuses.append(response.status_code)
        assert response.status_code in (200, 202, 400, 401, 413), response.get_body()
        assert list(answer_of(response)) in (["error"], ["status"])

    check()
    assert len(statuses) >= 150
