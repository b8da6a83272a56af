"""Small helpers shared by tests."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from azure.core.pipeline.transport import RequestsTransport

from shared.integrations import Integration, IntegrationStore


def new_id() -> str:
    return str(uuid.uuid4())


def make_integration(
    *,
    domain_name: str = "https://dev.azure.com/fabrikam/",
    name: str = "fabrikam",
    credentials: dict | None = None,
    webhook_secret: str = "s" * 32,
    integration_id: str | None = None,
) -> Integration:
    integration = Integration(
        id=integration_id or new_id(),
        name=name,
        domain_name=domain_name,
        credentials=credentials or {"type": "pat", "token": "pat-token-value"},
        webhook_secret=webhook_secret,
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


def wait_for(predicate: Callable[[], object], seconds: float = 15.0, what: str = "condition") -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)
