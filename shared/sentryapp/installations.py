"""Installations of the app (contract §13.2): `installation.created|deleted` as Sentry announces them, and an
internal integration's static token entered by an admin (`PUT /api/sentry/installations/{uuid}`), which also
re-authorises an installation whose tokens Sentry refused (`needs_reauth`), public ones too. Either way, and on a
new installation of the organization, the messages parked while it could not be used are released.

A public integration's grant code is exchanged once for a token pair, stored encrypted (the save tried again a few
times: the code cannot be exchanged twice); the store makes the new installation its organization's current one,
so installing again replaces an earlier installation, and a repeat of the event repairs that index. Sentry
refusing the code (used, expired, another app's) leaves nothing stored. An uninstall disables the installation
and forgets its tokens.
"""

from __future__ import annotations

import logging
import re
from dataclasses import replace
from typing import Any

from shared.clock import SYSTEM, Clock
from shared.connections.obtained import save_obtained
from shared.connections.sentry import client_for, tokens_for
from shared.deliveries.sentry import InstallationEvent, is_slug
from shared.errors import InvalidInput, NotFound, RetryLater
from shared.model.sentry import DISABLED, INTERNAL, PUBLIC, SentryInstallation, hash_grant_code
from shared.sentry.client import SentryError, SentryThrottled, SentryTimeout, SentryUnauthorized
from shared.sentryapp.parking import release
from shared.store.sentry import SentryStore
from shared.validation import check_fields, is_valid_id

log = logging.getLogger(__name__)

MAX_TOKEN = 512
_TOKEN = re.compile(rf"[\x21-\x7e]{{1,{MAX_TOKEN}}}")  # printable ASCII without spaces: what Sentry's tokens are


def may_pass(exc: SentryError) -> bool:
    """Whether a failed Sentry call is worth trying again later (throttled, down, slow, or failing itself)."""
    return isinstance(exc, (SentryThrottled, SentryTimeout)) or (exc.status or 0) >= 500


def apply_installation_event(event: InstallationEvent, store: SentryStore, *, clock: Clock = SYSTEM) -> str:
    """Apply `installation.created` or `.deleted`; what became of it, for the log. RetryLater for a Sentry
    failure that may pass; StorageUnavailable propagates."""
    if event.action == "deleted":
        return _uninstalled(event, store)
    return _installed(event, store, clock)


def _uninstalled(event: InstallationEvent, store: SentryStore) -> str:
    def disable(current: SentryInstallation) -> SentryInstallation | None:
        if current.status == DISABLED and current.token is None and current.refresh_token is None:
            return None
        return replace(current, status=DISABLED, token=None, refresh_token=None, expires_at=None)

    if store.update(event.uuid, disable) is None:
        log.info("Sentry installation %s was deleted but was never recorded here", event.uuid)
        return "an unknown installation was deleted"
    log.info("Sentry installation %s (organization %s) was deleted: disabled", event.uuid, event.organization_slug)
    return "disabled"


def _installed(event: InstallationEvent, store: SentryStore, clock: Clock) -> str:
    existing = store.get(event.uuid)
    if existing is not None and existing.active and existing.token:
        # The code was exchanged by an earlier attempt of this event, or its duplicate; that attempt may have
        # failed before its organization's index was written: repaired here.
        installation = existing
        store.repair_org_index(existing)
    elif existing is not None and not existing.active:
        log.info("Sentry installation %s was created again after it was deleted: ignored", event.uuid)
        return "ignored: the installation was deleted"
    elif event.code is None:
        log.warning("Sentry installation %s was created without a grant code: nothing recorded", event.uuid)
        return "no grant code"
    else:
        try:
            grant = tokens_for(event.uuid, code=event.code, clock=clock)
        except SentryError as exc:
            if may_pass(exc):
                raise RetryLater(f"the grant code could not be exchanged yet: {exc}", exc.retry_after) from exc
            log.warning("Sentry installation %s: the grant code was refused, nothing recorded: %s", event.uuid, exc)
            return "grant code refused"
        obtained = SentryInstallation(
            event.uuid,
            event.organization_slug,
            kind=PUBLIC,
            app_uuid=event.app_uuid,
            token=grant.token,
            refresh_token=grant.refresh_token,
            expires_at=grant.expires_at,
            grant_code_hash=hash_grant_code(event.code),  # the setup page recognises Sentry's redirect by it
        )
        # The code is spent: the tokens are saved before anything else can fail, and the save tried again.
        what = f"The tokens of Sentry installation {event.uuid}"
        installation = save_obtained(lambda: store.put(obtained), what, clock=clock)
        log.info("Sentry installation %s of organization %s recorded", event.uuid, event.organization_slug)
        release(installation.org_id)  # installed again: what waited for a usable installation goes now
    if event.status == "pending":
        _confirm(installation, store, clock)
        return "installed and confirmed"
    return "installed"


