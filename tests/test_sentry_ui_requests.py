"""Sentry's UI component requests (shared.deliveries.sentry_ui), pure: the signature is checked before anything is
parsed, every malformed part of an issue-link form or an option request is refused with its own sentence, and a
fuzz test that nothing but the module's own errors ever comes out."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.deliveries.sentry import MAX_BODY_BYTES, InvalidSentryPayload, InvalidSignature, signature
from shared.deliveries.sentry_ui import (
    Choice,
    IssueLinkRequest,
    OptionsRequest,
    issue_link_request,
    options_request,
    parse_choice,
)
from shared.errors import BodyTooLarge
from tests.fuzzing import fuzz_settings

SECRET = "0d4c9a7e2f1b8c6d5e3a9f7b1c2d4e6f8a0b2c4d6e8f0a1b3c5d7e9f1a3b5c7d"
INSTALLATION = "eac5a0ae-60ec-418f-9318-46dc5e7e52ec"
INTEGRATION = "9f0e1d2c-3b4a-5968-7a6b-5c4d3e2f1a0b"
WEB_URL = "https://sentry.io/organizations/acme/issues/1170820242/"
ID = {"installationId": INSTALLATION}


def create_body(**fields: Any) -> dict[str, Any]:
    form = {"project": f"{INTEGRATION}|Fabrikam", "work_item_type": "Bug", "title": "ZeroDivisionError"}
    form.update(fields)
    return {
        "fields": {k: v for k, v in form.items() if v is not ...},
        "installationId": INSTALLATION,
        "issueId": 1170820242,
        "webUrl": WEB_URL,
        "project": {"slug": "backend", "id": 2},
        "actor": {"type": "user", "id": 101, "name": "Dana Lee"},
    }


def signed(raw: bytes, secret: str = SECRET, **headers: str) -> dict[str, str]:
    return {"Sentry-App-Signature": signature(raw, secret), "Content-Type": "application/json", **headers}


def parse(body: Any, form: str = "create", **headers: str) -> IssueLinkRequest:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return issue_link_request(signed(raw, **headers), raw, SECRET, form)


def refusal(body: Any, form: str = "create") -> str:
    with pytest.raises(InvalidSentryPayload) as caught:
        parse(body, form)
    return str(caught.value)


# -- issue-link forms -----------------------------------------------------------------------------------------------


def test_a_create_form_is_parsed_with_blank_optional_fields_left_out_and_the_request_id_kept() -> None:
    body = create_body(description="Line 1\r\nLine 2\n", area_path="   ", title="Boom")
    request = parse(body, **{"Request-ID": "1a2b3c4d5e6f"})
    assert request == IssueLinkRequest(
        installation_uuid=INSTALLATION,
        issue_id="1170820242",
        web_url=WEB_URL,
        fields={
            "project": f"{INTEGRATION}|Fabrikam",
            "work_item_type": "Bug",
            "title": "Boom",
            "description": "Line 1\r\nLine 2\n",
        },
        project_slug="backend",
        actor_id="101",
        request_id="1a2b3c4d5e6f",
    )


def test_an_issue_id_may_come_as_a_string_of_digits_and_a_link_form_needs_only_the_work_item() -> None:
    body = {**create_body(), "issueId": "42", "fields": {"work_item": 77}}
    request = parse(body, "link")
    assert (request.issue_id, request.fields, request.request_id) == ("42", {"work_item": "77"}, None)


def test_a_request_id_that_cannot_be_an_idempotency_key_is_dropped_not_refused() -> None:
    assert parse(create_body(), **{"Request-ID": "x" * 129}).request_id is None
    assert parse(create_body(), **{"Request-ID": "has space"}).request_id is None


@pytest.mark.parametrize(
    ("headers", "secret"),
    [({}, SECRET), ({"Sentry-App-Signature": "0" * 64}, SECRET), ({"Sentry-App-Signature": " "}, SECRET)],
    ids=["missing", "wrong", "blank"],
)
def test_a_missing_or_wrong_signature_is_refused_before_the_body_is_read(headers: dict, secret: str) -> None:
    with pytest.raises(InvalidSignature):
        issue_link_request(headers, b"not json at all", secret, "create")


def test_a_body_signed_with_another_secret_is_refused() -> None:
    raw = json.dumps(create_body()).encode()
    with pytest.raises(InvalidSignature):
        issue_link_request(signed(raw, "another-secret"), raw, SECRET, "create")


def test_a_body_over_one_mebibyte_is_refused_as_too_large() -> None:
    raw = b" " * (MAX_BODY_BYTES + 1)
    with pytest.raises(BodyTooLarge):
        issue_link_request(signed(raw), raw, SECRET, "create")


@pytest.mark.parametrize(
    ("body", "sentence"),
    [
        (b"\xff\xfe", "The body is not UTF-8 text."),
        (b"{", "The body is not valid JSON."),
        (b"[1, 2]", "The body is not a JSON object."),
        (b'{"a": NaN}', "The body is not valid JSON."),
        ({**create_body(), "installationId": None}, "The request has no valid installationId."),
        ({**create_body(), "installationId": "a/b"}, "The request has no valid installationId."),
        ({**create_body(), "issueId": None}, "The request has no valid issueId."),
        ({**create_body(), "issueId": 0}, "The request has no valid issueId."),
        ({**create_body(), "issueId": True}, "The request has no valid issueId."),
        ({**create_body(), "issueId": "12a"}, "The request has no valid issueId."),
        ({**create_body(), "webUrl": None}, "The request's webUrl is missing or not an http(s) URL."),
        ({**create_body(), "webUrl": "ftp://x/1"}, "The request's webUrl is missing or not an http(s) URL."),
        ({**create_body(), "webUrl": "https://a b/"}, "The request's webUrl is missing or not an http(s) URL."),
        ({**create_body(), "fields": None}, "The request's fields must be a JSON object."),
        ({**create_body(), "fields": ["title"]}, "The request's fields must be a JSON object."),
    ],
    ids=lambda value: None if isinstance(value, str) else "",
)
def test_each_malformed_part_of_the_envelope_gets_its_own_sentence(body: Any, sentence: str) -> None:
    assert refusal(body) == sentence


@pytest.mark.parametrize(
    ("fields", "sentence"),
    [
        ({"colour": "red"}, "The form has no field 'colour'; its fields are"),
        ({"title": ...}, "The field title is required."),
        ({"title": "   "}, "The field title is required."),
        ({"project": None}, "The field project is required."),
        ({"work_item_type": ""}, "The field work_item_type is required."),
        ({"title": ["a"]}, "The field title must be text."),
        ({"title": True}, "The field title must be text."),
        ({"title": "x" * 10_001}, "The field title must be at most 10000 characters."),
        ({"title": "a\nb"}, "The field title must not contain control characters."),
        ({"description": "a\x00b"}, "The field description must not contain control characters."),
        ({"area_path": "x" * 4001}, "The field area_path must be at most 4000 characters."),
    ],
)
def test_each_malformed_field_of_the_create_form_gets_its_own_sentence(fields: dict, sentence: str) -> None:
    assert refusal(create_body(**fields)).startswith(sentence)


def test_the_link_form_refuses_the_create_forms_fields_and_needs_its_work_item() -> None:
    assert refusal({**create_body(), "fields": {}}, "link") == "The field work_item is required."
    assert refusal(create_body(), "link").startswith("The form has no field 'project'")


@pytest.mark.parametrize(
    ("value", "choice"),
    [
        (f"{INTEGRATION}|Fabrikam Fiber", Choice(INTEGRATION, "Fabrikam Fiber")),
        (f"{INTEGRATION}|77", Choice(INTEGRATION, "77")),
        ("Fabrikam", Choice(None, "Fabrikam")),
        ("  77 ", Choice(None, "77")),
    ],
)
def test_a_select_value_names_its_integration_or_is_bare(value: str, choice: Choice) -> None:
    assert parse_choice(value, "project") == choice


@pytest.mark.parametrize(
    ("value", "sentence"),
    [
        ("|Fabrikam", "The project does not name an Azure DevOps integration; choose it from the list."),
        ("not an id!|Fabrikam", "The project does not name an Azure DevOps integration; choose it from the list."),
        (f"{INTEGRATION}|  ", "The project is empty; choose it from the list."),
    ],
)
def test_a_malformed_select_value_is_refused(value: str, sentence: str) -> None:
    with pytest.raises(InvalidSentryPayload, match=sentence.replace("(", r"\(").replace(")", r"\)")):
        parse_choice(value, "project")


# -- option requests ---------------------------------------------------------------------------------------------


def options(params: dict[str, str], headers: dict[str, str] | None = None) -> OptionsRequest:
    return options_request(headers if headers is not None else signed(b""), params, SECRET)


def test_an_option_request_is_verified_over_the_empty_string_and_parsed() -> None:
    params = {
        "installationId": INSTALLATION,
        "projectSlug": "backend",
        "query": "  Fab ",
        "dependentData": json.dumps({"project": f"{INTEGRATION}|Fabrikam", "title": None}),
        "somethingNew": "ignored",
    }
    assert options(params) == OptionsRequest(INSTALLATION, "Fab", {"project": f"{INTEGRATION}|Fabrikam"}, "backend")
    assert options({"installationId": INSTALLATION}) == OptionsRequest(INSTALLATION, "", {}, None)


def test_an_option_request_signed_over_anything_but_the_empty_string_is_refused() -> None:
    with pytest.raises(InvalidSignature):
        options({"installationId": INSTALLATION}, signed(b"installationId=" + INSTALLATION.encode()))
    with pytest.raises(InvalidSignature):
        options({"installationId": INSTALLATION}, {})


@pytest.mark.parametrize(
    ("params", "sentence"),
    [
        ({}, "The request has no valid installationId."),
        ({"installationId": "a b"}, "The request has no valid installationId."),
        ({**ID, "query": "x" * 201}, "The query must be at most 200 characters."),
        ({**ID, "query": "a\x07"}, "The query must not contain control characters."),
        ({**ID, "dependentData": "{"}, "dependentData is not valid JSON."),
        ({**ID, "dependentData": "[]"}, "dependentData is not a JSON object."),
        ({**ID, "dependentData": "x" * 4001}, "dependentData must be at most 4000 characters."),
        ({**ID, "dependentData": '{"board": "1"}'}, "dependentData names no field of the forms: 'board'."),
        ({**ID, "dependentData": '{"project": ["a"]}'}, "The field project must be text."),
    ],
)
def test_each_malformed_option_parameter_gets_its_own_sentence(params: dict, sentence: str) -> None:
    with pytest.raises(InvalidSentryPayload) as caught:
        options(params)
    assert str(caught.value) == sentence


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=12,
)


@fuzz_settings(300)
@given(
    envelope=st.dictionaries(
        st.sampled_from(["fields", "installationId", "issueId", "webUrl", "project", "actor", "x"]), _JSON
    ),
    fields=st.dictionaries(st.sampled_from(["project", "work_item_type", "title", "description", "zz"]), _JSON),
    form=st.sampled_from(["create", "link"]),
)
def test_any_signed_body_gives_a_request_or_one_of_the_modules_errors(envelope: dict, fields: dict, form: str) -> None:
    raw = json.dumps({**envelope, "fields": fields} if "fields" in envelope else envelope).encode()
    try:
        request = issue_link_request(signed(raw), raw, SECRET, form)
    except InvalidSentryPayload as exc:
        assert str(exc) and "\n" not in str(exc)
    else:
        assert request.issue_id.isdigit() and request.web_url.startswith(("http://", "https://"))


@fuzz_settings(300)
@given(params=st.dictionaries(st.sampled_from(["installationId", "query", "dependentData", "projectSlug"]), st.text()))
def test_any_signed_option_request_gives_a_request_or_one_of_the_modules_errors(params: dict) -> None:
    try:
        options(params)
    except InvalidSentryPayload as exc:
        assert str(exc)
