"""Every request the fake receives, checked against Microsoft's published specification of the operation it matches
(`spec_table.json`, written by `devtools/spec_table.py` from MicrosoftDocs/vsts-rest-api-specs; see its `source`).

Checks, in Azure DevOps' order, with its answers:
- the operation exists for that method and path on this server (else 404, or 405 for another method);
- the api-version is given (400 `VssVersionNotSpecifiedException`), well-formed, not above the server's
  (400 `VssVersionOutOfRangeException`) nor above the operation's preview number;
- an operation marked `x-ms-preview` is called with `-preview` (400 `VssInvalidPreviewVersionException`);
- required query parameters are present, values of enum parameters are the specification's (exact spelling);
- a required body is present; a JSON Patch body is a list of well-formed operations (RFC 6902).

Each refusal is also recorded as a *violation*: Azure DevOps would refuse the request, so the app has a bug a
test must show. A query parameter the operation does not define is recorded too (Azure DevOps ignores it, so
the app would silently not get what it asked for, e.g. `format=markdown` on Server 2022's comments API).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from werkzeug.wrappers import Request, Response

from devtools.fakes.ado.protocol import api_version, error

TABLE: dict[str, Any] = json.loads((Path(__file__).resolve().parent / "spec_table.json").read_text())
SERVER_LEVELS = {"services": (7, 1), "server-2022": (7, 0), "server-2022.1": (7, 1)}
PATCH_OPERATIONS = {"add", "remove", "replace", "move", "copy", "test"}
_VERSION = re.compile(r"(\d+)\.(\d+)(-preview(?:\.(\d+))?)?", re.IGNORECASE)


@dataclass(frozen=True)
class Operation:
    method: str
    path: str  # as the table spells it, after the organization or collection
    servers: dict[str, dict[str, Any]]
    segments: tuple[str, ...] = field(default=())

    def fits(self, method: str, parts: list[str], server: str) -> dict[str, str] | None:
        """The path parameters when `parts` (after the organization) fit this operation's path on `server`."""
        if method != self.method or server not in self.servers:
            return None
        facts = self.servers[server]
        optional = set(facts["optional_segments"])
        integers = set(facts["integer_segments"])
        return _fit(list(self.segments), parts, optional, integers)


def _fit(template: list[str], parts: list[str], optional: set[str], integers: set[str]) -> dict[str, str] | None:
    if not template:
        return {} if not parts else None
    head, rest = template[0], template[1:]
    variable = re.fullmatch(r"\{(\w+)\}", head)
    if variable:
        name = variable.group(1)
        # An optional segment ({project}, {team}) never takes `_apis` itself: that is where the route goes on.
        route = bool(parts) and name in optional and parts[0].lower() == "_apis"
        if parts and (name not in integers or parts[0].isdigit()) and not route:
            found = _fit(rest, parts[1:], optional, integers)
            if found is not None:
                return {name: parts[0], **found}
        return _fit(rest, parts, optional, integers) if name in optional else None
    if head.startswith("${"):  # `${type}`: a segment beginning with `$`
        if parts and parts[0].startswith("$") and len(parts[0]) > 1:
            found = _fit(rest, parts[1:], optional, integers)
            return None if found is None else {head[2:-1]: parts[0][1:], **found}
        return None
    if parts and parts[0].lower() == head.lower():
        return _fit(rest, parts[1:], optional, integers)
    return None


OPERATIONS = [
    Operation(o["method"], o["path"], o["servers"], tuple(s for s in o["path"].split("/") if s))
    for o in TABLE["operations"]
]


def find(method: str, parts: list[str], server: str) -> Operation | None:
    """The operation of `method` at `parts` (path segments after the organization, or after the vssps host
    with '@vssps' first) on `server`."""
    for operation in OPERATIONS:
        if operation.fits(method, parts, server) is not None:
            return operation
    return None


def methods_at(parts: list[str], server: str) -> list[str]:
    return sorted({o.method for o in OPERATIONS if o.fits(o.method, parts, server) is not None})


class Refusal(Exception):
    """A request the specification says Azure DevOps refuses: the response, and the violation to record."""

    def __init__(self, response: Response, violation: str) -> None:
        super().__init__(violation)
        self.response = response
        self.violation = violation