def _confirm(installation: SentryInstallation, store: SentryStore, clock: Clock) -> None:
    """Tell Sentry the installation is set up (apps that ask to verify installs wait for it)."""
    try:
        client_for(installation, store=store, clock=clock).confirm_installation(installation.uuid)
    except SentryUnauthorized as exc:
        log.warning("Sentry installation %s: confirming it was refused: %s", installation.uuid, exc)
    except SentryError as exc:
        if may_pass(exc):
            raise RetryLater(f"the installation could not be confirmed yet: {exc}", exc.retry_after) from exc
        log.warning("Sentry installation %s: confirming it failed: %s", installation.uuid, exc)


# -- an internal integration's token (function key) ----------------------------------------------------------


def _uuid(value: str) -> str:
    if not is_valid_id(value):
        raise InvalidInput("The installation uuid must be 1-128 letters, digits, '-', '_', '.' or ':'.")
    return value


def put_static_token(uuid: str, body: dict[str, Any]) -> tuple[SentryInstallation, bool]:
    """Store an internal integration's token (it never expires), or a new token for an installation Sentry
    refused (public ones too: contract §15), which clears `needs_reauth` and releases the messages parked
    meanwhile. True when the installation is new here."""
    uuid = _uuid(uuid)
    check_fields(body, {"token", "organization", "app_uuid"})
    token, organization, app_uuid = body.get("token"), body.get("organization"), body.get("app_uuid")
    if not isinstance(token, str) or not _TOKEN.fullmatch(token):
        raise InvalidInput(f"token must be 1-{MAX_TOKEN} printable ASCII characters without spaces.")
    store = SentryStore()
    existing = store.get(uuid)
    if existing is not None and organization is None:
        organization = existing.organization_slug  # a new token for an installation the app knows
    if not is_slug(organization):
        raise InvalidInput("organization must be a Sentry organization slug (letters, digits, '-' and '_').")
    if existing is not None and organization != existing.organization_slug:
        raise InvalidInput("organization must be the installation's own organization, " + existing.organization_slug)
    if app_uuid is not None and not is_valid_id(app_uuid):
        raise InvalidInput("app_uuid must be the Sentry App's uuid.")
    app_uuid = app_uuid or (existing.app_uuid if existing is not None else None)
    if app_uuid is None:
        # Without it the webhooks the app's own writes cause would look like a person's changes (echoes, §13.2).
        raise InvalidInput("app_uuid is required: the Sentry App's uuid (app.uuid in Sentry's installations list).")
    installation = SentryInstallation(
        uuid,
        organization,
        kind=existing.kind if existing is not None else INTERNAL,  # a public one re-authorised stays public
        app_uuid=app_uuid,
        token=token,
        created_at=existing.created_at if existing is not None else None,
    )
    saved = store.put(installation)
    release(saved.org_id)
    return saved, existing is None


def get_installation(uuid: str) -> SentryInstallation:
    installation = SentryStore().get(uuid) if is_valid_id(uuid) else None
    if installation is None:
        raise NotFound("No Sentry installation has that uuid.")
    return installation
