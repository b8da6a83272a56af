"""What Sentry's UI components send the app (contract §13.1), verified and then parsed. No I/O.

- An issue-link form submitted (`POST`): `{fields, installationId, issueId, webUrl, project: {slug, id}, actor}`,
  signed over the raw body.
- A select field loading its options (`GET`): `installationId`, `projectSlug`, `query` and `dependentData` (a JSON
  object of the fields it depends on) in the query string, signed over the empty string.

The signature (`Sentry-App-Signature`, `shared.deliveries.sentry.verify_ui_request`) is checked before a byte of
the body is parsed. Raises only `InvalidSignature` (401), `InvalidSentryPayload` (400) and `BodyTooLarge`, each
with one sentence that never echoes what was sent.

The forms' field names live here, beside their limits, so the schema (`shared.sentryapp.components`) and the
parser cannot drift apart.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

# The webhook parser's checks of Sentry's values (same package; one definition of each).
from shared.deliveries.sentry import (
    InvalidSentryPayload,
    _header,
    _id,
    _text,
    _url,
    json_object,
    verify_ui_request,
)
from shared.validation import has_control_characters, is_valid_id

# The issue-link forms' fields: name -> most characters. Titles default to the Sentry issue's, which may be
# longer than a work item holds; it is cut later, not refused.
PROJECT, WORK_ITEM_TYPE, TITLE = "project", "work_item_type", "title"
DESCRIPTION, AREA_PATH, WORK_ITEM = "description", "area_path", "work_item"
ITERATION_PATH, TAGS, PRIORITY, SEVERITY = "iteration_path", "tags", "priority", "severity"
PARENT, EXTRA_FIELDS = "parent", "extra_fields"
CREATE_FIELDS = {PROJECT: 300, WORK_ITEM_TYPE: 128, TITLE: 10_000, DESCRIPTION: 32_000, AREA_PATH: 4000}
CREATE_FIELDS |= {ITERATION_PATH: 4000, TAGS: 2000, PRIORITY: 1, SEVERITY: 128, PARENT: 300, EXTRA_FIELDS: 8000}
CREATE_REQUIRED = (PROJECT, WORK_ITEM_TYPE, TITLE)
LINK_FIELDS = {WORK_ITEM: 300}
LINK_REQUIRED = (WORK_ITEM,)
FORMS = {"create": (CREATE_FIELDS, CREATE_REQUIRED), "link": (LINK_FIELDS, LINK_REQUIRED)}
MULTILINE = {DESCRIPTION, EXTRA_FIELDS}  # textareas: line breaks allowed

MAX_QUERY = 200  # what a person types into a select
MAX_DEPENDENT_DATA = 4000
CHOICE_SEPARATOR = "|"  # between an integration id (which never holds it) and a project name or work item id
_REQUEST_ID = re.compile(r"[\x21-\x7e]{1,128}")  # usable as an Idempotency-Key (shared.admin.workitems)


@dataclass(frozen=True)
class Choice:
    """A select's value: `<integration id>|<name or id>`, or a bare name or id (an organization with one
    Azure DevOps integration needs no more)."""

    integration_id: str | None
    value: str


@dataclass(frozen=True)
class IssueLinkRequest:
    installation_uuid: str
    issue_id: str  # digits
    web_url: str  # the Sentry issue's page
    fields: dict[str, str] = field(repr=False)  # the form's fields that were filled in (blank ones left out)
    project_slug: str | None = None  # the Sentry project
    actor_id: str | None = None
    request_id: str | None = None  # Request-ID, when usable as an idempotency key


@dataclass(frozen=True)
class OptionsRequest:
    installation_uuid: str
    query: str  # "" when nothing was typed
    dependent_data: dict[str, str]
    project_slug: str | None = None


def parse_choice(value: str, what: str) -> Choice:
    """A select's value, split; InvalidSentryPayload naming `what` when either part is malformed."""
    integration_id, separator, rest = value.partition(CHOICE_SEPARATOR)
    if not separator:
        integration_id, rest = "", value
    elif not is_valid_id(integration_id):
        raise InvalidSentryPayload(f"The {what} does not name an Azure DevOps integration; choose it from the list.")
    rest = rest.strip()
    if not rest:
        raise InvalidSentryPayload(f"The {what} is empty; choose it from the list.")
    return Choice(integration_id or None, rest)


def _installation(value: object) -> str:
    if not is_valid_id(value):
        raise InvalidSentryPayload("The request has no valid installationId.")
    assert isinstance(value, str)
    return value


