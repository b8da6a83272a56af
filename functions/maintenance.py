"""Maintenance timers (contract §8-9): `domain_check` repairs organization base URLs, `subscription_check`
keeps the service hook subscriptions alive, `reconcile` recovers updates whose deliveries were lost, `cleanup`
removes rows past their own expiry, `sweep` wakes work stored but not applied or sent (docs/design.md).

Each imports its code on first use: timers run rarely, and every cold start would pay for it otherwise.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable

import azure.functions as func

from shared.settings import DEFAULT_SCHEDULES
from shared.store.deadline import background  # nobody waits on a timer: storage keeps its longer timeouts

bp = func.Blueprint()
log = logging.getLogger(__name__)


def schedule(setting: str) -> str:
    """`%SETTING%` when the app setting exists (the host resolves it), else the contract's default.

    The host fails to load a timer whose `%SETTING%` is missing, so the default must be given literally.
    """
    return f"%{setting}%" if os.environ.get(setting, "").strip() else DEFAULT_SCHEDULES[setting]


@bp.function_name("domain_check")
@bp.timer_trigger(schedule=schedule("DOMAIN_CHECK_SCHEDULE"), arg_name="timer")
def domain_check(timer: func.TimerRequest) -> None:
    from shared.jobs.domain_check import run_domain_check

    _run(timer, "domain_check", run_domain_check)


@bp.function_name("subscription_check")
@bp.timer_trigger(schedule=schedule("SUBSCRIPTION_CHECK_SCHEDULE"), arg_name="timer")
def subscription_check(timer: func.TimerRequest) -> None:
    from shared.jobs.subscription_check import run_subscription_check

    _run(timer, "subscription_check", run_subscription_check)


@bp.function_name("reconcile")
@bp.timer_trigger(schedule=schedule("RECONCILE_SCHEDULE"), arg_name="timer")
def reconcile(timer: func.TimerRequest) -> None:
    from shared.jobs.reconcile import run_reconcile

    _run(timer, "reconcile", run_reconcile)


@bp.function_name("cleanup")
@bp.timer_trigger(schedule=schedule("CLEANUP_SCHEDULE"), arg_name="timer")
def cleanup(timer: func.TimerRequest) -> None:
    from shared.jobs.cleanup import run_cleanup

    _run(timer, "cleanup", run_cleanup)


@bp.function_name("sweep")
@bp.timer_trigger(schedule=schedule("SWEEP_SCHEDULE"), arg_name="timer")
def sweep(timer: func.TimerRequest) -> None:
    from shared.jobs.pending import sweep_pending

    _run(timer, "sweep", sweep_pending)


def _run(timer: func.TimerRequest, name: str, run: Callable[[], object]) -> None:
    """Run a timer's job with storage's longer background timeouts (nobody waits on a timer)."""
    _late(timer, name)
    with background():
        run()


def _late(timer: func.TimerRequest, name: str) -> None:
    if timer.past_due:
        log.info("%s is running late (past due)", name)
