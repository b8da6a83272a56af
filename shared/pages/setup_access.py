"""Step one of the setup page: check an organization URL and a credential at once, before anything is saved, and
say in plain words what is wrong (contract §14).

On an Azure DevOps Server collection, first `OPTIONS {collection}/_apis/` (which REST API level it has, so every
call asks for a version it serves). Then two calls: `connectionData` (the credential may enter the organization,
and the organization's id, the integration's key) and a WIQL query that selects nothing (it may read work items).
Each failure the Azure DevOps client distinguishes, and each AADSTS error Microsoft Entra ID answers, becomes one
sentence a person can act on.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.ado import client as ado
from shared.ado.connection import api_level, organization_id, probe_work_items
from shared.ado.credentials import EntraRefused, entra_token, pat_header
from shared.pages.setup_form import PAT, OrgUrl
from shared.settings import Settings

ENTRA_ERRORS = {
    "AADSTS90002": "Microsoft Entra ID has no tenant {tenant}: check the app registration's Directory (tenant) ID.",
    "AADSTS900023": "The tenant id {tenant} is not a valid tenant id: copy the Directory (tenant) ID, a GUID.",
    "AADSTS90013": "The tenant id {tenant} is not a valid tenant id: copy the Directory (tenant) ID, a GUID.",
    "AADSTS700016": (
        "The application (client) id was not found in tenant {tenant}: the app is registered in another tenant "
        "(the wrong tenant id), or the client id is wrong."
    ),
    "AADSTS7000215": "The client secret is wrong: enter the secret's Value (shown once when it was made), not its ID.",
    "AADSTS7000222": "The client secret has expired: make a new one under Certificates & secrets and enter it here.",
    "AADSTS53003": "A Conditional Access policy of tenant {tenant} blocked the service principal's sign-in.",
    "AADSTS700024": "Microsoft Entra ID refused the sign-in because of the time: check this machine's clock.",
}


class AccessProblem(Exception):
    """What is wrong with the URL or the credential, as one sentence for the page; `status` 400, or 503 when
    Azure DevOps could not answer (nothing is wrong with what was entered, as far as anyone knows)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Connected:
    integration_id: str
    org: OrgUrl


def check_access(org: OrgUrl, credentials: dict[str, str], settings: Settings) -> Connected:
    """The organization's id when the credential may enter it and read its work items; AccessProblem otherwise."""
    if credentials["type"] == PAT:
        header = pat_header(credentials["token"])

        def authorization() -> str:
            return header
    else:

        def authorization() -> str:
            return f"Bearer {entra_token(credentials, settings.entra_authority_host)}"

    client = ado.AdoClient(
        org.domain_name,
        authorization,
        allowed_origins=settings.allowed_origins,
        timeout=settings.http_timeout,
    )
    try:
        client.api_level = api_level(client)
        integration_id = organization_id(client)
    except ado.AdoError as exc:
        raise AccessProblem(_entering(exc, org, credentials), _status(exc)) from None
    try:
        probe_work_items(client)
    except ado.AdoError as exc:
        raise AccessProblem(_reading(exc, org, credentials), _status(exc)) from None
    return Connected(integration_id, org)


def _entering(exc: ado.AdoError, org: OrgUrl, credentials: dict[str, str]) -> str:
    if isinstance(exc, EntraRefused):
        template = ENTRA_ERRORS.get(exc.code or "")
        if template:
            return template.format(tenant=credentials.get("tenant_id", ""))
        return f"Microsoft Entra ID refused the service principal's sign-in{f' ({exc.code})' if exc.code else ''}."
    if isinstance(exc, ado.AdoNotFound):
        return f"Azure DevOps has no organization at {org.domain_name}: check the organization's name in the URL."
    if isinstance(exc, ado.AdoUnauthorized):
        if credentials["type"] == PAT:
            return (
                f"Azure DevOps refused the personal access token in {org.name}: it has expired or was revoked, or "
                f"it was made for another organization. Make a new one for {org.name} and enter it."
            )
        return (
            f"The service principal is not a member of the organization {org.name}, or the organization is "
            "connected to another Microsoft Entra tenant: add it under Organization settings, Users."
        )
    return _unavailable(exc)


def _reading(exc: ado.AdoError, org: OrgUrl, credentials: dict[str, str]) -> str:
    if isinstance(exc, (ado.AdoUnauthorized, ado.AdoNotFound)):
        if credentials["type"] == PAT:
            return (
                "The personal access token may enter the organization but not read its work items: it lacks the "
                "scope Work Items (Read), or Read & write for two-way sync."
            )
        return (
            f"The service principal is a member of {org.name} but may not read its work items: give it the access "
            "level Basic and read access to work items in the projects."
        )
    return _unavailable(exc)


def _status(exc: ado.AdoError) -> int:
    return 503 if isinstance(exc, (ado.AdoTimeout, ado.AdoThrottled)) else 400


def _unavailable(exc: ado.AdoError) -> str:
    if isinstance(exc, ado.AdoTimeout):
        return "Azure DevOps did not answer in time; try again in a moment."
    if isinstance(exc, ado.AdoUnavailable):
        return "Azure DevOps could not be reached or is unavailable; check the URL, or try again in a moment."
    if isinstance(exc, ado.AdoThrottled):
        return "Azure DevOps is throttling requests; try again in a minute."
    if isinstance(exc, ado.AdoRequestRejected):
        return f"Azure DevOps refused the request: {str(exc).split(': ', 1)[-1].rstrip('.')}."
    return "Azure DevOps answered with an error; check the URL and try again."
