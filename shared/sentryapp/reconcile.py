"""`sentry_reconcile` (timer, `%SENTRY_RECONCILE_SCHEDULE%`, contract §15): linked Sentry issues compared with what
the app last saw of them, so a change Sentry sends no webhook for (unassigning; reopening without the
`webhooks-unresolved` feature) or whose webhook was lost still reaches Azure DevOps.

Organizations are visited in id order (the `sentryorgs` index), and in each its tracked issues, a page at a
time; each issue that links a work item costs one Sentry request (GET the issue), and what Sentry changed since
the app last saw it is applied as a webhook would be (`shared.sentryapp.sentry_state`, baseline: a field never
seen is recorded, not applied). No new request starts once `TIMER_BUDGET_SECONDS` is spent, and each request's
timeout is cut to the budget left; the cursor (`<org id>|<issue id>` of the last issue done, in the `state`
table) is saved after every page, so the next run resumes there; a run that reaches the end clears it.

An installation that needs a new token is passed over (no call to Sentry); for every other one, the messages
parked while it needed one are released first (`shared.sentryapp.parking`): the sweeper for a release that
failed halfway. Recorded for the status page's timer list: visited = linked issues compared, worked on =
issues changed, failed = issues that could not be read or saved.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from shared.clock import SYSTEM, Clock
from shared.errors import RetryLater, StorageUnavailable
from shared.jobs.sweep import record_run
from shared.sentry.client import DEFAULT_TIMEOUT_SECONDS
from shared.sentryapp.parking import NeedsReauth, release
from shared.sentryapp.sentry_state import Unread, apply_current, read_current
from shared.settings import get_settings
from shared.store import timer_runs
from shared.store.cursors import CursorStore
from shared.store.sentry import SentryStore
from shared.store.tracker import TrackerStore

log = logging.getLogger(__name__)

NAME = "sentry_reconcile"
PAGE_SIZE = 100  # issues read from storage at once
ORGS_PAGE = 100
MIN_REQUEST_SECONDS = 0.5  # not worth starting a request with less budget than this left


@dataclass
class SentryReconcileReport:
    visited: int = 0  # linked issues compared with Sentry (one request each)
    changed: int = 0
    failed: int = 0
    released: int = 0  # parked messages queued again
    finished: bool = False
    cursor: str = ""


def run_sentry_reconcile(*, clock: Clock = SYSTEM) -> SentryReconcileReport:
    record_run(timer_runs.record_start, NAME, now=clock.now())
    try:
        report = _run(clock)
    except Exception as exc:
        record_run(
            timer_runs.record_end, NAME, now=clock.now(), visited=0, worked=0, failed=0, finished=False,
            error=f"{type(exc).__name__}: {exc}" if isinstance(exc, StorageUnavailable) else type(exc).__name__,
        )  # fmt: skip
        raise
    record_run(
        timer_runs.record_end,
        NAME,
        now=clock.now(),
        visited=report.visited,
        worked=report.changed,
        failed=report.failed,
        finished=report.finished,
    )
    log.info(
        "%s: compared %d linked issues, changed %d, failed %d, released %d parked message(s), %s",
        NAME,
        report.visited,
        report.changed,
        report.failed,
        report.released,
        "finished" if report.finished else f"stopped after {report.cursor}",
    )
    return report


def _run(clock: Clock) -> SentryReconcileReport:
    deadline = clock.monotonic() + get_settings().timer_budget_seconds
    store, tracker, cursors = SentryStore(), TrackerStore(), CursorStore()
    report = SentryReconcileReport(cursor=cursors.get(NAME))
    org_after, _, issue_after = report.cursor.rpartition("|")

    def left() -> float:
        return deadline - clock.monotonic()

    def timeout() -> float:
        return max(MIN_REQUEST_SECONDS, min(DEFAULT_TIMEOUT_SECONDS, left()))

    # The organization the cursor is in is visited again, from its issue; the ones after it from the start.
    first = [(org_after, "")] if org_after else []
    orgs_after = org_after
    while True:
        page = first + store.organizations(orgs_after, ORGS_PAGE)
        first = []
        if not page:
            report.finished = True
            break
        for org_id, uuid in page:
            orgs_after = max(orgs_after, org_id)
            installation = store.get(uuid) if uuid else store.for_org(org_id)
            if installation is None or not installation.active or installation.org_id != org_id:
                continue
            if installation.needs_reauth:
                continue  # its messages are parked; nothing is sent to Sentry until a new token
            report.released += release(org_id)
            after = issue_after if org_id == org_after else ""
            while True:
                issues = tracker.issues_page(org_id, after, PAGE_SIZE)
                for issue in issues:
                    if left() < MIN_REQUEST_SECONDS:
                        cursors.set(NAME, f"{org_id}|{after}")
                        report.cursor = f"{org_id}|{after}"
                        return report
                    if issue.links:
                        report.visited += 1
                        try:
                            current = read_current(
                                installation, issue, tracker=tracker, store=store, clock=clock, timeout=timeout
                            )
                            report.changed += bool(apply_current(tracker, issue, current, baseline=True))
                        except NeedsReauth:
                            break  # refused: the rest of the organization waits for a new token
                        except (Unread, RetryLater, StorageUnavailable) as exc:
                            report.failed += 1
                            log.warning("%s: issue %s/%s: %s", NAME, org_id, issue.issue_id, exc)
                    after = issue.issue_id
                else:
                    if len(issues) == PAGE_SIZE:
                        cursors.set(NAME, f"{org_id}|{after}")
                        continue
                break
            issue_after = ""
    cursors.set(NAME, "")
    report.cursor = ""
    return report
