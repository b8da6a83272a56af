"""`python -m demo` (`make demo`) as a newcomer runs it: the whole walkthrough ends with the issue synced."""

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent


def test_the_demo_runs_to_the_end_both_ways() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "demo"], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "SIMULATION" in output
    assert "Done: both ways. ISSUE-1 follows work item 42, and the work item follows ISSUE-1." in output
    assert "status   'resolved'" in output and "dana@example.com" in output  # inbound
    assert "work item 42 is now 'Active'" in output and "sent 1 JSON Patch" in output  # outbound
    assert "no change, no activity, nothing sent again" in output  # the echo
    assert "| **Dana Scully** wrote:" in output  # the comment reached the work item


def test_the_sentry_demo_runs_one_loop() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "demo.sentry"], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "SIMULATIONS" in output
    assert "creates an Azure DevOps work item from it" in output and "Azure DevOps now has Bug" in output
    assert "Sentry issue 4242 is now 'resolved'" in output  # Azure DevOps -> Sentry
    assert "the app recognised its own write and did nothing" in output  # the echo
    assert "is assigned to dana@example.com" in output  # Sentry -> Azure DevOps
    assert "Done: Sentry issue 4242 and work item" in output
