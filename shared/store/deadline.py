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

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from shared.clock import Deadline
from shared.errors import StorageUnavailable

# Interactive storage budget per operation, and each attempt's connect timeout within it.
OPERATION_SECONDS = 3.0
CONNECT_SECONDS = 2.0

_deadline: ContextVar[Deadline | None] = ContextVar("storage_deadline", default=None)
_background: ContextVar[bool] = ContextVar("storage_background", default=False)
_KEY = "vsts_storage_deadline"  # where an operation keeps its deadline across its retries (pipeline context)


class StorageDeadlineExceeded(StorageUnavailable):
    """Storage did not answer within the request's budget. Not an AzureError, so no SDK retry policy retries it."""


@contextmanager
def storage_deadline(seconds: float) -> Iterator[None]:
    """Every storage operation inside shares one deadline, `seconds` from now (or an earlier one already set)."""
    token = _deadline.set(Deadline(seconds).earlier(_deadline.get()))
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
        context = request.context
        deadline: Deadline | None = context.get(_KEY)
        if deadline is None:  # the operation's first attempt: its deadline holds for its retries too
            deadline = Deadline(OPERATION_SECONDS).earlier(_deadline.get())
            context[_KEY] = deadline
        left = deadline.left()
        if left <= 0:
            raise StorageDeadlineExceeded("storage did not answer in time")
        context.options["connection_timeout"] = min(connect_seconds, CONNECT_SECONDS, left)
        context.options["read_timeout"] = min(read_seconds, left)

    return bound
