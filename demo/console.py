"""What the demos share (`python -m demo`, `python -m demo.sentry`): printing, the app in the local Functions host
and its client, and the runner that cleans up whatever a walkthrough started, on success, failure or Ctrl-C."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from types import FrameType
from typing import Any

import requests

ROOT = Path(__file__).resolve().parent.parent
WIDTH = 108  # printed lines stay under this
NEVER = "0 0 0 1 1 *"  # NCRONTAB for "not during this demo": the timers stay quiet
SYNC_TIMEOUT = 30.0
# Keys whose values are credentials: never printed in full.
SECRET_KEYS = frozenset({"token", "webhook_secret", "access_token", "refresh_token", "client_secret"})


class DemoFailed(Exception):
    """A step did not go as expected; the message says what happened."""


class Interrupted(BaseException):
    """Ctrl-C or SIGTERM (a BaseException, so no `except Exception` on the way swallows it)."""


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise Interrupted


# ------------------------------------------------------------------------------------------------ printing


def mask(secret: str) -> str:
    """The first characters of a secret, enough to recognise it, never the whole of it."""
    return f"{secret[:6]}…"


def redact(data: Any) -> Any:
    """A copy of JSON data with every credential masked."""
    if isinstance(data, dict):
        return {
            k: mask(v) if k in SECRET_KEYS and isinstance(v, str) and v != "set" else redact(v) for k, v in data.items()
        }
    if isinstance(data, list):
        return [redact(v) for v in data]
    return data


def say(text: str = "", indent: int = 4, max_lines: int = 4) -> None:
    """Print text wrapped under WIDTH, continuation lines indented two more; long texts are cut with '…'."""
    lines = textwrap.wrap(
        text, WIDTH - 1, initial_indent=" " * indent, subsequent_indent=" " * (indent + 2), break_on_hyphens=False
    ) or [""]
    if len(lines) > max_lines:
        lines = [*lines[: max_lines - 1], lines[max_lines - 1][: WIDTH - 2] + " …"]
    print("\n".join(lines), flush=True)


def excerpt(data: Any) -> str:
    return json.dumps(redact(data), ensure_ascii=False)


def step(number: int, title: str) -> None:
    print(f"\n[{number}] {title}", flush=True)


def banner(lines: list[str]) -> None:
    rule = "=" * WIDTH
    print(rule)
    for line in lines:
        print(f" {line}")
    print(rule, flush=True)


# ---------------------------------------------------------------------------------------------------- app


class App:
    """The app in the local Functions host (`python -m devhost`, a subprocess) and a client of its HTTP API."""

    def __init__(self, port: int, env: dict[str, str], log_path: Path) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.env = env
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None
        self.http = requests.Session()
        self.http.trust_env = False  # loopback only: never through a proxy from the environment

    def start(self) -> None:
        with open(self.log_path, "wb") as log:
            # Its own session: Ctrl-C reaches only the demo, which then stops the app in order.
            self.process = subprocess.Popen(
                [sys.executable, "-m", "devhost", "--app-dir", str(ROOT), "--port", str(self.port)],
                cwd=ROOT,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def wait_healthy(self, timeout: float = 30.0) -> dict[str, Any]:
        """Poll GET /api/health until it answers 200."""
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise DemoFailed(f"the app exited with code {self.process.returncode} while starting")
            try:
                answer = self.http.get(f"{self.url}/api/health", timeout=5)
                if answer.status_code == 200:
                    return answer.json()
            except requests.RequestException:
                pass  # not listening yet
            if time.monotonic() > deadline:
                raise DemoFailed(f"GET /api/health did not answer 200 within {timeout:.0f} s")
            time.sleep(0.1)

    def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> requests.Response:
        try:
            return self.http.request(method, f"{self.url}{path}", json=body, timeout=30)
        except requests.RequestException as exc:
            raise DemoFailed(f"{method} {path} got no answer: {type(exc).__name__}") from None

    def call(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        *,
        show: tuple[str, ...] = (),
        expect: tuple[int, ...] = (200, 201),
    ) -> Any:
        """One request, printed with its answer (only the `show` keys of an object, when given); an unexpected
        status fails the demo."""
        say(f"> {method} {path}")
        if body is not None:
            say(f"  {excerpt(body)}")
        answer = self.request(method, path, body)
        try:
            data: Any = answer.json() if answer.content else None
        except ValueError:
            data = answer.text
        shown, more = data, ""
        if show and isinstance(data, dict) and answer.status_code in expect:
            shown = {k: data[k] for k in show if k in data}
            hidden = len(data) - len(shown)
            more = f" (+{hidden} more keys)" if hidden else ""
        say(f"< {answer.status_code} {excerpt(shown) if shown is not None else ''}{more}".rstrip())
        if answer.status_code not in expect:
            raise DemoFailed(f"{method} {path} answered {answer.status_code}: {answer.text[:300]}")
        return data

    def log_lines(self, *needles: str) -> list[str]:
        """Lines of the app's log that contain any of the needles."""
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return [line for line in text.splitlines() if any(n in line for n in needles)]

    def stop(self) -> None:
        """SIGTERM, as Ctrl-C in `make run` would; the host then stops its timers and queue pollers."""
        process, self.process = self.process, None
        self.http.close()
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


