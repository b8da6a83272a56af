"""The setup page's step "Link stack frames to code" (contract §18): the organization's code mappings, without
JavaScript. A project of the connected Azure DevOps organization, then one of its repositories (both listed from
Azure DevOps, so a mapping names a repository that exists), then the stack root, source root, branch and Sentry
project; or a mapping removed. Saved through the admin code the API uses (`shared.admin.code_mappings`)."""

from __future__ import annotations

import logging

from shared.admin.code_mappings import get_code_mappings, put_code_mappings
from shared.ado.client import AdoError
from shared.ado.repos import list_repositories
from shared.connections.ado import get_client_for_org
from shared.errors import InvalidInput
from shared.model.code_mappings import ALL_PROJECTS, MAX_MAPPINGS
from shared.model.integration import IntegrationNotFound
from shared.pages.render import Page
from shared.pages.setup_form import FORM_TOKEN
from shared.pages.setup_session import Session
from shared.pages.setup_steps import CONNECT_FIRST, connect_page, installation_of, read_projects, step_page

log = logging.getLogger(__name__)

CODE_FIELDS = {
    FORM_TOKEN,
    "project",
    "repository",
    "branch",
    "stack_root",
    "source_root",
    "sentry_project",
    "remove",
}
NOT_READ = "The organization's projects and repositories could not be read from Azure DevOps just now."


def code_page(session: Session, *, status: int = 200, message: str = "", kind: str = "ok", **extra: object) -> Page:
    installation = installation_of(session)
    if installation is None:
        return connect_page(session, status=409 if message else 200, message=message or CONNECT_FIRST, kind="bad")
    projects, read = read_projects(session, installation)
    if not read:
        message = (message + " " if message else "") + NOT_READ
        kind = "bad"
    mappings = [m.public() for m in get_code_mappings(session.org_id)]
    context = {"mappings": mappings, "projects": projects, "project": None, "repositories": None} | extra
    return step_page("setup_code.html", session, status=status, message=message, kind=kind, **context)


def save_code(session: Session, form: dict[str, str]) -> tuple[Page, Session]:
    installation = installation_of(session)
    if installation is None:
        return connect_page(session, status=409, message=CONNECT_FIRST, kind="bad"), session
    current = [m.public() for m in get_code_mappings(session.org_id)]
    try:
        if form.get("remove"):
            index = int(form["remove"]) if form["remove"].isdigit() else -1
            if not 0 <= index < len(current):
                raise InvalidInput("That mapping is not on the list any more; reload the page.")
            removed = current.pop(index)
            put_code_mappings(session.org_id, current)
            message = f"Removed the mapping of {removed['stack_root'] or 'every file'}."
            return code_page(session, message=message), session
        project = form.get("project", "").strip()
        if not project:
            raise InvalidInput("Choose a project.")
        from shared.lookups.forms import Forms

        projects = Forms().projects(installation.integration_id, org_id=session.org_id)
        if project not in {p["value"] for p in projects}:
            raise InvalidInput("That project is not one of the organization's projects.")
        _, client = get_client_for_org(installation.integration_id, session.org_id)
        repositories = list_repositories(client, project)
        if not form.get("repository"):
            if not repositories:
                raise InvalidInput(f"{project} has no Git repositories.")
            return code_page(session, project=project, repositories=repositories), session
        if form["repository"] not in {r["value"] for r in repositories}:
            raise InvalidInput(f"That repository is not one of {project}'s repositories.")
        if len(current) >= MAX_MAPPINGS:
            raise InvalidInput(f"There are {MAX_MAPPINGS} mappings already; remove one first.")
        mapping = {
            "sentry_project": form.get("sentry_project", "").strip() or ALL_PROJECTS,
            "stack_root": form.get("stack_root", ""),
            "integration_id": installation.integration_id,
            "project": project,
            "repository": form["repository"],
            "branch": form.get("branch", "").strip() or "main",
            "source_root": form.get("source_root", ""),
        }
        put_code_mappings(session.org_id, [*current, mapping])
        where = mapping["stack_root"] or "every file"
        message = f"Added: {where} links to {project}/{mapping['repository']} on {mapping['branch']}."
        return code_page(session, message=message), session
    except InvalidInput as exc:
        return code_page(session, status=400, message=str(exc), kind="bad"), session
    except (AdoError, IntegrationNotFound) as exc:
        log.info("The setup page could not read a list: %s", exc)
        return code_page(session, status=502, message=NOT_READ, kind="bad"), session
