"""The app indexes under the real Python worker's indexer (azure-functions-runtime, Python 3.13+).

`make test` builds that interpreter's venv (.venv-index) and passes it in INDEX_CHECK_PYTHON.
"""

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
INDEX_PYTHON = os.environ.get("INDEX_CHECK_PYTHON", "")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not INDEX_PYTHON or not Path(INDEX_PYTHON).exists(),
        reason="no Python 3.13+ with azure-functions-runtime (make test builds .venv-index when python3.13 exists)",
    ),
]


def _index(app_dir: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [INDEX_PYTHON, "-m", "devhost.index_check", str(app_dir)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def test_our_app_indexes_under_the_real_worker(registered_functions) -> None:
    result = _index(ROOT)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[-1] == f"indexed OK: {len(registered_functions)} functions"
    assert sorted(lines[:-1]) == sorted(registered_functions)


def test_a_parameter_that_does_not_match_its_binding_fails_indexing() -> None:
    result = _index(ROOT / "tests" / "apps" / "broken")
    assert result.returncode == 1
    assert "FunctionLoadError" in result.stderr
    assert "mytimer" in result.stderr
