"""How long storage may take: every storage request of an HTTP path is bounded, whole paths can share a deadline.

A storage service that accepts connections but does not answer (a hung Azurite, a stalled front end) would
otherwise hold a request for the SDK's read timeout times its retries, far longer than Azure DevOps waits for
a webhook (about 20 s). So, by default (the *interactive* profile, for HTTP functions):

- each storage operation, its retries and back-off included, has `OPERATION_SECONDS` in all: no attempt
  starts once that has passed, and each attempt's connect and read timeouts are cut to what is left;
- `storage_deadline(seconds)` gives a whole request path one deadline that its operations share.

The queue worker and the timers, which nobody waits on, run `with background():` and keep the clients' own,
longer, timeouts and retries. The bound is applied by `attempt_bound`, a hook every storage client calls
before each attempt (`raw_request_hook`), so no call site passes timeouts.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from shared.errors import StorageUnavailable

# Interactive storage budget per operation, and each attempt's connect timeout within it.
OPERATION_SECONDS = 3.0
CONNECT_SECONDS = 2.0

_deadline: ContextVar[float | None] = ContextVar("storage_deadline", default=None)
_background: ContextVar[bool] = ContextVar("storage_background", default=False)
_KEY = "vsts_storage_deadline"  # where an operation keeps its deadline across its retries (pipeline context)


class StorageDeadlineExceeded(StorageUnavailable):
    """Storage did not answer within the request's budget. Not an AzureError, so no SDK retry policy retries it."""


@contextmanager
def storage_deadline(seconds: float) -> Iterator[None]:
    """Every storage operation inside shares one deadline, `seconds` from now (or an earlier one already set)."""
    end = time.monotonic() + seconds
    current = _deadline.get()
    token = _deadline.set(end if current is None else min(current, end))
    try:
        yield
    finally:
        _deadline.reset(token)


@contextmanager
def background() -> Iterator[None]:
    """Storage operations inside use the clients' own timeouts and retries (queue worker, timers)."""
    token = _background.set(True)
    try:
        yield
    finally:
        _background.reset(token)


def attempt_bound(connect_seconds: float, read_seconds: float) -> Callable[[Any], None]:
    """The hook a storage client calls before each attempt of a request (an azure-core PipelineRequest), given
    the client's own timeouts: in the interactive profile, refuse the attempt when its deadline has passed,
    else cut its timeouts to what is left."""

    def bound(request: Any) -> None:
        if _background.get():
            return
        now = time.monotonic()
        context = request.context
        end = context.get(_KEY)
        if end is None:  # the operation's first attempt: its deadline holds for its retries too
            end = min(_deadline.get() or math.inf, now + OPERATION_SECONDS)
            context[_KEY] = end
        left = end - now
        if left <= 0:
            raise StorageDeadlineExceeded("storage did not answer in time")
        context.options["connection_timeout"] = min(connect_seconds, CONNECT_SECONDS, left)
        context.options["read_timeout"] = min(read_seconds, left)

    return bound
