"""The setup page's form bodies, parsed strictly (pure functions): `application/x-www-form-urlencoded` only, a
size cap, UTF-8, each field once, only the fields the step knows. Every refusal is `InvalidInput` with one
sentence a person can act on; nothing is saved before a form has parsed completely.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlsplit

from shared.ado.domains import is_well_formed, origin_of
from shared.errors import InvalidInput
from shared.validation import has_control_characters

MAX_FORM_BYTES = 16 * 1024
MAX_FIELDS = 20
MAX_VALUE_CHARS = 2048
MAX_SECRET_CHARS = 1024
FORM_TOKEN = "form_token"
SYNC_FIELDS = (
    "sync_status_reverse",
    "sync_reverse_assignment",
    "sync_status_forward",
    "sync_forward_assignment",
    "sync_comments",
    "sync_comments_reverse",
)
CONNECT_FIELDS = {FORM_TOKEN, "org_url", "auth", "pat", "tenant_id", "client_id", "client_secret"}
RULE_FIELDS = {FORM_TOKEN, "project", "type", "resolved", "unresolved", "every_project", "remove"}
PAT = "pat"
ENTRA = "entra"
ANY_PROJECT = "*"

_ORG_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_VISUALSTUDIO = re.compile(r"([a-z0-9][a-z0-9-]{0,62})\.visualstudio\.com")
_GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_TENANT = re.compile(r"[A-Za-z0-9][A-Za-z0-9.-]{0,253}")  # a tenant id (GUID) or a domain such as contoso.com
_TOKEN = re.compile(r"[\x21-\x7e]+")  # a PAT or a client secret travels in a header: printable, no spaces
URL_HELP = (
    "Enter the organization's URL as https://dev.azure.com/{organization} or https://{organization}.visualstudio.com"
    ", or an Azure DevOps Server collection URL that the operator listed in ADO_ALLOWED_ORIGINS."
)


@dataclass(frozen=True)
class OrgUrl:
    """Where the organization is (`domain_name`, with its trailing slash) and its name."""

    domain_name: str
    name: str


def parse_form(body: bytes, content_type: str | None, allowed: Collection[str]) -> dict[str, str]:
    """The fields of a form post; InvalidInput for anything a setup page's own form would not send."""
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    if media_type != "application/x-www-form-urlencoded":
        raise InvalidInput("The setup page accepts only its own forms (application/x-www-form-urlencoded).")
    if len(body) > MAX_FORM_BYTES:
        raise InvalidInput(f"The form is larger than {MAX_FORM_BYTES // 1024} KiB.")
    try:
        text = body.decode("ascii")  # urlencoded bodies are ASCII; other characters arrive percent-encoded
        pairs = parse_qsl(
            text,
            keep_blank_values=True,
            strict_parsing=bool(text),
            encoding="utf-8",
            errors="strict",
            max_num_fields=MAX_FIELDS,
        )
    except (UnicodeDecodeError, ValueError):
        raise InvalidInput("The form could not be read; reload the page and send it again.") from None
    fields: dict[str, str] = {}
    for key, value in pairs:
        if key in fields:
            raise InvalidInput(f"The form sent the field {key[:40]!r} twice.")
        if key not in allowed:
            raise InvalidInput(f"The form sent a field the setup page does not know ({key[:40]!r}).")
        if len(value) > MAX_VALUE_CHARS or has_control_characters(value):
            raise InvalidInput(f"The field {key!r} is too long or holds control characters.")
        fields[key] = value
    return fields


