"""An outbound change (`shared.model.changes.OutboundChange`) as a `vsts-outbound` queue message, and back:
compact ASCII JSON, checked both ways like the work item updates, so a message the app did not write is refused
(and ends in the poison queue) instead of being half applied."""

from __future__ import annotations

import json
from typing import Any

from shared.deliveries.envelope import InvalidDelivery, loads
from shared.deliveries.message import MAX_ATTEMPTS, MAX_MESSAGE_CHARS
from shared.model.changes import OUTBOUND_FIELDS, OutboundChange
from shared.model.tracker import MAX_LINKS
from shared.validation import is_valid_id, positive_int

VERSION = 1
_KEYS = {"v", "kind", "org_id", "issue_id", "fields", "exclude", "after", "only", "attempt"}
_KIND = "outbound"


def is_link_key(value: object) -> bool:
    if not isinstance(value, str) or value.count("|") != 1:
        return False
    integration_id, work_item_id = value.split("|")
    return is_valid_id(integration_id) and positive_int(work_item_id) is not None


def to_outbound_message(change: OutboundChange, *, attempt: int = 0) -> str:
    message: dict[str, Any] = {"org_id": change.org_id, "issue_id": change.issue_id, "fields": list(change.fields)}
    for key in ("exclude", "only"):
        if getattr(change, key):
            message[key] = list(getattr(change, key))
    if change.after:
        message["after"] = [list(entry) for entry in change.after]
    text = encode_message(_KIND, message, attempt)
    read_outbound_message(text)  # what is written must read back: a bad change fails here, not in the worker
    return text


def encode_message(kind: str, content: dict[str, Any], attempt: int) -> str:
    """A `vsts-outbound` message of `kind` as compact ASCII JSON, with its attempt count when it has one."""
    message = {"v": VERSION, "kind": kind, **content, **({"attempt": attempt} if attempt else {})}
    return json.dumps(message, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


def decode_message(text: str, kind: str, keys: set[str], what: str) -> tuple[dict[str, Any], int]:
    """A `vsts-outbound` message of `kind` (`what` names it in errors) with no key but `keys`, and its attempt
    count. Raises InvalidDelivery otherwise."""
    if not isinstance(text, str) or len(text) > MAX_MESSAGE_CHARS:
        raise InvalidDelivery(f"The queue message is not {what}.")
    data = loads(text)
    if not isinstance(data, dict) or data.get("v") != VERSION or data.get("kind") != kind or set(data) - keys:
        raise InvalidDelivery(f"The queue message is not {what} of version {VERSION}.")
    attempt = data.get("attempt", 0)
    if attempt != 0 and (not isinstance(attempt, int) or positive_int(attempt, MAX_ATTEMPTS) is None):
        raise InvalidDelivery("The queue message has an invalid attempt count.")
    return data, attempt


def read_outbound_message(text: str) -> tuple[OutboundChange, int]:
    """The change and its attempt count. Raises InvalidDelivery for anything to_outbound_message cannot write."""
    data, attempt = decode_message(text, _KIND, _KEYS, "an outbound change")
    org_id, issue_id, fields = data.get("org_id"), data.get("issue_id"), data.get("fields")
    if not is_valid_id(org_id) or not is_valid_id(issue_id):
        raise InvalidDelivery("The outbound change names no valid issue.")
    if not isinstance(fields, list) or not fields or not all(f in OUTBOUND_FIELDS for f in fields):
        raise InvalidDelivery("The outbound change has no valid fields.")
    links = {}
    for key in ("exclude", "only"):
        value = data.get(key, [])
        if not isinstance(value, list) or len(value) > MAX_LINKS or not all(is_link_key(v) for v in value):
            raise InvalidDelivery(f"The outbound change has an invalid {key} list.")
        links[key] = tuple(value)
    after = read_after(data.get("after", []), OUTBOUND_FIELDS, "The outbound change has an invalid after list.")
    change = OutboundChange(
        org_id, issue_id, tuple(dict.fromkeys(fields)), exclude=links["exclude"], after=after, only=links["only"]
    )
    return change, attempt


def read_after(value: object, fields: tuple[str, ...], error: str) -> tuple[tuple[str, str, int], ...]:
    """An `after` list as a message holds it: `[[link key, field, revision], ...]`; InvalidDelivery(`error`) else."""
    if not isinstance(value, list) or len(value) > len(fields) * MAX_LINKS:
        raise InvalidDelivery(error)
    for entry in value:
        if not (
            isinstance(entry, list)
            and len(entry) == 3
            and is_link_key(entry[0])
            and entry[1] in fields
            and isinstance(entry[2], int)
            and positive_int(entry[2]) is not None
        ):
            raise InvalidDelivery(error)
    return tuple((key, field, rev) for key, field, rev in value)
