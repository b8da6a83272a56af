"""The work item endpoints (one work item, a list by ids, the batch call, search, a type's states) and how
the REST API renders work items and identities."""

from __future__ import annotations

import base64
import copy
import re
import uuid
from typing import Any

from werkzeug.wrappers import Request, Response

from devtools.fakes.ado.catalog import type_not_found
from devtools.fakes.ado.data import STATE_COLORS, Org, Project, Store, WorkItem
from devtools.fakes.ado.protocol import arg, error, int_or_reject, json_response, read_json

BATCH_LIMIT = 200
SEARCH_TOP_LIMIT = 1000
# Identity fields come back as IdentityRef objects from the REST API at api-version >= 5.0 (reference §1.4).
IDENTITY_FIELDS = frozenset(
    name.lower()
    for name in (
        "System.AssignedTo",
        "System.CreatedBy",
        "System.ChangedBy",
        "System.AuthorizedAs",
        "Microsoft.VSTS.Common.ActivatedBy",
        "Microsoft.VSTS.Common.ResolvedBy",
        "Microsoft.VSTS.Common.ClosedBy",
    )
)


def work_item_not_found(work_item_id: int) -> Response:
    return error(
        404,
        f"TF401232: Work item {work_item_id} does not exist, or you do not have permissions to read it.",
        "WorkItemUnauthorizedAccessException",
        type_name=(
            "Microsoft.TeamFoundation.WorkItemTracking.Server.WorkItemUnauthorizedAccessException, "
            "Microsoft.TeamFoundation.WorkItemTracking.Server"
        ),
        event_id=3200,
    )


def field_list(fields: str | None) -> list[str] | None:
    """A `fields=A,B` query parameter as a list; None when absent or empty."""
    return [f.strip() for f in fields.split(",") if f.strip()] if fields else None


