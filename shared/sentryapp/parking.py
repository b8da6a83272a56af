"""An installation whose tokens Sentry refused waits without calling Sentry (contract §15).

Once an installation is `needs_reauth`, its Sentry calls would only be refused again (and a dead refresh token
spent on the token endpoint with every retry), so the workers park its messages instead of retrying them:
`park` keeps the message in storage (`shared.store.sentry_parked`) and the worker completes. When a new token is
entered (`PUT /api/sentry/installations/{uuid}`) or the app is installed again, `release` puts the
organization's parked messages back on their queues, and they are applied as they would have been. A release
that fails halfway leaves the rest parked; `sentry_reconcile` releases what is parked for every installation
that no longer needs a new token, so nothing stays parked for good.
"""

from __future__ import annotations

import logging

from shared.errors import StorageUnavailable
from shared.store import queues, sentry_parked

log = logging.getLogger(__name__)


class NeedsReauth(Exception):
    """The installation needs a new token before anything can be sent to Sentry: park the message."""


def park(org_id: str, queue: str, message: str) -> str:
    """Park a message of `queue`; what became of it, for the log (StorageUnavailable propagates: retried)."""
    sentry_parked.park(org_id, queue, message)
    log.warning("%s: the Sentry installation needs a new token; a %s message is parked until then", org_id, queue)
    return "parked until the installation has a new token"


def release(org_id: str) -> int:
    """Queue the organization's parked messages again; how many. Best effort: what could not be queued stays
    parked for the next release (`sentry_reconcile`)."""
    released = 0
    try:
        for message in sentry_parked.parked(org_id):
            queues.enqueue(message.message, message.queue)  # queued before it is unparked: never lost
            sentry_parked.unpark(message)
            released += 1
    except StorageUnavailable as exc:
        log.warning("%s: %d parked message(s) released, the rest stay parked: %s", org_id, released, exc)
    if released:
        log.info("%s: released %d parked message(s)", org_id, released)
    return released
