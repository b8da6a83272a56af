"""Test set-up: one Azurite (blob, queue, table) per session on free loopback ports, in memory.

Each run gets its own TABLE_PREFIX, so runs never see each other's data even on a shared Azurite.
"""

from __future__ import annotations

import base64
import os
import re
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import responses

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from devhost.azurite import Azurite  # noqa: E402
from shared.settings import reset_settings  # noqa: E402
from tests.e2e import fake_ado, host  # noqa: E402, F401 (fixtures for end-to-end modules)


@pytest.fixture(scope="session", autouse=True)
def azurite() -> Iterator[Azurite]:
    """Azurite for the whole run; the app's settings point at it. It must be installed (make test does it)."""
    server = Azurite.on_free_ports().start()
    previous = dict(os.environ)
    os.environ.update(
        {
            "AzureWebJobsStorage": server.connection_string,
            "TABLE_PREFIX": f"t{uuid.uuid4().hex[:12]}",
            "SECRETS_KEY": base64.urlsafe_b64encode(os.urandom(32)).decode(),
        }
    )
    os.environ.pop("STORAGE_CONNECTION_STRING", None)
    reset_settings()
    yield server
    os.environ.clear()
    os.environ.update(previous)
    reset_settings()
    server.stop()


class SettingsPatch:
    """Sets app settings for one test; the app re-reads its settings after every change."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self._mp = monkeypatch

    def setenv(self, name: str, value: str) -> None:
        self._mp.setenv(name, value)
        reset_settings()

    def delenv(self, name: str) -> None:
        self._mp.delenv(name, raising=False)
        reset_settings()


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> Iterator[SettingsPatch]:
    """Change settings for one test with env.setenv; they are restored (and re-read) afterwards."""
    yield SettingsPatch(monkeypatch)
    monkeypatch.undo()
    reset_settings()


@pytest.fixture(scope="session")
def registered_functions() -> dict:
    """The app's functions by name, indexed once per session (a second get_functions() on one app fails)."""
    import function_app

    return {f.get_function_name(): f for f in function_app.app.get_functions()}


@pytest.fixture
def ado() -> Iterator[responses.RequestsMock]:
    """Azure DevOps faked at the HTTP boundary with `responses`; loopback (Azurite, local fakes) passes through."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add_passthru(re.compile(r"http://127\.0\.0\.1:\d+/"))
        yield mock
