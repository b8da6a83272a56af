"""The local host's HTTP side: Azure route templates, methods, responses and admin invoke."""

import json
from pathlib import Path

import pytest
from werkzeug.test import Client

from devhost.host import FunctionHost
from devhost.routing import template_to_rules
from tests.helpers import wait_for

SAMPLE = Path(__file__).parent / "apps" / "sample"


@pytest.fixture(scope="module")
def sample_host() -> FunctionHost:
    mp = pytest.MonkeyPatch()
    mp.setenv("TICK_SCHEDULE", "0 0 0 1 1 *")
    mp.setenv("WORK_QUEUE", "routing-unused")
    host = FunctionHost(SAMPLE)
    yield host
    mp.undo()


@pytest.fixture
def client(sample_host: FunctionHost) -> Client:
    return Client(sample_host)


def test_template_to_rules() -> None:
    assert template_to_rules("api", "health") == ["/api/health"]
    assert template_to_rules("", "health") == ["/health"]
    assert template_to_rules("api", "items/{id:int}") == ["/api/items/<az_int:id>"]
    assert template_to_rules("api", "a/{b?}") == ["/api/a/<default:b>", "/api/a"]
    assert template_to_rules("api", "f/{*rest}") == ["/api/f/<az_rest:rest>", "/api/f"]
    with pytest.raises(ValueError, match="only the last"):
        template_to_rules("api", "a/{b?}/c")
    with pytest.raises(ValueError, match="not supported"):
        template_to_rules("api", "a/{b:nosuch}")


def test_a_constrained_parameter_wins_and_values_stay_strings(client: Client) -> None:
    r = client.get("/api/items/42?x=1")
    assert r.status_code == 200
    assert r.json == {"method": "GET", "route": {"id": "42"}, "params": {"x": "1"}, "which": "int"}
    assert r.headers["X-Sample"] == "yes"
    assert r.headers["Content-Type"].startswith("application/json")
    assert client.get("/api/items/-7").json["which"] == "int"
    assert client.get("/api/items/widget").json == {
        "method": "GET", "route": {"name": "widget"}, "params": {}, "which": "name", "body": ""
    }  # fmt: skip


def test_methods_are_enforced(client: Client) -> None:
    assert client.put("/api/items/widget", data=b"hello").json["body"] == "hello"
    r = client.delete("/api/items/widget")
    assert r.status_code == 405
    assert "GET" in r.headers["Allow"]
    # A route registered for no methods takes them all.
    for method in ("GET", "POST", "PATCH", "DELETE"):
        assert client.open("/api/files/a", method=method).json["method"] == method


def test_optional_and_catch_all_segments(client: Client) -> None:
    assert client.get("/api/pages/one").json["route"] == {"a": "one"}
    assert client.get("/api/pages/one/two").json["route"] == {"a": "one", "b": "two"}
    assert client.get("/api/pages/one/two/three").status_code == 404
    assert client.get("/api/files/a/b/c.txt").json["route"] == {"rest": "a/b/c.txt"}
    assert client.get("/api/files").json["route"] == {}


def test_the_route_prefix_is_required(client: Client) -> None:
    assert client.get("/items/42").status_code == 404
    assert client.get("/api/nothing-here").status_code == 404


def test_str_results_and_exceptions(client: Client) -> None:
    r = client.get("/api/text")
    assert (r.status_code, r.data, r.headers["Content-Type"]) == (200, b"plain", "text/plain; charset=utf-8")
    r = client.get("/api/boom")
    assert (r.status_code, r.data) == (500, b"")


def test_function_keys_are_not_checked_locally_like_core_tools(client: Client) -> None:
    assert client.get("/api/items/1").status_code == 200  # auth level FUNCTION, no key


def test_admin_invoke_runs_a_timer_now(client: Client, sample_host: FunctionHost) -> None:
    calls = sample_host.module.CALLS
    before = len(calls)
    r = client.post("/admin/functions/tick", json={"input": ""})
    assert r.status_code == 202
    wait_for(lambda: len(calls) > before, 5, "the timer to run")
    assert calls[before:] == [("tick", False)]


def test_admin_invoke_runs_a_queue_function_with_the_input(client: Client, sample_host: FunctionHost) -> None:
    calls = sample_host.module.CALLS
    before = len(calls)
    assert client.post("/admin/functions/work", json={"input": json.dumps({"n": 1})}).status_code == 202
    wait_for(lambda: len(calls) > before, 5, "the queue function to run")
    assert calls[before:] == [("work", ({"n": 1}, 1))]


def test_admin_invoke_errors(client: Client) -> None:
    assert client.post("/admin/functions/nosuch", json={"input": ""}).status_code == 404
    assert client.post("/admin/functions/tick", data=b"{not json").status_code == 400
    assert client.post("/admin/functions/tick", json={"input": 5}).status_code == 400
    assert client.post("/admin/functions/text", json={"input": ""}).status_code == 400
    assert client.get("/admin/functions/tick").status_code == 405


def test_a_function_can_be_disabled_by_app_setting(monkeypatch) -> None:
    monkeypatch.setenv("TICK_SCHEDULE", "0 0 0 1 1 *")
    monkeypatch.setenv("WORK_QUEUE", "routing-unused")
    monkeypatch.setenv("AzureWebJobs.text.Disabled", "true")
    host = FunctionHost(SAMPLE)
    assert "text" not in host.functions and "boom" in host.functions
    assert Client(host).get("/api/text").status_code == 404
