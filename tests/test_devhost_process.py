"""`python -m devhost` as a user runs it: serves the app, stops on Ctrl-C or SIGTERM, leaves nothing behind."""

import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from devhost.azurite import connection_string, free_port, port_open
from tests.helpers import wait_for

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent


def _start(args: list[str], env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "devhost", "--app-dir", str(ROOT), *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def _wait_until_serving(proc: subprocess.Popen, port: int) -> None:
    wait_for(lambda: port_open(port) or proc.poll() is not None, 30, "the host to serve")
    assert proc.poll() is None, proc.stdout.read()


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_run_with_its_own_azurite_then_stop_leaves_nothing_running(tmp_path: Path, stop_signal) -> None:
    ports = (free_port(), free_port(), free_port())
    http_port = free_port()
    env = {**os.environ, "AzureWebJobsStorage": connection_string(*ports)}
    env.pop("STORAGE_CONNECTION_STRING", None)
    proc = _start(["--port", str(http_port), "--azurite", "--azurite-ports", ",".join(map(str, ports))], env)
    try:
        _wait_until_serving(proc, http_port)
        assert all(port_open(p) for p in ports)  # the host started Azurite
        status, body = _get(f"http://127.0.0.1:{http_port}/api/health")
        assert (status, body) == (200, b'{"status":"ok","storage":"ok"}')
        proc.send_signal(stop_signal)
        out, _ = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out
    assert "Executed health (http GET /api/health): 200" in out
    wait_for(lambda: not any(port_open(p) for p in (*ports, http_port)), 10, "Azurite and the host to stop listening")


def test_health_is_503_through_the_host_when_storage_is_down() -> None:
    closed = free_port()
    http_port = free_port()
    env = {**os.environ, "AzureWebJobsStorage": connection_string(closed, closed, closed)}
    env.pop("STORAGE_CONNECTION_STRING", None)
    proc = _start(["--port", str(http_port)], env)
    try:
        _wait_until_serving(proc, http_port)
        status, body = _get(f"http://127.0.0.1:{http_port}/api/health")
        assert status == 503
        assert b'"storage":"unavailable"' in body
    finally:
        proc.terminate()
        proc.communicate(timeout=20)
