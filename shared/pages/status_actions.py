"""What the status page's buttons do (contract §19): each fixes one problem the page shows and says in a sentence
what it did. The form's protection (session cookie, anti-forgery token, same origin) is checked before, in
`shared.pages.status`.

- `reauth` (an integration Azure DevOps refuses, or whose credentials cannot be decrypted): a one-time setup link
  for an organization that installed it; following it opens the setup page's connect step, where new
  credentials replace the old.
- `hook` (no service hook, or one Azure DevOps disabled): a new subscription, replacing any earlier one.
- `rotate`: a new subscription with a new webhook secret; the old secret stays valid for `SECRET_GRACE_SECONDS`.
- `retry` (a recent `ado_failed` / `sentry_failed`): the change is queued again (the worker reads the issue as it
  is then, so the newest values are sent) and the failure leaves the list.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from shared.admin.changes import accept_after_save
from shared.admin.subscriptions import create_subscription
from shared.ado.client import AdoError, AdoUnauthorized
from shared.ado.subscriptions import SubscriptionRefused
from shared.deliveries.outbound import to_outbound_message
from shared.deliveries.sentry_messages import to_update_message
from shared.errors import InvalidInput, NotFound, NotQueued, StorageUnavailable
from shared.model.changes import OUTBOUND_FIELDS, OutboundChange
from shared.model.integration import IntegrationNotFound
from shared.model.sentry import SentryUpdate
from shared.pages.setup_entry import create_link
from shared.settings import get_settings
from shared.store import failures, queues
from shared.store.integrations import Integration, IntegrationStore
from shared.store.tracker import TrackerStore
from shared.sync import wakeups
from shared.validation import require_id

log = logging.getLogger(__name__)

ACTIONS = ("reauth", "hook", "rotate", "retry")
LINK_MINUTES = 30


class ActionFailed(Exception):
    """The action could not be done; the message says why in a sentence (the page shows it with 502)."""


@dataclass(frozen=True)
class Done:
    sentence: str
    link: str | None = None  # a setup link to follow (reauth)


def run_action(action: str, target: str, *, base_url: str, now: float) -> Done:
    """Do `action` on `target` (an integration id, or a failure's key). InvalidInput / NotFound for a target that
    is not there; ActionFailed when Azure DevOps refused; StorageUnavailable passes through."""
    if action == "retry":
        return _retry(target)
    integration = _integration(target)
    if action == "reauth":
        return _reauth(integration, base_url, now)
    if action in ("hook", "rotate"):
        return _new_subscription(integration, rotate=action == "rotate")
    raise InvalidInput(f"The action must be one of {', '.join(ACTIONS)}.")


def _integration(integration_id: str) -> Integration:
    integration = IntegrationStore().get(require_id(integration_id, "integration"))
    if integration is None:
        raise NotFound(f"There is no integration {integration_id} (any more).")
    return integration


def _reauth(integration: Integration, base_url: str, now: float) -> Done:
    installed = [i.org_id for i in TrackerStore().installations_of(integration.id)]
    if not installed:
        raise InvalidInput(
            f"No organization has installed {integration.name}, so there is no setup page for it: enter new "
            f"credentials with PUT /api/vsts/integrations/{integration.id}."
        )
    org_id = sorted(installed)[0]
    link = create_link({"org_id": org_id, "lifetime_minutes": LINK_MINUTES}, base_url=base_url, now=now)
    sentence = (
        f"Made a one-time setup link for {org_id}, valid {LINK_MINUTES} minutes: open it to enter new credentials "
        f"for {integration.name} in the connect step."
    )
    return Done(sentence, link=link["url"])


def _new_subscription(integration: Integration, *, rotate: bool) -> Done:
    had = integration.subscription_id
    try:
        saved = create_subscription(integration.id)
    except SubscriptionRefused as exc:
        raise ActionFailed(str(exc)) from exc
    except AdoUnauthorized as exc:
        raise ActionFailed(
            f"Azure DevOps refused {integration.name}'s credentials, so no service hook was made: re-enter them first."
        ) from exc
    except (AdoError, IntegrationNotFound) as exc:
        log.warning("Status: a service hook for %s could not be made: %s", integration.id, exc)
        raise ActionFailed("Azure DevOps could not create the service hook just now; try again in a moment.") from exc
    grace = get_settings().secret_grace_seconds // 3600
    if rotate:
        return Done(
            f"Rotated the webhook secret of {integration.name}: its new service hook {saved.subscription_id} uses the "
            f"new secret, and the old one is still accepted for {grace} hour(s)."
        )
    what = "Replaced its service hook" if had else "Created a service hook"
    return Done(
        f"{what} for {integration.name} ({saved.subscription_id}, {saved.subscription_status or 'enabled'}): "
        "Azure DevOps sends it changes again."
    )


def _retry(key: str) -> Done:
    failure = failures.find_failure(key)
    if failure is None:
        raise NotFound("That failure is no longer listed (it was retried or dropped already).")
    org_id, issue_id = failure.details.get("org_id"), failure.details.get("issue_id")
    if not isinstance(org_id, str) or not isinstance(issue_id, str):
        raise InvalidInput("That failure does not name its issue, so it cannot be retried: change the issue again.")
    if failure.kind == "ado_failed":
        change = OutboundChange(org_id, issue_id, OUTBOUND_FIELDS)
        ref = wakeups.outbound_ref(change)
        message, queue, where = to_outbound_message(change), queues.OUTBOUND_QUEUE_NAME, "its linked work items"
    elif failure.kind == "sentry_failed":
        update = SentryUpdate(org_id, issue_id, fields=OUTBOUND_FIELDS)
        ref = wakeups.sentry_update_ref(update)
        message, queue, where = to_update_message(update), queues.SENTRY_UPDATES_QUEUE_NAME, "Sentry"
    else:
        raise InvalidInput(f"A {failure.kind} failure cannot be retried from here.")
    # First: a failure is forgotten only once its retry is stored (pending, docs/design.md) or queued.
    if ref is not None:
        accept_after_save(ref, message, queue)
    else:
        try:
            queues.enqueue(message, queue)
        except StorageUnavailable as exc:
            raise NotQueued(str(exc)) from exc
    failures.forget_failure(key)
    return Done(f"Queued the change of {org_id}/{issue_id} for {where} again; it is sent as the issue is now.")
