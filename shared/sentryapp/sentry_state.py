"""A Sentry issue's current status and assignee applied to its tracked issue (contract §15): the truth behind a
webhook, which is only a hint, and what `sentry_reconcile` compares.

A webhook may come late, or again with a new `Request-ID` (Sentry resends after a timeout or a 5xx), and some
changes send none at all (unassigning; reopening without the `webhooks-unresolved` feature). So the app reads the
issue from Sentry and compares it with what it last saw there (`TrackedIssue.sentry_seen`): only a field Sentry
changed since is applied, from its current value. An old `issue.resolved` after a reopen the app has seen finds
Sentry unresolved, as seen, and changes nothing; a change the app made itself in Azure DevOps and has not yet
sent to Sentry is not undone, because Sentry did not change. Without a seen value for a field (an issue the app
has not read yet) a webhook applies the field its action names (and records only that one), and the reconcile
timer records what it sees as the baseline, applying nothing: a change made in Sentry before the app first saw
the issue, with no webhook, is not recovered.

Status: `resolved` is resolved; `unresolved` and `ignored` are unresolved; any other (reprocessing...) leaves it.
Assignee: a user with an email becomes that member; nobody unassigns; a team, or a user without an email,
leaves the assignee as it is.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from shared.admin.changes import forward_change, with_status_and_assignee
from shared.clock import SYSTEM, Clock
from shared.connections.sentry import InstallationUnusable, client_for, mark_needs_reauth
from shared.errors import RetryLater
from shared.model.sentry import SentryInstallation, slug_of
from shared.model.tracker import RESOLVED, UNRESOLVED, Member, TrackedIssue, activity_entry
from shared.sentry.client import (
    DEFAULT_TIMEOUT_SECONDS,
    SentryError,
    SentryForbidden,
    SentryNotFound,
    SentryThrottled,
    SentryTimeout,
    SentryUnauthorized,
)
from shared.sentryapp.parking import NeedsReauth
from shared.store import failures
from shared.store.sentry import SentryStore
from shared.store.tracker import TrackerStore
from shared.validation import normalize_email

log = logging.getLogger(__name__)

SOURCE = "sentry"
STATUS_OF = {"resolved": RESOLVED, "unresolved": UNRESOLVED, "ignored": UNRESOLVED, "archived": UNRESOLVED}
FIELDS = ("status", "assignee")
MAX_REASON = 300


class Unread(Exception):
    """The issue could not be read and retrying will not help (gone, refused): nothing is applied."""


FORBIDDEN_ADVICE = (
    "Sentry refused a permission the installation lacks (403), named in the reason; it is not retried and the "
    "token is fine: grant the scope in the Sentry App's Permissions, have the organization accept it, then make "
    "the change again."
)


def forbidden_reason(exc: SentryForbidden, doing: str) -> str:
    """A 403's reason, saying what to do: which scope to grant, where."""
    scope = exc.scope or "a permission"
    return (
        f"Sentry refused to {doing}: the installation lacks {scope}. Grant it in the Sentry App's Permissions "
        "(Settings > Developer Settings), have the organization accept the new permissions, then repeat the change."
    )[:MAX_REASON]


def record_sentry_failure(
    tracker: TrackerStore,
    issue: TrackedIssue,
    reason: str,
    installation: SentryInstallation,
    source: str,
    advice: str | None = None,
) -> None:
    """A refusal no retry cures: on the issue's activity and the status page's recent failures."""
    entry = {**activity_entry("sentry_failed", source, None, None), "reason": reason[:MAX_REASON]}
    tracker.update_issue(issue.org_id, issue.issue_id, lambda current: current.with_activity(entry))
    failures.record_failure(
        "sentry_failed",
        f"{issue.org_id}/{issue.issue_id} → Sentry",
        reason,
        advice=advice,
        details={"org_id": issue.org_id, "issue_id": issue.issue_id, "installation": installation.uuid},
    )


