"""`sentry_reconcile` (timer, contract §15): linked Sentry issues compared with what the app last saw, so a change
Sentry sent no webhook for reaches Azure DevOps (`shared.sentryapp.reconcile`)."""

from __future__ import annotations

import logging

import azure.functions as func

from functions.maintenance import schedule
from shared.store.deadline import background  # nobody waits on a timer: storage keeps its longer timeouts

bp = func.Blueprint()
log = logging.getLogger(__name__)


@bp.function_name("sentry_reconcile")
@bp.timer_trigger(schedule=schedule("SENTRY_RECONCILE_SCHEDULE"), arg_name="timer")
def sentry_reconcile(timer: func.TimerRequest) -> None:
    from shared.sentryapp.reconcile import run_sentry_reconcile  # imported on first use: timers run rarely

    if timer.past_due:
        log.info("sentry_reconcile is running late (past due)")
    with background():
        run_sentry_reconcile()