# ------------------------------------------------------------------------------------------------- the demo


def wait_for(predicate: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def app_env(connection_string: str, webhook_url: str, *settings: dict[str, str]) -> dict[str, str]:
    """The app's environment: this demo's Azurite (over any local.settings.json), a fresh secrets key, quiet timers,
    and the fakes' settings."""
    merged: dict[str, str] = {}
    for extra in settings:
        merged.update(extra)
    return {
        **os.environ,
        "AzureWebJobsStorage": connection_string,  # the host's queue
        "STORAGE_CONNECTION_STRING": connection_string,  # the app's tables (over any local.settings.json)
        "TABLE_PREFIX": "demo",
        "SECRETS_KEY": base64.urlsafe_b64encode(os.urandom(32)).decode(),  # a fresh Fernet key
        **merged,
        "WEBHOOK_PUBLIC_URL": webhook_url,
        "DOMAIN_CHECK_SCHEDULE": NEVER,
        "SUBSCRIPTION_CHECK_SCHEDULE": NEVER,
        "RECONCILE_SCHEDULE": NEVER,
        "CLEANUP_SCHEDULE": NEVER,
    }


def main(run: Callable[[ExitStack, Path], None], stopping: str) -> int:
    """Run one walkthrough, then stop what it started (`stopping` says what, in the last message)."""
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    started = time.monotonic()
    log_file = tempfile.NamedTemporaryFile(prefix="vsts-demo-app-", suffix=".log", delete=False)
    log_file.close()
    log_path = Path(log_file.name)
    failure: str | None = None
    stack = ExitStack()
    try:
        run(stack, log_path)
    except Interrupted:
        failure = "interrupted"
    except DemoFailed as exc:
        failure = str(exc)
    except Exception as exc:  # anything unexpected still ends in a clear message and a clean-up
        failure = f"{type(exc).__name__}: {exc}"
    finally:
        # A second Ctrl-C must not cut the clean-up short and leave processes behind.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print(f"\nStopping {stopping} ...", flush=True)
        try:
            stack.close()
        except Exception as exc:
            failure = failure or f"clean-up failed: {type(exc).__name__}: {exc}"
    if failure is None:
        log_path.unlink(missing_ok=True)
        print(f"Finished in {time.monotonic() - started:.1f} s.")
        return 0
    print(f"\nDEMO FAILED: {failure}", file=sys.stderr)
    print(f"The app's log is in {log_path}", file=sys.stderr)
    return 130 if failure == "interrupted" else 1