class WorkItemsApi(Store):
    """Mixin of FakeAzureDevOps: the work item endpoints and renderings."""

    # ------------------------------------------------------------------------------------- renderings

    def _identity_ref(self, value: Any) -> Any:
        """An IdentityRef object for a 'Display Name <unique name>' string (REST api-version >= 5.0)."""
        if not isinstance(value, str):
            return value
        match = re.fullmatch(r"\s*(.*?)\s*<([^<>]+)>\s*", value)
        display, unique = (match.group(1) or match.group(2), match.group(2)) if match else (value, value)
        identity = str(uuid.uuid5(uuid.NAMESPACE_URL, f"identity:{unique.lower()}"))
        descriptor = "aad." + base64.urlsafe_b64encode(identity.encode()).decode().rstrip("=")
        avatar = f"{self.base_url}/_apis/GraphProfile/MemberAvatars/{descriptor}"
        return {
            "displayName": display,
            "url": f"{self.base_url}/_apis/Identities/{identity}",
            "_links": {"avatar": {"href": avatar}},
            "id": identity,
            "uniqueName": unique,
            "imageUrl": avatar,
            "descriptor": descriptor,
        }

    def _item_links(self, org: Org, item: WorkItem) -> dict[str, Any]:
        url = f"{self.org_url(org.name)}_apis/wit/workItems/{item.id}"
        return {
            "self": {"href": url},
            "workItemUpdates": {"href": f"{url}/updates"},
            "workItemRevisions": {"href": f"{url}/revisions"},
            "workItemComments": {"href": f"{url}/comments"},
            "html": {"href": f"{self.org_url(org.name)}web/wi.aspx?pcguid={org.host_id}&id={item.id}"},
            "workItemType": {
                "href": f"{self.org_url(org.name)}{item.project}/_apis/wit/workItemTypes/"
                f"{item.fields.get('System.WorkItemType', '')}"
            },
            "fields": {"href": f"{self.org_url(org.name)}_apis/wit/fields"},
        }

    def _render_item(
        self, org: Org, item: WorkItem, major: int, fields: list[str] | None, expand: str | None
    ) -> dict[str, Any]:
        """A work item as the REST API answers it."""
        values = copy.deepcopy(item.fields)
        if fields:
            wanted = {name.lower() for name in fields}
            values = {k: v for k, v in values.items() if k.lower() in wanted}
        if major >= 5:
            values = {k: self._identity_ref(v) if k.lower() in IDENTITY_FIELDS else v for k, v in values.items()}
        rendered: dict[str, Any] = {"id": item.id, "rev": item.rev, "fields": values}
        expand = (expand or "").lower()
        if expand in ("relations", "all"):
            rendered["relations"] = copy.deepcopy(item.relations)
        if not fields or expand in ("links", "all"):
            rendered["_links"] = self._item_links(org, item)
        rendered["url"] = f"{self.org_url(org.name)}_apis/wit/workItems/{item.id}"
        return rendered

    # -------------------------------------------------------------------------------------- endpoints

    def _handle_work_item(
        self, request: Request, org: Org, project: Project | None, major: int, work_item_id: int
    ) -> Response:
        fields = arg(request, "fields")
        expand = arg(request, "$expand")
        if fields and expand:
            return error(400, "The expand parameter can not be used with the fields parameter.")
        with self._lock:
            item = org.work_items.get(work_item_id)
            if item is None:
                return work_item_not_found(work_item_id)
            return json_response(self._render_item(org, item, major, field_list(fields), expand))

    def _handle_work_items(self, request: Request, org: Org, project: Project | None, major: int) -> Response:
        """GET .../_apis/wit/workitems?ids=1,2: the same rules as the batch call."""
        ids_text = arg(request, "ids") or ""
        try:
            ids = [int(part) for part in ids_text.split(",") if part.strip()]
        except ValueError:
            return error(400, "ids must be a comma-separated list of work item ids.")
        return self._work_items_answer(
            org,
            major,
            ids,
            field_list(arg(request, "fields")),
            arg(request, "$expand"),
            arg(request, "errorPolicy") or "fail",
        )

    def _handle_batch(self, request: Request, org: Org, project: Project | None, major: int) -> Response:
        body = read_json(request)
        if not isinstance(body, dict):
            return error(400, "The request body must be a WorkItemBatchGetRequest object.")
        ids = body.get("ids")
        if not isinstance(ids, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
            return error(400, "ids must be a list of work item ids.")
        fields = body.get("fields")
        if fields is not None and (not isinstance(fields, list) or not all(isinstance(f, str) for f in fields)):
            return error(400, "fields must be a list of field reference names.")
        return self._work_items_answer(
            org, major, ids, fields, body.get("$expand"), str(body.get("errorPolicy") or "fail")
        )

    def _work_items_answer(
        self,
        org: Org,
        major: int,
        ids: list[int],
        fields: list[str] | None,
        expand: str | None,
        error_policy: str,
    ) -> Response:
        if not ids:
            return error(400, "At least one work item id is required.")
        if len(ids) > BATCH_LIMIT:
            return error(400, f"VS403474: You requested {len(ids)} work items which exceeds the limit of {BATCH_LIMIT}")
        if fields and expand and str(expand).lower() != "none":
            return error(400, "The expand parameter can not be used with the fields parameter.")
        policy = error_policy.lower()
        if policy not in ("fail", "omit"):
            return error(400, f"errorPolicy must be fail or omit, not {error_policy!r}.")
        values: list[dict[str, Any] | None] = []
        with self._lock:
            for work_item_id in ids:
                item = org.work_items.get(work_item_id)
                if item is None:
                    if policy == "fail":
                        return work_item_not_found(work_item_id)
                    values.append(None)  # errorPolicy omit: the entry comes back null
                else:
                    values.append(self._render_item(org, item, major, fields, expand))
        return json_response({"count": len(values), "value": values})

    def _handle_search(self, request: Request, org: Org, project: Project | None, major: int) -> Response:
        if not getattr(self, "search_installed", True):
            # Azure DevOps Server without the Search extension has no such route. (Exact answer not in the
            # reference.)
            return error(404, f"The resource {request.path} was not found.", "ResourceNotFoundException")
        body = read_json(request)
        if not isinstance(body, dict):
            return error(400, "The request body must be a WorkItemSearchRequest object.")
        text = body.get("searchText")
        if not isinstance(text, str) or not text.strip():
            return error(400, "searchText must not be empty.")
        top = int_or_reject(body.get("$top"), "$top", 100)
        skip = int_or_reject(body.get("$skip"), "$skip", 0)
        if top > SEARCH_TOP_LIMIT:
            return error(400, f"$top must be at most {SEARCH_TOP_LIMIT}, not {top}.")
        filters = body.get("filters") or {}
        if not isinstance(filters, dict):
            return error(400, "filters must be an object of field names to lists of values.")
        needle = text.strip().lower()
        with self._lock:
            matches = []
            for item in sorted(org.work_items.values(), key=lambda i: i.id):
                if needle not in str(item.fields.get("System.Title", "")).lower():
                    continue
                if project is not None and item.project != project.id:
                    continue
                if not all(
                    str(item.fields.get(name, "")).lower() in {str(v).lower() for v in (values or [])}
                    for name, values in filters.items()
                ):
                    continue
                matches.append(item)
            results = [self._search_result(org, item) for item in matches[skip : skip + top]]
        return json_response({"count": len(matches), "results": results, "infoCode": 0, "facets": {}})

    def _search_result(self, org: Org, item: WorkItem) -> dict[str, Any]:
        """One search result: lower-case field names, string values, identities as 'Name <email>'."""
        f = item.fields
        proj = org.projects[item.project.lower()]
        return {
            "project": {"id": proj.id, "name": proj.name},
            "fields": {
                "system.id": str(item.id),
                "system.workitemtype": str(f.get("System.WorkItemType", "")),
                "system.title": str(f.get("System.Title", "")),
                "system.assignedto": str(f.get("System.AssignedTo", "")),
                "system.state": str(f.get("System.State", "")),
                "system.tags": str(f.get("System.Tags", "")),
                "system.rev": str(item.rev),
                "system.createddate": str(f.get("System.CreatedDate", "")),
                "system.changeddate": str(f.get("System.ChangedDate", "")),
            },
            "hits": [],
            "url": f"{self.org_url(org.name)}_apis/wit/workItems/{item.id}",
        }

    def _handle_states(
        self, request: Request, org: Org, project: Project | None, major: int, wit_type: str
    ) -> Response:
        assert project is not None  # the route requires the project segment
        with self._lock:
            states = self._type_states(org, project, wit_type)  # Catalog: set_states', else the process'
        if states is None:
            return type_not_found(wit_type, project)
        value = [{"name": name, "color": STATE_COLORS[category], "category": category} for name, category in states]
        return json_response({"count": len(value), "value": value})
