"""What forms need to know about an organization: its projects, a project's work item types (with their
states, fields and categories, hidden ones included), and its area and iteration trees (classification nodes),
with the set-up methods tests use to shape them."""

from __future__ import annotations

import uuid
import zlib
from typing import Any

from werkzeug.wrappers import Request, Response

from devtools.fakes.ado.data import DEFAULT_STATES, STATE_COLORS, Org, Project, Store
from devtools.fakes.ado.processes import (
    HIDDEN_CATEGORY,
    REPRO_STEPS,
    TypeDef,
    field_label,
    find_type,
    process_types,
)
from devtools.fakes.ado.protocol import arg, error, json_response, query_int

FORM_FIELDS = ("System.Title", "System.State", "System.Reason", "System.AssignedTo", "System.AreaPath",
               "System.IterationPath", "System.Tags")  # fmt: skip
STRUCTURES = {"areas": ("area", "Area"), "iterations": ("iteration", "Iteration")}


def type_not_found(wit_type: str, project: Project) -> Response:
    return error(
        404,
        f"Work item type {wit_type} does not exist in project {project.name}.",
        "WorkItemTypeNotFoundException",
    )


def relative_path(project: Project, path: str) -> str:
    """'Proj\\Web\\UI' or 'Web\\UI' -> 'Web\\UI' (below the project's root node)."""
    path = path.strip("\\")
    head, sep, rest = path.partition("\\")
    return (
        rest if sep and head.lower() == project.name.lower() else ("" if path.lower() == project.name.lower() else path)
    )


