"""What is wrong with each thing the status page shows, and what to do about it, in plain words (contract §14).

Pure functions of plain data: `shared.pages.status_data` reads storage and calls these; nothing here reads
anything, so every sentence is tested without storage.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.model.integration import Integration
from shared.model.sentry import INTERNAL
from shared.store.failures import Failure
from shared.store.sentry import SentryInstallationSummary
from shared.store.timer_runs import TimerRecord

BACKLOG = 1000  # waiting messages worth a person's look
STUCK_MARGIN_SECONDS = 120.0  # past its budget, a run still marked running was stopped by the host


@dataclass(frozen=True)
class Problem:
    what: str  # what is wrong, one sentence
    action: str  # what to do about it, one sentence or two


def integration_problems(integration: Integration) -> list[Problem]:
    if not integration.active:
        return []  # disabled on purpose: deliveries are refused, nothing to repair
    found = []
    put = f"PUT /api/vsts/integrations/{integration.id}"
    recreate = f"POST /api/vsts/integrations/{integration.id}/subscription"
    if integration.sealed:
        found.append(
            Problem(
                "Its stored credentials cannot be decrypted with the current SECRETS_KEY.",
                f"Restore the previous SECRETS_KEY (that restores them), or enter new credentials with {put}.",
            )
        )
    elif integration.needs_reauth:
        found.append(
            Problem(
                "Azure DevOps refused its credentials (needs re-authorization).",
                "Enter new credentials (a new PAT, or a service principal with access): the Re-enter credentials "
                f"button makes a setup link for it, or use {put}.",
            )
        )
    status = integration.subscription_status
    if not integration.subscription_id:
        found.append(
            Problem(
                "It has no service hook subscription, so Azure DevOps sends it no changes.",
                f"Create one with the button here, or with {recreate}.",
            )
        )
    elif status == "disabledBySystem":
        found.append(
            Problem(
                "Azure DevOps disabled its subscription after deliveries kept failing.",
                f"subscription_check replaces it on its next run; to do it now, use the button here or {recreate}.",
            )
        )
    elif status == "disabledByInactiveIdentity":
        found.append(
            Problem(
                "Azure DevOps disabled its subscription: the identity that owns it (whose credentials made it) is "
                "inactive or lost permissions.",
                f"Enter credentials of an active member allowed to manage service hooks with {put}; "
                f"subscription_check then makes the subscription again under them, or do it now with {recreate}.",
            )
        )
    elif status == "onProbation":
        found.append(
            Problem(
                "Azure DevOps holds its deliveries back after failures (the subscription is on probation).",
                f"Check that the webhook answers (queues and the log); Azure DevOps retries by itself, or {recreate}.",
            )
        )
    elif status == "disabledByUser":
        found.append(
            Problem(
                "Someone disabled its subscription in Azure DevOps.",
                f"Enable it again in the project's Service hooks settings, or {recreate}.",
            )
        )
    elif status not in (None, "enabled"):
        found.append(
            Problem(f"Its subscription is {status}.", f"Check it in Azure DevOps' Service hooks, or {recreate}.")
        )
    return found


def installation_problems(integration_id: str, integration: Integration | None, known: bool) -> list[Problem]:
    """`known`: the integration list was read whole, so a missing integration really is missing."""
    connect = "Install another integration with PUT /api/orgs/{org_id}/integrations/{integration_id}."
    if integration is None:
        return [Problem(f"Its integration {integration_id} does not exist.", connect)] if known else []
    if not integration.active:
        return [Problem(f"Its integration {integration_id} is disabled: nothing is synced.", connect)]
    return []


def sentry_problems(installation: SentryInstallationSummary, connected: bool | None) -> list[Problem]:
    """`connected`: whether a tracker installation names its organization (None: not known)."""
    if installation.status != "active":
        return []  # uninstalled in Sentry: its tokens are forgotten, nothing to repair
    renew = (
        f"Enter a new token with PUT /api/sentry/installations/{installation.uuid}."
        if installation.kind == INTERNAL
        else "Install the app again from the Sentry organization's integration settings (that issues new tokens)."
    )
    found = []
    if installation.needs_reauth:
        found.append(Problem("Sentry refused the installation's token (needs re-authorization).", renew))
    elif not installation.token_set:
        found.append(Problem("No token is stored for it, so nothing can be sent to Sentry.", renew))
    if connected is False:
        found.append(
            Problem(
                "No Azure DevOps integration is connected to it.",
                f"Connect one on the setup page, or with PUT /api/orgs/sentry-{installation.organization_slug}"
                "/integrations/{integration_id}.",
            )
        )
    return found


def queue_problems(queue: str, depth: int | None, poison: str, poison_depth: int | None) -> list[Problem]:
    found = []
    if poison_depth:
        found.append(
            Problem(
                f"{poison_depth} message(s) failed every retry and wait in {poison}.",
                "Fix the cause (the recent failures and the app's log say what failed), then redrive them.",
            )
        )
    if depth is not None and depth >= BACKLOG:
        found.append(
            Problem(
                f"{depth} messages wait in {queue}.",
                "Its worker is behind or failing: check the app's log and that the function app is running.",
            )
        )
    return found


def timer_outcome(record: TimerRecord | None) -> str:
    if record is None or record.started_at is None:
        return "no run recorded yet"
    if record.running:
        return "running"
    if record.error:
        return f"failed: {record.error}"
    counts = f"visited {record.visited}, worked on {record.worked}, {record.failed} failed"
    return f"finished ({counts})" if record.finished else f"stopped by its time budget ({counts})"


def timer_problems(record: TimerRecord | None, *, now: float, budget_seconds: float) -> list[Problem]:
    if record is None or record.started_at is None:
        return []
    if record.running:
        if now - record.started_at <= budget_seconds + STUCK_MARGIN_SECONDS:
            return []
        return [
            Problem(
                "Its last run never ended: the host stopped it (functionTimeout) or the process ended.",
                "The next run resumes from its cursor; if this repeats, keep TIMER_BUDGET_SECONDS below "
                "host.json's functionTimeout.",
            )
        ]
    if record.error:
        return [
            Problem(
                f"Its last run failed: {record.error}.",
                "It runs again on its schedule; if storage or Azure DevOps was unavailable nothing else is "
                "needed, otherwise the app's log has the details.",
            )
        ]
    found = []
    if record.failed:
        found.append(
            Problem(
                f"{record.failed} integration(s) failed in its last run.",
                "The integrations above show which need attention; the app's log names each one.",
            )
        )
    if not record.finished:
        found.append(
            Problem(
                "Its last run stopped at its time budget before visiting every integration.",
                "The next run resumes where it stopped; if every run stops, raise TIMER_BUDGET_SECONDS or "
                "TIMER_CONCURRENCY.",
            )
        )
    return found


FAILURE_ACTIONS = {
    "ado_failed": "Azure DevOps refused the change and it is not retried: correct what the reason names (for "
    "example make the assignee a user of the Azure DevOps organization, or fix the state rules), then change "
    "the issue again.",
    "sentry_failed": "Sentry refused the update and it is not retried: check the Sentry installation above "
    "(its token and permissions), then change the work item again.",
}


def failure_action(failure: Failure) -> str:
    return failure.advice or FAILURE_ACTIONS.get(failure.kind, "The reason and the app's log say what failed.")


def integration_actions(integration: Integration) -> tuple[str, ...]:
    """The buttons an integration's row offers (shared.pages.status_actions): re-entering credentials Azure DevOps
    refused (or that cannot be decrypted), a service hook it lacks or that Azure DevOps disabled, and rotating
    the webhook secret of a working one."""
    if not integration.active:
        return ()
    found = []
    if integration.sealed or integration.needs_reauth:
        found.append("reauth")
    if not integration.subscription_id or integration.subscription_status not in (None, "enabled"):
        found.append("hook")
    elif not integration.sealed and not integration.needs_reauth:
        found.append("rotate")
    return tuple(found)


RETRYABLE = ("ado_failed", "sentry_failed")


def is_retryable(failure: Failure) -> bool:
    """Whether the retry button can queue the change again: a kind it knows, naming its issue."""
    return failure.kind in RETRYABLE and all(isinstance(failure.details.get(k), str) for k in ("org_id", "issue_id"))
