"""The body of `POST /api/orgs/{org_id}/issues/{issue_id}/workitems` (contract §12.4), checked completely before
anything is written, and the JSON Patch document it becomes. Pure: no storage, no HTTP.

Descriptions are markdown, and Azure DevOps' multiline fields (System.Description, Repro Steps) hold HTML. The
markdown is turned into escaped HTML here (paragraphs, line breaks, fenced code, inline code, bold, headings,
http(s) links), not sent with `/multilineFieldsFormat/<field>: Markdown`: that switch is api-version 7.2
(preview) and absent from Azure DevOps Server, while HTML reads the same everywhere. Everything the user wrote
is escaped, so no markup of theirs reaches the work item's page.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from typing import Any

from shared.errors import InvalidInput
from shared.model.integration import normalize_id
from shared.validation import check_fields, has_control_characters, is_valid_id, require_text

FIELDS = {
    *("integration_id", "project", "type", "title", "description", "area_path", "iteration_path", "tags", "fields"),
    *("priority", "severity", "parent"),  # contract §17
}
PRIORITY, SEVERITY = "Microsoft.VSTS.Common.Priority", "Microsoft.VSTS.Common.Severity"
PARENT_LINK = "System.LinkTypes.Hierarchy-Reverse"  # this work item's parent
MAX_TITLE = 255  # System.Title is a String field: Azure DevOps holds at most 255 characters
MAX_PROJECT = 64  # a project's name (or its 36-character id)
MAX_TYPE = 128
MAX_PATH = 4000  # Azure DevOps' cap on an area or iteration path
MAX_DESCRIPTION = 32_000
MAX_TAGS, MAX_TAG = 50, 100
MAX_EXTRA_FIELDS, MAX_FIELD_NAME, MAX_FIELD_TEXT = 50, 128, 32_000
REFERENCE_NAME = re.compile(r"[A-Za-z][\w.]*")
# Set from the request's own keys (or by Azure DevOps from the URL): `fields` may not set them another way.
RESERVED = {
    "system.title": "title",
    "system.description": "description",
    "microsoft.vsts.tcm.reprosteps": "description",
    "system.areapath": "area_path",
    "system.iterationpath": "iteration_path",
    "system.tags": "tags",
    "system.workitemtype": "type",
    "system.teamproject": "project",
}


@dataclass(frozen=True)
class CreateRequest:
    integration_id: str
    project: str
    type: str
    title: str | None = None
    description: str | None = None
    area_path: str | None = None
    iteration_path: str | None = None
    tags: tuple[str, ...] = ()
    fields: dict[str, Any] = field(default_factory=dict)
    parent: int | None = None  # a work item id: linked as this one's parent


def parse_request(body: dict[str, Any]) -> CreateRequest:
    check_fields(body, FIELDS)
    for key in ("integration_id", "project", "type"):
        if key not in body:
            raise InvalidInput(f"{key} is required.")
    integration_id = normalize_id(require_text(body, "integration_id", 128))
    if not is_valid_id(integration_id):
        raise InvalidInput("integration_id must be 1-128 letters, digits, '.', '_', ':' or '-'.")
    return CreateRequest(
        integration_id=integration_id,
        project=require_text(body, "project", MAX_PROJECT).strip(),
        type=require_text(body, "type", MAX_TYPE).strip(),
        title=require_text(body, "title", MAX_TITLE).strip() if body.get("title") is not None else None,
        description=_description(body.get("description")),
        area_path=require_text(body, "area_path", MAX_PATH).strip() if body.get("area_path") is not None else None,
        iteration_path=require_text(body, "iteration_path", MAX_PATH).strip()
        if body.get("iteration_path") is not None
        else None,
        tags=_tags(body.get("tags", [])),
        fields={**_extra_fields(body.get("fields", {})), **_priority_severity(body)},
        parent=_parent(body.get("parent")),
    )


def _priority_severity(body: dict[str, Any]) -> dict[str, Any]:
    chosen: dict[str, Any] = {}
    if body.get("priority") is not None:
        priority = body["priority"]
        if isinstance(priority, bool) or priority not in (1, 2, 3, 4, "1", "2", "3", "4"):
            raise InvalidInput("priority must be 1, 2, 3 or 4.")
        chosen[PRIORITY] = int(priority)
    if body.get("severity") is not None:
        chosen[SEVERITY] = require_text(body, "severity", MAX_TYPE).strip()
    return chosen


def _parent(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 2**31:
        raise InvalidInput("parent must be a work item id, a positive whole number.")
    return value


def _description(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > MAX_DESCRIPTION:
        raise InvalidInput(f"description must be a string of at most {MAX_DESCRIPTION} characters.")
    if has_control_characters(value.replace("\n", "").replace("\r", "")):
        raise InvalidInput("description must not contain control characters other than tabs and line breaks.")
    return value if value.strip() else None


def _tags(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or len(value) > MAX_TAGS:
        raise InvalidInput(f"tags must be a list of at most {MAX_TAGS} tags.")
    tags: dict[str, str] = {}
    for tag in value:
        if not isinstance(tag, str) or not tag.strip() or len(tag) > MAX_TAG or has_control_characters(tag):
            raise InvalidInput(f"Each tag must be a non-empty string of at most {MAX_TAG} characters.")
        if ";" in tag:
            raise InvalidInput("A tag must not contain ';', which Azure DevOps uses between tags.")
        tags.setdefault(tag.strip().casefold(), tag.strip())  # Azure DevOps compares tags without case
    return tuple(tags.values())


def _extra_fields(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict) or len(value) > MAX_EXTRA_FIELDS:
        raise InvalidInput(f"fields must be an object of at most {MAX_EXTRA_FIELDS} fields.")
    for name, item in value.items():
        if len(name) > MAX_FIELD_NAME or not REFERENCE_NAME.fullmatch(name):
            raise InvalidInput(
                "Each key of fields must be a field reference name, e.g. Microsoft.VSTS.Common.Priority."
            )
        if name.lower() in RESERVED:
            raise InvalidInput(f"fields must not set {name}; use {RESERVED[name.lower()]} instead.")
        if isinstance(item, str):
            if len(item) > MAX_FIELD_TEXT or has_control_characters(item.replace("\n", "").replace("\r", "")):
                raise InvalidInput(f"The value of {name} must be at most {MAX_FIELD_TEXT} characters of text.")
        elif item is None or not isinstance(item, int | float | bool):
            raise InvalidInput(f"The value of {name} must be a string, a number or true or false.")
    return dict(value)


def patch_document(
    request: CreateRequest,
    title: str,
    body_field: str | None,
    issue_url: str | None,
    marker: str | None,
    base_url: str = "",
) -> list[dict[str, Any]]:
    """The JSON Patch of the create call: title, description (in `body_field`), paths, tags (the idempotency
    marker among them), the extra fields, and a Hyperlink back to the tracked issue."""
    values: dict[str, Any] = {"System.Title": title}
    if request.description is not None and body_field is not None:
        values[body_field] = markdown_html(request.description)
    if request.area_path is not None:
        values["System.AreaPath"] = request.area_path
    if request.iteration_path is not None:
        values["System.IterationPath"] = request.iteration_path
    tags = [*request.tags, *([marker] if marker else [])]
    if tags:
        values["System.Tags"] = "; ".join(tags)
    values.update(request.fields)
    ops = [{"op": "add", "path": f"/fields/{name}", "value": value} for name, value in values.items()]
    if issue_url:
        link = {"rel": "Hyperlink", "url": issue_url, "attributes": {"comment": "The tracked issue"}}
        ops.append({"op": "add", "path": "/relations/-", "value": link})
    if request.parent is not None:
        parent = {"rel": PARENT_LINK, "url": f"{base_url}_apis/wit/workItems/{request.parent}"}
        ops.append({"op": "add", "path": "/relations/-", "value": parent})
    return ops


def default_title(issue_title: str) -> str:
    """The tracked issue's title, cut to what System.Title holds."""
    title = " ".join(issue_title.split())
    return title if len(title) <= MAX_TITLE else title[: MAX_TITLE - 3] + "..."


