"""POST /api/vsts/issue-updated (contract §5.1): every row of the table, against real Azurite."""

import base64
import json
import os
import time
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from devhost.azurite import connection_string, free_port
from shared.deliveries import from_message
from shared.store.integrations import IntegrationStore
from tests.fuzzing import fuzz_settings
from tests.helpers import count_storage_requests, make_integration, new_id
from tests.sync_helpers import SECRET, delivery, post, queued_messages, sample_delivery

pytestmark = pytest.mark.usefixtures("azurite", "empty_queue")


def _json(response):
    return json.loads(response.get_body())


@pytest.fixture
def integration():
    return make_integration(webhook_secret=SECRET)


def test_an_authenticated_delivery_is_queued_and_answered_202(integration) -> None:
    response = post(delivery(integration.id, 42, 3, state=("Active", "Resolved")))
    assert response.status_code == 202
    assert _json(response) == {"status": "accepted"}
    [message] = queued_messages()
    update = from_message(message)
    assert (update.integration_id, update.work_item_id, update.rev) == (integration.id, 42, 3)
    assert (update.state.old, update.state.new) == ("Active", "Resolved")


def test_the_documented_sample_is_accepted(integration) -> None:
    body = sample_delivery()
    body["resourceContainers"]["collection"]["id"] = integration.id.upper()  # ids compare case-insensitively
    response = post(body)
    assert response.status_code == 202
    update = from_message(queued_messages()[0])
    assert (update.integration_id, update.work_item_id, update.rev) == (integration.id, 5, 2)


def test_basic_auth_password_is_the_secret(integration) -> None:
    auth = "Basic " + base64.b64encode(f"ado:{SECRET}".encode()).decode()
    assert post(delivery(integration.id, 1, 2), headers={"Authorization": auth}).status_code == 202


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Shared-Secret": "wrong-secret"},
        {"Shared-Secret": ""},
        {"Authorization": "Basic !!!"},
        {"Shared-Secret": SECRET[:-1]},
    ],
    ids=["missing", "wrong", "empty", "bad-basic", "prefix"],
)
def test_missing_or_wrong_credential_is_401(integration, headers) -> None:
    response = post(delivery(integration.id, 1, 2), headers=headers)
    assert response.status_code == 401
    assert _json(response) == {"error": "unauthorized"}
    assert queued_messages() == []


def test_unknown_or_disabled_integration_is_the_same_401(integration) -> None:
    unknown = post(delivery(new_id(), 1, 2))
    IntegrationStore().update(integration.id, lambda cur: replace(cur, status="disabled"))
    disabled = post(delivery(integration.id, 1, 2))
    wrong = post(delivery(new_id(), 1, 2), headers={"Shared-Secret": "nope"})
    for response in (unknown, disabled, wrong):
        assert (response.status_code, response.get_body()) == (401, b'{"error":"unauthorized"}')
    assert queued_messages() == []


def test_unknown_integration_costs_the_same_storage_work_as_a_wrong_secret(integration) -> None:
    with count_storage_requests() as unknown:
        post(delivery(new_id(), 1, 2))
    with count_storage_requests() as wrong:
        post(delivery(integration.id, 1, 2), headers={"Shared-Secret": "nope"})
    assert len(unknown) == len(wrong) == 1


def test_previous_secret_is_valid_during_its_grace_period_only(integration) -> None:
    store = IntegrationStore()
    store.update(
        integration.id,
        lambda cur: replace(
            cur, webhook_secret="n" * 40, previous_webhook_secret=SECRET, previous_secret_expires_at=time.time() + 60
        ),
    )
    assert post(delivery(integration.id, 1, 2)).status_code == 202
    assert post(delivery(integration.id, 1, 3), headers={"Shared-Secret": "n" * 40}).status_code == 202
    store.update(integration.id, lambda cur: replace(cur, previous_secret_expires_at=time.time() - 1))
    assert post(delivery(integration.id, 1, 4)).status_code == 401


def test_a_commented_delivery_is_queued_with_its_work_item_and_comment_id(integration) -> None:
    # workitem.commented: the resource is the work item itself (its id in resource.id), the comment id in
    # resource.commentVersionRef (reference azure-devops-platform.md §1.3).
    body = delivery(integration.id, 1, 2)
    body["eventType"] = "workitem.commented"
    body["resource"] = {"id": 57, "rev": 9, "fields": {"System.History": "<p>hi</p>"},
                        "commentVersionRef": {"commentId": 4012, "version": 1}}  # fmt: skip
    response = post(body)
    assert (response.status_code, _json(response)) == (202, {"status": "accepted"})
    [message] = queued_messages()
    update = from_message(message)
    assert (update.work_item_id, update.rev, update.commented, update.comment_id) == (57, 9, True, 4012)
    assert (update.assignee, update.state) == (None, None)  # the comment's HTML never reaches the field rules


def test_other_events_are_ignored_after_authentication(integration) -> None:
    body = delivery(integration.id, 1, 2)
    body["eventType"] = "workitem.deleted"
    response = post(body)
    assert (response.status_code, _json(response)) == (200, {"status": "ignored"})
    assert post(body, headers={}).status_code == 401  # still authenticated first
    assert queued_messages() == []


