"""Sentry's signed requests (shared.deliveries.sentry): every way a signature fails, the envelope, the typed
views, and a fuzz test that nothing but the module's own errors ever comes out."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.deliveries import sentry
from shared.deliveries.sentry import (
    MAX_BODY_BYTES,
    Assignee,
    CommentEvent,
    InstallationEvent,
    InvalidSentryPayload,
    InvalidSignature,
    IssueEvent,
    event_of,
    from_http,
    signature,
    verify_ui_request,
)
from shared.errors import BodyTooLarge
from tests.fuzzing import fuzz_settings

SECRET = "6f1c0a0d2b8e4f3aa1c5e9d7b3f2a4c6e8d0b1a3c5e7f9a2b4d6c8e0f1a3b5c7"
INSTALLATION = "eac5a0ae-60ec-418f-9318-46dc5e7e52ec"
APP = "3f1c4a2e-9b5d-4e8f-a1c2-7d6e5f4a3b2c"
PROPERTY = fuzz_settings(300)

ISSUE_PAYLOAD = {
    "action": "resolved",
    "installation": {"uuid": INSTALLATION},
    "actor": {"type": "user", "id": 1, "name": "Meredith"},
    "data": {
        "issue": {
            "id": "1170820242",
            "shortId": "FRONT-1A",
            "title": "TypeError: undefined is not a function",
            "status": "resolved",
            "substatus": None,
            "statusDetails": {},
            "assignedTo": {"type": "user", "id": "7", "name": "Meredith", "email": "meredith@example.com"},
            "project": {"id": "2", "name": "front", "slug": "front", "platform": "javascript"},
            "url": "https://sentry.io/api/0/organizations/acme/issues/1170820242/",
            "web_url": "https://sentry.io/organizations/acme/issues/1170820242/",
            "project_url": "https://sentry.io/organizations/acme/issues/?project=2",
        }
    },
}
INSTALLATION_PAYLOAD = {
    "action": "created",
    "installation": {"uuid": INSTALLATION},
    "actor": {"type": "user", "id": 1, "name": "Meredith"},
    "data": {
        "installation": {
            "uuid": INSTALLATION,
            "code": "b7d4e1b5f0a94c3e8d2f6a1b9c0e7d3f",
            "status": "pending",
            "organization": {"slug": "acme"},
            "app": {"uuid": APP, "slug": "azure-boards"},
        }
    },
}
# The example of Sentry's comment webhook documentation.
COMMENT_PAYLOAD = {
    "action": "created",
    "data": {
        "comment": "adding a comment",
        "project_slug": "sentry",
        "comment_id": 1234,
        "issue_id": 100,
        "timestamp": "2022-03-02T21:51:44.118160Z",
    },
    "installation": {"uuid": INSTALLATION},
    "actor": {"type": "user", "id": 1, "name": "colleen"},
}


def _body(payload: Any) -> bytes:
    return json.dumps(payload).encode()


def _headers(body: bytes, resource: str = "issue", secret: str = SECRET, **extra: str) -> dict[str, str]:
    headers = {
        "Content-Type": "application/json",
        "Request-ID": "d1d8b3c6-0b1f-4f1a-9d52-8d0f3c1b2a4e",
        "Sentry-Hook-Resource": resource,
        "Sentry-Hook-Timestamp": "1700000000",
        "Sentry-Hook-Signature": hmac.new(secret.encode(), body, hashlib.sha256).hexdigest(),
    }
    headers.update(extra)
    return headers


def _refused(headers: dict[str, str], body: bytes, secret: str = SECRET) -> str:
    with pytest.raises(InvalidSignature) as caught:
        from_http(headers, body, secret)
    return str(caught.value)


def test_a_webhook_signed_with_the_client_secret_is_read() -> None:
    body = _body(ISSUE_PAYLOAD)
    webhook = from_http(_headers(body), body, SECRET)
    assert (webhook.resource, webhook.action, webhook.installation_uuid) == ("issue", "resolved", INSTALLATION)
    assert (webhook.actor_type, webhook.actor_id, webhook.actor_name) == ("user", "1", "Meredith")
    assert webhook.request_id == "d1d8b3c6-0b1f-4f1a-9d52-8d0f3c1b2a4e" and webhook.timestamp == 1700000000
    assert webhook.data == ISSUE_PAYLOAD["data"]
    assert "TypeError" not in repr(webhook)  # the payload stays out of log lines


def test_the_signature_is_sentrys_hex_hmac_sha256_of_the_raw_body() -> None:
    body = b'{"action": "created"}'
    assert signature(body, "secret") == hmac.new(b"secret", body, hashlib.sha256).hexdigest()


def test_a_missing_signature_is_refused() -> None:
    body = _body(ISSUE_PAYLOAD)
    headers = _headers(body)
    del headers["Sentry-Hook-Signature"]
    assert "no Sentry-Hook-Signature" in _refused(headers, body)


def test_a_blank_signature_is_refused() -> None:
    body = _body(ISSUE_PAYLOAD)
    assert "no Sentry-Hook-Signature" in _refused(_headers(body, **{"Sentry-Hook-Signature": "  "}), body)


def test_a_wrong_signature_of_the_right_length_is_refused() -> None:
    body = _body(ISSUE_PAYLOAD)
    good = _headers(body)["Sentry-Hook-Signature"]
    wrong = good[:-1] + ("0" if good[-1] != "0" else "1")
    assert "does not match" in _refused(_headers(body, **{"Sentry-Hook-Signature": wrong}), body)


@pytest.mark.parametrize("cut", [1, 32, 63])
def test_a_signature_of_the_wrong_length_is_refused(cut: int) -> None:
    body = _body(ISSUE_PAYLOAD)
    good = _headers(body)["Sentry-Hook-Signature"]
    assert "does not match" in _refused(_headers(body, **{"Sentry-Hook-Signature": good[:-cut]}), body)
    assert "does not match" in _refused(_headers(body, **{"Sentry-Hook-Signature": good + good[:cut]}), body)


def test_a_signature_that_is_not_hex_is_refused() -> None:
    body = _body(ISSUE_PAYLOAD)
    for text in ("z" * 64, "sha256=" + _headers(body)["Sentry-Hook-Signature"], "é" * 64):
        assert "does not match" in _refused(_headers(body, **{"Sentry-Hook-Signature": text}), body)


def test_a_signature_made_with_another_secret_is_refused() -> None:
    body = _body(ISSUE_PAYLOAD)
    assert "does not match" in _refused(_headers(body, secret="another-apps-secret"), body)


def test_a_body_changed_by_one_byte_is_refused() -> None:
    body = _body(ISSUE_PAYLOAD)
    headers = _headers(body)
    changed = body.replace(b'"resolved"', b'"resolveD"', 1)
    assert len(changed) == len(body) and changed != body
    assert "does not match" in _refused(headers, changed)


def test_the_signature_covers_the_raw_bytes_not_the_json_they_mean() -> None:
    """Re-serialised JSON (the mistake of Sentry's docs sample) is another body: the raw bytes are signed."""
    body = json.dumps(ISSUE_PAYLOAD, indent=2).encode()
    assert from_http(_headers(body), body, SECRET).action == "resolved"
    assert "does not match" in _refused(_headers(body), _body(ISSUE_PAYLOAD))


def test_upper_case_hex_is_the_same_signature() -> None:
    body = _body(ISSUE_PAYLOAD)
    upper = _headers(body)["Sentry-Hook-Signature"].upper()
    assert from_http(_headers(body, **{"Sentry-Hook-Signature": upper}), body, SECRET).action == "resolved"


@pytest.mark.parametrize("secret", ["", None])
def test_without_a_client_secret_nothing_is_accepted(secret: Any) -> None:
    body = _body(ISSUE_PAYLOAD)
    assert "No Sentry client secret" in _refused(_headers(body, secret=""), body, secret)


def test_header_names_are_case_insensitive() -> None:
    body = _body(ISSUE_PAYLOAD)
    headers = {key.lower(): value for key, value in _headers(body).items()}
    assert from_http(headers, body, SECRET).resource == "issue"


def test_the_compare_is_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """The presented signature is compared through hmac.compare_digest on fixed-length digests (whatever its
    length), never with ==; checked by watching the calls, not by timing them."""
    calls: list[tuple[bytes, bytes]] = []
    original = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return original(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    body = _body(ISSUE_PAYLOAD)
    from_http(_headers(body), body, SECRET)
    assert len(calls) == 1 and calls[0][0] == calls[0][1]
    _refused(_headers(body, **{"Sentry-Hook-Signature": "ab"}), body)
    assert len(calls) == 2 and len(calls[1][0]) == len(calls[1][1]) == 32 and calls[1][0] != calls[1][1]


def test_ui_requests_are_signed_in_their_own_header_over_the_raw_body() -> None:
    body = json.dumps({"fields": {"title": "x"}, "installationId": INSTALLATION, "issueId": 1}).encode()
    verify_ui_request({"Sentry-App-Signature": signature(body, SECRET)}, body, SECRET)
    with pytest.raises(InvalidSignature, match="no Sentry-App-Signature"):
        verify_ui_request({"Sentry-Hook-Signature": signature(body, SECRET)}, body, SECRET)
    with pytest.raises(InvalidSignature, match="does not match"):
        verify_ui_request({"Sentry-App-Signature": signature(body, SECRET)}, body + b" ", SECRET)


def test_option_gets_are_signed_over_the_empty_string() -> None:
    empty = hmac.new(SECRET.encode(), b"", hashlib.sha256).hexdigest()
    verify_ui_request({"sentry-app-signature": empty}, b"", SECRET)
    with pytest.raises(InvalidSignature):
        verify_ui_request({"Sentry-App-Signature": signature(b"{}", SECRET)}, b"", SECRET)
    with pytest.raises(InvalidSignature):
        verify_ui_request({"Sentry-App-Signature": empty}, b"", "another-apps-secret")


def test_a_body_over_the_cap_is_too_large_before_anything_else() -> None:
    big = b" " * (MAX_BODY_BYTES + 1)
    with pytest.raises(BodyTooLarge):
        from_http({}, big, SECRET)
    just = b" " * MAX_BODY_BYTES
    assert "does not match" in _refused(_headers(b"other"), just)  # at the cap: checked, not refused as too big


def test_the_signature_is_checked_before_the_body_is_parsed() -> None:
    assert "does not match" in _refused(_headers(b"{}"), b"not json")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"not json", "not valid JSON"),
        (b"\xff\xfe", "not UTF-8"),
        (b'{"action": NaN}', "not valid JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b'{"installation": {"uuid": "u-1"}, "data": {}}', "no action"),
        (b'{"action": "created", "data": {}}', "no installation.uuid"),
        (b'{"action": "created", "installation": {"uuid": "a|b"}, "data": {}}', "no installation.uuid"),
        (b'{"action": "created", "installation": {"uuid": "u-1"}, "data": []}', "data is not a JSON object"),
    ],
)
def test_a_signed_body_that_is_not_a_webhook_is_invalid(body: bytes, message: str) -> None:
    with pytest.raises(InvalidSentryPayload, match=message):
        from_http(_headers(body), body, SECRET)


