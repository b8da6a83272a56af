"""The setup page's steps (contract §14): connect an Azure DevOps organization, choose what to sync, create the
service hook, and the last page. Each step's page says its result in plain words; what the steps save goes
through the admin code the admin API uses (`shared.admin`), so a page and an API call save the same things.

Every function answers `(page, session)`: the session changes when an organization is connected (the cookie
is then issued again, keeping its end). A stored secret is never put on a page: only that one is set.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

from shared.admin.integrations import NotTheOwner, put_integration
from shared.admin.subscriptions import create_subscription
from shared.admin.tracker import put_installation
from shared.ado.client import AdoError, AdoUnauthorized
from shared.ado.subscriptions import SubscriptionRefused
from shared.errors import InvalidInput
from shared.model.integration import IntegrationNotFound
from shared.model.sentry import is_sentry_org
from shared.model.tracker import Installation
from shared.pages.render import Page, render
from shared.pages.setup_access import AccessProblem, check_access
from shared.pages.setup_form import ENTRA, SYNC_FIELDS, parse_credentials, parse_org_url, parse_sync
from shared.pages.setup_session import Session, with_integration
from shared.settings import SettingsError, get_settings
from shared.store.integrations import Integration, IntegrationStore
from shared.store.tracker import TrackerStore

log = logging.getLogger(__name__)

CONNECT_FIRST = "Connect an Azure DevOps organization first (step 1)."
WEBHOOK_PATH = "/api/vsts/issue-updated"
# What a fresh installation syncs until the person chooses: Azure DevOps changes reach the tracker (§5).
NEW_INSTALLATION = {"sync_reverse_assignment": True, "sync_status_reverse": True}


def step_page(
    template: str, session: Session, *, status: int = 200, message: str = "", kind: str = "ok", **context: Any
) -> Page:
    return render(
        template,
        status=status,
        step={"rule": "sync", "defaults": "sync"}.get(name := template[len("setup_") : -len(".html")], name),
        org_id=session.org_id,
        form_token=session.form_token,
        connected=session.integration_id is not None,
        message=message,
        kind=kind,
        **context,
    )


# -- step 1: connect ------------------------------------------------------------------------------------


def connect_page(
    session: Session, *, status: int = 200, message: str = "", kind: str = "ok", values: dict[str, str] | None = None
) -> Page:
    integration = _integration(session)
    shown = None
    if integration is not None:
        installation = installation_of(session)
        own = installation.credentials if installation is not None else {}
        kind = own.get("type") if own else integration.credentials_type
        kind_label = "A Microsoft Entra ID service principal" if kind == ENTRA else "A personal access token"
        shown = {
            "name": integration.name,
            "domain_name": integration.domain_name,
            "credential": kind_label,
            "needs_reauth": integration.needs_reauth,
        }
    # Secrets are never sent back, not even the one just entered: the form asks for them again.
    kept = {key: (values or {}).get(key, "") for key in ("org_url", "tenant_id", "client_id")}
    kept["auth"] = (values or {}).get("auth") or (integration.credentials_type if integration else ENTRA) or ENTRA
    if not kept["org_url"] and integration is not None:
        kept["org_url"] = integration.domain_name
    return step_page(
        "setup_connect.html", session, status=status, message=message, kind=kind, integration=shown, values=kept
    )


def connect(session: Session, form: dict[str, str]) -> tuple[Page, Session]:
    settings = get_settings()
    try:
        org = parse_org_url(form.get("org_url", ""), settings.allowed_origins)
        credentials = parse_credentials(form)
        connected = check_access(org, credentials, settings)
    except (InvalidInput, AccessProblem) as exc:
        status = exc.status if isinstance(exc, AccessProblem) else 400
        return connect_page(session, status=status, message=str(exc), kind="bad", values=form), session
    integration_id = connected.integration_id
    existing = IntegrationStore().get(integration_id)
    own: dict[str, Any] = {}  # this organization's own credentials, when the integration's are not its own
    if existing is None or existing.credential_owner == session.org_id:
        body = {"name": org.name, "domain_name": org.domain_name, "credentials": credentials}
        try:
            # New, or credentials this organization entered itself: the integration's (a generated webhook
            # secret is never shown: step 3 sets one). Never enables an integration an operator disabled.
            put_integration(integration_id, body, owner=session.org_id)
        except NotTheOwner:  # another organization connected it meanwhile
            own = credentials
    else:
        # Another organization's or an operator's credentials: never used by this one, never replaced by it
        # (contract §16). What it entered is kept for it alone.
        own = credentials
    _save_installation(session.org_id, integration_id, own)
    session = with_integration(session, integration_id)
    message = f"Connected to {org.name}: the app may enter the organization and read its work items."
    if own:
        message += (
            f" {org.name} is connected for another organization too; the credential you entered is kept for "
            "this organization only, and everything done for it uses that credential."
        )
    saved = IntegrationStore().get(integration_id)
    if saved is not None and not saved.active:
        message += (
            " The app's operator has disabled this organization's connection: nothing syncs until they enable it."
        )
    log.info("Setup page connected integration %s for %s", integration_id, session.org_id)
    return sync_page(session, message=message + " Now choose what to sync."), session


def _save_installation(org_id: str, integration_id: str, own: dict[str, Any]) -> None:
    """The organization's installation with its own credentials (none when the integration's are its own),
    keeping its settings and an operator's share; a new one syncs what NEW_INSTALLATION says."""
    tracker = TrackerStore()
    current = tracker.get_installation(integration_id, org_id)
    if current is None:
        current = Installation(integration_id, org_id, **NEW_INSTALLATION)
    tracker.put_installation(replace(current, credentials=own))


