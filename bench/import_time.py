"""Cold-start import cost: `import function_app` against importing its three main dependencies alone.

Each sample is a fresh interpreter (`python -X importtime`), so nothing is cached in-process; the figure is
the summed top-level cumulative import time, in milliseconds. Reports medians and their ratio.

Both sides import from bytecode, as a deployed app does once its .pyc files exist: the samples share one
`PYTHONPYCACHEPREFIX`, filled by a first import of each statement, whatever PYTHONDONTWRITEBYTECODE says here.
Without that, the dependencies would load from the bytecode pip wrote and the app would be compiled from
source at every sample (a shell with PYTHONDONTWRITEBYTECODE=1 made that +20% instead of the cached figure).

With telemetry (`APPLICATIONINSIGHTS_CONNECTION_STRING` set, shared/telemetry.py): the app's import, then what its
first invocation imports to configure Application Insights; the exporter points at a closed loopback port and
sends the SDK's own usage reports nowhere. Without the setting, the first use imports nothing
(tests/test_telemetry.py).
`python -m bench.import_time [--runs N]`
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
APP = "import function_app"
BASELINE = "import azure.functions, azure.data.tables, requests"
WITH_TELEMETRY = "import function_app; from shared import telemetry; telemetry.ensure_configured()"


def import_ms(statement: str, env: dict[str, str] | None = None) -> float:
    """Total import time of `statement` in a fresh interpreter, from -X importtime (top-level modules only)."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", statement],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )
    total_us = 0
    for line in result.stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        _, cumulative, name = line[len("import time:") :].split("|")
        if len(name) - len(name.lstrip()) == 1:  # top level: one space; nested imports are indented further
            total_us += int(cumulative)
    return total_us / 1000


def telemetry_env(env: dict[str, str], closed_port: int, tmp: str) -> dict[str, str]:
    return {
        **env,
        "APPLICATIONINSIGHTS_CONNECTION_STRING": "InstrumentationKey=00000000-0000-0000-0000-000000000000;"
        f"IngestionEndpoint=http://127.0.0.1:{closed_port}/;LiveEndpoint=http://127.0.0.1:{closed_port}/",
        "APPLICATIONINSIGHTS_STATSBEAT_DISABLED_ALL": "true",
        "TMPDIR": tmp,  # the exporter's retry files, removed with the cache
    }


def measure(runs: int) -> dict[str, float]:
    cache = tempfile.mkdtemp(prefix="bench-pycache-")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env = {k: v for k, v in env.items() if not k.startswith(("APPLICATIONINSIGHTS_", "PYTHON_APPLICATIONINSIGHTS_"))}
    env["PYTHONPYCACHEPREFIX"] = cache
    closed = socket.socket()  # bound, never listening: telemetry sent there is refused at once
    closed.bind(("127.0.0.1", 0))
    with_telemetry_env = telemetry_env(env, closed.getsockname()[1], cache)
    try:
        import_ms(APP, env)  # writes the bytecode of everything the statements import
        import_ms(BASELINE, env)
        import_ms(WITH_TELEMETRY, with_telemetry_env)
        app, base, telemetry = [], [], []
        for _ in range(runs):  # interleaved, so drift in machine load hits all alike
            app.append(import_ms(APP, env))
            base.append(import_ms(BASELINE, env))
            telemetry.append(import_ms(WITH_TELEMETRY, with_telemetry_env))
    finally:
        closed.close()
        shutil.rmtree(cache, ignore_errors=True)
    app_ms, base_ms, telemetry_ms = statistics.median(app), statistics.median(base), statistics.median(telemetry)
    return {
        "app_ms": app_ms,
        "baseline_ms": base_ms,
        "overhead": app_ms / base_ms - 1,
        "telemetry_ms": telemetry_ms,
        "telemetry_overhead": telemetry_ms / app_ms - 1,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    result = measure(parser.parse_args().runs)
    print(f"import function_app: {result['app_ms']:.1f} ms (median)")
    print(f"import azure.functions, azure.data.tables, requests: {result['baseline_ms']:.1f} ms (median)")
    print(f"overhead: {result['overhead'] * 100:+.1f}%")
    print(f"with telemetry (import, then configure on first use): {result['telemetry_ms']:.1f} ms (median)")
    print(f"telemetry's cost: {result['telemetry_overhead'] * 100:+.1f}% over import function_app without the setting")


if __name__ == "__main__":
    main()