def test_a_webhook_without_a_resource_header_is_invalid() -> None:
    body = _body(ISSUE_PAYLOAD)
    headers = _headers(body)
    del headers["Sentry-Hook-Resource"]
    with pytest.raises(InvalidSentryPayload, match="Sentry-Hook-Resource"):
        from_http(headers, body, SECRET)


def _event(payload: dict, resource: str) -> Any:
    body = _body(payload)
    return event_of(from_http(_headers(body, resource), body, SECRET))


def test_installation_created_gives_the_code_organization_and_app() -> None:
    assert _event(INSTALLATION_PAYLOAD, "installation") == InstallationEvent(
        action="created",
        uuid=INSTALLATION,
        organization_slug="acme",
        code="b7d4e1b5f0a94c3e8d2f6a1b9c0e7d3f",
        app_uuid=APP,
        app_slug="azure-boards",
        status="pending",
    )


def test_an_installation_whose_two_uuids_differ_is_invalid() -> None:
    payload = json.loads(json.dumps(INSTALLATION_PAYLOAD))
    payload["data"]["installation"]["uuid"] = "another"
    with pytest.raises(InvalidSentryPayload, match="differs"):
        _event(payload, "installation")


def test_an_issue_webhook_gives_status_assignee_url_and_project() -> None:
    assert _event(ISSUE_PAYLOAD, "issue") == IssueEvent(
        action="resolved",
        issue_id="1170820242",
        status="resolved",
        substatus=None,
        assignee=Assignee(type="user", id="7", name="Meredith", email="meredith@example.com"),
        web_url="https://sentry.io/organizations/acme/issues/1170820242/",
        project_id="2",
        project_slug="front",
        title="TypeError: undefined is not a function",
        short_id="FRONT-1A",
    )