# -- markdown to HTML --------------------------------------------------------------------------------------------

_CODE_SPAN = re.compile(r"(`[^`\n]+`)")
_LINK = re.compile(r"\[([^\]\n]+)\]\((https?://[^\s()]+)\)")
_BOLD = re.compile(r"\*\*(?=\S)(.+?)(?<=\S)\*\*")
_HEADING = re.compile(r"(#{1,6})\s+(.*)")


def markdown_html(text: str) -> str:
    """The common markdown of issue descriptions as HTML, every character of the text escaped."""
    out: list[str] = []
    paragraph: list[str] = []
    code: list[str] | None = None

    def flush() -> None:
        if paragraph:
            out.append("<p>" + "<br>".join(_inline(line) for line in paragraph) + "</p>")
            paragraph.clear()

    for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        if line.lstrip().startswith("```"):
            if code is None:
                flush()
                code = []
            else:
                out.append("<pre><code>" + html.escape("\n".join(code)) + "</code></pre>")
                code = None
        elif code is not None:
            code.append(line)
        elif heading := _HEADING.fullmatch(line.strip()):
            flush()
            level = len(heading.group(1))
            out.append(f"<h{level}>{_inline(heading.group(2))}</h{level}>")
        elif line.strip():
            paragraph.append(line)
        else:
            flush()
    if code is not None:  # an unclosed fence runs to the end, as markdown renderers show it
        out.append("<pre><code>" + html.escape("\n".join(code)) + "</code></pre>")
    flush()
    return "".join(out)


def _inline(line: str) -> str:
    parts = []
    for n, part in enumerate(_CODE_SPAN.split(line)):
        if n % 2:
            parts.append("<code>" + html.escape(part[1:-1]) + "</code>")
        else:
            escaped = _LINK.sub(r'<a href="\2">\1</a>', html.escape(part))
            parts.append(_BOLD.sub(r"<strong>\1</strong>", escaped))
    return "".join(parts)
