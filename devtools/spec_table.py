"""Writes `devtools/fakes/ado/spec_table.json`: the facts of Microsoft's published Azure DevOps REST specification
(MicrosoftDocs/vsts-rest-api-specs, MIT) for the operations the app and the fake Azure DevOps use, per server.

    .venv/bin/python -m devtools.spec_table [--specs PATH] [--git-specs PATH]
    # PATH: the folder holding wit/, core/, hooks/, ...; the Git area (git/) is read from --git-specs (default
    # devtools/specs/, excerpts of the same commit) when the team's copy lacks it

For each operation (method and path, matched case-insensitively as Azure DevOps does): per server the
api-version it has (`7.1-preview.4` for a preview operation), whether it is preview (`x-ms-preview`), its query
parameters (required or not, and their enums) and whether a body is required. Path segments the specification
marks `x-ms-required: false` (`{project}`, `{team}`, the classification node `{path}`) are optional. Both
`paths` and `x-ms-paths` are read; the latter's query part (`comments?format={format}`) is a variant of the same
operation, so variants are merged: a parameter is required only when every variant requires it.

The specification files are not copied; this table is what the fake checks requests against.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

SOURCE = {
    "repository": "MicrosoftDocs/vsts-rest-api-specs",
    "commit": "adb28786a3e9349d5b3deb43eb2134b682c33bb2",
    "folder": "specification/",
    "licence": "MIT",
    "git": "the same commit's specification/git/, excerpted in devtools/specs/ (PROVENANCE.md there)",
}
# Server flavour -> the folder of each area holding its specification.
SERVERS = {"services": "7.1", "server-2022": "azure-devops-server-7.0", "server-2022.1": "azure-devops-server-7.1"}
AREAS = ("wit", "core", "hooks", "search", "git")
GIT_AREA = "git"  # repositories and items (stack frame links, contract §18); not in the team's copy of the specs
# Excerpts of the same commit's Git area (devtools/specs/PROVENANCE.md), read when the team's copy has no git/.
GIT_EXCERPTS = Path(__file__).resolve().parent / "specs"

# The operations used (method, path after the organization or collection, as the specification spells it).
USED = [
    ("GET", "/_apis/projects"),
    ("GET", "/_apis/projects/{projectId}"),
    ("GET", "/{project}/_apis/wit/workitemtypes"),
    ("GET", "/{project}/_apis/wit/workitemtypes/{type}"),
    ("GET", "/{project}/_apis/wit/workitemtypes/{type}/states"),
    ("GET", "/{project}/_apis/wit/workitemtypecategories"),
    ("GET", "/{project}/_apis/wit/classificationnodes"),
    ("GET", "/{project}/_apis/wit/classificationnodes/{structureGroup}/{path}"),
    ("POST", "/{project}/_apis/wit/workitems/${type}"),
    ("GET", "/{project}/_apis/wit/workitems/{id}"),
    ("PATCH", "/{project}/_apis/wit/workitems/{id}"),
    ("GET", "/{project}/_apis/wit/workitems"),
    ("POST", "/{project}/_apis/wit/workitemsbatch"),
    ("POST", "/{project}/{team}/_apis/wit/wiql"),
    ("POST", "/{project}/_apis/search/workitemsearchresults"),
    ("POST", "/{project}/_apis/wit/workItems/{workItemId}/comments"),
    ("GET", "/{project}/_apis/wit/workItems/{workItemId}/comments"),
    ("GET", "/{project}/_apis/wit/workItems/{workItemId}/comments/{commentId}"),
    ("PATCH", "/{project}/_apis/wit/workItems/{workItemId}/comments/{commentId}"),
    ("DELETE", "/{project}/_apis/wit/workItems/{workItemId}/comments/{commentId}"),
    ("GET", "/_apis/hooks/subscriptions"),
    ("POST", "/_apis/hooks/subscriptions"),
    ("GET", "/_apis/hooks/subscriptions/{subscriptionId}"),
    ("PUT", "/_apis/hooks/subscriptions/{subscriptionId}"),
    ("DELETE", "/_apis/hooks/subscriptions/{subscriptionId}"),
    ("GET", "/{project}/_apis/git/repositories"),
    ("GET", "/{project}/_apis/git/repositories/{repositoryId}/items"),
]

# Not in the specification: preview on every server (Microsoft's azure-devops-python-api calls both with
# `<version>-preview.1`; specs/azure-devops/PROVENANCE.md). The account lookup is on the vssps host, outside any
# organization, and exists on Azure DevOps Services only.
NOT_IN_SPEC = [
    {"method": "GET", "path": "/_apis/connectionData", "preview": 1, "servers": list(SERVERS), "query": {}},
    {
        "method": "GET",
        "path": "@vssps/_apis/resourceareas/{areaId}",
        "preview": 1,
        "servers": ["services"],
        "query": {"hostId": {"required": False}, "accountName": {"required": False}},
    },
]

_VERSION_IN_DESCRIPTION = re.compile(r"set to '(\d+\.\d+(?:-preview\.\d+)?)'")
_ORG = re.compile(r"^/\{(organization|collection)\}")


def _load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8-sig"))


def _spec_file(specs: Path, area: str, server: str) -> Path:
    files = sorted((specs / area / SERVERS[server]).glob("*.json"))
    if len(files) != 1:
        raise SystemExit(f"expected one specification file in {specs / area / SERVERS[server]}")
    return files[0]


def _parameters(spec: dict[str, Any], operation: dict[str, Any]) -> list[dict[str, Any]]:
    resolved = []
    for parameter in operation.get("parameters", []):
        if "$ref" in parameter:
            parameter = spec["parameters"][parameter["$ref"].rsplit("/", 1)[1]]
        resolved.append(parameter)
    return resolved


def _variant(spec: dict[str, Any], raw_path: str, operation: dict[str, Any]) -> dict[str, Any]:
    parameters = _parameters(spec, operation)
    version = None
    query: dict[str, Any] = {}
    optional_segments = []
    integer_segments = []
    body_required = False
    for parameter in parameters:
        name, where = parameter.get("name"), parameter.get("in")
        if name == "api-version":
            found = _VERSION_IN_DESCRIPTION.search(parameter.get("description", ""))
            if not found:
                raise SystemExit(f"no api-version in {raw_path}")
            version = found.group(1)
        elif where == "query":
            entry: dict[str, Any] = {"required": bool(parameter.get("required"))}
            if parameter.get("enum"):
                entry["enum"] = list(parameter["enum"])
            query[name] = entry
        elif where == "path":
            if parameter.get("x-ms-required") is False:
                optional_segments.append(name)
            if parameter.get("type") == "integer":
                integer_segments.append(name)
        elif where == "body":
            body_required = bool(parameter.get("required"))
    preview = bool(operation.get("x-ms-preview"))
    if version is None or preview != ("-preview" in version):
        raise SystemExit(f"the api-version of {raw_path} ({version}) does not agree with x-ms-preview ({preview})")
    return {
        "version": version,
        "preview": preview,
        "query": query,
        "optional_segments": sorted(optional_segments),
        "integer_segments": sorted(integer_segments),
        "body_required": body_required,
        "operation_id": operation.get("operationId"),
    }


def _merge(variants: list[dict[str, Any]]) -> dict[str, Any]:
    versions = {v["version"] for v in variants}
    if len(versions) != 1:
        raise SystemExit(f"variants disagree on the api-version: {sorted(versions)}")
    query: dict[str, Any] = {}
    for name in sorted({n for v in variants for n in v["query"]}):
        entries = [v["query"].get(name) for v in variants]
        present = [e for e in entries if e is not None]
        enum = sorted({value for e in present for value in e.get("enum", [])})
        merged: dict[str, Any] = {"required": all(e is not None and e["required"] for e in entries)}
        if enum:
            merged["enum"] = enum
        query[name] = merged
    return {
        "version": variants[0]["version"],
        "preview": variants[0]["preview"],
        "query": query,
        "optional_segments": sorted({s for v in variants for s in v["optional_segments"]}),
        "integer_segments": sorted({s for v in variants for s in v["integer_segments"]}),
        "body_required": all(v["body_required"] for v in variants),
        "operation_ids": sorted({v["operation_id"] for v in variants if v["operation_id"]}),
    }


def build(specs: Path, git_specs: Path | None = None) -> dict[str, Any]:
    found: dict[tuple[str, str], dict[str, list[dict[str, Any]]]] = {}
    wanted = {(method, path.lower()) for method, path in USED}
    for area in AREAS:
        folder = specs if area != GIT_AREA or (specs / GIT_AREA).is_dir() else (git_specs or GIT_EXCERPTS)
        for server in SERVERS:
            spec = _load(_spec_file(folder, area, server))
            for key in ("paths", "x-ms-paths"):
                for raw_path, operations in spec.get(key, {}).items():
                    path = _ORG.sub("", raw_path.split("?", 1)[0])
                    for method, operation in operations.items():
                        if method == "parameters" or (method.upper(), path.lower()) not in wanted:
                            continue
                        slot = found.setdefault((method.upper(), path.lower()), {})
                        slot.setdefault(server, []).append(_variant(spec, raw_path, operation))
    operations = []
    for method, path in USED:
        per_server = found.get((method, path.lower()))
        if not per_server:
            raise SystemExit(f"{method} {path} is not in the specification")
        operations.append({"method": method, "path": path, "servers": {s: _merge(v) for s, v in per_server.items()}})
    for extra in NOT_IN_SPEC:
        servers = {}
        for server in extra["servers"]:
            level = "7.1" if server != "server-2022" else "7.0"
            servers[server] = {
                "version": f"{level}-preview.{extra['preview']}",
                "preview": True,
                "query": extra["query"],
                "optional_segments": [],
                "integer_segments": [],
                "body_required": False,
                "operation_ids": [],
            }
        operations.append(
            {"method": extra["method"], "path": extra["path"], "servers": servers, "not_in_specification": True}
        )
    return {
        "source": SOURCE,
        "generated_by": "devtools/spec_table.py",
        "servers": {"services": "7.1", "server-2022": "7.0", "server-2022.1": "7.1"},
        "operations": operations,
    }


def _default_specs() -> Path | None:
    here = Path(__file__).resolve()
    for parent in here.parents:
        candidate = parent / "shared" / "specs" / "azure-devops"
        if candidate.is_dir():
            return candidate
    return None


OUTPUT = Path(__file__).resolve().parent / "fakes" / "ado" / "spec_table.json"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--specs", type=Path, default=_default_specs())
    parser.add_argument("--git-specs", type=Path, default=None)
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)
    if args.specs is None or not args.specs.is_dir():
        print("the specification folder was not found: pass --specs", file=sys.stderr)
        return 2
    table = build(args.specs, args.git_specs)
    args.output.write_text(json.dumps(table, indent=1, sort_keys=False) + "\n")
    print(f"wrote {len(table['operations'])} operations to {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