def _integration(session: Session) -> Integration | None:
    return IntegrationStore().get(session.integration_id) if session.integration_id else None


# -- step 2: what to sync ------------------------------------------------------------------------------


def installation_of(session: Session) -> Installation | None:
    if session.integration_id is None:
        return None
    return TrackerStore().get_installation(session.integration_id, session.org_id)


def installation_body(installation: Installation, **changes: Any) -> dict[str, Any]:
    """The admin API's body for the installation as it is, with `changes`: put_installation replaces it whole."""
    body: dict[str, Any] = {key: getattr(installation, key) for key in SYNC_FIELDS}
    body["resolve_states"] = list(installation.resolve_states)
    body["state_rules"] = [rule.public() for rule in installation.state_rules]
    body["field_defaults"] = [default.public() for default in installation.field_defaults]
    body.update(changes)
    return body


def read_projects(session: Session, installation: Installation) -> tuple[list[dict[str, str]], bool]:
    """The organization's projects as the setup steps offer them, and whether Azure DevOps could be read."""
    from shared.lookups.forms import Forms

    try:
        return Forms().projects(installation.integration_id, org_id=session.org_id), True
    except (AdoError, IntegrationNotFound) as exc:
        log.info("The setup page could not list projects: %s", exc)
        return [], False


def sync_page(session: Session, *, status: int = 200, message: str = "", kind: str = "ok") -> Page:
    installation = installation_of(session)
    if installation is None:
        return connect_page(session, status=409 if message else 200, message=message or CONNECT_FIRST, kind="bad")
    projects, read = read_projects(session, installation)
    if not read:
        message = (message + " " if message else "") + "The organization's projects could not be read just now."
    sync = {key: getattr(installation, key) for key in SYNC_FIELDS}
    rules = [
        {"project": rule.project, "type": rule.type, "resolved": rule.resolved, "unresolved": rule.unresolved}
        for rule in installation.state_rules
    ]
    defaults = [default.public() for default in installation.field_defaults]
    return step_page(
        "setup_sync.html",
        session,
        status=status,
        message=message,
        kind=kind,
        sync=sync,
        rules=rules,
        defaults=defaults,
        projects=projects,
    )


def save_sync(session: Session, form: dict[str, str]) -> tuple[Page, Session]:
    installation = installation_of(session)
    if installation is None:
        return connect_page(session, status=409, message=CONNECT_FIRST, kind="bad"), session
    try:
        chosen = parse_sync(form)
    except InvalidInput as exc:
        return sync_page(session, status=400, message=str(exc), kind="bad"), session
    put_installation(
        session.org_id, installation.integration_id, installation_body(installation, **chosen), share=False
    )
    count = sum(chosen.values())
    message = (
        f"Saved: {count} of {len(chosen)} kinds of change are synced." if count else ("Saved: nothing is synced now.")
    )
    return sync_page(session, message=message), session


