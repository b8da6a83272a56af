"""Fuzzing the admin API: arbitrary bodies and route values get 2xx, 400 or 404 with one JSON sentence,
never 5xx, and a refused request writes nothing (every storage request it made was a read)."""

import json

import azure.functions as func
import pytest
from hypothesis import given
from hypothesis import strategies as st

from functions import admin_integrations, admin_tracker
from tests.fuzzing import fuzz_settings
from tests.helpers import count_storage_requests, make_integration

pytestmark = pytest.mark.usefixtures("azurite")

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=40),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=20), children, max_size=5),
    max_leaves=25,
)
HOSTILE_TEXT = st.one_of(
    st.text(max_size=60),
    st.sampled_from(
        ["", " ", "a/b", "a#b", "a?b", "a\\b", "x" * 300, "\x00", "../..", "%2F", "' or 1=1", "<script>", "é", "a|b"]
    ),
    st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,20}", fullmatch=True),
)
EMAILS = st.one_of(HOSTILE_TEXT, st.emails().map(lambda e: e[:80]))


def _fields(names: dict[str, st.SearchStrategy]) -> st.SearchStrategy:
    """Objects that mostly use the route's own field names, with wrong or right types, plus strangers."""
    return st.one_of(
        JSON,
        st.fixed_dictionaries({}, optional={k: st.one_of(v, JSON) for k, v in names.items()}),
        st.dictionaries(st.sampled_from([*names, "extra"]), JSON, max_size=4),
    )


BODIES = {
    "put_integration": _fields(
        {
            "name": HOSTILE_TEXT,
            "domain_name": HOSTILE_TEXT,
            "credentials": st.fixed_dictionaries(
                {"type": st.sampled_from(["pat", "oauth", "entra", "x"])},
                optional={
                    "token": HOSTILE_TEXT,
                    "access_token": HOSTILE_TEXT,
                    "refresh_token": HOSTILE_TEXT,
                    "expires_at": JSON,
                    "tenant_id": HOSTILE_TEXT,
                    "client_id": HOSTILE_TEXT,
                    "client_secret": HOSTILE_TEXT,
                },
            ),
            "webhook_secret": HOSTILE_TEXT,
        }
    ),
    "put_installation": _fields(
        {
            "sync_reverse_assignment": st.booleans(),
            "sync_status_reverse": st.booleans(),
            "resolve_states": st.lists(HOSTILE_TEXT, max_size=4),
            "sync_status_forward": st.booleans(),
            "sync_forward_assignment": st.booleans(),
            "sync_comments": st.booleans(),
            "state_rules": st.lists(
                st.fixed_dictionaries(
                    {}, optional={k: HOSTILE_TEXT for k in ("project", "type", "resolved", "unresolved", "x")}
                ),
                max_size=3,
            ),
        }
    ),
    "put_member": _fields({"user_id": HOSTILE_TEXT, "name": HOSTILE_TEXT}),
    "put_issue": _fields(
        {
            "title": HOSTILE_TEXT,
            "status": st.sampled_from(["resolved", "unresolved", "open", ""]),
            "assignee": st.one_of(st.none(), EMAILS),
            "url": st.one_of(st.none(), HOSTILE_TEXT, st.just("https://tracker.example.com/i/1")),
        }
    ),
}


def _request(method: str, route: dict[str, str], body: object, raw: bytes | None) -> func.HttpRequest:
    data = raw if raw is not None else json.dumps(body).encode()
    return func.HttpRequest(method, "http://localhost/api/x", route_params=route, body=data)


@pytest.fixture(scope="module")
def known_integration():
    return make_integration()


CASES = [
    (
        "put_integration",
        "PUT",
        admin_integrations.put,
        lambda d, i: {"integration_id": d.draw(st.one_of(HOSTILE_TEXT, st.just(i)))},
    ),
    (
        "put_installation",
        "PUT",
        admin_tracker.put_installation,
        lambda d, i: {"org_id": d.draw(HOSTILE_TEXT), "integration_id": d.draw(st.one_of(HOSTILE_TEXT, st.just(i)))},
    ),
    (
        "put_member",
        "PUT",
        admin_tracker.put_member,
        lambda d, i: {"org_id": d.draw(HOSTILE_TEXT), "email": d.draw(EMAILS)},
    ),
    (
        "put_issue",
        "PUT",
        admin_tracker.put_issue,
        lambda d, i: {"org_id": d.draw(HOSTILE_TEXT), "issue_id": d.draw(HOSTILE_TEXT)},
    ),
]


@pytest.mark.parametrize(("name", "method", "handler", "route"), CASES, ids=[c[0] for c in CASES])
def test_admin_bodies_never_5xx_and_refusals_write_nothing(known_integration, name, method, handler, route) -> None:
    seen: list[int] = []

    @fuzz_settings(300)
    @given(data=st.data(), raw=st.one_of(st.none(), st.binary(max_size=80)))
    def check(data, raw) -> None:
        body = data.draw(BODIES[name])
        with count_storage_requests() as calls:
            response = handler(_request(method, route(data, known_integration.id), body, raw))
        seen.append(response.status_code)
        assert response.status_code in (200, 201, 400, 404), response.get_body()
        payload = json.loads(response.get_body())
        if response.status_code >= 400:
            assert list(payload) == ["error"] and payload["error"].endswith(".")
            assert all(c.startswith("GET ") for c in calls), calls  # refused: reads only

    check()
    assert len(seen) >= 300 and 400 in seen


@pytest.mark.parametrize(
    ("handler", "method", "keys"),
    [
        (admin_tracker.put_link, "PUT", ("org_id", "issue_id", "integration_id", "work_item_id")),
        (admin_tracker.delete_link, "DELETE", ("org_id", "issue_id", "integration_id", "work_item_id")),
        (admin_tracker.delete_member, "DELETE", ("org_id", "email")),
        (admin_tracker.get_tracked_issue, "GET", ("org_id", "issue_id")),
        (admin_tracker.get_installation, "GET", ("org_id", "integration_id")),
        (admin_integrations.get, "GET", ("integration_id",)),
        (admin_integrations.delete, "DELETE", ("integration_id",)),
    ],
    ids=[
        "put_link",
        "delete_link",
        "delete_member",
        "get_issue",
        "get_installation",
        "get_integration",
        "delete_integration",
    ],
)
def test_hostile_route_values_never_5xx(handler, method, keys) -> None:
    @fuzz_settings(150)
    @given(values=st.tuples(*[HOSTILE_TEXT for _ in keys]))
    def check(values) -> None:
        with count_storage_requests() as calls:
            response = handler(_request(method, dict(zip(keys, values, strict=True)), None, b""))
        assert response.status_code in (200, 204, 400, 404), response.get_body()
        if response.status_code >= 400:
            assert all(c.startswith("GET ") for c in calls), calls

    check()
