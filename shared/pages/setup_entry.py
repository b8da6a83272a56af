"""The two ways into the setup page (contract §14), each good once:

- a one-time setup link from `POST /api/setup/links` (an operator, with the function key): a random token, of
  which only the sha256 is stored, consumed by a conditional write;
- Sentry's redirect after a person installed the public integration (`code`, `installationId`, `orgSlug`):
  accepted only for an installation the app received less than 10 minutes ago whose grant code has that
  sha256, and claimed once under the installation's ETag.

Either gives a `Session` for the tracker organization, or a `Refused` saying in one sentence what to do.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
from dataclasses import dataclass, replace
from typing import Any

from shared.deliveries.sentry import is_slug
from shared.errors import InvalidInput
from shared.model.sentry import SentryInstallation, hash_grant_code
from shared.pages.setup_session import Session, open_session
from shared.store.sentry import SentryStore
from shared.store.setup_links import EXPIRED, USED, VALID, SetupLinkStore
from shared.validation import check_fields, is_valid_id, require_id

DEFAULT_LINK_MINUTES = 60
MAX_LINK_MINUTES = 1440
SENTRY_REDIRECT_SECONDS = 10 * 60
CLAIM_ATTEMPTS = 5
MAX_TOKEN_CHARS = 200
NEW_LINK = "Ask the app's operator for a new setup link."
INSTALL_AGAIN = "Open Sentry, uninstall the integration and install it again to get a new setup page."


@dataclass(frozen=True)
class Refused:
    status: int
    message: str


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_link(body: dict[str, Any], *, base_url: str, now: float, links: SetupLinkStore | None = None) -> dict:
    """`{"url", "expires_at"}` of a new link for `org_id`; InvalidInput for a bad body (nothing saved)."""
    check_fields(body, {"org_id", "lifetime_minutes"})
    org_id = require_id(body.get("org_id"), "org_id")
    minutes = body.get("lifetime_minutes", DEFAULT_LINK_MINUTES)
    if isinstance(minutes, bool) or not isinstance(minutes, int) or not 1 <= minutes <= MAX_LINK_MINUTES:
        raise InvalidInput(f"lifetime_minutes must be a whole number of minutes from 1 to {MAX_LINK_MINUTES}.")
    token = secrets.token_urlsafe(32)
    expires_at = now + minutes * 60
    (links or SetupLinkStore()).create(token_hash(token), org_id, now=now, expires_at=expires_at)
    return {"url": f"{base_url.rstrip('/')}/api/setup?link={token}", "expires_at": math.floor(expires_at)}


@dataclass(frozen=True)
class Usable:
    """A setup link that would open a session for `org_id`: shown with a button, used only by the POST."""

    org_id: str


@dataclass(frozen=True)
class NotYet:
    """Sentry's redirect arrived before the app applied `installation.created`: the page waits and asks again."""

    message: str


def check_link(token: str, *, now: float, links: SetupLinkStore | None = None) -> Usable | Refused:
    """Whether the link could open a session, without using it (for `GET /api/setup?link=`)."""
    if not token or len(token) > MAX_TOKEN_CHARS:
        return Refused(403, f"This setup link is not valid. {NEW_LINK}")
    found = (links or SetupLinkStore()).peek(token_hash(token), now=now)
    if found.state == VALID and found.org_id:
        return Usable(found.org_id)
    return _link_refusal(found.state)


def open_link(token: str, *, now: float, links: SetupLinkStore | None = None) -> Session | Refused:
    if not token or len(token) > MAX_TOKEN_CHARS:
        return Refused(403, f"This setup link is not valid. {NEW_LINK}")
    consumed = (links or SetupLinkStore()).consume(token_hash(token), now=now)
    if consumed.state == VALID and consumed.org_id:
        return open_session(consumed.org_id, now=now)
    return _link_refusal(consumed.state)


def _link_refusal(state: str) -> Refused:
    if state == USED:
        return Refused(410, f"This setup link was used already; each link opens the setup page once. {NEW_LINK}")
    if state == EXPIRED:
        return Refused(410, f"This setup link has expired. {NEW_LINK}")
    return Refused(403, f"This setup link is not valid. {NEW_LINK}")


def open_sentry_redirect(
    code: str, installation_id: str, org_slug: str, *, now: float, store: SentryStore | None = None
) -> Session | Refused | NotYet:
    """A session for the installation the redirect names; NotYet while the app has not applied its
    `installation.created` (Sentry sends the person and the webhook at the same moment)."""
    store = store or SentryStore()
    forged = Refused(403, f"This address does not match an installation of the app. {INSTALL_AGAIN}")
    if not code or len(code) > MAX_TOKEN_CHARS or len(installation_id) > MAX_TOKEN_CHARS:
        return forged
    for _ in range(CLAIM_ATTEMPTS):
        installation = store.get(installation_id)
        if installation is None and is_valid_id(installation_id) and is_slug(org_slug):
            return NotYet("A moment… the app is still saving the installation Sentry just told it about.")
        refusal = _redirect_refusal(installation, code, org_slug, now, forged)
        if refusal is not None:
            return refusal
        assert installation is not None
        # The claim is a conditional replace: of two tabs (or a replayed address) only one gets a session.
        if store.replace_if_unchanged(installation, replace(installation, setup_claimed_at=now)) is not None:
            return open_session(installation.org_id, now=now)
    return Refused(409, "The installation is being changed right now; open the address from Sentry again.")


def _redirect_refusal(
    installation: SentryInstallation | None, code: str, org_slug: str, now: float, forged: Refused
) -> Refused | None:
    if installation is None or not installation.active or installation.organization_slug != org_slug:
        return forged
    if not installation.grant_code_hash or not hmac.compare_digest(installation.grant_code_hash, hash_grant_code(code)):
        return forged
    if installation.setup_claimed_at is not None:
        return Refused(410, f"This setup address was used already. {INSTALL_AGAIN}")
    created = installation.created_at or 0.0
    if not created - 60 <= now <= created + SENTRY_REDIRECT_SECONDS:  # a minute's leeway for clocks
        return Refused(410, f"This setup address is more than 10 minutes old. {INSTALL_AGAIN}")
    return None
