"""`POST /api/queues/{queue}/redrive` (contract §5.2): put a poison queue's messages back on their queue.

`{queue}` is the source queue (`vsts-workitem-updates`); its poison queue's name
(`vsts-workitem-updates-poison`) is accepted too and means the same. Only the app's own queues may be redriven.
Each call moves at most `MAX_MOVED` messages and works at most `BUDGET_SECONDS`, so it answers in bounded
time; `more` says whether messages remain (call again). Each message is re-sent before it is deleted from the
poison queue: a crash in between leaves a duplicate, which the revision watermarks make a no-op (§5.3).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from shared.errors import InvalidInput, NotFound
from shared.store import queues

log = logging.getLogger(__name__)

MAX_MOVED = 1000
BUDGET_SECONDS = 20.0
# Azure queue names: 3-63 lower-case letters, digits and single hyphens, starting and ending with a letter or digit.
_QUEUE_NAME = re.compile(r"[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){2,62}")


@dataclass(frozen=True)
class Redrive:
    queue: str
    moved: int
    more: bool


def source_queue(name: str) -> str:
    """The app queue that `name` (a queue or its poison queue) designates; InvalidInput or NotFound otherwise."""
    if not isinstance(name, str) or not _QUEUE_NAME.fullmatch(name):
        raise InvalidInput("The queue name must be 3-63 lower-case letters, digits or single hyphens.")
    source = name.removesuffix(queues.POISON_SUFFIX)
    if source not in queues.APP_QUEUES:
        raise NotFound(f"The app has no queue named {name}.")
    return source


def redrive(name: str, *, limit: int = MAX_MOVED, budget_seconds: float = BUDGET_SECONDS) -> Redrive:
    source = source_queue(name)
    moved, more = queues.move_messages(source + queues.POISON_SUFFIX, source, limit, budget_seconds)
    log.info("Redrive: moved %d message(s) from %s%s back to %s", moved, source, queues.POISON_SUFFIX, source)
    return Redrive(source, moved, more)