def parse_org_url(text: str, extra_origins: Collection[str]) -> OrgUrl:
    """An organization URL as a person pastes it (scheme optional, a project or page after it ignored on Azure
    DevOps Services), or an Azure DevOps Server collection URL on an origin of ADO_ALLOWED_ORIGINS."""
    text = text.strip()
    if not text:
        raise InvalidInput(URL_HELP)
    if "://" not in text:
        text = "https://" + text
    origin = origin_of(text)
    if origin is None or len(text) > 500:
        raise InvalidInput(f"That is not a URL. {URL_HELP}")
    parts = urlsplit(text)
    host = (parts.hostname or "").lower()
    segments = [segment for segment in parts.path.split("/") if segment]
    if origin in extra_origins:
        if not segments:
            raise InvalidInput("An Azure DevOps Server URL must name the collection, such as .../DefaultCollection.")
        found = OrgUrl(f"{origin}/{'/'.join(segments)}/", segments[-1])
    elif parts.scheme == "https" and parts.port is None and host == "dev.azure.com":
        if not segments:
            raise InvalidInput("Add the organization's name to the URL: https://dev.azure.com/{organization}.")
        found = OrgUrl(f"https://dev.azure.com/{segments[0]}/", segments[0])
    elif parts.scheme == "https" and parts.port is None and (match := _VISUALSTUDIO.fullmatch(host)):
        found = OrgUrl(f"https://{match.group(1)}.visualstudio.com/", match.group(1))
    else:
        raise InvalidInput(f"{host or 'That address'} is not Azure DevOps. {URL_HELP}")
    if not _ORG_NAME.fullmatch(found.name) or not is_well_formed(found.domain_name, extra_origins):
        raise InvalidInput("The organization's name may hold only letters, digits, '.', '_' and '-'.")
    return found


def parse_credentials(form: dict[str, str]) -> dict[str, str]:
    """The credential as the admin API takes it: `{"type": "pat", "token"}` or `{"type": "entra", ...}`."""
    kind = form.get("auth")
    if kind == PAT:
        return {"type": PAT, "token": _secret(form, "pat", "the personal access token")}
    if kind == ENTRA:
        tenant = form.get("tenant_id", "").strip()
        client = form.get("client_id", "").strip()
        if not _TENANT.fullmatch(tenant):
            raise InvalidInput("Enter the tenant id: the Directory (tenant) ID of the app registration, a GUID.")
        if not _GUID.fullmatch(client):
            raise InvalidInput("Enter the client id: the Application (client) ID of the app registration, a GUID.")
        secret = _secret(form, "client_secret", "the client secret (its Value, not its Secret ID)")
        return {"type": ENTRA, "tenant_id": tenant, "client_id": client.lower(), "client_secret": secret}
    raise InvalidInput("Choose how the app signs in: a personal access token or a service principal.")


def _secret(form: dict[str, str], key: str, what: str) -> str:
    value = form.get(key, "").strip()
    if not value or len(value) > MAX_SECRET_CHARS or not _TOKEN.fullmatch(value):
        raise InvalidInput(f"Enter {what}.")
    return value


def parse_sync(form: dict[str, str]) -> dict[str, bool]:
    """The five switches of contract §6 and §12.1: a ticked box sends "on", an unticked one nothing."""
    for key in SYNC_FIELDS:
        if form.get(key, "on") != "on":
            raise InvalidInput(f"The box {key} must be ticked or not.")
    return {key: key in form for key in SYNC_FIELDS}


@dataclass(frozen=True)
class RuleChoice:
    """How far a person has got in picking a state rule: a project, then its type, then the states."""

    project: str | None
    type: str | None
    resolved: str | None
    unresolved: str | None
    every_project: bool

    @property
    def complete(self) -> bool:
        return bool(self.project and self.type and (self.resolved or self.unresolved))


def parse_rule(form: dict[str, str]) -> RuleChoice:
    def name(key: str) -> str | None:
        value = form.get(key, "").strip()
        if len(value) > 128:
            raise InvalidInput(f"The {key} name is longer than 128 characters.")
        return value or None

    choice = RuleChoice(name("project"), name("type"), name("resolved"), name("unresolved"), "every_project" in form)
    if choice.type and not choice.project:
        raise InvalidInput("Choose a project first.")
    if (choice.resolved or choice.unresolved) and not choice.type:
        raise InvalidInput("Choose a work item type first.")
    if choice.project and choice.type and "resolved" in form and not (choice.resolved or choice.unresolved):
        raise InvalidInput("Choose the state for resolved, for unresolved, or both.")
    return choice


def parse_removal(form: dict[str, str], count: int) -> int | None:
    """The index of the rule to remove (`remove`), or None when the form removes nothing."""
    if "remove" not in form:
        return None
    value = form["remove"]
    if not value.isdigit() or not 0 <= int(value) < count:
        raise InvalidInput("That rule is no longer there; reload the page.")
    return int(value)
