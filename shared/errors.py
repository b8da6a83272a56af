"""Errors the trigger adapters map to status codes. Kept in a module of their own, which imports nothing,
so an adapter can catch them without importing (and paying at cold start for) the code that raises them."""


class StorageUnavailable(Exception):
    """Table or queue storage did not answer or failed: answer 503, or let the trigger retry."""


class NotQueued(StorageUnavailable):
    """The change was saved, but queueing it for Azure DevOps failed: answered 503, and sending the same request
    again queues it (the worker reads the saved state, so nothing is applied twice)."""


class InvalidInput(ValueError):
    """The request is wrong: answered 400 with this message; nothing was written."""


class BodyTooLarge(InvalidInput):
    """The request body is over the route's limit: answered 413 with this message."""


class NotFound(LookupError):
    """Something the request names does not exist: answered 404 with this message."""


class Conflict(Exception):
    """The request contradicts what is stored (a limit reached): answered 409 with this message."""


class TooLargeToStore(Conflict):
    """Table Storage refused an entity or a property as too large: answered 409, never "storage unavailable"."""


class RetryLater(Exception):
    """A failure that may pass (Azure DevOps throttled or down, storage busy): the queue or the next timer
    run tries again. `retry_after` is the wait the other side asked for, in seconds, when it said."""

    def __init__(self, message: str = "", retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ConcurrentUpdate(Exception):
    """An ETag-guarded update kept losing to other writers; the caller retries later (503)."""
