"""Links made outside Sentry's UI, shown in Sentry (contract §13.2): a link added or removed on a Sentry
organization's issue through the admin API is queued for `vsts-sentry-updates`, whose worker brings the Sentry
issue's external issue in line with the issue's links as they are then (`shared.sentryapp.to_sentry_links`)."""

from __future__ import annotations

from shared.admin.changes import accept_after_save
from shared.deliveries.sentry_messages import to_update_message
from shared.model.sentry import SentryUpdate, is_sentry_org
from shared.model.tracker import Link
from shared.store import queues
from shared.sync import wakeups


def announce_link(org_id: str, issue_id: str, link: Link) -> None:
    """Queue the link (or unlink) for Sentry when the issue is a Sentry organization's. Called after the save, so
    it never runs ahead of it. It is noted pending (docs/design.md), so a queue that does not take the wake-up leaves
    it to the sweeper; NotQueued (503: send the request again) when the pending row could not be stored. Sent
    twice is harmless: the worker sends nothing when Sentry already shows the issue's links."""
    if not is_sentry_org(org_id):
        return
    update = SentryUpdate(org_id, issue_id, link=link.key)
    ref = wakeups.sentry_update_ref(update)
    assert ref is not None  # a link announcement always has its row
    accept_after_save(ref, to_update_message(update), queues.SENTRY_UPDATES_QUEUE_NAME)