@pytest.mark.parametrize("work_item_id", [0, None, -3, "abc", 2**40, {"x": 1}])
def test_workitem_updated_without_a_usable_work_item_is_ignored(integration, work_item_id) -> None:
    body = delivery(integration.id, 1, 2)
    body["resource"]["workItemId"] = work_item_id
    body["resource"]["revision"] = {"rev": 2}
    response = post(body)
    assert (response.status_code, _json(response)) == (200, {"status": "ignored"})
    assert queued_messages() == []


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"not json",
        b"[]",
        b'"text"',
        b"{}",
        b'{"eventType": 5, "resourceContainers": {"collection": {"id": "x"}}}',
        b'{"eventType": "workitem.updated"}',
        b'{"eventType": "workitem.updated", "resourceContainers": {"collection": {"id": 7}}}',
        b'{"eventType": "workitem.updated", "resourceContainers": []}',
        b"\xff\xfe\x00",
        b"[" * 50000 + b"]" * 50000,
    ],
)
def test_malformed_bodies_are_400(raw: bytes) -> None:
    response = post(None, raw=raw)
    assert response.status_code == 400
    assert list(_json(response)) == ["error"]


def test_a_body_over_2_mib_is_413(integration) -> None:
    body = delivery(integration.id, 1, 2)
    body["padding"] = "x" * (2 * 1024 * 1024)
    response = post(body)
    assert response.status_code == 413
    assert queued_messages() == []


def test_storage_unavailable_is_503_and_nothing_is_acknowledged(env, integration) -> None:
    closed = free_port()
    env.setenv("AzureWebJobsStorage", connection_string(closed, closed, closed))
    env.setenv("STORAGE_CONNECTION_STRING", connection_string(closed, closed, closed))
    response = post(delivery(integration.id, 1, 2))
    assert response.status_code == 503
    assert "error" in _json(response)
    assert response.headers["Retry-After"] == "5"


def test_queue_unavailable_is_503(env, integration) -> None:
    closed = free_port()
    env.setenv("STORAGE_CONNECTION_STRING", os.environ["AzureWebJobsStorage"])  # tables still work
    env.setenv("AzureWebJobsStorage", connection_string(closed, closed, closed))  # the queue does not
    response = post(delivery(integration.id, 1, 2))
    assert response.status_code == 503


# A corpus of malformed and hostile bodies: only 400, 401, 413 or 200, never 5xx, and nothing written.
_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=20,
)


def _hostile_bodies(known_id: str):
    envelope = st.fixed_dictionaries(
        {
            "eventType": st.one_of(st.just("workitem.updated"), st.text(max_size=20), _json_values),
            "resourceContainers": st.one_of(
                st.fixed_dictionaries(
                    {
                        "collection": st.fixed_dictionaries(
                            {"id": st.one_of(st.just(known_id), st.text(max_size=40), _json_values)}
                        )
                    }
                ),
                _json_values,
            ),
            "resource": _json_values,
        }
    ).map(lambda d: json.dumps(d).encode())
    return st.one_of(st.binary(max_size=200), _json_values.map(lambda v: json.dumps(v).encode()), envelope)


def test_hostile_corpus_never_5xx_and_writes_nothing(integration) -> None:
    statuses: list[int] = []

    @fuzz_settings(300)
    @given(body=_hostile_bodies(integration.id), secret=st.sampled_from([None, "wrong", SECRET + "x"]))
    def check(body: bytes, secret: str | None) -> None:
        headers = {} if secret is None else {"Shared-Secret": secret}
        with count_storage_requests() as calls:
            response = post(None, headers=headers, raw=body)
        statuses.append(response.status_code)
        assert response.status_code in (400, 401, 413, 200), response.get_body()
        assert list(_json(response)) in (["error"], ["status"])
        assert all(call.startswith("GET ") for call in calls), calls  # reads only: nothing written

    check()
    assert len(statuses) >= 200
    assert queued_messages() == []


def test_the_adapter_names_the_queue_the_store_writes_to() -> None:
    from functions.webhook import QUEUE_NAME
    from shared.store.queues import QUEUE_NAME as WRITTEN

    assert QUEUE_NAME == WRITTEN == "vsts-workitem-updates"


def test_a_matching_secret_read_in_the_last_seconds_needs_no_storage_read(integration) -> None:
    post(delivery(integration.id, 1, 2))  # reads the integration
    with count_storage_requests() as calls:
        assert post(delivery(integration.id, 1, 3)).status_code == 202
    assert [c for c in calls if "integrations" in c] == []  # only the queue write
    assert len(calls) == 1


def test_a_change_made_through_this_process_is_seen_at_once(integration) -> None:
    post(delivery(integration.id, 1, 2))
    IntegrationStore().update(integration.id, lambda cur: replace(cur, status="disabled"))
    assert post(delivery(integration.id, 1, 3)).status_code == 401


def test_a_setting_broken_after_authentication_is_503_not_500(integration, env) -> None:
    """Authenticated from this process's recent view, the delivery first meets the settings when it is queued."""
    assert post(delivery(integration.id, 1, 2)).status_code == 202
    env.setenv("AzureWebJobsStorage", "")
    env.setenv("TABLE_PREFIX", "not a prefix!")
    response = post(delivery(integration.id, 1, 3))
    assert response.status_code == 503
    assert _json(response) == {"error": "The app is misconfigured; the delivery was not accepted."}
