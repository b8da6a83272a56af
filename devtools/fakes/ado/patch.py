"""Writing work items with JSON Patch: `PATCH .../_apis/wit/workitems/{id}` (update) and
`POST {org}/{project}/_apis/wit/workitems/${type}` (create), with Azure DevOps' validation and answers.

Reference `sentry-outbound-and-apps.md` §5: the body is `application/json-patch+json`; `test` on `/rev` is the
optimistic-concurrency guard; relations are added at `/relations/-`; `System.AssignedTo` takes an email; the
flags `validateOnly`, `bypassRules`, `suppressNotifications`, `$expand`. Where the reference is silent the
fake follows what clients observe (named at each answer). A successful write goes through the same code path
as `update_work_item`, so it produces the same `workitem.updated` delivery (or `workitem.created`).
`suppressNotifications` is accepted and ignored: it silences e-mail alerts, which the fake has none of; the
reference does not say it silences service hooks, so deliveries still go. A patch that changes nothing makes
no revision.
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any

from werkzeug.wrappers import Request, Response

from devtools.fakes.ado.catalog import type_not_found
from devtools.fakes.ado.data import Org, Project, Store, WorkItem
from devtools.fakes.ado.processes import KNOWN_FIELDS, field_label
from devtools.fakes.ado.protocol import Reject, arg, error, json_response
from devtools.fakes.ado.workitems import work_item_not_found

PATCH_MEDIA_TYPE = "application/json-patch+json"
RULE_TYPE = "Microsoft.TeamFoundation.WorkItemTracking.Server.RuleValidationException, " \
    "Microsoft.TeamFoundation.WorkItemTracking.Server"  # fmt: skip
# Computed by Azure DevOps: never writable. The second set only with bypassRules (migrations).
READ_ONLY = frozenset(
    f.lower()
    for f in ("System.Id", "System.Rev", "System.Watermark", "System.RevisedDate", "System.AuthorizedDate",
              "System.AuthorizedAs", "System.CommentCount", "System.RelatedLinkCount", "System.HyperLinkCount",
              "System.ExternalLinkCount", "System.AttachedFileCount", "System.AreaId", "System.IterationId")
)  # fmt: skip
BYPASS_ONLY = frozenset(f.lower() for f in ("System.ChangedDate", "System.ChangedBy", "System.CreatedDate",
                                            "System.CreatedBy"))  # fmt: skip
FIXED_BY_TYPE = frozenset(("system.workitemtype", "system.teamproject"))  # set from the URL, not the body
LINK_COUNTS = {"Hyperlink": "System.HyperLinkCount", "System.LinkTypes.": "System.RelatedLinkCount"}


def rule_error(reference_name: str, flags: str, message: str | None = None) -> Reject:
    """Azure DevOps' rule violation: 400 RuleValidationException, TF401320 naming the field's display name
    (the form Sentry parses: "Error for field <name>."), the reference name in customProperties."""
    text = message or f"TF401320: Rule Error for field {field_label(reference_name)}. Error code: {flags}."
    details = {"fieldReferenceName": reference_name, "fieldStatusFlags": flags.lower(), "errorMessage": text}
    return Reject(
        error(
            400,
            text,
            "RuleValidationException",
            type_name=RULE_TYPE,
            event_id=3200,
            custom_properties={"RuleValidationErrors": [details]},
        )
    )


def test_failed(path: str, current: Any, expected: Any) -> Reject:
    """A failed `test` op: 412 TestPatchOperationFailedException, as clients observe it live (the reference
    only says "on a 412, re-read"); nothing of the patch is applied."""
    return Reject(
        error(
            412,
            f"VS403351: Test Operation for path {path} failed, value {current} was not equal to test value {expected}.",
            "TestPatchOperationFailedException",
            type_name="Microsoft.VisualStudio.Services.WebApi.Patch.TestPatchOperationFailedException, "
            "Microsoft.VisualStudio.Services.WebApi",
        )
    )


def patch_document(request: Request) -> list[dict[str, Any]]:
    """The JSON Patch body: only `application/json-patch+json` is bound (Azure DevOps answers 415 otherwise)."""
    if request.mimetype != PATCH_MEDIA_TYPE:
        raise Reject(
            error(
                415,
                f'The request indicated a Content-Type of "{request.mimetype or "none"}" for method type '
                f'"{request.method}" which is not supported. Valid content types for this method are: '
                f"{PATCH_MEDIA_TYPE}.",
                "VssRequestContentTypeNotSupportedException",
            )
        )
    try:
        body = json.loads(request.get_data(cache=True) or b"null")
    except ValueError:
        raise Reject(error(400, "The request body is not valid JSON.")) from None
    if not isinstance(body, list) or not body or not all(isinstance(op, dict) for op in body):
        raise Reject(error(400, "You must pass a valid patch document in the body of the request."))
    return body


def history_added(ops: list[dict[str, Any]]) -> bool:
    """Whether the patch writes System.History: Azure DevOps makes that a comment of the discussion."""
    return any(
        str(op.get("path", "")).lower() == "/fields/system.history"
        and str(op.get("op", "")).lower() in ("add", "replace")
        for op in ops
    )


def flag(request: Request, name: str) -> bool:
    return (arg(request, name) or "").lower() == "true"


class Patching(Store):
    """Mixin of FakeAzureDevOps: creating and updating work items."""

    # -------------------------------------------------------------------------------------- endpoints

    def _handle_work_item_patch(
        self, request: Request, org: Org, project: Project | None, major: int, work_item_id: int
    ) -> Response:
        ops = patch_document(request)
        with self._lock:
            item = org.work_items.get(work_item_id)
            if item is None or (project is not None and item.project.lower() != project.id.lower()):
                return work_item_not_found(work_item_id)
            proj = org.projects[item.project.lower()]
            caller = self._caller(request, org)
            fields, relations = self._apply_ops(org, proj, item, ops, request)
            history = fields.get("System.History") if history_added(ops) else None
            if history:
                fields["System.CommentCount"] = int(item.fields.get("System.CommentCount", 0)) + 1
            changes = {k: fields.get(k) for k in {*item.fields, *fields} if fields.get(k) != item.fields.get(k)}
            if flag(request, "validateOnly"):
                preview = WorkItem(item.id, item.project, item.rev, fields, item.update_count, relations=relations)
                return json_response(self._written(org, preview, major, request))
            if not changes and relations == item.relations:
                return json_response(self._written(org, item, major, request))
            item.relations = relations
            diff = self._apply_update(item, changes, caller)
            if history:
                self._record_comment(org, item, str(history), "html", caller)
            payloads, _ = self._updated_event(org, item, diff, caller)
            rendered = self._written(org, item, major, request)
        self._send(payloads)
        return json_response(rendered)

    def _handle_create(
        self, request: Request, org: Org, project: Project | None, major: int, wit_type: str
    ) -> Response:
        assert project is not None  # the route requires the project segment
        if not wit_type.startswith("$"):
            return error(400, f"The work item type must be given as ${{type}} in the URL, not {wit_type!r}.")
        ops = patch_document(request)
        with self._lock:
            wit = self._find_type(org, project, wit_type[1:])
            if wit is None:
                return type_not_found(wit_type[1:], project)
            if (project.id.lower(), wit.name.lower()) in org.disabled_types:
                # Exact Azure DevOps answer not in the reference.
                return error(400, f"Work item type {wit.name} is disabled in project {project.name}.")
            caller = self._caller(request, org)
            states = self._type_states(org, project, wit.name) or [("New", "Proposed")]
            draft = WorkItem(0, project.id, 0, {}, 0)
            draft.fields = {
                "System.AreaPath": project.name,
                "System.TeamProject": project.name,
                "System.IterationPath": project.name,
                "System.WorkItemType": wit.name,
                "System.State": states[0][0],
                "System.Reason": "New",
            }
            fields, relations = self._apply_ops(org, project, draft, ops, request)
            if flag(request, "validateOnly"):
                # validateOnly: the work item as it would be, not saved (id 0: the real placeholder is unknown).
                preview = WorkItem(0, project.id, 0, fields, 0, relations=relations)
                return json_response(self._written(org, preview, major, request))
            item = self._insert(org, project, fields, relations, caller)
            if fields.get("System.History") and history_added(ops):
                self._record_comment(org, item, str(fields["System.History"]), "html", caller)
                item.fields["System.CommentCount"] = 1
            payloads, _ = self._snapshot_event(org, item, "workitem.created")
            rendered = self._written(org, item, major, request)
        self._send(payloads)
        return json_response(rendered)

    # ---------------------------------------------------------------------------------------- applying

    def _insert(
        self, org: Org, project: Project, fields: dict[str, Any], relations: list[dict[str, Any]], caller: str
    ) -> WorkItem:
        """Save a new work item at rev 1 with the next id of the organization."""
        work_item_id = max(org.work_items, default=0) + 1
        now = self._next_timestamp()
        self._watermark += 1
        values = {k: v for k, v in fields.items() if v is not None}
        values.update(
            {
                "System.Id": work_item_id,
                "System.Rev": 1,
                "System.CreatedDate": values.get("System.CreatedDate", now),
                "System.CreatedBy": values.get("System.CreatedBy", caller),
                "System.ChangedDate": values.get("System.ChangedDate", now),
                "System.ChangedBy": values.get("System.ChangedBy", caller),
                "System.AuthorizedDate": now,
                "System.AuthorizedAs": caller,
                "System.Watermark": self._watermark,
                "System.CommentCount": 0,
            }
        )
        item = WorkItem(work_item_id, project.id, 1, values, 1, relations=relations)
        org.work_items[work_item_id] = item
        return item

    def _apply_ops(
        self, org: Org, project: Project, item: WorkItem, ops: list[dict[str, Any]], request: Request
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """The fields and relations after the patch, validated; the item itself is not changed. Call holding
        the lock. Any failure raises Reject, so a patch applies entirely or not at all."""
        creating = item.id == 0
        bypass = flag(request, "bypassRules")
        fields = copy.deepcopy(item.fields)
        relations = copy.deepcopy(item.relations)
        touched: set[str] = set()
        for op in ops:
            kind, path = str(op.get("op", "")).lower(), str(op.get("path", ""))
            if kind not in ("add", "replace", "remove", "test"):
                raise Reject(error(400, f"The patch operation {op.get('op')!r} is not supported here."))
            if kind in ("add", "replace", "test") and "value" not in op:
                raise Reject(error(400, f"The {kind} operation on {path} needs a value."))
            if path.lower() == "/rev" and kind == "test":
                if op["value"] != item.rev:
                    raise test_failed("/rev", item.rev, op["value"])
            elif path.lower().startswith("/fields/"):
                name = self._field_name(org, fields, path[len("/fields/") :], creating, bypass)
                if kind == "test":
                    if fields.get(name) != op["value"]:
                        raise test_failed(path, fields.get(name), op["value"])
                    continue
                value = None if kind == "remove" else op["value"]
                if value is None or value == "":
                    fields.pop(name, None)
                else:
                    fields[name] = value
                touched.add(name)
            elif path.lower().startswith("/relations/"):
                self._relation_op(relations, kind, path, op.get("value"))
            else:
                raise Reject(error(400, f"The path {path} is not valid for a work item patch."))
        if not bypass:
            self._check_rules(org, project, fields, touched, creating, item.id or -1)
        if relations != item.relations:
            for rel, count_field in LINK_COUNTS.items():
                fields[count_field] = sum(1 for r in relations if str(r.get("rel", "")).startswith(rel))
        return fields, relations

    def _field_name(self, org: Org, fields: dict[str, Any], given: str, creating: bool, bypass: bool) -> str:
        """The field's reference name as stored (matching is case-insensitive), or a 400."""
        key = given.lower()
        if key not in KNOWN_FIELDS and key not in org.custom_fields:
            raise Reject(error(400, f"TF51535: Cannot find field {given}.", "WorkItemFieldNotFoundException"))
        if key in READ_ONLY or (key in BYPASS_ONLY and not bypass) or (key in FIXED_BY_TYPE and not bypass):
            raise rule_error(given, "ReadOnly")
        return next((k for k in fields if k.lower() == key), KNOWN_FIELDS.get(key, given))

    @staticmethod
    def _relation_op(relations: list[dict[str, Any]], kind: str, path: str, value: Any) -> None:
        index_text = path.split("/", 2)[2]
        if kind == "add" and index_text == "-":
            if not isinstance(value, dict) or not value.get("rel") or not value.get("url"):
                raise Reject(error(400, "A relation needs rel and url."))
            rel = str(value["rel"])
            if rel not in ("Hyperlink", "ArtifactLink", "AttachedFile") and not rel.startswith("System.LinkTypes."):
                raise Reject(error(400, f"TF201036: The link type {rel} does not exist."))
            relations.append({"rel": rel, "url": str(value["url"]), "attributes": dict(value.get("attributes") or {})})
            return
        if kind == "remove" and index_text.isdigit() and int(index_text) < len(relations):
            del relations[int(index_text)]
            return
        raise Reject(error(400, f"The path {path} is not valid for a {kind} of a relation."))

    def _check_rules(
        self, org: Org, project: Project, fields: dict[str, Any], touched: set[str], creating: bool, item_id: int
    ) -> None:
        """The rules of every process: Title required, State one of the type's states, AssignedTo a member of
        the organization, area and iteration paths existing nodes (values are made canonical in place)."""
        if not str(fields.get("System.Title") or "").strip() and (creating or "System.Title" in touched):
            raise rule_error("System.Title", "Required, InvalidEmpty")
        wit = str(fields.get("System.WorkItemType", ""))
        for name, allowed in org.required_fields.get((project.id.lower(), wit.lower()), {}).items():
            if creating or name in touched:
                given = fields.get(name)
                if given is None or not str(given).strip():
                    raise rule_error(name, "Required, InvalidEmpty")
                if allowed and str(given) not in allowed:
                    raise rule_error(name, "HasValues, LimitedToValues, InvalidListValue")
        if "System.State" in touched or creating:
            states = self._type_states(org, project, wit) or []
            wanted = str(fields.get("System.State") or "")
            found = next((name for name, _ in states if name.lower() == wanted.lower()), None)
            if found is None:
                flags = "Required, InvalidEmpty" if not wanted else "HasValues, LimitedToValues, InvalidListValue"
                raise rule_error("System.State", flags)
            fields["System.State"] = found
        if "System.AssignedTo" in touched and fields.get("System.AssignedTo") is not None:
            given = fields["System.AssignedTo"]
            identity = self._resolve_identity(org, given)
            if identity is None:
                # The message clients see for a value that is not a member (az CLI and others quote it).
                raise rule_error(
                    "System.AssignedTo",
                    "InvalidIdentity",
                    f"The identity value '{given}' for field '{field_label('System.AssignedTo')}' is an unknown "
                    "identity.",
                )
            fields["System.AssignedTo"] = identity
        for name, structure in (("System.AreaPath", "areas"), ("System.IterationPath", "iterations")):
            if name in touched and not self._valid_path(project, str(fields.get(name) or ""), structure):
                raise rule_error(
                    name,
                    "InvalidTreeName",
                    f"TF401347: Invalid tree name given for work item {item_id}, field '{name}'.",
                )

    @staticmethod
    def _resolve_identity(org: Org, value: Any) -> str | None:
        """A member as 'Display <email>' from its email, that same form, or an unambiguous display name."""
        if not isinstance(value, str) or not value.strip():
            return None
        text = value.strip()
        bracketed = re.fullmatch(r"(.*?)\s*<([^<>]+)>", text)
        found = org.identities.get((bracketed.group(2) if bracketed else text).lower())
        if found is not None:
            return found
        by_name = [i for i in org.identities.values() if i.split(" <")[0].lower() == text.lower()]
        return by_name[0] if len(by_name) == 1 else None

    def _written(self, org: Org, item: WorkItem, major: int, request: Request) -> dict[str, Any]:
        """A write's answer: the work item with its relations (when it has any) and links."""
        rendered = self._render_item(org, item, major, None, arg(request, "$expand"))
        if item.relations:
            rendered["relations"] = copy.deepcopy(item.relations)
        return rendered
