"""Code mappings (contract §18): how a stack frame's file name becomes a file in an Azure Repos repository.

A mapping belongs to a tracker organization. It applies to one Sentry project (its slug) or to all (`*`), and to
file names starting with its `stack_root`: that prefix is replaced by `source_root`, giving the file's path in
`repository` of `project` (of the Azure DevOps organization `integration_id`), on `branch`.

Plain functions over plain data: parsing what the admin API and the setup page accept, choosing the mappings a
frame may use (longest stack root first), and the Azure Repos file view's URL.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import quote, urlencode

from shared.errors import InvalidInput
from shared.validation import has_control_characters, is_valid_id

ALL_PROJECTS = "*"
MAX_MAPPINGS = 50  # per organization: one stored entity, and a bounded number of candidates per frame
MAX_ROOT = 400  # characters of a stack root or source root
MAX_NAME = 256  # a project, repository or branch name
MAX_FILENAME = 1000  # characters of a frame's file name the route looks at
FIELDS = ("sentry_project", "stack_root", "integration_id", "project", "repository", "branch", "source_root")
_SLUG = re.compile(r"[a-z0-9][a-z0-9_-]{0,99}")
# Git refuses these in branch names (git check-ref-format); a space and `~^:?*[\` cannot be in one either.
_BAD_BRANCH = re.compile(r"(^[/.-])|(\.\.)|([\s~^:?*\[\\])|(@\{)|([/.]$)|(\.lock$)|(//)")


@dataclass(frozen=True)
class CodeMapping:
    sentry_project: str
    stack_root: str
    integration_id: str
    project: str
    repository: str
    branch: str
    source_root: str

    def public(self) -> dict[str, str]:
        return asdict(self)


def _text(entry: dict[str, Any], key: str, limit: int, position: int, *, empty: bool = False) -> str:
    value = entry.get(key)
    if not isinstance(value, str) or len(value) > limit or (not empty and not value.strip()):
        size = "a string" if empty else "a non-empty string"
        raise InvalidInput(f"Mapping {position}: {key} must be {size} of at most {limit} characters.")
    if has_control_characters(value) or "\t" in value:
        raise InvalidInput(f"Mapping {position}: {key} must not contain control characters.")
    return value


def _root(value: str) -> str:
    """A root as paths are compared: forward slashes (Windows frames use backslashes)."""
    return value.replace("\\", "/")


def parse_mapping(entry: object, position: int) -> CodeMapping:
    """One mapping from the API's JSON (`position` counts from 1, for the error sentence)."""
    if not isinstance(entry, dict):
        raise InvalidInput(f"Mapping {position} must be a JSON object.")
    unknown = sorted(set(entry) - set(FIELDS))
    if unknown:
        fields = ", ".join(FIELDS)
        raise InvalidInput(f"Mapping {position}: unknown field {unknown[0][:40]!r}; the fields are {fields}.")
    project_slug = _text(entry, "sentry_project", 100, position)
    if project_slug != ALL_PROJECTS and not _SLUG.fullmatch(project_slug):
        raise InvalidInput(f"Mapping {position}: sentry_project must be a Sentry project slug or '*'.")
    integration_id = _text(entry, "integration_id", 128, position).strip().lower()
    if not is_valid_id(integration_id):
        raise InvalidInput(f"Mapping {position}: integration_id must be an integration id.")
    branch = _text(entry, "branch", MAX_NAME, position).strip()
    if branch.startswith("refs/heads/"):
        branch = branch[len("refs/heads/") :]
    if not branch or _BAD_BRANCH.search(branch):
        raise InvalidInput(f"Mapping {position}: branch must be a branch name such as main or release/1.2.")
    source_root = _root(_text(entry, "source_root", MAX_ROOT, position, empty=True)).strip()
    if ".." in source_root.split("/"):
        raise InvalidInput(f"Mapping {position}: source_root must be a path in the repository, without '..'.")
    return CodeMapping(
        sentry_project=project_slug,
        stack_root=_root(_text(entry, "stack_root", MAX_ROOT, position, empty=True)),
        integration_id=integration_id,
        project=_text(entry, "project", MAX_NAME, position).strip(),
        repository=_text(entry, "repository", MAX_NAME, position).strip(),
        branch=branch,
        source_root=source_root.strip("/"),
    )


def parse_mappings(body: object) -> tuple[CodeMapping, ...]:
    """The whole list the API's PUT replaces the organization's mappings with; InvalidInput for the first bad
    entry (nothing is saved then)."""
    if not isinstance(body, list):
        raise InvalidInput("The request body must be a JSON list of code mappings.")
    if len(body) > MAX_MAPPINGS:
        raise InvalidInput(f"An organization has at most {MAX_MAPPINGS} code mappings.")
    mappings = tuple(parse_mapping(entry, i) for i, entry in enumerate(body, 1))
    seen: set[tuple[str, str]] = set()
    for i, mapping in enumerate(mappings, 1):
        key = (mapping.sentry_project, mapping.stack_root)
        if key in seen:
            raise InvalidInput(f"Mapping {i} repeats the Sentry project and stack root of an earlier one.")
        seen.add(key)
    return mappings


def frame_path(filename: str) -> str | None:
    """A frame's file name as mappings compare it, or None when it cannot name a file."""
    if not filename or len(filename) > MAX_FILENAME or has_control_characters(filename):
        return None
    return _root(filename)


def candidates(mappings: tuple[CodeMapping, ...], project_slug: str, filename: str) -> list[tuple[CodeMapping, str]]:
    """The mappings a frame may use with the file's path in each repository, longest stack root first (a
    project's own mapping before `*` at the same length; stored order otherwise)."""
    path = frame_path(filename)
    if path is None:
        return []
    found = []
    for order, mapping in enumerate(mappings):
        if mapping.sentry_project not in (project_slug, ALL_PROJECTS) or not path.startswith(mapping.stack_root):
            continue
        rest = path[len(mapping.stack_root) :].lstrip("/")
        if not rest or ".." in rest.split("/"):
            continue
        in_repo = "/" + "/".join(part for part in (mapping.source_root, rest) if part)
        rank = (-len(mapping.stack_root), mapping.sentry_project == ALL_PROJECTS, order)
        found.append((rank, mapping, in_repo))
    return [(mapping, in_repo) for _, mapping, in_repo in sorted(found, key=lambda f: f[0])]


def file_url(domain_name: str, mapping: CodeMapping, path: str, line: int | None) -> str:
    """Azure Repos' file view at `line`: Sentry's own format (`{domain}{project}/_git/{repo}?path=/{file}&version=
    GB{branch}`) plus the selection that makes the view scroll to and highlight the line (`line` to `lineEnd` =
    the next line, columns 1 to 1, plain style, the contents tab)."""
    query: dict[str, str] = {"path": path, "version": "GB" + mapping.branch}
    if line is not None:
        query |= {
            "line": str(line),
            "lineEnd": str(line + 1),
            "lineStartColumn": "1",
            "lineEndColumn": "1",
            "lineStyle": "plain",
            "_a": "contents",
        }
    base = f"{domain_name}{quote(mapping.project, safe='')}/_git/{quote(mapping.repository, safe='')}"
    return base + "?" + urlencode(query, safe="/")