# -- step 3: the service hook, and the last page -----------------------------------------------------------


def suggested_webhook_url(host: str, secure: bool) -> str:
    return f"{'https' if secure else 'http'}://{host}{WEBHOOK_PATH}"


def hook_page(
    session: Session, host: str, secure: bool, *, status: int = 200, message: str = "", kind: str = "ok"
) -> Page:
    integration = _integration(session)
    if integration is None:
        return connect_page(session, status=409 if message else 200, message=message or CONNECT_FIRST, kind="bad")
    try:
        webhook_url: str | None = get_settings().webhook_public_url
    except SettingsError:
        webhook_url = None
    return step_page(
        "setup_hook.html",
        session,
        status=status,
        message=message,
        kind=kind,
        webhook_url=webhook_url,
        suggested_url=suggested_webhook_url(host, secure),
        subscription_id=integration.subscription_id,
        subscription_status=integration.subscription_status or "unknown",
    )


def create_hook(session: Session, host: str, secure: bool) -> tuple[Page, Session]:
    if _integration(session) is None:
        return connect_page(session, status=409, message=CONNECT_FIRST, kind="bad"), session
    try:
        get_settings().webhook_public_url  # noqa: B018  (names the missing setting before Azure DevOps is asked)
    except SettingsError:
        message = (
            "The app setting WEBHOOK_PUBLIC_URL is not set, so the service hook cannot be created: ask the operator "
            f"to set it to {suggested_webhook_url(host, secure)}."
        )
        return hook_page(session, host, secure, status=409, message=message, kind="bad"), session
    try:
        saved = create_subscription(str(session.integration_id), org_id=session.org_id)
    except SubscriptionRefused as exc:
        return hook_page(session, host, secure, status=502, message=str(exc), kind="bad"), session
    except AdoUnauthorized:
        message = "Azure DevOps refused the organization's credential: connect again with a new one (step 1)."
        return hook_page(session, host, secure, status=502, message=message, kind="bad"), session
    except (AdoError, IntegrationNotFound) as exc:
        log.warning("The setup page could not create a service hook: %s", exc)
        message = "Azure DevOps could not create the service hook just now; try again in a moment."
        return hook_page(session, host, secure, status=502, message=message, kind="bad"), session
    message = (
        f"The service hook was created ({saved.subscription_status or 'enabled'}): Azure DevOps now tells the app."
    )
    return done_page(session, message=message), session


def done_page(session: Session, *, message: str = "") -> Page:
    integration = _integration(session)
    installation = installation_of(session)
    if integration is None or installation is None:
        return connect_page(session, message=CONNECT_FIRST, kind="bad")
    name = integration.name
    works = [
        text
        for on, text in (
            (
                installation.sync_status_reverse,
                f"Resolving or reopening a work item in {name} resolves or reopens its linked issues.",
            ),
            (
                installation.sync_reverse_assignment,
                f"Assigning a work item in {name} assigns its linked issues to the member with that email.",
            ),
            (installation.sync_status_forward, "Resolving or reopening an issue moves its linked work items' state."),
            (installation.sync_forward_assignment, "Assigning an issue assigns its linked work items."),
            (installation.sync_comments, "Comments on an issue appear on its linked work items."),
            (installation.sync_comments_reverse, f"Comments on a linked work item in {name} appear on the issue."),
        )
        if on
    ]
    linking = (
        "In Sentry, open an issue and link it to a work item (Linked Issues, Azure DevOps)."
        if is_sentry_org(session.org_id)
        else f"Link a tracked issue to a work item: PUT /api/orgs/{session.org_id}/issues/<issue id>/links/"
        f"{integration.id}/<work item id>."
    )
    test_steps = [
        linking,
        f"In {name}, open that work item and change its state to Resolved or Closed, then save.",
        "Within a few seconds the linked issue is resolved; reopen the work item and the issue is unresolved.",
    ]
    return step_page(
        "setup_done.html",
        session,
        message=message,
        works=works,
        test_steps=test_steps,
        subscription_id=integration.subscription_id,
    )
