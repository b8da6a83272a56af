"""Test set-up: the app's settings, and one Azurite (blob, queue, table) on free loopback ports, in memory,
started only when a test needs storage (pure tests run without it, and fail fast if they touch storage).

Each run gets its own TABLE_PREFIX, so runs never see each other's data even on a shared Azurite.
"""

from __future__ import annotations

import base64
import os
import re
import socket
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import responses

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from devhost.azurite import Azurite, connection_string  # noqa: E402
from shared.settings import reset_settings  # noqa: E402
from tests.browser import browser  # noqa: E402, F401 (the headless Chromium of the page tests)
from tests.e2e import fake_ado, host  # noqa: E402, F401 (fixtures for end-to-end modules)

# Where storage points while no test asked for Azurite: a loopback port held bound but never listening, so a
# pure test that touches storage by mistake gets "connection refused" at once instead of hanging or passing.
_closed = socket.socket()
_closed.bind(("127.0.0.1", 0))
CLOSED_STORAGE = connection_string(*[_closed.getsockname()[1]] * 3)


@pytest.fixture(scope="session", autouse=True)
def app_environment() -> Iterator[None]:
    """The app's settings for the whole run, with storage pointing nowhere (see `storage_guard`)."""
    previous = dict(os.environ)
    os.environ.update(
        {
            "AzureWebJobsStorage": CLOSED_STORAGE,
            "TABLE_PREFIX": f"t{uuid.uuid4().hex[:12]}",
            "SECRETS_KEY": base64.urlsafe_b64encode(os.urandom(32)).decode(),
        }
    )
    os.environ.pop("STORAGE_CONNECTION_STRING", None)
    reset_settings()
    yield
    os.environ.clear()
    os.environ.update(previous)
    reset_settings()


@pytest.fixture(scope="session")
def azurite(app_environment: None) -> Iterator[Azurite]:
    """Azurite, started on first use and kept for the run; while a test uses it, the app's storage is it.

    Modules that need storage say `pytestmark = pytest.mark.usefixtures("azurite")`; fixtures that need it
    (such as `host`) depend on it. It must be installed (make test does it)."""
    server = Azurite.on_free_ports().start()
    os.environ["AzureWebJobsStorage"] = server.connection_string
    reset_settings()
    yield server
    os.environ["AzureWebJobsStorage"] = CLOSED_STORAGE
    reset_settings()
    server.stop()


@pytest.fixture(autouse=True)
def storage_guard(request: pytest.FixtureRequest) -> Iterator[None]:
    """A test that did not ask for Azurite sees closed storage, even when an earlier test started Azurite."""
    if "azurite" in request.fixturenames:
        yield
        return
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AzureWebJobsStorage", CLOSED_STORAGE)
        reset_settings()
        yield
    reset_settings()


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
def own_tables(env: SettingsPatch, fake_ado) -> SettingsPatch:  # noqa: F811 (the fixture, by name)
    """A table prefix of this test's own (empty tables: a timer that visits every integration sees only the
    test's) and the app pointed at the fake Azure DevOps."""
    import uuid

    env.setenv("TABLE_PREFIX", f"own{uuid.uuid4().hex[:10]}")
    for key, value in fake_ado.settings_env().items():
        env.setenv(key, value)
    return env


@pytest.fixture
def empty_queue() -> Iterator[None]:
    """The deliveries' queue emptied before and after the test, so it sees only what it queued."""
    from tests.sync_helpers import queued_messages

    queued_messages()
    yield
    queued_messages()


@pytest.fixture
def ado() -> Iterator[responses.RequestsMock]:
    """Azure DevOps faked at the HTTP boundary with `responses`; loopback (Azurite, local fakes) passes through."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add_passthru(re.compile(r"http://127\.0\.0\.1:\d+/"))
        yield mock


@pytest.fixture
def sentry_http() -> Iterator[responses.RequestsMock]:
    """Sentry faked at the HTTP boundary with `responses` (SENTRY_URL https://sentry.example, the client id and
    secret set); loopback (Azurite, local fakes) passes through."""
    saved = {name: os.environ.get(name) for name in ("SENTRY_URL", "SENTRY_CLIENT_ID", "SENTRY_CLIENT_SECRET")}
    os.environ.update(
        {
            "SENTRY_URL": "https://sentry.example",
            "SENTRY_CLIENT_ID": "client-id",
            "SENTRY_CLIENT_SECRET": "client-secret",
        }
    )
    reset_settings()
    try:
        with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
            mock.add_passthru(re.compile(r"http://127\.0\.0\.1:\d+/"))
            yield mock
    finally:
        for name, value in saved.items():
            os.environ.pop(name, None) if value is None else os.environ.__setitem__(name, value)
        reset_settings()


@pytest.fixture(autouse=True)
def ado_specification_violations() -> Iterator[None]:
    """Fails the test whose requests the fake Azure DevOps found against Microsoft's specification (an operation
    that does not exist, a version the server does not have, a preview without `-preview`, a missing required
    parameter, a value outside an enum, a malformed JSON Patch): Azure DevOps would refuse them. A test that sends
    such a request on purpose takes the violations itself (`take_violations`)."""
    from tests.helpers import fail_on_ado_violations

    yield
    # Violations recorded before this test began (background work of an earlier test, or a module's teardown)
    # fail here too: they are as real, only later.
    fail_on_ado_violations()
