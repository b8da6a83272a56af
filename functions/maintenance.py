"""Maintenance timers. `domain_check` repairs organization base URLs (contract §8)."""

from __future__ import annotations

import logging
import os

import azure.functions as func

from shared.settings import DEFAULT_SCHEDULES

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
    from shared.domain_check import run_domain_check  # timers run rarely: not at every cold start

    if timer.past_due:
        log.info("domain_check is running late")
    run_domain_check()