def read_current(
    installation: SentryInstallation,
    issue: TrackedIssue,
    *,
    tracker: TrackerStore,
    store: SentryStore,
    clock: Clock = SYSTEM,
    timeout: float | Callable[[], float] = DEFAULT_TIMEOUT_SECONDS,
) -> dict[str, Any]:
    """The Sentry issue as it is now. NeedsReauth: park (nothing is sent while the installation needs a new
    token); RetryLater: may pass; Unread: will not (a 403 is recorded as `sentry_failed`)."""
    if installation.needs_reauth:
        raise NeedsReauth(installation.uuid)
    try:
        client = client_for(installation, store=store, clock=clock, timeout=timeout)
        return client.get_issue(slug_of(issue.org_id), issue.issue_id)
    except InstallationUnusable as exc:
        current = store.get(installation.uuid)
        if current is not None and current.active and current.needs_reauth:
            raise NeedsReauth(installation.uuid) from exc
        raise Unread(f"the Sentry installation cannot be used: {exc}") from exc
    except SentryUnauthorized as exc:
        mark_needs_reauth(store, installation.uuid)
        raise NeedsReauth(installation.uuid) from exc
    except SentryForbidden as exc:
        reason = forbidden_reason(exc, "show the issue")
        record_sentry_failure(tracker, issue, reason, installation, SOURCE, FORBIDDEN_ADVICE)
        raise Unread(reason) from exc
    except SentryNotFound as exc:
        raise Unread(f"Sentry does not have the issue (or does not let the app see it): {exc}") from exc
    except SentryError as exc:
        if isinstance(exc, (SentryThrottled, SentryTimeout)) or (exc.status or 0) >= 500 or exc.status is None:
            raise RetryLater(f"reading Sentry issue {issue.issue_id}: {exc}", exc.retry_after) from exc
        raise Unread(str(exc)) from exc


def seen_of(current: dict[str, Any]) -> dict[str, str]:
    """The Sentry issue's status and assignee as `TrackedIssue.sentry_seen` keeps them."""
    status = current.get("status")
    return {"status": status if isinstance(status, str) else "", "assignee": shown_assignee(current.get("assignedTo"))}


def shown_assignee(value: object) -> str:
    """Sentry's `assignedTo` as the PUT writes it: `user:<id>` (or `team:<id>`), "" when nobody."""
    if not isinstance(value, dict) or value.get("id") in (None, ""):
        return ""
    return f"{value.get('type') or 'user'}:{value['id']}"


def _member(org_id: str, value: object) -> tuple[bool, Member | None]:
    """(whether the assignee can be applied, the member; None: unassigned) from Sentry's `assignedTo`."""
    if not isinstance(value, dict) or value.get("id") in (None, ""):
        return True, None
    email = value.get("email")
    email = normalize_email(email) if isinstance(email, str) and email else None
    if value.get("type", "user") != "user" or email is None:
        log.info("Sentry assigned a %s without an email; the tracked issue's assignee is left", value.get("type"))
        return False, None
    name = value.get("name")
    return True, Member(org_id, email, str(value["id"]), name if isinstance(name, str) else None)


def apply_current(
    tracker: TrackerStore,
    issue: TrackedIssue,
    current: dict[str, Any],
    hinted: tuple[str, ...] = (),
    *,
    baseline: bool = False,
) -> tuple[str, ...]:
    """Apply what Sentry changed since the app last saw the issue (see above), record what it sees now, and queue
    the change for the linked work items. `hinted`: the fields a webhook names; `baseline`: record fields never
    seen as they are now (the reconcile timer). Returns the fields applied."""
    seen_now = seen_of(current)
    can_assign, member = _member(issue.org_id, current.get("assignedTo"))
    status_now = STATUS_OF.get(seen_now["status"])
    applied: list[tuple[str, ...]] = [()]
    forwarded: list[tuple[str, ...]] = [()]

    def change(stored: TrackedIssue) -> TrackedIssue | None:
        seen = stored.sentry_seen or {}
        # A field never seen counts as changed only when the webhook names it.
        moved = [f for f in FIELDS if (f in hinted if f not in seen else seen[f] != seen_now[f])]
        usable = {"status": status_now is not None, "assignee": can_assign}
        fields = tuple(f for f in moved if usable[f])
        updated = with_status_and_assignee(
            stored, status_now if "status" in fields else None, "assignee" in fields, member, SOURCE
        )
        applied[0] = fields
        # A hinted field already in line is queued too: a first attempt may have saved it and stopped before
        # queueing; the outbound worker sends only what differs.
        email_now = member.email if member else None
        in_line = {"status": updated.status == status_now, "assignee": updated.assignee_email == email_now}
        forwarded[0] = tuple(f for f in FIELDS if f in fields or (f in hinted and usable[f] and in_line[f]))
        # What is recorded as seen: a field seen before, or applied now; one never seen and not applied stays
        # unknown (a webhook naming it later still applies it), unless this read is to set the baseline.
        known = {f: seen_now[f] for f in FIELDS if f in seen or f in fields or baseline}
        if stored.sentry_seen != (known or None):
            updated = replace(updated, sentry_seen=known or None)
        return updated if updated != stored else None

    if member is not None and tracker.get_member(issue.org_id, member.email) != member:
        tracker.put_member(member)
    saved = tracker.update_issue(issue.org_id, issue.issue_id, change)
    if saved is not None and forwarded[0]:
        forward_change(saved, forwarded[0])
    return applied[0]
