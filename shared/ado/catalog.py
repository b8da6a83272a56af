"""What forms offer from an organization (contract §12.5), read from Azure DevOps: its projects, a project's work
item types (hidden and disabled ones left out), a type's states, the area and iteration paths, and the fields a
type requires (contract §17: the setup page offers their defaults).

Functions taking an `AdoClient`, kept out of `client.py` so the create route's client methods and these do not
meet in one module; they use `AdoClient.call`, so they share its retries, origin checks and
error types. Every name from the caller is URL-quoted as one path segment. Each answer is the form's options,
`[{"label", "value"}]`, at most MAX_OPTIONS of them.
"""

from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import quote

from shared.ado.client import AdoClient, AdoError

log = logging.getLogger(__name__)

PROJECTS_URL = "{base}_apis/projects"
WORK_ITEM_TYPES_URL = "{base}{project}/_apis/wit/workitemtypes"
TYPE_CATEGORIES_URL = "{base}{project}/_apis/wit/workitemtypecategories"
CLASSIFICATION_URL = "{base}{project}/_apis/wit/classificationnodes/{structure}"
WORK_ITEM_TYPE_URL = "{base}{project}/_apis/wit/workitemtypes/{type}"

HIDDEN_CATEGORY = "Microsoft.HiddenCategory"  # the category Azure DevOps keeps the types forms must not offer in
PROJECTS_PAGE = 100  # Azure DevOps' default and Sentry's page: pages of 100 with $skip until a short page
MAX_OPTIONS = 1000  # per list: a form cannot usefully offer more, and the cached list stays a bounded size
# Area and iteration trees are at most 14 levels deep below the project (Azure DevOps' limit): ask for them all.
CLASSIFICATION_DEPTH = 14
STRUCTURES = ("areas", "iterations")

Option = dict[str, str]


def _segment(name: str) -> str:
    return quote(name, safe="")


def _values(answer: Any) -> list[dict]:
    """The `value` list of an Azure DevOps list answer, its non-object entries left out."""
    values = answer.get("value") if isinstance(answer, dict) else None
    if not isinstance(values, list):
        raise AdoError("Azure DevOps answered a list request without a value list")
    return [entry for entry in values if isinstance(entry, dict)]


def _named(entry: dict, key: str = "name") -> str | None:
    name = entry.get(key)
    return name if isinstance(name, str) and name.strip() else None


def list_projects(client: AdoClient) -> list[Option]:
    """The organization's well-formed projects, by name (the create route and state rules take names)."""
    names: list[str] = []
    for page_number in range(MAX_OPTIONS // PROJECTS_PAGE):
        skip = str(page_number * PROJECTS_PAGE)
        params = {"stateFilter": "wellFormed", "$top": str(PROJECTS_PAGE), "$skip": skip}
        page = _values(client.call("GET", PROJECTS_URL.format(base=client.base_url), params=params))
        names += [name for name in map(_named, page) if name is not None]
        if len(page) < PROJECTS_PAGE:
            break
    else:
        log.warning("The organization has at least %d projects; the form offers the first %d", MAX_OPTIONS, MAX_OPTIONS)
    unique = sorted(set(names[:MAX_OPTIONS]), key=str.casefold)
    return [{"label": name, "value": name} for name in unique]


def list_work_item_types(client: AdoClient, project: str) -> list[Option]:
    """The types a person may create in `project`: not in `Microsoft.HiddenCategory`, not `isDisabled`; in
    Azure DevOps' order. Two requests: the types, and their categories."""
    base, segment = client.base_url, _segment(project)
    types = _values(client.call("GET", WORK_ITEM_TYPES_URL.format(base=base, project=segment)))
    categories = _values(client.call("GET", TYPE_CATEGORIES_URL.format(base=base, project=segment)))
    hidden = {
        name.casefold()
        for category in categories
        if str(category.get("referenceName", "")).casefold() == HIDDEN_CATEGORY.casefold()
        for member in category.get("workItemTypes") or []
        if isinstance(member, dict) and (name := _named(member)) is not None
    }
    options = [
        {"label": name, "value": name}
        for entry in types
        if (name := _named(entry)) is not None and name.casefold() not in hidden and entry.get("isDisabled") is not True
    ]
    return options[:MAX_OPTIONS]


def list_states(client: AdoClient, project: str, work_item_type: str) -> list[Option]:
    """A type's states in workflow order, each with its category (Proposed, InProgress, Resolved, ...)."""
    options = []
    for entry in _values(client.get_work_item_type_states(project, work_item_type)):
        name = _named(entry)
        if name is not None:
            category = entry.get("category")
            options.append({"label": name, "value": name, "category": category if isinstance(category, str) else ""})
    return options[:MAX_OPTIONS]


def list_paths(client: AdoClient, project: str, structure: str) -> list[Option]:
    """Every area (or iteration) path of `project`, depth first from the project's root, as `System.AreaPath`
    (`System.IterationPath`) takes it: `Fabrikam`, `Fabrikam\\Web`, `Fabrikam\\Web\\Api`.

    Built from the nodes' names, not their `path` property: that one reads `\\Fabrikam\\Area\\Web`, with a
    structure segment that work item fields do not have.
    """
    if structure not in STRUCTURES:
        raise ValueError(f"structure must be one of {STRUCTURES}")
    url = CLASSIFICATION_URL.format(base=client.base_url, project=_segment(project), structure=structure)
    root = client.call("GET", url, params={"$depth": str(CLASSIFICATION_DEPTH)})
    if not isinstance(root, dict) or _named(root) is None:
        raise AdoError("Azure DevOps answered a classification node request without a node")
    paths: list[str] = []
    pending: list[tuple[str, dict]] = [(str(root["name"]), root)]
    while pending and len(paths) < MAX_OPTIONS:
        path, node = pending.pop()
        paths.append(path)
        children = node.get("children") if isinstance(node.get("children"), list) else []
        named = [(f"{path}\\{name}", c) for c in children if isinstance(c, dict) and (name := _named(c)) is not None]
        pending += reversed(named)  # a stack: the first child is visited next, as a tree view lists them
    return [{"label": path, "value": path} for path in paths]


def list_required_fields(client: AdoClient, project: str, work_item_type: str) -> list[Option]:
    """The fields the type requires (`alwaysRequired` in its `fields`, WorkItemTypeFieldInstance), in the type's
    order: `{"label": name, "value": reference name, "allowed": JSON list of its allowed values}`, the list empty
    where the field takes any value. One request: the type."""
    url = WORK_ITEM_TYPE_URL.format(base=client.base_url, project=_segment(project), type=_segment(work_item_type))
    answer = client.call("GET", url)
    fields = answer.get("fields") if isinstance(answer, dict) else None
    options = []
    for entry in fields if isinstance(fields, list) else []:
        if not isinstance(entry, dict) or entry.get("alwaysRequired") is not True:
            continue
        reference = _named(entry, "referenceName")
        if reference is None:
            continue
        allowed = entry.get("allowedValues")
        values = [str(v) for v in allowed if isinstance(v, str | int | float)] if isinstance(allowed, list) else []
        label = _named(entry) or reference
        options.append({"label": label, "value": reference, "allowed": json.dumps(values[:MAX_OPTIONS])})
    return options[:MAX_OPTIONS]
