"""Small helpers shared by tests."""

from __future__ import annotations

import contextvars
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import TypeVar

import pytest
from azure.core.pipeline.transport import RequestsTransport

from shared.store.integrations import Integration, IntegrationStore

T = TypeVar("T")
POLL_SECONDS = 0.02


def new_id() -> str:
    return str(uuid.uuid4())


def make_integration(
    *,
    domain_name: str = "https://dev.azure.com/fabrikam/",
    name: str = "fabrikam",
    credentials: dict | None = None,
    webhook_secret: str = "s" * 32,
    integration_id: str | None = None,
    api_level: str | None = None,
) -> Integration:
    integration = Integration(
        id=integration_id or new_id(),
        name=name,
        domain_name=domain_name,
        credentials=credentials or {"type": "pat", "token": "pat-token-value"},
        webhook_secret=webhook_secret,
        api_level=api_level,
    )
    return IntegrationStore().create(integration)


@contextmanager
def count_storage_requests() -> Iterator[list[str]]:
    """Every HTTP request the Azure SDKs send while inside, as 'METHOD url' (a transport hook, not timing)."""
    seen: list[str] = []
    original = RequestsTransport.send

    def counting(self, request, **kwargs):
        seen.append(f"{request.method} {request.url}")
        return original(self, request, **kwargs)

    RequestsTransport.send = counting
    try:
        yield seen
    finally:
        RequestsTransport.send = original


def wait_for(predicate: Callable[[], T], seconds: float = 30.0, what: str = "condition") -> T:
    """Poll `predicate` until it is truthy and return its value: the one way tests wait for something that
    happens in another thread or process. Fails after `seconds`, naming `what`."""
    deadline = time.monotonic() + seconds
    while not (value := predicate()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {seconds} s waiting for {what}")
        time.sleep(POLL_SECONDS)
    return value


class FakeClock:
    """A `shared.clock.Clock` that only moves when told: `sleep` advances it at once instead of waiting.
    Thread-safe, so work running in a pool may advance it too."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self._lock = threading.Lock()
        self._wall = now
        self._mono = 0.0
        self.slept: list[float] = []

    def now(self) -> float:
        with self._lock:
            return self._wall

    def monotonic(self) -> float:
        with self._lock:
            return self._mono

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.slept.append(seconds)
        self.advance(seconds)

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._wall += seconds
            self._mono += seconds


def populate_integrations(fake_ado, count: int, malformed_every: int) -> tuple[list[str], list[str]]:
    """`count` integrations, every `malformed_every`-th with a legacy domain the fake's lookup can repair.
    Returns (well-formed ids, malformed ids)."""
    good, bad, integrations = [], [], []
    for i in range(count):
        integration_id, name = new_id(), f"o{uuid.uuid4().hex[:10]}"
        if i % malformed_every == 0:
            fake_ado.add_org(name, integration_id)
            bad.append(integration_id)
            domain = f"{name}.visualstudio.com"
        else:
            good.append(integration_id)
            domain = fake_ado.org_url(name)
        integrations.append(
            Integration(id=integration_id, name=name, domain_name=domain, credentials={"type": "pat", "token": "t"})
        )
    store, caller = IntegrationStore(), contextvars.copy_context()
    # Each write in the caller's context: a pool thread starts with none, so a caller's `background()` (the
    # bench's set-up: storage's own timeouts and retries) would not reach it, and one Azurite stall of over 3 s
    # stopped the bench.
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda integration: caller.copy().run(store.create, integration), integrations))
    return good, bad


@contextmanager
def failing_storage(*fragments: str, method: str | None = None, times: int | None = None) -> Iterator[list[str]]:
    """Every storage request whose URL holds one of `fragments` (a table or queue name), and whose method is
    `method` when given, fails as a connection that could not be made, inside (only the first `times` such
    requests, when given: each attempt the SDK makes is one); the requests failed, as 'METHOD url'."""
    from azure.core.exceptions import ServiceRequestError

    failed: list[str] = []
    original = RequestsTransport.send

    def failing(self, request, **kwargs):
        matches = any(fragment in request.url for fragment in fragments) and method in (None, request.method)
        if matches and (times is None or len(failed) < times):
            failed.append(f"{request.method} {request.url}")
            raise ServiceRequestError("injected storage failure")
        return original(self, request, **kwargs)

    RequestsTransport.send = failing
    try:
        yield failed
    finally:
        RequestsTransport.send = original


def fail_on_ado_violations() -> None:
    """Fail the running test when any live fake Azure DevOps recorded a request Azure DevOps would refuse (taking
    them, so the next test starts clean)."""
    from devtools.fakes.ado.server import LIVE

    found = [f"{fake.server}: {v}" for fake in list(LIVE) for v in fake.take_violations()]
    if found:
        pytest.fail("requests Azure DevOps would refuse:\n" + "\n".join(found), pytrace=False)
