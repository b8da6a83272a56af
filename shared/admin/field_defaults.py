"""`field_defaults` of an installation (contract §17): values for the fields a type requires that a create form
cannot ask for per type (a Sentry schema is pasted once), per project and type (`*` for any). Checked here, used
by every create (`shared.admin.workitems`), the form's and the alert's alike; a create's own values win."""

from __future__ import annotations

from typing import Any

from shared.admin.workitem_request import REFERENCE_NAME, _extra_fields
from shared.errors import InvalidInput
from shared.model.tracker import ANY, FieldDefault
from shared.validation import check_fields, require_text

MAX_DEFAULTS = 50
MAX_NAME = 128
DEFAULT_FIELDS = {"project", "type", "fields"}
DEFAULT_KEYS = ("project", "type")


def parse_field_defaults(value: Any) -> tuple[FieldDefault, ...]:
    if not isinstance(value, list) or len(value) > MAX_DEFAULTS:
        raise InvalidInput(f"field_defaults must be a list of at most {MAX_DEFAULTS} entries.")
    parsed = []
    for n, entry in enumerate(value, 1):
        if not isinstance(entry, dict) or not isinstance(entry.get("fields"), dict) or not entry["fields"]:
            raise InvalidInput(f"field_defaults[{n}] must be an object with project, type and fields.")
        check_fields(entry, DEFAULT_FIELDS)
        names = {
            key: require_text(entry, key, MAX_NAME).strip() if key in entry else ANY for key in ("project", "type")
        }
        try:
            fields = _extra_fields(entry["fields"])
        except InvalidInput as exc:
            raise InvalidInput(f"field_defaults[{n}]: {exc}") from None
        parsed.append(FieldDefault(names["project"] or ANY, names["type"] or ANY, fields))
    return tuple(parsed)


MAX_FIELD_LINES = 50
FIELD_LINE_EXAMPLE = "'Custom.Team: Payments'"


def parse_field_lines(text: str) -> dict[str, Any]:
    """A form's extra fields: `Reference.Name: value` lines (blank lines skipped); InvalidInput naming the line
    that is not one, or a field the create sets another way."""
    fields: dict[str, Any] = {}
    lines = [line for line in text.splitlines() if line.strip()]
    if len(lines) > MAX_FIELD_LINES:
        raise InvalidInput(f"Extra fields may have at most {MAX_FIELD_LINES} lines.")
    for number, line in enumerate(lines, 1):
        name, separator, value = line.partition(":")
        name = name.strip()
        if not separator or not REFERENCE_NAME.fullmatch(name) or "." not in name:
            raise InvalidInput(
                f"Line {number} of the extra fields is not 'Reference.Name: value' ({FIELD_LINE_EXAMPLE})."
            )
        fields[name] = value.strip()
    return _extra_fields(fields)


def how_to_default(org_id: str, integration_id: str, project: str, work_item_type: str) -> str:
    """What a person can do about a field Azure DevOps requires (appended to its refusal)."""
    return (
        f"Give it a value in the form's extra fields, or a default for {project} / {work_item_type} in the"
        f" integration's field defaults (the setup page, or field_defaults in PUT /api/orgs/{org_id}/integrations/"
        f"{integration_id})."
    )
