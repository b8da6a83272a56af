"""Fuzzing every Sentry route (contract §13.1) through its HTTP function: arbitrary bodies, headers and query
values, signed with the client secret, with another secret, or not at all. Never a 5xx; an answer is one JSON
sentence or what the route returns; and without a valid signature nothing is read or written (no storage
request at all), because the signature is checked before anything else."""

from __future__ import annotations

import json

import azure.functions as func
import pytest
import responses
from hypothesis import given
from hypothesis import strategies as st

from functions import sentry_components, sentry_webhook
from shared.deliveries.sentry import signature
from tests.fuzzing import fuzz_settings
from tests.helpers import count_storage_requests

pytestmark = pytest.mark.usefixtures("azurite")

SECRET = "client-secret"  # what the sentry_http fixture sets as SENTRY_CLIENT_SECRET

TEXT = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["", " ", "a/b", "../..", "%2F", "\x00", "x" * 300, "<script>", "é", "a|b", "1", "-1", "9" * 30]),
)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70) | st.floats(allow_nan=False) | TEXT,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(TEXT, children, max_size=4),
    max_leaves=20,
)
# Bodies that mostly look like Sentry's, with wrong or right types, plus anything at all.
WEBHOOK = st.fixed_dictionaries(
    {},
    optional={
        "action": st.sampled_from(["created", "deleted", "resolved", "assigned", "updated"]) | TEXT,
        "installation": st.fixed_dictionaries({}, optional={"uuid": TEXT | JSON}) | JSON,
        "data": st.fixed_dictionaries(
            {},
            optional={
                "issue": st.fixed_dictionaries({}, optional={"id": TEXT | JSON, "status": TEXT, "assignedTo": JSON}),
                "installation": JSON,
                "comment": TEXT | JSON,
                "comment_id": TEXT | JSON,
                "issue_id": TEXT | JSON,
            },
        )
        | JSON,
        "actor": JSON,
    },
)
ISSUE_LINK = st.fixed_dictionaries(
    {},
    optional={
        "fields": st.dictionaries(
            st.sampled_from(["project", "work_item_type", "title", "description", "area_path", "work_item", "x"]),
            TEXT | JSON,
            max_size=5,
        )
        | JSON,
        "installationId": TEXT | JSON,
        "issueId": TEXT | JSON,
        "webUrl": TEXT | JSON,
        "project": JSON,
        "actor": JSON,
    },
)
BODIES = st.one_of(
    st.binary(max_size=120),
    WEBHOOK.map(lambda d: json.dumps(d).encode()),
    ISSUE_LINK.map(lambda d: json.dumps(d).encode()),
)
QUERY = st.dictionaries(
    st.sampled_from(["installationId", "query", "dependentData", "projectSlug", "x"]), TEXT, max_size=4
)

POSTS = {
    "webhook": (sentry_webhook.sentry_webhook, "Sentry-Hook-Signature", {200, 202, 400, 401, 413}),
    "issue_link_create": (
        sentry_components.sentry_issue_link_create,
        "Sentry-App-Signature",
        {201, 400, 401, 404, 413},
    ),
    "issue_link_link": (sentry_components.sentry_issue_link_link, "Sentry-App-Signature", {200, 400, 401, 404, 413}),
}
GETS = {
    "projects": sentry_components.sentry_options_projects,
    "workitemtypes": sentry_components.sentry_options_workitemtypes,
    "workitems": sentry_components.sentry_options_workitems,
}


def _signed(body: bytes, how: str) -> str | None:
    return {"valid": signature(body, SECRET), "other": signature(body, "another-secret"), "garbage": "zz" * 32}.get(how)


def _headers(header: str, body: bytes, how: str, extra: dict[str, str]) -> dict[str, str]:
    headers = {"Content-Type": "application/json", **extra}
    value = _signed(body, how)
    if value is not None:
        headers[header] = value
    return headers


def _check_answer(response: func.HttpResponse, allowed: set[int]) -> None:
    assert response.status_code in allowed, (response.status_code, response.get_body()[:300])
    if response.status_code >= 400:
        payload = json.loads(response.get_body())
        assert payload["error"].endswith("."), payload


@pytest.mark.parametrize("route", list(POSTS))
def test_sentry_posts_never_5xx_and_change_nothing_without_a_valid_signature(
    sentry_http: responses.RequestsMock, route: str
) -> None:
    handler, header, allowed = POSTS[route]
    seen: list[int] = []

    @fuzz_settings(200)
    @given(
        body=BODIES,
        how=st.sampled_from(["valid", "other", "garbage", "none"]),
        extra=st.dictionaries(st.sampled_from(["Sentry-Hook-Resource", "Request-ID", "Sentry-Hook-Timestamp"]), TEXT),
    )
    def check(body: bytes, how: str, extra: dict[str, str]) -> None:
        headers = _headers(header, body, how, {k: v for k, v in extra.items() if v.isascii() and "\n" not in v})
        request = func.HttpRequest("POST", f"http://localhost/api/sentry/{route}", headers=headers, body=body)
        with count_storage_requests() as calls:
            response = handler(request)
        seen.append(response.status_code)
        _check_answer(response, allowed)
        if how != "valid":
            assert response.status_code == 401 or (response.status_code == 413 and len(body) > 2**20)
            assert calls == [], calls  # refused before a byte was parsed: storage never asked

    check()
    assert 401 in seen and any(s != 401 for s in seen)


@pytest.mark.parametrize("kind", list(GETS))
def test_sentry_option_lists_never_5xx_and_read_nothing_without_a_valid_signature(
    sentry_http: responses.RequestsMock, kind: str
) -> None:
    handler = GETS[kind]
    seen: list[int] = []

    @fuzz_settings(150)
    @given(params=QUERY, how=st.sampled_from(["valid", "other", "garbage", "none"]))
    def check(params: dict[str, str], how: str) -> None:
        headers = _headers("Sentry-App-Signature", b"", how, {})
        request = func.HttpRequest(
            "GET", f"http://localhost/api/sentry/options/{kind}", headers=headers, params=params, body=b""
        )
        with count_storage_requests() as calls:
            response = handler(request)
        seen.append(response.status_code)
        _check_answer(response, {200, 400, 401, 404})
        if how != "valid":
            assert response.status_code == 401 and calls == [], (response.status_code, calls)
        else:
            assert all(c.startswith("GET ") for c in calls), calls  # a select only ever reads

    check()
    assert 401 in seen and any(s != 401 for s in seen)
