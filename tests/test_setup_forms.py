"""The setup page's pure parts: form parsing, organization URLs, credentials, the session cookie and the checks
a form post passes (no storage, no network)."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest

from shared.errors import InvalidInput
from shared.pages import tokens
from shared.pages.setup_form import (
    CONNECT_FIELDS,
    MAX_FORM_BYTES,
    RULE_FIELDS,
    OrgUrl,
    parse_credentials,
    parse_form,
    parse_org_url,
    parse_removal,
    parse_rule,
    parse_sync,
)
from shared.pages.setup_session import (
    SESSION_SECONDS,
    cookie_header,
    form_allowed,
    open_session,
    read_session,
    with_integration,
)
from shared.pages.tokens import from_this_origin, is_loopback

FORM = "application/x-www-form-urlencoded"
NOW = 1_700_000_000.0
GUID = "3f2504e0-4f89-11d3-9a0c-0305e82c3301"
FAKE = "http://127.0.0.1:5000"


# -- form bodies -----------------------------------------------------------------------------------------


def test_a_form_is_parsed_with_percent_encoded_utf8() -> None:
    body = urlencode({"org_url": "https://dev.azure.com/fabrikam", "pat": "é"}).encode()
    assert parse_form(body, f"{FORM}; charset=utf-8", CONNECT_FIELDS) == {
        "org_url": "https://dev.azure.com/fabrikam",
        "pat": "é",
    }


@pytest.mark.parametrize(
    ("body", "content_type", "sentence"),
    [
        (b"pat=x", "application/json", "accepts only its own forms"),
        (b"pat=x", None, "accepts only its own forms"),
        (b"pat=" + b"x" * MAX_FORM_BYTES, FORM, "larger than"),
        (b"pat=x&pat=y", FORM, "twice"),
        (b"pat=x&admin=1", FORM, "does not know"),
        (b"pat=%ff", FORM, "could not be read"),
        ("pat=é".encode(), FORM, "could not be read"),
        (b"pat=x&&", FORM, "could not be read"),
        (b"pat=a%00b", FORM, "control characters"),
        ("&".join(f"k{n}=v" for n in range(30)).encode(), FORM, "could not be read"),
    ],
)
def test_a_form_that_is_not_the_pages_own_is_refused_in_one_sentence(
    body: bytes, content_type: str | None, sentence: str
) -> None:
    with pytest.raises(InvalidInput, match=sentence) as caught:
        parse_form(body, content_type, CONNECT_FIELDS)
    assert str(caught.value).count(". ") <= 1


def test_an_empty_form_is_empty() -> None:
    assert parse_form(b"", FORM, CONNECT_FIELDS) == {}


# -- organization URLs -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("https://dev.azure.com/fabrikam", OrgUrl("https://dev.azure.com/fabrikam/", "fabrikam")),
        ("dev.azure.com/fabrikam/Web/_boards", OrgUrl("https://dev.azure.com/fabrikam/", "fabrikam")),
        (
            " https://Fabrikam.visualstudio.com/DefaultCollection ",
            OrgUrl("https://fabrikam.visualstudio.com/", "fabrikam"),
        ),
        ("fabrikam.visualstudio.com", OrgUrl("https://fabrikam.visualstudio.com/", "fabrikam")),
        (f"{FAKE}/fabrikam", OrgUrl(f"{FAKE}/fabrikam/", "fabrikam")),
        (f"{FAKE}/tfs/DefaultCollection/", OrgUrl(f"{FAKE}/tfs/DefaultCollection/", "DefaultCollection")),
    ],
)
def test_organization_urls_as_people_paste_them(text: str, expected: OrgUrl) -> None:
    assert parse_org_url(text, (FAKE,)) == expected


@pytest.mark.parametrize(
    ("text", "sentence"),
    [
        ("", "Enter the organization's URL"),
        ("https://evil.example/fabrikam", "evil.example is not Azure DevOps"),
        ("http://dev.azure.com/fabrikam", "is not Azure DevOps"),
        ("https://dev.azure.com:8443/fabrikam", "is not Azure DevOps"),
        ("https://dev.azure.com/", "Add the organization's name"),
        ("https://user:pw@dev.azure.com/fabrikam", "not a URL"),
        ("https://app.vssps.visualstudio.com/", "is not Azure DevOps"),
        (f"{FAKE}/", "must name the collection"),
        ("https://dev.azure.com/fab%20rikam", "letters, digits"),
    ],
)
def test_an_address_that_is_not_an_organization_is_refused(text: str, sentence: str) -> None:
    with pytest.raises(InvalidInput, match=sentence):
        parse_org_url(text, (FAKE,))


# -- credentials -----------------------------------------------------------------------------------------


def test_a_pat_and_a_service_principal_become_the_admin_apis_credentials() -> None:
    assert parse_credentials({"auth": "pat", "pat": " tok-123 "}) == {"type": "pat", "token": "tok-123"}
    entra = {"auth": "entra", "tenant_id": GUID, "client_id": GUID.upper(), "client_secret": "s3cr3t~x", "pat": ""}
    assert parse_credentials(entra) == {
        "type": "entra",
        "tenant_id": GUID,
        "client_id": GUID,
        "client_secret": "s3cr3t~x",
    }


@pytest.mark.parametrize(
    ("form", "sentence"),
    [
        ({}, "Choose how the app signs in"),
        ({"auth": "oauth"}, "Choose how the app signs in"),
        ({"auth": "pat", "pat": ""}, "personal access token"),
        ({"auth": "pat", "pat": "two words"}, "personal access token"),
        ({"auth": "entra", "tenant_id": "", "client_id": GUID, "client_secret": "s"}, "tenant id"),
        ({"auth": "entra", "tenant_id": "a/b", "client_id": GUID, "client_secret": "s"}, "tenant id"),
        ({"auth": "entra", "tenant_id": GUID, "client_id": "app", "client_secret": "s"}, "client id"),
        ({"auth": "entra", "tenant_id": GUID, "client_id": GUID, "client_secret": ""}, "client secret"),
    ],
)
def test_a_missing_or_malformed_credential_is_named(form: dict, sentence: str) -> None:
    with pytest.raises(InvalidInput, match=sentence):
        parse_credentials(form)


# -- what to sync, state rules ----------------------------------------------------------------------------


def test_ticked_boxes_are_true_and_the_others_false() -> None:
    assert parse_sync({"sync_status_reverse": "on", "sync_comments": "on"}) == {
        "sync_status_reverse": True,
        "sync_reverse_assignment": False,
        "sync_status_forward": False,
        "sync_forward_assignment": False,
        "sync_comments": True,
        "sync_comments_reverse": False,
    }
    with pytest.raises(InvalidInput):
        parse_sync({"sync_comments": "yes"})


def test_a_rule_is_picked_one_list_at_a_time() -> None:
    assert not parse_rule({"project": "Web"}).complete
    assert not parse_rule({"project": "Web", "type": "Bug"}).complete
    done = parse_rule({"project": "Web", "type": "Bug", "resolved": "Done", "unresolved": "", "every_project": "on"})
    assert done.complete and done.every_project and done.unresolved is None
    for form in ({"type": "Bug"}, {"project": "Web", "resolved": "Done"}):
        with pytest.raises(InvalidInput):
            parse_rule(form)
    with pytest.raises(InvalidInput, match="resolved, for unresolved, or both"):
        parse_rule({"project": "Web", "type": "Bug", "resolved": "", "unresolved": ""})
    assert set(RULE_FIELDS) >= {"project", "type", "resolved", "unresolved", "every_project", "remove"}


def test_a_removal_names_an_existing_rule() -> None:
    assert parse_removal({}, 2) is None
    assert parse_removal({"remove": "1"}, 2) == 1
    for value in ("2", "-1", "x", ""):
        with pytest.raises(InvalidInput):
            parse_removal({"remove": value}, 2)


# -- the session cookie and the form checks ----------------------------------------------------------------


def _cookie(header: str) -> str:
    return header.split(";", 1)[0]


def test_the_session_cookie_is_signed_short_lived_and_strict() -> None:
    session = open_session("acme", now=NOW)
    header = cookie_header(session, now=NOW, secure=True)
    assert header.startswith("setup_session=")
    for flag in ("HttpOnly", "SameSite=Strict", "Secure", "Path=/api/setup", f"Max-Age={SESSION_SECONDS}"):
        assert flag in header
    assert "Secure" not in cookie_header(session, now=NOW, secure=False)
    assert read_session(f"other=1; {_cookie(header)}", now=NOW + 60) == session
    assert read_session(_cookie(header), now=NOW + SESSION_SECONDS) is None  # ended
    assert read_session(_cookie(header)[:-2] + "xx", now=NOW) is None  # forged
    assert read_session(None, now=NOW) is None


def test_a_reissued_cookie_keeps_the_sessions_end() -> None:
    session = with_integration(open_session("acme", now=NOW), GUID)
    header = cookie_header(session, now=NOW + 600, secure=False)
    assert f"Max-Age={SESSION_SECONDS - 600}" in header
    assert read_session(_cookie(header), now=NOW + 601).integration_id == GUID
    assert read_session(_cookie(header), now=NOW + SESSION_SECONDS + 1) is None


def test_another_purposes_token_is_not_a_session() -> None:
    token = tokens.sign("something-else", {"org": "acme", "sid": "x", "until": NOW + 60}, now=NOW, lifetime=60)
    assert read_session(f"setup_session={token}", now=NOW) is None


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1:7071", True), ("localhost", True), ("[::1]:80", True), ("app.azurewebsites.net", False), ("", False)],
)
def test_only_loopback_goes_without_secure(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_a_form_post_needs_this_origin_and_the_sessions_token() -> None:
    session = open_session("acme", now=NOW)
    good = {"origin": "http://127.0.0.1:7071", "sec-fetch-site": "same-origin"}
    assert form_allowed(session, session.form_token, good, "127.0.0.1:7071")
    assert form_allowed(session, session.form_token, {}, "127.0.0.1:7071")  # not a browser: the token decides
    assert not form_allowed(session, "forged", good, "127.0.0.1:7071")
    assert not form_allowed(session, None, good, "127.0.0.1:7071")
    assert not form_allowed(open_session("acme", now=NOW), session.form_token, good, "127.0.0.1:7071")
    assert not form_allowed(None, session.form_token, good, "127.0.0.1:7071")
    # Chromium sends `Origin: null` for the page's own forms under Referrer-Policy: no-referrer.
    assert from_this_origin({"origin": "null", "sec-fetch-site": "same-origin"}, "127.0.0.1:7071")
    for headers in (
        {"origin": "https://evil.example"},
        {"sec-fetch-site": "cross-site"},
        {"sec-fetch-site": "same-site", "origin": "http://127.0.0.1:7071"},
        {"origin": "null", "sec-fetch-site": "cross-site"},
    ):
        assert not from_this_origin(headers, "127.0.0.1:7071")
        assert not form_allowed(session, session.form_token, headers, "127.0.0.1:7071")
