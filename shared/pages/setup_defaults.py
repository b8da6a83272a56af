"""Field defaults picked on the setup page (contract §17), without JavaScript: a project, then one of its work item
types, then the fields that type requires (read from Azure DevOps, `alwaysRequired`), each a select of its allowed
values or a text input where any value goes. Saved into the installation's `field_defaults` through the admin code
the API uses, replacing the entry for that project and type; only fields the type requires and values it allows
are accepted."""

from __future__ import annotations

import json
import logging

from shared.admin.tracker import put_installation
from shared.admin.workitem_request import RESERVED
from shared.ado.client import AdoError
from shared.errors import InvalidInput
from shared.model.integration import IntegrationNotFound
from shared.model.tracker import Installation
from shared.pages.render import Page
from shared.pages.setup_form import FORM_TOKEN
from shared.pages.setup_session import Session
from shared.pages.setup_steps import (
    CONNECT_FIRST,
    connect_page,
    installation_body,
    installation_of,
    step_page,
    sync_page,
)

log = logging.getLogger(__name__)

MAX_DEFAULT_FIELDS = 10  # value inputs a form posts (`field_0`..): a type rarely requires more than a few
VALUE_FIELDS = tuple(f"field_{n}" for n in range(MAX_DEFAULT_FIELDS))
DEFAULTS_FIELDS = {FORM_TOKEN, "project", "type", "save", "remove", *VALUE_FIELDS}
MAX_ENTRIES = 50  # shared.admin.field_defaults.MAX_DEFAULTS
NOT_READ = "The organization's lists could not be read from Azure DevOps just now; try again in a moment."


def defaults(session: Session, form: dict[str, str]) -> tuple[Page, Session]:
    """`POST /api/setup/defaults`: a removal, or the next list (types, then required fields), or the save."""
    installation = installation_of(session)
    if installation is None:
        return connect_page(session, status=409, message=CONNECT_FIRST, kind="bad"), session
    current = [default.public() for default in installation.field_defaults]
    try:
        if form.get("remove"):
            index = int(form["remove"]) if form["remove"].isdigit() else -1
            if not 0 <= index < len(current):
                raise InvalidInput("That default is not on the list any more; reload the page.")
            removed = current.pop(index)
            _save(session, installation, current)
            message = f"Removed the field defaults for {removed['type']} in {removed['project']}."
            return sync_page(session, message=message), session
        return _next(session, installation, form, current), session
    except InvalidInput as exc:
        return sync_page(session, status=400, message=str(exc), kind="bad"), session
    except (AdoError, IntegrationNotFound) as exc:
        log.info("The setup page could not read a list: %s", exc)
        return sync_page(session, status=502, message=NOT_READ, kind="bad"), session


def _next(session: Session, installation: Installation, form: dict[str, str], current: list[dict]) -> Page:
    from shared.lookups.forms import Forms

    forms, org_id, integration_id = Forms(), session.org_id, installation.integration_id
    project, work_item_type = form.get("project", "").strip(), form.get("type", "").strip()
    if not project:
        raise InvalidInput("Choose a project.")
    projects = forms.projects(integration_id, org_id=org_id)
    _require(project, projects, "That project is not one of the organization's projects.")
    types = forms.work_item_types(integration_id, project, org_id=org_id)
    if not work_item_type:
        return step_page("setup_defaults.html", session, project=project, type=None, types=types, fields=None)
    _require(work_item_type, types, f"That work item type is not one of {project}'s types.")
    required = [
        field
        for field in forms.required_fields(integration_id, project, work_item_type, org_id=org_id)
        if field["value"].lower() not in RESERVED  # the title and the like: every create sets them itself
    ][:MAX_DEFAULT_FIELDS]
    if not required:
        message = f"{work_item_type} in {project} requires no field beyond what every create sets: nothing to default."
        return sync_page(session, message=message)
    saved = installation.defaults_for(project, work_item_type)
    fields = [
        {
            "input": VALUE_FIELDS[n],
            "label": field["label"],
            "name": field["value"],
            "allowed": json.loads(field.get("allowed") or "[]"),
            "value": str(saved.get(field["value"], "")),
        }
        for n, field in enumerate(required)
    ]
    if not form.get("save"):
        return step_page(
            "setup_defaults.html", session, project=project, type=work_item_type, types=types, fields=fields
        )
    chosen: dict[str, str] = {}
    for field in fields:
        value = form.get(field["input"], "").strip()
        if not value:
            continue
        if field["allowed"] and value not in field["allowed"]:
            raise InvalidInput(f"{value[:100]} is not one of the values {field['name']} allows.")
        chosen[field["name"]] = value
    if not chosen:
        raise InvalidInput("Give at least one field a value; nothing was saved.")
    same = [n for n, entry in enumerate(current) if (entry["project"], entry["type"]) == (project, work_item_type)]
    entry = {"project": project, "type": work_item_type, "fields": chosen}
    if same:
        current[same[0]] = entry
    elif len(current) >= MAX_ENTRIES:
        raise InvalidInput(f"There are {MAX_ENTRIES} field defaults already; remove one first.")
    else:
        current.append(entry)
    _save(session, installation, current)
    names = ", ".join(f"{name} = {value}" for name, value in chosen.items())
    return sync_page(session, message=f"Saved the field defaults for {work_item_type} in {project}: {names}.")


def _save(session: Session, installation: Installation, entries: list[dict]) -> None:
    body = installation_body(installation, field_defaults=entries)
    put_installation(session.org_id, installation.integration_id, body, share=False)


def _require(value: str, options: list[dict[str, str]], message: str) -> None:
    if value not in {option.get("value") for option in options}:
        raise InvalidInput(message)
