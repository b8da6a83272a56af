"""docs/openapi.json against the code: the same routes and methods, auth and path parameters as the app registers.

Plain structural checks (no OpenAPI validator is a dependency). A route documented but not registered, or
registered but not documented, fails.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
SPEC_PATH = ROOT / "docs" / "openapi.json"
METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}
FUNCTION_KEY = {("header", "x-functions-key"), ("query", "code")}
_PARAM = re.compile(r"\{([^{}]+)\}")


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    with SPEC_PATH.open(encoding="utf-8") as fh:
        return json.load(fh)


def _route_prefix() -> str:
    host = json.loads((ROOT / "host.json").read_text(encoding="utf-8"))
    prefix = host.get("extensions", {}).get("http", {}).get("routePrefix", "api")
    return f"/{prefix}" if prefix else ""


def _normalize(route: str) -> str:
    """`{id:int}` and `{id?}` as OpenAPI writes them: `{id}`."""
    return _PARAM.sub(lambda m: "{" + m.group(1).split(":", 1)[0].rstrip("?") + "}", route)


def _code_routes(registered_functions: dict) -> dict[tuple[str, str], str]:
    """(METHOD, path) -> auth level ("anonymous", "function", ...) for every HTTP function of the app."""
    routes: dict[tuple[str, str], str] = {}
    prefix = _route_prefix()
    for function in registered_functions.values():
        trigger = function.get_trigger()
        if getattr(trigger, "type", None) != "httpTrigger":
            continue
        path = f"{prefix}/{_normalize(trigger.route or function.get_function_name())}"
        for method in trigger.methods or []:
            key = (method.value.upper(), path)
            assert key not in routes, f"two functions serve {key}"
            routes[key] = trigger.auth_level.value.lower()
    return routes


def _operations(spec: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (method.upper(), path): operation
        for path, item in spec["paths"].items()
        for method, operation in item.items()
        if method in METHODS
    }


def _resolve(spec: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        ref = node["$ref"]
        assert ref.startswith("#/"), f"only local references are used: {ref}"
        target: Any = spec
        for part in ref[2:].split("/"):
            target = target[part]
        node = target
    return node


def _path_params(spec: dict[str, Any], path: str, operation: dict[str, Any]) -> list[str]:
    declared = spec["paths"][path].get("parameters", []) + operation.get("parameters", [])
    return [p["name"] for p in (_resolve(spec, p) for p in declared) if p["in"] == "path"]


def test_document_is_openapi_3_1_json(spec: dict[str, Any]) -> None:
    assert isinstance(spec["openapi"], str) and spec["openapi"].startswith("3.1")
    assert spec["info"]["title"] and spec["info"]["version"]
    assert spec["paths"], "no paths"


def test_operations_match_the_registered_http_functions(registered_functions: dict, spec: dict[str, Any]) -> None:
    code = set(_code_routes(registered_functions))
    documented = set(_operations(spec))
    assert code - documented == set(), "HTTP functions missing from docs/openapi.json"
    assert documented - code == set(), "operations in docs/openapi.json that no function serves"


def test_anonymous_routes_have_no_security_and_the_others_need_the_function_key(
    registered_functions: dict, spec: dict[str, Any]
) -> None:
    schemes = spec["components"]["securitySchemes"]
    code = _code_routes(registered_functions)
    for key, operation in _operations(spec).items():
        security = operation.get("security", spec.get("security"))
        if code.get(key) == "anonymous":
            assert security == [], f"{key} is anonymous in the code: it needs security: []"
            continue
        assert security, f"{key} needs the function key"
        offered = set()
        for requirement in security:
            assert requirement, f"{key}: an empty requirement would make the key optional"
            for name in requirement:
                scheme = schemes[name]
                assert scheme["type"] == "apiKey", f"{key}: {name} is not the function key"
                offered.add((scheme["in"], scheme["name"]))
        assert offered == FUNCTION_KEY, f"{key}: the function key goes in x-functions-key or code, got {offered}"


def test_path_parameters_match_the_routes(spec: dict[str, Any]) -> None:
    for (method, path), operation in _operations(spec).items():
        declared = _path_params(spec, path, operation)
        assert sorted(declared) == sorted(_PARAM.findall(path)), f"{method} {path}: path parameters {declared}"
        for parameter in spec["paths"][path].get("parameters", []) + operation.get("parameters", []):
            parameter = _resolve(spec, parameter)
            if parameter["in"] == "path":
                assert parameter.get("required") is True, f"{method} {path}: {parameter['name']} must be required"
                assert "schema" in parameter


def test_references_resolve_and_error_bodies_are_the_error_object(spec: dict[str, Any]) -> None:
    error = spec["components"]["schemas"]["Error"]
    assert error["required"] == ["error"] and error["properties"]["error"]["type"] == "string"

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "$ref" in node:
                _resolve(spec, node)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(spec)
    for (method, path), operation in _operations(spec).items():
        assert operation.get("operationId"), f"{method} {path} has no operationId"
        for status, response in operation["responses"].items():
            response = _resolve(spec, response)
            schema = response.get("content", {}).get("application/json", {}).get("schema")
            if status.startswith(("4", "5")) and schema is not None and path != "/api/health":
                assert schema == {"$ref": "#/components/schemas/Error"}, f"{method} {path} {status}"
    ids = [op["operationId"] for op in _operations(spec).values()]
    assert len(ids) == len(set(ids)), "operationIds must be unique"
