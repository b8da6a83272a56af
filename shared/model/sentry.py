"""A Sentry installation of this app as plain data (contract §13): which Sentry organization it is, its tokens,
and whether it is active. Stored by `shared.store.sentry`; the tokens are encrypted there.

One installation is one tracker organization, `sentry-<organization slug>`; its tracked issues are the Sentry
issues (id: Sentry's issue id), its members the Sentry organization's members.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

ORG_PREFIX = "sentry-"
PUBLIC = "public"  # installed from a public integration: tokens from the grant code, refreshed every 8 hours
INTERNAL = "internal"  # an internal integration (self-hosted Sentry): a static token entered by an admin
ACTIVE = "active"
DISABLED = "disabled"


def org_id_for(organization_slug: str) -> str:
    """The tracker organization of a Sentry organization."""
    return ORG_PREFIX + organization_slug


def is_sentry_org(org_id: str) -> bool:
    return org_id.startswith(ORG_PREFIX) and len(org_id) > len(ORG_PREFIX)


def hash_grant_code(code: str) -> str:
    """What is kept of an installation's grant code (sha256, hex): enough for the setup page to recognise Sentry's
    redirect, which carries the same code, and useless to anyone who reads it (the code is spent by then)."""
    return hashlib.sha256(code.encode("utf-8")).hexdigest()


def slug_of(org_id: str) -> str:
    """The Sentry organization slug of a tracker organization made by `org_id_for`."""
    if not is_sentry_org(org_id):
        raise ValueError("not a Sentry organization's id")
    return org_id[len(ORG_PREFIX) :]


@dataclass(frozen=True)
class SentryInstallation:
    uuid: str
    organization_slug: str
    kind: str = PUBLIC
    status: str = ACTIVE
    app_uuid: str | None = None  # the app's own id: webhooks whose actor it is are our own writes
    token: str | None = field(default=None, repr=False)
    refresh_token: str | None = field(default=None, repr=False)
    expires_at: float | None = None  # epoch seconds; None: never (an internal integration's token)
    refresh_lock_until: float | None = None  # a refresher's claim, so one instance refreshes for all
    needs_reauth: bool = False  # Sentry refused the tokens: install again (public) or enter a new token (internal)
    created_at: float | None = None
    updated_at: float | None = None
    etag: str | None = field(default=None, compare=False, repr=False)
    # The setup page (contract §14): Sentry's redirect after the installation carries the grant code; its sha256
    # (hex) lets the page recognise that redirect, and the claim makes it open a session once only.
    grant_code_hash: str | None = field(default=None, repr=False)
    setup_claimed_at: float | None = None

    @property
    def org_id(self) -> str:
        return org_id_for(self.organization_slug)

    @property
    def active(self) -> bool:
        return self.status == ACTIVE

    def public(self) -> dict[str, Any]:
        """What an admin may see: never a token, only whether one is set."""
        return {
            "uuid": self.uuid,
            "organization": self.organization_slug,
            "org_id": self.org_id,
            "kind": self.kind,
            "status": self.status,
            "app_uuid": self.app_uuid,
            "token": "set" if self.token else None,
            "expires_at": self.expires_at,
            "needs_reauth": self.needs_reauth,
        }


SENTRY_FIELDS = ("status", "assignee")


@dataclass(frozen=True)
class SentryUpdate:
    """A tracked issue of a Sentry organization changed on the Azure DevOps side (inbound sync): bring the
    Sentry issue in line (`fields`: status, assignee), and/or its external issue in line with the issue's links
    (`link`: the `<integration>|<work item>` that was linked or unlinked outside Sentry's UI). It names the issue,
    not the values: the worker reads the issue as it is then, so a message applied late or twice sends the newest
    values. `after` holds, per source link and field, the revision the issue must have recorded before this may
    run (inbound sync queues it before the issue is saved), as `OutboundChange.after` does."""

    org_id: str
    issue_id: str
    fields: tuple[str, ...] = ()
    link: str | None = None
    after: tuple[tuple[str, str, int], ...] = ()  # (link key, field, revision)
