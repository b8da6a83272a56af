"""`python -m demo` (`make demo`) as a newcomer runs it: the whole walkthrough ends with the issue synced."""

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent


def test_the_demo_runs_to_the_end_and_the_issue_is_assigned_and_resolved() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "demo"], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "SIMULATION" in output
    assert "Done: the tracked issue is assigned to dana@example.com and resolved." in output
    assert "resolved" in output and "dana@example.com" in output