def test_an_unassigned_issue_has_no_assignee_and_a_strange_assignee_is_invalid() -> None:
    payload = json.loads(json.dumps(ISSUE_PAYLOAD))
    payload["action"] = "assigned"
    payload["data"]["issue"]["assignedTo"] = None
    assert _event(payload, "issue").assignee is None
    payload["data"]["issue"]["assignedTo"] = "meredith"
    with pytest.raises(InvalidSentryPayload, match="assignedTo"):
        _event(payload, "issue")


def test_a_comment_webhook_gives_ids_text_and_author() -> None:
    assert _event(COMMENT_PAYLOAD, "comment") == CommentEvent(
        action="created",
        comment_id="1234",
        issue_id="100",
        text="adding a comment",
        author="colleen",
        author_id="1",
        project_slug="sentry",
        timestamp="2022-03-02T21:51:44.118160Z",
    )
    deleted = {**COMMENT_PAYLOAD, "action": "deleted", "data": {"comment_id": 1234, "issue_id": 100}}
    assert _event(deleted, "comment").text == ""


def test_what_the_app_does_not_handle_is_none() -> None:
    assert _event({**ISSUE_PAYLOAD, "action": "created"}, "issue") is None
    assert _event({**ISSUE_PAYLOAD, "action": "triggered"}, "event_alert") is None


