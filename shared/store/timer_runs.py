"""The last run of each timer and how it ended, for the status page (contract §14).

Table `status`, PartitionKey `timer`, RowKey the timer's name. A run writes twice: when it starts (merged, so
the previous run's outcome stays readable while this one runs) and when it ends. A run the host stopped (its
functionTimeout, a crash) leaves `Running` true with no end after its start: the page says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from azure.data.tables import UpdateMode

from shared.store import base

TABLE = "status"
PARTITION = "timer"
MAX_TIMERS = 20


@dataclass(frozen=True)
class TimerRecord:
    """The last run of one timer: when it started and, once it ended, its outcome."""

    name: str
    started_at: float | None = None
    running: bool = False
    ended_at: float | None = None  # of the last run that ended (possibly an earlier one than started_at's)
    visited: int = 0
    worked: int = 0
    failed: int = 0
    finished: bool = False  # reached the end of the integrations (False: stopped by its time budget)
    error: str | None = None  # the run itself failed (for example storage was unavailable)


def _merge(name: str, values: dict[str, Any], what: str) -> None:
    entity = {"PartitionKey": PARTITION, "RowKey": name, **values}
    with base.storage_errors(what):
        base.write(base.table(TABLE), lambda t: t.upsert_entity(entity, mode=UpdateMode.MERGE))


def record_start(name: str, *, now: float) -> None:
    _merge(name, {"StartedAt": float(now), "Running": True}, f"recording the start of {name}")


def record_end(
    name: str, *, now: float, visited: int, worked: int, failed: int, finished: bool, error: str | None = None
) -> None:
    values = {
        "Running": False,
        "EndedAt": float(now),
        "Visited": visited,
        "Worked": worked,
        "Failed": failed,
        "Finished": finished,
        "Error": (error or "")[:300],
    }
    _merge(name, values, f"recording the end of {name}")


def _float(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _int(value: Any) -> int:
    return int(value) if isinstance(value, int) and not isinstance(value, bool) else 0


def timer_records() -> dict[str, TimerRecord]:
    """Every recorded timer by name (one query of at most MAX_TIMERS entities)."""
    entities = base.query(TABLE, "PartitionKey eq @pk", {"pk": PARTITION}, "reading the timer runs", limit=MAX_TIMERS)
    return {
        e["RowKey"]: TimerRecord(
            name=e["RowKey"],
            started_at=_float(e.get("StartedAt")),
            running=bool(e.get("Running")),
            ended_at=_float(e.get("EndedAt")),
            visited=_int(e.get("Visited")),
            worked=_int(e.get("Worked")),
            failed=_int(e.get("Failed")),
            finished=bool(e.get("Finished")),
            error=e.get("Error") or None,
        )
        for e in entities
    }
