"""A work item update as a Storage queue message, and back: compact ASCII JSON, checked both ways, so a message
that the webhook did not write is refused (and ends in the poison queue) instead of being half applied."""

from __future__ import annotations

import json

from shared.deliveries.envelope import InvalidDelivery, loads
from shared.deliveries.workitem import MAX_DATE_CHARS, MAX_NAME_CHARS, _clean_name, _safe_text
from shared.model.changes import AssigneeChange, StateChange, WorkItemUpdate
from shared.validation import normalize_email, positive_int

# Queue messages may hold 48 KiB once base64-encoded (64 KiB raw); the field caps keep the worst case of
# to_message (every character \\u-escaped) under this, far below the limit.
MAX_MESSAGE_CHARS = 16 * 1024
_MESSAGE_VERSION = 1
# How many failed attempts a message may count (`attempt`, written only when the queue puts a message back
# after a failure that may pass; absent means 0, as the webhook writes it). Far above any retry budget.
MAX_ATTEMPTS = 10_000


def _int32(value: object) -> int | None:
    """The value when it is an int (not a bool, not a digit string) in 1..2**31-1, else None."""
    return positive_int(value) if isinstance(value, int) else None


def to_message(update: WorkItemUpdate, *, attempt: int = 0) -> str:
    """Compact ASCII JSON for the Storage queue, at most MAX_MESSAGE_CHARS long. `attempt` (failed attempts so
    far) is written only when it is not 0, so what the webhook writes is unchanged.

    Names and ids over their caps become None rather than being cut (a cut state name or id would be a
    different, wrong one); only the log description is shortened. The integration id is the routing key and
    is never altered: one that is empty or too long raises InvalidDelivery.
    """
    if not isinstance(update.integration_id, str) or not 0 < len(update.integration_id) <= MAX_NAME_CHARS:
        raise InvalidDelivery("The integration id is empty or too long for a queue message.")
    if _int32(update.work_item_id) is None:
        raise InvalidDelivery("The work item id is not a positive 32-bit integer.")
    assignee = None
    if update.assignee is not None:
        assignee = {
            "unassign": bool(update.assignee.unassign),
            "email": None if update.assignee.unassign else normalize_email(update.assignee.email),
            "description": _safe_text(update.assignee.description),
        }
    state = None
    if update.state is not None:
        state = {"old": _clean_name(update.state.old), "new": _clean_name(update.state.new)}
    message = {
        "v": _MESSAGE_VERSION,
        "integration_id": update.integration_id,
        "work_item_id": update.work_item_id,
        "rev": _int32(update.rev),
        "work_item_type": _clean_name(update.work_item_type),
        "project_id": _clean_name(update.project_id),
        "assignee": assignee,
        "state": state,
        "changed_date": _clean_name(update.changed_date, MAX_DATE_CHARS),
        "event_id": _clean_name(update.event_id),
    }
    if update.commented:  # written only for a comment, so a field update's message is unchanged
        message["commented"] = True
        message["comment_id"] = _int32(update.comment_id)
    if attempt:
        if not isinstance(attempt, int) or not 0 < attempt <= MAX_ATTEMPTS:
            raise InvalidDelivery("The attempt count is out of range for a queue message.")
        message["attempt"] = attempt
    # ensure_ascii: the text is pure ASCII, so its length is its byte size and lone surrogates cannot break
    # the queue client's UTF-8 encoding.
    return json.dumps(message, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


def from_message(text: str) -> WorkItemUpdate:
    """The inverse of to_message. Raises InvalidDelivery for anything to_message could not have produced."""
    return read_message(text)[0]


def read_message(text: str) -> tuple[WorkItemUpdate, int]:
    """The update and its attempt count (0 when absent). Raises InvalidDelivery as from_message does."""
    if not isinstance(text, str) or len(text) > MAX_MESSAGE_CHARS:
        raise InvalidDelivery("The queue message is not a work item update.")
    try:
        data = loads(text)
    except InvalidDelivery:
        raise InvalidDelivery("The queue message is not valid JSON.") from None
    if not isinstance(data, dict) or _int32(data.get("v")) != _MESSAGE_VERSION:  # not True, not 1.0
        raise InvalidDelivery("The queue message is not a version 1 work item update.")

    integration_id = data.get("integration_id")
    if not isinstance(integration_id, str) or not 0 < len(integration_id) <= MAX_NAME_CHARS:
        raise InvalidDelivery("The queue message has no valid integration_id.")
    work_item_id = _int32(data.get("work_item_id"))
    if work_item_id is None:
        raise InvalidDelivery("The queue message has no valid work_item_id.")
    rev = data.get("rev")
    if rev is not None and _int32(rev) is None:
        raise InvalidDelivery("The queue message has an invalid rev.")

    raw_assignee = data.get("assignee")
    assignee = None
    if raw_assignee is not None:
        if not isinstance(raw_assignee, dict) or not isinstance(raw_assignee.get("unassign"), bool):
            raise InvalidDelivery("The queue message has an invalid assignee.")
        email = raw_assignee.get("email")
        description = raw_assignee.get("description")
        if email is not None and (raw_assignee["unassign"] or normalize_email(email) != email):
            raise InvalidDelivery("The queue message has an invalid assignee email.")
        if not isinstance(description, str) or _safe_text(description) != description:
            raise InvalidDelivery("The queue message has an invalid assignee description.")
        assignee = AssigneeChange(unassign=raw_assignee["unassign"], email=email, description=description)

    raw_state = data.get("state")
    state = None
    if raw_state is not None:
        if not isinstance(raw_state, dict):
            raise InvalidDelivery("The queue message has an invalid state.")
        old, new = raw_state.get("old"), raw_state.get("new")
        if _clean_name(old) != old or _clean_name(new) != new:
            raise InvalidDelivery("The queue message has an invalid state name.")
        state = StateChange(old=old, new=new)

    # Optional names: None, or exactly what to_message would have written.
    names: dict[str, str | None] = {}
    for key, cap in (
        ("work_item_type", MAX_NAME_CHARS),
        ("project_id", MAX_NAME_CHARS),
        ("changed_date", MAX_DATE_CHARS),
        ("event_id", MAX_NAME_CHARS),
    ):
        value = data.get(key)
        if value is not None and _clean_name(value, cap) != value:
            raise InvalidDelivery(f"The queue message has an invalid {key}.")
        names[key] = value
    commented = data.get("commented", False)
    comment_id = data.get("comment_id")
    if commented is not True and "commented" in data:
        raise InvalidDelivery("The queue message has an invalid commented flag.")
    if comment_id is not None and (not commented or _int32(comment_id) is None):
        raise InvalidDelivery("The queue message has an invalid comment_id.")
    attempt = _int32(data["attempt"]) if "attempt" in data else 0  # to_message never writes 0
    if attempt is None or attempt > MAX_ATTEMPTS:
        raise InvalidDelivery("The queue message has an invalid attempt count.")

    update = WorkItemUpdate(
        integration_id=integration_id,
        work_item_id=work_item_id,
        rev=rev,
        work_item_type=names["work_item_type"],
        project_id=names["project_id"],
        assignee=assignee,
        state=state,
        changed_date=names["changed_date"],
        event_id=names["event_id"],
        commented=bool(commented),
        comment_id=comment_id,
    )
    return update, attempt