def test_a_view_of_another_resource_is_invalid() -> None:
    body = _body(COMMENT_PAYLOAD)
    webhook = from_http(_headers(body, "comment"), body, SECRET)
    with pytest.raises(InvalidSentryPayload, match="not issue"):
        sentry.issue_event(webhook)


def test_the_apps_own_writes_are_recognised_by_the_actor() -> None:
    payload = {**ISSUE_PAYLOAD, "actor": {"type": "application", "id": APP, "name": "Azure Boards"}}
    body = _body(payload)
    webhook = from_http(_headers(body), body, SECRET)
    assert webhook.is_from_app(APP)
    assert not webhook.is_from_app("another-app") and not webhook.is_from_app(None)
    body = _body(ISSUE_PAYLOAD)
    assert not from_http(_headers(body), body, SECRET).is_from_app(APP)  # a person's change is not an echo


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
# Near misses of the real shapes, so the fuzzing reaches every field of every view.
weird = json_values | st.sampled_from(["1", "0", "-1", "99999999999999999999", "https://x/ y", "user", "a|b"])


ids = st.one_of(st.integers(min_value=1, max_value=2**40), st.sampled_from(["7", "1170820242"]), weird)


def _maybe(**fields: st.SearchStrategy) -> st.SearchStrategy:
    return st.one_of(st.fixed_dictionaries(fields), st.fixed_dictionaries({}, optional=fields), weird)


def _near(required: dict[str, st.SearchStrategy], **optional: st.SearchStrategy) -> st.SearchStrategy:
    return st.fixed_dictionaries(required, optional=optional)


person = _maybe(type=weird | st.just("user"), id=ids, name=weird, email=weird)
assignee = st.none() | _near({"type": st.just("user") | weird, "id": ids}, name=weird, email=weird) | weird
slug = st.one_of(st.just("acme"), st.just("front"), weird)
DATA_FOR = {
    "issue": _near(
        {"issue": _near({"id": ids}, status=weird, assignedTo=assignee, project=_maybe(id=ids, slug=weird))}
    ),
    "installation": _near(
        {
            "installation": _near(
                {"uuid": st.one_of(st.just("u-1"), st.just("u-1"), weird), "organization": _maybe(slug=slug)},
                code=weird,
            )
        }
    ),
    "comment": _near({"comment_id": ids, "issue_id": ids}, comment=weird | st.text()),
}
datas = st.one_of(*DATA_FOR.values(), st.dictionaries(st.text(max_size=8), json_values, max_size=3))
# A handled resource and action with data near its shape (or any object).
handled = st.sampled_from(sorted(sentry.HANDLED)).flatmap(
    lambda r: st.tuples(
        st.just(r), st.sampled_from(sorted(sentry.HANDLED[r])), st.one_of(DATA_FOR[r], DATA_FOR[r], datas)
    )
)
resources = st.sampled_from(["issue", "installation", "comment", "event_alert", "Issue", ""]) | st.text(max_size=8)
actions = st.sampled_from(sorted(set().union(*sentry.HANDLED.values()))) | json_values


@PROPERTY
@given(st.dictionaries(st.text(max_size=30), st.text(max_size=80), max_size=5), st.binary(max_size=300), st.text())
def test_unsigned_garbage_raises_only_the_modules_errors(headers: dict, body: bytes, secret: str) -> None:
    with pytest.raises((InvalidSignature, InvalidSentryPayload, BodyTooLarge)):
        from_http(headers, body, secret)
    with pytest.raises((InvalidSignature, InvalidSentryPayload, BodyTooLarge)):
        verify_ui_request(headers, body, secret)


@PROPERTY
@given(resources, actions, datas | json_values, person, weird | st.fixed_dictionaries({"uuid": st.just("u-1")}))
def test_signed_odd_shapes_raise_only_invalid_payload(resource: str, action: Any, data: Any, actor: Any, inst: Any):
    body = _body({"action": action, "installation": inst, "data": data, "actor": actor})
    try:
        webhook = from_http(_headers(body, resource), body, SECRET)
        event_of(webhook)
        for view in (sentry.installation_event, sentry.issue_event, sentry.comment_event):
            try:
                view(webhook)
            except InvalidSentryPayload:
                pass
    except InvalidSentryPayload:
        pass


@PROPERTY
@given(handled, person)
def test_the_views_of_odd_data_raise_only_invalid_payload(case: tuple[str, str, Any], actor: Any) -> None:
    resource, action, data = case
    body = _body({"action": action, "installation": {"uuid": "u-1"}, "data": data, "actor": actor})
    webhook = from_http(_headers(body, resource), body, SECRET)  # a valid envelope: the views get the odd data
    try:
        event = event_of(webhook)
    except InvalidSentryPayload:
        return
    assert event is not None and event.action == action
