"""The daily `cleanup` (shared.jobs.cleanup) against real Table Storage: rows past their own expiry are removed
from each expiring table and live rows stay; the run keeps to its bound and its budget, and is recorded."""

from __future__ import annotations

import pytest

from shared.jobs.cleanup import run_cleanup
from shared.store import base, timer_runs
from shared.store.expiry import EXPIRING_TABLES
from tests.helpers import FakeClock, new_id

pytestmark = pytest.mark.usefixtures("azurite")


def _rows(table: str, partition: str) -> set[str]:
    found = base.query(table, "PartitionKey eq @pk", {"pk": partition}, "test", select=["RowKey"])
    return {e["RowKey"] for e in found}


def _seed(clock: FakeClock, expired: int, live: int) -> str:
    partition = new_id()
    for table in EXPIRING_TABLES:
        for n in range(expired):
            base.upsert(table, {"PartitionKey": partition, "RowKey": f"old-{n}", "ExpiresAt": clock.now() - 1}, "t")
        for n in range(live):
            base.upsert(table, {"PartitionKey": partition, "RowKey": f"live-{n}", "ExpiresAt": clock.now() + 60}, "t")
    return partition


def test_expired_rows_go_and_live_rows_stay_in_every_expiring_table() -> None:
    clock = FakeClock()
    partition = _seed(clock, expired=3, live=2)
    report = run_cleanup(clock=clock)
    for table in EXPIRING_TABLES:
        assert _rows(table, partition) == {"live-0", "live-1"}, table
        assert report.deleted[table] >= 3
    assert report.finished and report.failed == []
    record = timer_runs.timer_records()["cleanup"]
    assert record.finished and not record.running and record.worked >= 3 * len(EXPIRING_TABLES)


def test_a_run_stops_at_its_bound_and_the_next_run_takes_the_rest() -> None:
    clock = FakeClock()
    partition = _seed(clock, expired=5, live=0)
    first = run_cleanup(clock=clock, rows_per_run=2)
    assert not first.finished and all(deleted == 2 for deleted in first.deleted.values())
    for _ in range(20):  # a bounded number of runs: each removes at most 2 a table
        if run_cleanup(clock=clock, rows_per_run=2).finished:
            break
    assert all(_rows(table, partition) == set() for table in EXPIRING_TABLES)