def check(request: Request, operation: Operation, server: str) -> tuple[list[str], str]:
    """Raises Refusal when Azure DevOps would refuse the request; returns the notes to record (parameters the
    operation does not define) and the api-version."""
    facts = operation.servers[server]
    where = f"{request.method} {request.path}"
    version = api_version(request)
    if version is None:
        raise Refusal(
            error(
                400,
                f'No api-version was supplied for the "{request.method}" request. The version must be supplied '
                'either as part of the Accept header (e.g. "application/json; api-version=1.0") or as a query '
                'parameter (e.g. "?api-version=1.0").',
                "VssVersionNotSpecifiedException",
            ),
            f"{where}: no api-version",
        )
    match = _VERSION.fullmatch(version)
    if match is None:
        raise Refusal(
            error(400, f"The api-version '{version}' is not valid.", "VssInvalidApiVersionException"),
            f"{where}: malformed api-version {version!r}",
        )
    requested = (int(match.group(1)), int(match.group(2)))
    level = SERVER_LEVELS[server]
    if requested > level:
        raise Refusal(
            error(
                400,
                f"The requested REST API version of {version} is out of range for this server. "
                f"The latest REST API version this server supports is {level[0]}.{level[1]}.",
                "VssVersionOutOfRangeException",
            ),
            f"{where}: api-version {version} is above the server's {level[0]}.{level[1]}",
        )
    preview_requested = match.group(3) is not None
    if facts["preview"] and not preview_requested:
        raise Refusal(
            error(
                400,
                f'The requested version "{version}" of the resource is under preview. The -preview flag must be '
                f'supplied in the api-version for such requests. For example: "{version}-preview"',
                "VssInvalidPreviewVersionException",
            ),
            f"{where}: api-version {version} without -preview for a preview operation ({facts['version']})",
        )
    spec_preview = re.search(r"-preview\.(\d+)$", facts["version"])
    if match.group(4) is not None and int(match.group(4)) > (int(spec_preview.group(1)) if spec_preview else 1):
        raise Refusal(
            error(
                400,
                f"The requested REST API version of {version} is out of range for this server. "
                f"The latest REST API version this server supports for this resource is {facts['version']}.",
                "VssVersionOutOfRangeException",
            ),
            f"{where}: api-version {version} is above the operation's {facts['version']}",
        )
    given = {key.lower(): value for key, value in request.args.items(multi=True)}
    for name, parameter in facts["query"].items():
        value = given.get(name.lower())
        if value is None:
            if parameter["required"]:
                raise Refusal(
                    error(400, f"The required parameter {name} is missing.", "InvalidArgumentValueException"),
                    f"{where}: required query parameter {name} is missing",
                )
            continue
        if "enum" in parameter and value not in parameter["enum"]:
            raise Refusal(
                error(
                    400,
                    f"The value '{value}' is not valid for {name}: expected one of {', '.join(parameter['enum'])}.",
                    "InvalidArgumentValueException",
                ),
                f"{where}: {name}={value!r} is not one of the specification's {parameter['enum']}",
            )
    known = {name.lower() for name in facts["query"]} | {"api-version"}
    notes = [f"{where}: query parameter {name!r} is not defined here" for name in given if name not in known]
    if request.method in ("POST", "PUT", "PATCH") and facts["body_required"] and not request.get_data(cache=True):
        raise Refusal(
            error(400, "The request body is required.", "InvalidArgumentValueException"),
            f"{where}: the request body is missing",
        )
    if request.mimetype == "application/json-patch+json":
        problem = json_patch_problem(request.get_data(cache=True))
        if problem:
            raise Refusal(error(400, problem, "InvalidArgumentValueException"), f"{where}: {problem}")
    return notes, version


def json_patch_problem(data: bytes) -> str | None:
    """Why a JSON Patch document is not well-formed (RFC 6902), or None."""
    try:
        document = json.loads(data or b"null")
    except ValueError:
        return "The JSON Patch document is not valid JSON."
    if not isinstance(document, list) or not document:
        return "The JSON Patch document must be a non-empty array of operations."
    for index, operation in enumerate(document):
        if not isinstance(operation, dict):
            return f"JSON Patch operation {index} is not an object."
        op, path = operation.get("op"), operation.get("path")
        if op not in PATCH_OPERATIONS:
            return f"JSON Patch operation {index} has an unknown op {op!r}."
        if not isinstance(path, str) or not path.startswith("/"):
            return f"JSON Patch operation {index} needs a path beginning with '/'."
        if op in ("add", "replace", "test") and "value" not in operation:
            return f"JSON Patch operation {index} ({op}) needs a value."
        if op in ("move", "copy") and not isinstance(operation.get("from"), str):
            return f"JSON Patch operation {index} ({op}) needs a from."
    return None
