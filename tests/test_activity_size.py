"""A tracked issue's activity is bounded by its encoded size, as Table Storage counts it (UTF-16, 64 KiB a
property), newest kept: the worst case, every entry a failure with the longest reason of characters that JSON
escapes the most, is still stored, and later updates of that issue are too (issue 18, finding 4)."""

from __future__ import annotations

import json

import pytest

from shared.model.tracker import MAX_ACTIVITY, MAX_ACTIVITY_BYTES, TrackedIssue, activity_entry
from shared.store import base
from shared.store.tracker import ISSUES, TrackerStore
from tests.helpers import new_id

pytestmark = pytest.mark.usefixtures("azurite")

PROPERTY_LIMIT = 64 * 1024  # bytes of UTF-16, Table Storage's limit for one string property
# The reason as outbound and comments keep it (300 characters), of characters json.dumps escapes to 12 each.
WORST_REASON = "\U0001f600" * 300


def failure(n: int) -> dict:
    return {**activity_entry("ado_failed", "tracker", 10_000 + n, None), "reason": WORST_REASON}


def utf16_bytes(text: str) -> int:
    return len(text.encode("utf-16-le"))


def test_the_worst_case_is_stored_newest_kept_and_the_issue_stays_writable() -> None:
    store, org = TrackerStore(), f"org-{new_id()[:8]}"
    assert store.create_issue(TrackedIssue(org, "I1", title="worst case")) is not None
    for n in range(MAX_ACTIVITY + 20):  # each update as one worker would do it, one entry at a time
        stored = store.update_issue(org, "I1", lambda issue, n=n: issue.with_activity(failure(n)))
        assert stored is not None
    entity = base.read_entity(ISSUES, org, "I1", "reading")
    assert utf16_bytes(entity["Activity"]) <= MAX_ACTIVITY_BYTES < PROPERTY_LIMIT
    kept = json.loads(entity["Activity"])
    assert kept[-1]["work_item_id"] == 10_000 + MAX_ACTIVITY + 19  # the newest is kept
    ids = [entry["work_item_id"] for entry in kept]
    assert ids == sorted(ids) and ids == list(range(ids[0], ids[-1] + 1))  # and what is kept is the newest run
    assert len(kept) < MAX_ACTIVITY  # the size, not the count, bounded it
    # Still writable: a plain change of the issue is saved.
    store.update_issue(org, "I1", lambda issue: issue.with_activity(activity_entry("status", "vsts", 1, 2)))
    assert json.loads(base.read_entity(ISSUES, org, "I1", "reading")["Activity"])[-1]["type"] == "status"


def test_small_entries_are_still_bounded_by_count() -> None:
    issue = TrackedIssue("o", "I1", "title")
    for n in range(MAX_ACTIVITY + 5):
        issue = issue.with_activity(activity_entry("status", "vsts", 1, n))
    assert [entry["rev"] for entry in issue.activity] == list(range(5, MAX_ACTIVITY + 5))