def _form_value(name: str, value: object, limit: int) -> str | None:
    """A field's value as text; None when blank. Select values are strings, an id typed by hand may be a number."""
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise InvalidSentryPayload(f"The field {name} must be text.")
    if len(value) > limit:
        raise InvalidSentryPayload(f"The field {name} must be at most {limit} characters.")
    checked = value.replace("\r", "").replace("\n", "") if name in MULTILINE else value
    if has_control_characters(checked):
        raise InvalidSentryPayload(f"The field {name} must not contain control characters.")
    return value if value.strip() else None


def _fields(value: object, form: str) -> dict[str, str]:
    allowed, required = FORMS[form]
    if not isinstance(value, dict):
        raise InvalidSentryPayload("The request's fields must be a JSON object.")
    unknown = sorted(str(name)[:40] for name in value if name not in allowed)
    if unknown:
        raise InvalidSentryPayload(f"The form has no field {unknown[0]!r}; its fields are {', '.join(allowed)}.")
    fields = {name: text for name, raw in value.items() if (text := _form_value(name, raw, allowed[name]))}
    missing = [name for name in required if name not in fields]
    if missing:
        raise InvalidSentryPayload(f"The field {missing[0]} is required.")
    return fields


def issue_link_request(headers: Mapping[str, str], body: bytes, secret: str, form: str) -> IssueLinkRequest:
    """A submitted issue-link form (`form`: create or link), verified, then parsed."""
    verify_ui_request(headers, body, secret)
    payload = json_object(bytes(body))
    uuid = _installation(payload.get("installationId"))
    issue_id = _id(payload.get("issueId"))
    if issue_id is None:
        raise InvalidSentryPayload("The request has no valid issueId.")
    web_url = _url(payload.get("webUrl"))
    if web_url is None:
        raise InvalidSentryPayload("The request's webUrl is missing or not an http(s) URL.")
    project, actor = payload.get("project"), payload.get("actor")
    request_id = _header(headers, "request-id")
    return IssueLinkRequest(
        installation_uuid=uuid,
        issue_id=issue_id,
        web_url=web_url,
        fields=_fields(payload.get("fields"), form),
        project_slug=_text(project.get("slug")) if isinstance(project, dict) else None,
        actor_id=_id(actor.get("id")) if isinstance(actor, dict) else None,
        request_id=request_id if request_id is not None and _REQUEST_ID.fullmatch(request_id) else None,
    )


def _dependent_data(value: str | None) -> dict[str, str]:
    if value is None or not value.strip():
        return {}
    if len(value) > MAX_DEPENDENT_DATA:
        raise InvalidSentryPayload(f"dependentData must be at most {MAX_DEPENDENT_DATA} characters.")
    data = json_object(value, "dependentData")
    known = {**CREATE_FIELDS, **LINK_FIELDS}
    parsed = {}
    for name, raw in data.items():
        if name not in known:
            raise InvalidSentryPayload(f"dependentData names no field of the forms: {str(name)[:40]!r}.")
        text = _form_value(name, raw, known[name])
        if text is not None:
            parsed[name] = text
    return parsed


def options_request(headers: Mapping[str, str], params: Mapping[str, str], secret: str) -> OptionsRequest:
    """A select field's option request, verified (over the empty string, as Sentry signs GETs), then parsed."""
    verify_ui_request(headers, b"", secret)
    query = params.get("query") or ""
    if len(query) > MAX_QUERY:
        raise InvalidSentryPayload(f"The query must be at most {MAX_QUERY} characters.")
    if has_control_characters(query):
        raise InvalidSentryPayload("The query must not contain control characters.")
    return OptionsRequest(
        installation_uuid=_installation(params.get("installationId")),
        query=query.strip(),
        dependent_data=_dependent_data(params.get("dependentData")),
        project_slug=_text(params.get("projectSlug")),
    )


@dataclass(frozen=True)
class AlertRuleRequest:
    """An alert rule being saved in Sentry: its action's settings, to check (contract §17)."""

    installation_uuid: str
    settings: dict[str, str] = field(repr=False)  # name -> value, blanks left out


def alert_rule_request(headers: Mapping[str, str], body: bytes, secret: str) -> AlertRuleRequest:
    """`{"fields": [{"name", "value"}...], "installationId"}` as Sentry POSTs it to the settings `uri`
    (`alert_rule_action_requester.py`), verified, then parsed."""
    from shared.deliveries.sentry_alerts import alert_settings  # the same reading as the settings a firing carries

    verify_ui_request(headers, body, secret)
    payload = json_object(bytes(body))
    return AlertRuleRequest(_installation(payload.get("installationId")), alert_settings(payload.get("fields")))