class Catalog(Store):
    """Mixin of FakeAzureDevOps: projects, work item types, classification nodes."""

    # ---------------------------------------------------------------------------------------- set-up

    def add_area(self, org: str, project: str, path: str) -> None:
        """An area below the project's root, e.g. 'Web\\UI' (its parents are added too). Work items may then
        use 'Project\\Web\\UI' as `System.AreaPath`."""
        self._add_node(org, project, path, None)

    def add_iteration(
        self, org: str, project: str, path: str, *, start: str | None = None, finish: str | None = None
    ) -> None:
        """An iteration below the project's root, e.g. 'Release 1\\Sprint 1', with optional ISO dates."""
        self._add_node(org, project, path, (start, finish))

    def set_type_disabled(self, org: str, project: str, work_item_type: str, disabled: bool = True) -> None:
        """Mark a type disabled (`isDisabled`): listed, but no new work items of it can be created."""
        with self._lock:
            o = self._org(org)
            key = (self._ensure_project(o, project).id.lower(), work_item_type.lower())
            (o.disabled_types.add if disabled else o.disabled_types.discard)(key)

    def add_field(self, org: str, reference_name: str) -> None:
        """A custom field (e.g. 'Custom.Team') that patches may set; fields the fake does not know are refused."""
        with self._lock:
            self._org(org).custom_fields.add(reference_name.lower())

    def require_field(
        self, org: str, project: str, work_item_type: str, reference_name: str, allowed: tuple[str, ...] = ()
    ) -> None:
        """A process rule making a (custom) field required on a type, optionally limited to `allowed` values:
        the type's field list shows it `alwaysRequired` with its `allowedValues` (WorkItemTypeFieldWithReferences),
        and a create without a value (or with another value) is refused with TF401320, as Azure DevOps does."""
        with self._lock:
            o = self._org(org)
            o.custom_fields.add(reference_name.lower())
            key = (self._ensure_project(o, project).id.lower(), work_item_type.lower())
            o.required_fields.setdefault(key, {})[reference_name] = tuple(allowed)

    def _add_node(self, org: str, project: str, path: str, dates: tuple[str | None, str | None] | None) -> None:
        with self._lock:
            proj = self._ensure_project(self._org(org), project)
            relative = relative_path(proj, path)
            parts = [p for p in relative.split("\\") if p]
            for depth in range(1, len(parts) + 1):
                node = "\\".join(parts[:depth])
                if dates is None:
                    if node not in proj.areas:
                        proj.areas.append(node)
                else:
                    proj.iterations.setdefault(node, (None, None))
            if dates is not None and parts:
                proj.iterations["\\".join(parts)] = dates

    # -------------------------------------------------------------------------------------- model

    def _types(self, org: Org, project: Project) -> list[TypeDef]:
        """The project's types: its process' (Agile for an implicit project), then set_states' custom ones."""
        types = list(process_types(project.process or "Agile"))
        known = {t.name.lower() for t in types}
        for (project_id, key), name in org.type_names.items():
            if project_id == project.id.lower() and key not in known:
                types.append(TypeDef(name, "Custom." + name.replace(" ", ""), "", ()))
        return types

    def _find_type(self, org: Org, project: Project, name: str) -> TypeDef | None:
        return next((t for t in self._types(org, project) if t.name.lower() == name.lower()), None)

    def _type_states(self, org: Org, project: Project, name: str) -> list[tuple[str, str]] | None:
        """A type's states as (name, category): set_states' if set, else its process'; None for no such type."""
        custom = org.states.get((project.id.lower(), name.lower()))
        if custom is not None:
            return list(custom)
        if project.process is None and name.lower() in DEFAULT_STATES:
            return list(DEFAULT_STATES[name.lower()])
        found = find_type(project.process or "Agile", name)
        return list(found.states) if found is not None else None

    def _valid_path(self, project: Project, path: str, structure: str) -> bool:
        relative = relative_path(project, path)
        nodes = project.areas if structure == "areas" else list(project.iterations)
        head = path.strip("\\").partition("\\")[0].lower()
        return head == project.name.lower() and (relative == "" or relative.lower() in {n.lower() for n in nodes})

    # ---------------------------------------------------------------------------------- renderings

    def _render_type(self, org: Org, project: Project, wit: TypeDef) -> dict[str, Any]:
        url = f"{self.org_url(org.name)}{project.id}/_apis/wit/workItemTypes/{wit.name}"
        states = self._type_states(org, project, wit.name) or []
        body = [wit.body_field] + (["Microsoft.VSTS.TCM.SystemInfo"] if wit.body_field == REPRO_STEPS else [])
        required = org.required_fields.get((project.id.lower(), wit.name.lower()), {})
        fields = [
            {
                "referenceName": name,
                "name": field_label(name),
                "alwaysRequired": name == "System.Title" or name in required,
                "url": f"{self.org_url(org.name)}_apis/wit/fields/{name}",
                **({"allowedValues": list(required[name])} if required.get(name) else {}),
            }
            for name in (*FORM_FIELDS, *body, *[r for r in required if r not in (*FORM_FIELDS, *body)])
        ]
        return {
            "name": wit.name,
            "referenceName": wit.reference_name,
            "description": f"Tracks a {wit.name.lower()}.",
            "color": wit.color,
            "icon": {"id": "icon_" + wit.name.lower().replace(" ", "_"), "url": f"{self.base_url}/_apis/wit/icons"},
            "isDisabled": (project.id.lower(), wit.name.lower()) in org.disabled_types,
            "fields": fields,
            "fieldInstances": fields,
            "states": [{"name": n, "color": STATE_COLORS[c], "category": c} for n, c in states],
            "url": url,
        }

    def _node(self, org: Org, project: Project, structure: str, path: str, depth: int) -> dict[str, Any]:
        """One classification node; `path` '' is the root. Children down to `depth` levels."""
        kind, label = STRUCTURES[structure]
        nodes = project.areas if structure == "areas" else list(project.iterations)
        children = [n for n in nodes if (n.rsplit("\\", 1)[0] if "\\" in n else "") == path]
        name = path.rsplit("\\", 1)[-1] if path else project.name
        seed = f"{org.key}:{project.id}:{structure}:{path.lower()}"
        suffix = "/" + path.replace("\\", "/") if path else ""
        node: dict[str, Any] = {
            "id": zlib.crc32(seed.encode()) % 1_000_000,
            "identifier": str(uuid.uuid5(uuid.NAMESPACE_URL, seed)),
            "name": name,
            "structureType": kind,
            "hasChildren": bool(children),
            "path": f"\\{project.name}\\{label}" + (f"\\{path}" if path else ""),
            "url": f"{self.org_url(org.name)}{project.id}/_apis/wit/classificationNodes/{label}s{suffix}",
        }
        start, finish = project.iterations.get(path, (None, None)) if structure == "iterations" else (None, None)
        if start or finish:
            node["attributes"] = {"startDate": start, "finishDate": finish}
        if children and depth > 0:
            node["children"] = [self._node(org, project, structure, child, depth - 1) for child in children]
        return node

    # -------------------------------------------------------------------------------------- endpoints

    def _handle_projects(self, request: Request, org: Org, project: Project | None, major: int) -> Response:
        top, skip = query_int(request, "$top", 100), query_int(request, "$skip", 0)
        with self._lock:
            projects = sorted(org.projects.values(), key=lambda p: p.name.lower())
            value = [self._render_project(org, p, False) for p in projects[skip : skip + top]]
        return json_response({"count": len(value), "value": value})

    def _handle_project(self, request: Request, org: Org, project: Project | None, major: int) -> Response:
        assert project is not None
        capabilities = (arg(request, "includeCapabilities") or "").lower() == "true"
        with self._lock:
            return json_response(self._render_project(org, project, capabilities))

    def _render_project(self, org: Org, project: Project, capabilities: bool) -> dict[str, Any]:
        rendered: dict[str, Any] = {
            "id": project.id,
            "name": project.name,
            "url": f"{self.org_url(org.name)}_apis/projects/{project.id}",
            "state": "wellFormed",
            "revision": 1,
            "visibility": "private",
        }
        if capabilities:
            rendered["capabilities"] = {
                "processTemplate": {"templateName": project.process or "Agile"},
                "versioncontrol": {"sourceControlType": "Git"},
            }
        return rendered

    def _handle_work_item_types(self, request: Request, org: Org, project: Project | None, major: int) -> Response:
        assert project is not None
        with self._lock:
            value = [self._render_type(org, project, wit) for wit in self._types(org, project)]
        return json_response({"count": len(value), "value": value})

    def _handle_work_item_type(
        self, request: Request, org: Org, project: Project | None, major: int, wit_type: str
    ) -> Response:
        assert project is not None
        with self._lock:
            wit = self._find_type(org, project, wit_type)
            if wit is None:
                return type_not_found(wit_type, project)
            return json_response(self._render_type(org, project, wit))

    def _handle_type_categories(self, request: Request, org: Org, project: Project | None, major: int) -> Response:
        """Categories, `Microsoft.HiddenCategory` listing the types forms must not offer."""
        assert project is not None
        base = f"{self.org_url(org.name)}{project.id}/_apis/wit/"
        with self._lock:
            types = self._types(org, project)
        members: dict[str, list[TypeDef]] = {}
        for wit in types:
            if wit.category:
                members.setdefault(wit.category, []).append(wit)
            if wit.hidden:
                members.setdefault(HIDDEN_CATEGORY, []).append(wit)
        value = []
        for reference, wits in members.items():
            refs = [{"name": w.name, "url": f"{base}workItemTypes/{w.name}"} for w in wits]
            name = "Hidden Types Category" if reference == HIDDEN_CATEGORY else reference.split(".")[-1]
            name = name.replace("Category", " Category") if reference != HIDDEN_CATEGORY else name
            value.append(
                {
                    "name": name,
                    "referenceName": reference,
                    "defaultWorkItemType": refs[0],
                    "workItemTypes": refs,
                    "url": f"{base}workItemTypeCategories/{reference}",
                }
            )
        return json_response({"count": len(value), "value": value})

    def _handle_classification_node(
        self, request: Request, org: Org, project: Project | None, major: int, structure: str
    ) -> Response:
        assert project is not None
        depth = query_int(request, "$depth", 0)
        key = structure.lower()
        if key not in STRUCTURES:
            return error(400, f"The structure group {structure} is not valid; use areas or iterations.")
        with self._lock:
            return json_response(self._node(org, project, key, "", depth))

    def _handle_classification_nodes(self, request: Request, org: Org, project: Project | None, major: int) -> Response:
        assert project is not None
        depth = query_int(request, "$depth", 0)
        with self._lock:
            value = [self._node(org, project, key, "", depth) for key in STRUCTURES]
        return json_response({"count": len(value), "value": value})
