"""State rules picked from the organization's own lists (contract §12.1, §12.5), without JavaScript: a project,
then one of its work item types, then that type's states, each a form post answered by the next list. Only
names Azure DevOps listed are accepted, so a rule always names a state that exists."""

from __future__ import annotations

import logging

from shared.admin.tracker import put_installation
from shared.ado.client import AdoError
from shared.errors import InvalidInput
from shared.model.integration import IntegrationNotFound
from shared.pages.render import Page
from shared.pages.setup_form import ANY_PROJECT, RuleChoice, parse_removal, parse_rule
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

MAX_RULES = 50


def rules(session: Session, form: dict[str, str]) -> tuple[Page, Session]:
    installation = installation_of(session)
    if installation is None:
        return connect_page(session, status=409, message=CONNECT_FIRST, kind="bad"), session
    current = [rule.public() for rule in installation.state_rules]
    try:
        removal = parse_removal(form, len(current))
        if removal is not None:
            removed = current.pop(removal)
            put_installation(
                session.org_id,
                installation.integration_id,
                installation_body(installation, state_rules=current),
                share=False,
            )
            return sync_page(
                session, message=f"Removed the rule for {removed['type']} in {removed['project']}."
            ), session
        choice = parse_rule(form)
        if not choice.project:
            raise InvalidInput("Choose a project.")
        return _next(session, installation.integration_id, choice, current), session
    except InvalidInput as exc:
        return sync_page(session, status=400, message=str(exc), kind="bad"), session
    except (AdoError, IntegrationNotFound) as exc:
        log.info("The setup page could not read a list: %s", exc)
        message = "The organization's lists could not be read from Azure DevOps just now; try again in a moment."
        return sync_page(session, status=502, message=message, kind="bad"), session


def _next(session: Session, integration_id: str, choice: RuleChoice, current: list[dict]) -> Page:
    from shared.lookups.forms import Forms

    forms, org_id = Forms(), session.org_id
    project = str(choice.project)
    projects = forms.projects(integration_id, org_id=org_id)
    _require(project, projects, "That project is not one of the organization's projects.")
    types = forms.work_item_types(integration_id, project, org_id=org_id)
    if not choice.type:
        return step_page("setup_rule.html", session, project=project, type=None, types=types, states=None)
    _require(choice.type, types, f"That work item type is not one of {project}'s types.")
    states = forms.states(integration_id, project, choice.type, org_id=org_id)
    if not choice.complete:
        return step_page("setup_rule.html", session, project=project, type=choice.type, types=types, states=states)
    for state in (choice.resolved, choice.unresolved):
        if state:
            _require(state, states, f"That state is not one of the states of {choice.type}.")
    if len(current) >= MAX_RULES:
        raise InvalidInput(f"There are {MAX_RULES} rules already; remove one first.")
    rule = {"project": ANY_PROJECT if choice.every_project else project, "type": choice.type}
    rule.update(
        {key: value for key, value in (("resolved", choice.resolved), ("unresolved", choice.unresolved)) if value}
    )
    installation = installation_of(session)
    if installation is None:
        raise InvalidInput(CONNECT_FIRST)
    put_installation(
        session.org_id, integration_id, installation_body(installation, state_rules=[*current, rule]), share=False
    )
    where = "every project" if choice.every_project else project
    moves = ", ".join(
        f"{direction} to {state}"
        for direction, state in (("resolve", choice.resolved), ("reopen", choice.unresolved))
        if state
    )
    return sync_page(session, message=f"Added a rule for {choice.type} in {where}: {moves}.")


def _require(value: str, options: list[dict[str, str]], message: str) -> None:
    if value not in {option.get("value") for option in options}:
        raise InvalidInput(message)
