"""An integration: one Azure DevOps organization, as the app knows it. Plain data (stored by
`shared.store.integrations`); `credentials` and the secrets are decrypted here and never in repr."""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any

ACTIVE = "active"
DISABLED = "disabled"


class IntegrationNotFound(Exception):
    """No integration with that id, or it is disabled."""


@dataclass(frozen=True)
class Integration:
    """One integration as stored; `credentials` and the secrets are decrypted, and never in repr."""

    id: str
    name: str
    domain_name: str
    status: str = ACTIVE
    credentials: dict[str, Any] = field(default_factory=dict, repr=False)
    webhook_secret: str | None = field(default=None, repr=False)
    previous_webhook_secret: str | None = field(default=None, repr=False)
    previous_secret_expires_at: float | None = None
    needs_reauth: bool = False
    subscription_id: str | None = None
    subscription_status: str | None = None
    subscription_checked_at: float | None = None
    # The `workitem.commented` subscription (contract §18), made, checked and replaced with the one above and
    # sharing its secret: Azure DevOps takes one event type per subscription.
    comments_subscription_id: str | None = None
    comments_subscription_status: str | None = None
    domain_checked_at: float | None = None
    refresh_lock_until: float | None = None
    # The server's REST API level (`shared.ado.versions`: "7.1", or "7.0" for Azure DevOps Server 2022); None
    # until learnt (`shared.connections.ado.client_for`).
    api_level: str | None = None
    created_at: float | None = None
    updated_at: float | None = None
    # Which tracker organization entered the credentials on the setup page; "" when an operator did (admin API).
    # Only that organization, and those an operator shared it with, may use them (contract §16).
    credential_owner: str = ""
    # Not stored: True when `credentials` were replaced by a tracker organization's own (`shared.connections.
    # access`), so a refusal marks nothing on the integration and nothing refreshes into it.
    borrowed: bool = field(default=False, compare=False)
    etag: str | None = field(default=None, compare=False)
    # Stored values that could not be decrypted, kept as they are until replaced (see _from_entity).
    sealed: dict[str, str] = field(default_factory=dict, repr=False, compare=False)

    @property
    def active(self) -> bool:
        return self.status == ACTIVE

    @property
    def credentials_type(self) -> str | None:
        return self.credentials.get("type")

    def accepted_webhook_secrets(self, now: float | None = None) -> list[str]:
        """The secrets a delivery may present: the current one, and the previous one during its grace period."""
        now = time.time() if now is None else now
        secrets = [self.webhook_secret] if self.webhook_secret else []
        if self.previous_webhook_secret and (self.previous_secret_expires_at or 0) > now:
            secrets.append(self.previous_webhook_secret)
        return secrets

    def with_new_subscription(
        self,
        subscription_id: str,
        status: str,
        secret: str,
        *,
        grace_seconds: float,
        now: float,
        comments_subscription: tuple[str, str] | None = None,
    ) -> Integration:
        """This integration after its subscription was (re)created with `secret`. The old secret keeps working
        for `grace_seconds`, so deliveries already sent with it are not refused."""
        previous = self.webhook_secret
        return replace(
            self,
            subscription_id=subscription_id,
            subscription_status=status,
            subscription_checked_at=now,
            comments_subscription_id=comments_subscription[0] if comments_subscription else None,
            comments_subscription_status=comments_subscription[1] if comments_subscription else None,
            webhook_secret=secret,
            previous_webhook_secret=previous,
            previous_secret_expires_at=now + grace_seconds if previous else None,
        )

    def public(self) -> dict[str, Any]:
        """What the admin API shows: everything but credentials' secrets and webhook secrets."""
        return {
            "id": self.id,
            "name": self.name,
            "domain_name": self.domain_name,
            "status": self.status,
            "needs_reauth": self.needs_reauth,
            "credentials": {"type": self.credentials_type},
            "webhook_secret_set": bool(self.webhook_secret),
            "previous_secret_valid_until": self.previous_secret_expires_at
            if self.previous_webhook_secret and (self.previous_secret_expires_at or 0) > time.time()
            else None,
            "subscription": {
                "id": self.subscription_id,
                "status": self.subscription_status,
                "checked_at": self.subscription_checked_at,
                "comments": {"id": self.comments_subscription_id, "status": self.comments_subscription_status},
            },
            "domain_checked_at": self.domain_checked_at,
            "api_level": self.api_level,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }


@dataclass(frozen=True)
class IntegrationSummary:
    """What the timers need to visit an integration, read without decrypting anything."""

    id: str
    name: str
    domain_name: str
    subscription_id: str | None = None


def normalize_id(integration_id: str) -> str:
    return integration_id.strip().lower()
