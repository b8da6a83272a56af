"""What the status page shows (contract §14), gathered as plain data: every integration, tracker installation and
Sentry installation, the queues and their poison queues, each timer's last run and the recent failures, each
with its problems and what to do about them (`status_advice`).

Every list is read with one capped query, every queue depth with one request: 14 storage requests in all, under
one deadline. Each part is read on its own: a part that cannot be read is reported as such (`Part.error`) and
the others are still shown.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from shared.errors import StorageUnavailable
from shared.model.integration import Integration
from shared.model.sentry import org_id_for
from shared.model.tracker import Installation
from shared.pages.status_advice import (
    Problem,
    failure_action,
    installation_problems,
    integration_actions,
    integration_problems,
    is_retryable,
    queue_problems,
    sentry_problems,
    timer_outcome,
    timer_problems,
)
from shared.pages.status_counts import CountStatus, count_rows
from shared.settings import get_settings
from shared.store import failures, last_delivery, queues, timer_runs
from shared.store.deadline import storage_deadline
from shared.store.health import storage_refusal
from shared.store.integrations import IntegrationStore
from shared.store.sentry import SentryInstallationSummary, SentryStore
from shared.store.timer_runs import TimerRecord
from shared.store.tracker import TrackerStore

log = logging.getLogger(__name__)

MAX_LISTED = 500  # per list and page: integrations, tracker installations, Sentry installations
TIMERS = ("domain_check", "subscription_check", "reconcile", "cleanup", "sweep", "sentry_reconcile")
STORAGE_SECONDS = 10.0  # what all of the page's storage requests may take together

T = TypeVar("T")


@dataclass(frozen=True)
class Part(Generic[T]):
    """One part of the page: its rows, or why it could not be read; `more` when the list was cut at MAX_LISTED."""

    title: str
    rows: tuple[T, ...] = ()
    error: str | None = None
    more: bool = False


@dataclass(frozen=True)
class IntegrationStatus:
    id: str
    name: str
    domain_name: str
    status: str
    credentials_type: str | None
    credentials: str  # "valid" (not refused so far) or "needs_reauth"
    subscription_id: str | None
    subscription_status: str | None
    subscription_checked_at: float | None
    last_delivery_at: float | None
    problems: tuple[Problem, ...] = ()
    actions: tuple[str, ...] = ()  # the buttons its row offers (shared.pages.status_actions)


@dataclass(frozen=True)
class InstallationStatus:
    org_id: str
    integration_id: str
    syncs: tuple[str, ...]
    problems: tuple[Problem, ...] = ()


@dataclass(frozen=True)
class SentryStatus:
    installation: SentryInstallationSummary  # holds no token, only whether one is stored
    problems: tuple[Problem, ...] = ()

    @property
    def org_id(self) -> str:
        return org_id_for(self.installation.organization_slug)

    @property
    def token(self) -> str:
        """ "set" or "absent": never the token."""
        return "set" if self.installation.token_set else "absent"


@dataclass(frozen=True)
class QueueStatus:
    name: str
    depth: int | None  # None: the queue does not exist yet (nothing was ever queued)
    poison: str
    poison_depth: int | None
    problems: tuple[Problem, ...] = ()


@dataclass(frozen=True)
class TimerStatus:
    name: str
    started_at: float | None
    ended_at: float | None
    outcome: str
    problems: tuple[Problem, ...] = ()


@dataclass(frozen=True)
class FailureStatus:
    kind: str
    subject: str
    reason: str
    at: float
    action: str
    key: str = ""  # names it for the retry button
    retryable: bool = False


@dataclass(frozen=True)
class StatusReport:
    generated_at: float
    integrations: Part[IntegrationStatus]
    installations: Part[InstallationStatus]
    sentry: Part[SentryStatus]
    queues: Part[QueueStatus]
    timers: Part[TimerStatus]
    failures: Part[FailureStatus]
    notes: tuple[str, ...] = field(default=())  # parts read only in part (say, the last deliveries)
    comments: Part[CountStatus] = field(default_factory=lambda: Part("Comments synced"))

    @property
    def parts(self) -> tuple[Part, ...]:
        return (
            self.integrations, self.installations, self.sentry, self.queues, self.timers, self.comments, self.failures
        )  # fmt: skip

    @property
    def unreadable(self) -> list[str]:
        return [part.title for part in self.parts if part.error]

    @property
    def problem_count(self) -> int:
        rows = [row for part in self.parts for row in part.rows]
        return sum(len(getattr(row, "problems", ())) for row in rows) + len(self.failures.rows)


def _read(title: str, read: Callable[[], tuple[tuple[T, ...], bool]]) -> Part[T]:
    try:
        rows, more = read()
    except StorageUnavailable as exc:
        log.warning("Status: %s could not be read: %s", title, exc)
        refused = storage_refusal(exc)
        return Part(title, error=refused or "Storage did not answer while reading it; reload the page to try again.")
    except Exception:  # the page must show every other part; the log keeps the traceback
        log.exception("Status: %s could not be read", title)
        return Part(title, error="It could not be read because of an unexpected error; the app's log has details.")
    return Part(title, rows, more=more)


@dataclass(frozen=True)
class View:
    """Which part of the lists the page shows: one organization's rows only (`org`), and which page of
    MAX_LISTED rows of each list (0: the first)."""

    org: str | None = None
    page: int = 0

    @property
    def limit(self) -> int:
        """Rows read of each list: up to the end of this page, and one more to know whether more follow."""
        return (self.page + 1) * MAX_LISTED + 1


EVERYTHING = View()  # the first page of every list


def _window(rows: list[T], view: View) -> tuple[tuple[T, ...], bool]:
    start = view.page * MAX_LISTED
    return tuple(rows[start : start + MAX_LISTED]), len(rows) > start + MAX_LISTED


def gather(now: float, view: View = EVERYTHING) -> StatusReport:
    """Everything the page shows, read now."""
    with storage_deadline(STORAGE_SECONDS):
        return _gather(now, view)


def _gather(now: float, view: View) -> StatusReport:
    notes: list[str] = []
    listed: list[Integration] = []
    found: list[Installation] = []
    if view.org is not None:  # the organization's installations first: they say which integrations to show
        found.extend(TrackerStore().installations_for_org(view.org, view.limit))

    def read_integrations() -> tuple[tuple[IntegrationStatus, ...], bool]:
        listed.extend(_integrations(view, found))
        try:
            delivered = last_delivery.last_deliveries(view.limit)
        except StorageUnavailable:
            delivered = {}
            notes.append("The last deliveries could not be read; they show as unknown.")
        return _window([_integration_row(i, delivered.get(i.id)) for i in listed], view)

    integrations = _read("Integrations", read_integrations)
    by_id = {i.id: i for i in listed}
    complete = integrations.error is None and not integrations.more

    def read_installations() -> tuple[tuple[InstallationStatus, ...], bool]:
        if view.org is None:
            found.extend(TrackerStore().list_installations(view.limit))
        return _window([_installation_row(i, by_id.get(i.integration_id), complete) for i in found], view)

    installations = _read("Tracker installations", read_installations)
    orgs = {i.org_id for i in found} if installations.error is None and not installations.more else None
    return StatusReport(
        generated_at=now,
        integrations=integrations,
        installations=installations,
        sentry=_read("Sentry installations", lambda: _window(_sentry_rows(orgs, view), view)),
        queues=_read("Queues", lambda: (tuple(_queue_row(name) for name in queues.APP_QUEUES), False)),
        timers=_read("Timers", lambda: (_timer_rows(timer_runs.timer_records(), now), False)),
        failures=_read("Recent failures", lambda: (_failure_rows(view.org), False)),
        notes=tuple(notes),
        comments=_read("Comments synced", lambda: (count_rows(), False)),
    )


def _integrations(view: View, installed: list[Installation]) -> list[Integration]:
    if view.org is None:
        return IntegrationStore().list_all(view.limit)
    store = IntegrationStore()
    return [i for i in (store.get(n.integration_id) for n in installed[: view.limit]) if i is not None]


def _integration_row(integration: Integration, delivered_at: float | None) -> IntegrationStatus:
    return IntegrationStatus(
        id=integration.id,
        name=integration.name,
        domain_name=integration.domain_name,
        status=integration.status,
        credentials_type=integration.credentials_type,
        credentials="needs_reauth" if integration.needs_reauth else "valid",
        subscription_id=integration.subscription_id,
        subscription_status=integration.subscription_status,
        subscription_checked_at=integration.subscription_checked_at,
        last_delivery_at=delivered_at,
        problems=tuple(integration_problems(integration)),
        actions=integration_actions(integration),
    )


def _installation_row(installation: Installation, integration: Integration | None, known: bool) -> InstallationStatus:
    names = ("sync_reverse_assignment", "sync_status_reverse", "sync_status_forward", "sync_forward_assignment")
    syncs = tuple(name for name in (*names, "sync_comments", "sync_comments_reverse") if getattr(installation, name))
    problems = installation_problems(installation.integration_id, integration, known)
    return InstallationStatus(installation.org_id, installation.integration_id, syncs, tuple(problems))


def _sentry_rows(orgs: set[str] | None, view: View) -> list[SentryStatus]:
    def row(s: SentryInstallationSummary) -> SentryStatus:
        connected = None if orgs is None else org_id_for(s.organization_slug) in orgs
        return SentryStatus(s, tuple(sentry_problems(s, connected)))

    listed = SentryStore().list_installations(view.limit)
    return [row(s) for s in listed if view.org is None or org_id_for(s.organization_slug) == view.org]


def _queue_row(name: str) -> QueueStatus:
    poison = name + queues.POISON_SUFFIX
    depth, poison_depth = queues.depth(name), queues.depth(poison)
    return QueueStatus(name, depth, poison, poison_depth, tuple(queue_problems(name, depth, poison, poison_depth)))


def _timer_rows(records: dict[str, TimerRecord], now: float) -> tuple[TimerStatus, ...]:
    budget = get_settings().timer_budget_seconds

    def row(name: str) -> TimerStatus:
        record = records.get(name)
        return TimerStatus(
            name=name,
            started_at=record.started_at if record else None,
            ended_at=record.ended_at if record else None,
            outcome=timer_outcome(record),
            problems=tuple(timer_problems(record, now=now, budget_seconds=budget)),
        )

    return tuple(row(name) for name in TIMERS)


def _failure_rows(org: str | None) -> tuple[FailureStatus, ...]:
    return tuple(
        FailureStatus(f.kind, f.subject, f.reason, f.at, failure_action(f), f.key, is_retryable(f))
        for f in failures.recent_failures()
        if org is None or f.details.get("org_id") == org
    )
