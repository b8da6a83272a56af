"""Parsing and verifying Azure DevOps service hook deliveries (contract §5.1-5.2), without any I/O.

Plain functions over bytes, headers and dicts, in the spirit of gidgethub's `sansio`: the HTTP adapter reads the
request, calls these, and maps `InvalidDelivery` to 400 and `BodyTooLarge` to 413. Everything here is defensive:
a delivery is untrusted input until its credential is checked, and even an authenticated one comes in several
shapes (documented samples, resourceVersion 1.0 strings, IdentityRef objects), so no odd shape may raise anything
but `InvalidDelivery`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import math
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "MAX_BODY_BYTES",
    "MAX_MESSAGE_CHARS",
    "AssigneeChange",
    "BodyTooLarge",
    "Delivery",
    "InvalidDelivery",
    "StateChange",
    "WorkItemUpdate",
    "email_from_identity",
    "extract_credential",
    "parse_delivery",
    "parse_workitem_update",
    "secret_matches",
]

MAX_BODY_BYTES = 2 * 1024 * 1024
# Azure DevOps ids are int32; anything outside this range is not a work item id or revision.
MAX_ID = 2**31 - 1
# Queue messages may hold 48 KiB once base64-encoded (64 KiB raw); the field caps below keep the worst case of
# to_message (every character \\u-escaped) under this, far below the limit.
MAX_MESSAGE_CHARS = 16 * 1024
MAX_NAME_CHARS = 128  # ids, work item type and state names: Azure DevOps' own names are far shorter
MAX_DATE_CHARS = 64  # ISO-8601, including Azure DevOps' blank-padded form "...09.493            Z"
MAX_EMAIL_CHARS = 254  # RFC 5321 path limit
MAX_DESCRIPTION_CHARS = 200
# Python's default int-from-string limit, enforced here whatever sys.set_int_max_str_digits says, so parsing a
# 2 MiB run of digits can never become quadratic.
_MAX_INT_DIGITS = 4300
_MESSAGE_VERSION = 1

_DIGITS = re.compile(r"[0-9]{1,20}")
# A plausible address: one "@", no whitespace and none of the characters that mark a display form, a quoted
# local part or an on-premises DOMAIN\user name; dot-separated non-empty domain labels.
_EMAIL = re.compile(r'[^\s@<>()\[\]\\,;:"]+@[^\s@<>()\[\]\\,;:"./]+(?:\.[^\s@<>()\[\]\\,;:"./]+)*')


class InvalidDelivery(ValueError):
    """The body is not a service hook delivery we can read (HTTP 400). The message never echoes the body."""


class BodyTooLarge(InvalidDelivery):
    """The body is over MAX_BODY_BYTES (HTTP 413)."""


@dataclass(frozen=True)
class Delivery:
    """The envelope of one service hook delivery, checked just enough to find the integration and event type."""

    event_type: str
    collection_id: str  # resourceContainers.collection.id exactly as given: the integration key
    event_id: str | None
    subscription_id: str | None
    notification_id: int | None
    # repr=False: a 2 MiB payload must never be dumped into a log line or a traceback.
    payload: dict[str, Any] = field(repr=False, hash=False)


@dataclass(frozen=True)
class AssigneeChange:
    unassign: bool  # System.AssignedTo has no newValue: the work item is now unassigned
    email: str | None  # the new assignee's email, lower-cased, when one can be read
    description: str  # short log-safe text saying where the email came from, or why there is none


@dataclass(frozen=True)
class StateChange:
    old: str | None  # None: no oldValue, i.e. a new work item (or an unreadable value)
    new: str | None  # None: no newValue (or an unreadable value)


@dataclass(frozen=True)
class WorkItemUpdate:
    """What apply_workitem_update needs from one `workitem.updated` delivery; small enough for a queue message."""

    integration_id: str
    work_item_id: int
    rev: int | None
    work_item_type: str | None
    project_id: str | None
    assignee: AssigneeChange | None  # None: System.AssignedTo did not change in this revision
    state: StateChange | None  # None: System.State did not change in this revision
    changed_date: str | None
    event_id: str | None

    def to_message(self) -> str:
        """Compact ASCII JSON for the Storage queue, at most MAX_MESSAGE_CHARS long.

        Names and ids over their caps become None rather than being cut (a cut state name or id would be a
        different, wrong one); only the log description is shortened. The integration id is the routing key and
        is never altered: one that is empty or too long raises InvalidDelivery.
        """
        if not isinstance(self.integration_id, str) or not 0 < len(self.integration_id) <= MAX_NAME_CHARS:
            raise InvalidDelivery("The integration id is empty or too long for a queue message.")
        if _int_id(self.work_item_id) is None:
            raise InvalidDelivery("The work item id is not a positive 32-bit integer.")
        assignee = None
        if self.assignee is not None:
            assignee = {
                "unassign": bool(self.assignee.unassign),
                "email": None if self.assignee.unassign else _clean_email(self.assignee.email),
                "description": _safe_text(self.assignee.description),
            }
        state = None
        if self.state is not None:
            state = {"old": _clean_name(self.state.old), "new": _clean_name(self.state.new)}
        message = {
            "v": _MESSAGE_VERSION,
            "integration_id": self.integration_id,
            "work_item_id": self.work_item_id,
            "rev": _int_id(self.rev),
            "work_item_type": _clean_name(self.work_item_type),
            "project_id": _clean_name(self.project_id),
            "assignee": assignee,
            "state": state,
            "changed_date": _clean_name(self.changed_date, MAX_DATE_CHARS),
            "event_id": _clean_name(self.event_id),
        }
        # ensure_ascii: the text is pure ASCII, so its length is its byte size and lone surrogates cannot break
        # the queue client's UTF-8 encoding.
        return json.dumps(message, separators=(",", ":"), ensure_ascii=True, allow_nan=False)

    @classmethod
    def from_message(cls, text: str) -> WorkItemUpdate:
        """The inverse of to_message. Raises InvalidDelivery for anything to_message could not have produced."""
        if not isinstance(text, str) or len(text) > MAX_MESSAGE_CHARS:
            raise InvalidDelivery("The queue message is not a work item update.")
        try:
            data = _loads(text)
        except InvalidDelivery:
            raise InvalidDelivery("The queue message is not valid JSON.") from None
        if not isinstance(data, dict) or _int_id(data.get("v")) != _MESSAGE_VERSION:  # not True, not 1.0
            raise InvalidDelivery("The queue message is not a version 1 work item update.")

        integration_id = data.get("integration_id")
        if not isinstance(integration_id, str) or not 0 < len(integration_id) <= MAX_NAME_CHARS:
            raise InvalidDelivery("The queue message has no valid integration_id.")
        work_item_id = _int_id(data.get("work_item_id"))
        if work_item_id is None:
            raise InvalidDelivery("The queue message has no valid work_item_id.")
        rev = data.get("rev")
        if rev is not None and _int_id(rev) is None:
            raise InvalidDelivery("The queue message has an invalid rev.")

        raw_assignee = data.get("assignee")
        assignee = None
        if raw_assignee is not None:
            if not isinstance(raw_assignee, dict) or not isinstance(raw_assignee.get("unassign"), bool):
                raise InvalidDelivery("The queue message has an invalid assignee.")
            email = raw_assignee.get("email")
            description = raw_assignee.get("description")
            if email is not None and (raw_assignee["unassign"] or _clean_email(email) != email):
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

        return cls(
            integration_id=integration_id,
            work_item_id=work_item_id,
            rev=rev,
            work_item_type=names["work_item_type"],
            project_id=names["project_id"],
            assignee=assignee,
            state=state,
            changed_date=names["changed_date"],
            event_id=names["event_id"],
        )


# --- the envelope ------------------------------------------------------------------------------------------------


def parse_delivery(body: bytes) -> Delivery:
    """Parse a delivery body. Raises BodyTooLarge or InvalidDelivery, and nothing else, whatever the bytes."""
    if len(body) > MAX_BODY_BYTES:
        raise BodyTooLarge("The body is larger than 2 MiB.")
    try:
        # utf-8-sig: tolerate a byte order mark, which some .NET senders write; anything else must be UTF-8.
        text = bytes(body).decode("utf-8-sig")
    except (UnicodeDecodeError, TypeError):
        raise InvalidDelivery("The body is not UTF-8 text.") from None
    payload = _loads(text)
    if not isinstance(payload, dict):
        raise InvalidDelivery("The body is not a JSON object.")
    event_type = payload.get("eventType")
    if not isinstance(event_type, str):
        raise InvalidDelivery("The delivery has no string eventType.")
    containers = payload.get("resourceContainers")
    collection = containers.get("collection") if isinstance(containers, dict) else None
    collection_id = collection.get("id") if isinstance(collection, dict) else None
    if not isinstance(collection_id, str):
        raise InvalidDelivery("The delivery has no string resourceContainers.collection.id.")
    event_id = payload.get("id")
    subscription_id = payload.get("subscriptionId")
    notification_id = payload.get("notificationId")
    return Delivery(
        event_type=event_type,
        collection_id=collection_id,
        event_id=event_id if isinstance(event_id, str) else None,
        subscription_id=subscription_id if isinstance(subscription_id, str) else None,
        # Bounded to Int64 so the caller can store it in Table Storage as is.
        notification_id=notification_id if _is_int(notification_id) and 0 <= notification_id < 2**63 else None,
        payload=payload,
    )


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _parse_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e999: valid syntax, but it would break any strict re-serialisation
        raise ValueError("number out of range")
    return value


def _parse_int(text: str) -> int:
    if len(text) > _MAX_INT_DIGITS:
        raise ValueError("integer too long")
    return int(text)


def _loads(text: str) -> Any:
    """json.loads, strict (no NaN/Infinity), mapping every failure - including deep nesting - to InvalidDelivery."""
    try:
        return json.loads(text, parse_constant=_reject_constant, parse_float=_parse_float, parse_int=_parse_int)
    except (ValueError, RecursionError):
        # ValueError covers JSONDecodeError and our parse_* refusals; RecursionError comes from deep nesting.
        raise InvalidDelivery("The body is not valid JSON.") from None


# --- the credential ----------------------------------------------------------------------------------------------


def _header(headers: Mapping[str, str], name: str) -> str | None:
    """A header value by case-insensitive name; works for plain dicts as well as case-insensitive mappings."""
    for key, value in headers.items():
        if isinstance(key, str) and key.lower() == name and isinstance(value, str):
            return value
    return None


def extract_credential(headers: Mapping[str, str]) -> str | None:
    """The secret a delivery presents: header Shared-Secret, else the password of HTTP Basic auth; None if none."""
    shared = _header(headers, "shared-secret")
    if shared is not None and shared.strip():
        return shared.strip()
    authorization = _header(headers, "authorization")
    if authorization is None:
        return None
    parts = authorization.strip().split(None, 1)
    if len(parts) != 2 or parts[0].lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(parts[1].strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):  # bad base64, non-ASCII header text, or bytes that are not UTF-8
        return None
    _user, sep, password = decoded.partition(":")
    return password if sep and password else None


def _digest(secret: object) -> bytes:
    text = secret if isinstance(secret, str) else ""
    # surrogatepass: a lone surrogate from a header must hash, not raise.
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()


def secret_matches(presented: str | None, accepted: Sequence[str]) -> bool:
    """Whether `presented` equals one of `accepted`, in time that reveals neither which one nor how many match.

    Comparing fixed-length SHA-256 digests hides the secrets' lengths; every accepted secret is compared (no early
    exit), and a missing credential costs the same work.
    """
    present = isinstance(presented, str) and presented != ""
    mine = _digest(presented if present else "")
    matched = False
    for candidate in accepted:
        matched |= hmac.compare_digest(mine, _digest(candidate))
    return matched and present


# --- the work item update ----------------------------------------------------------------------------------------


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _int_id(value: object) -> int | None:
    """The value when it is an int (not a bool) in 1..MAX_ID, else None."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value <= MAX_ID:
        return value
    return None


def _positive_id(value: object) -> int | None:
    """A positive int32 from an int or an ASCII digit string (real payloads use numbers, the samples strings)."""
    if isinstance(value, str):
        digits = value.strip()
        # ASCII digits only: int() would also take "1_000", " ５" and other forms Azure DevOps never sends.
        return _int_id(int(digits)) if _DIGITS.fullmatch(digits) else None
    return _int_id(value)


def _get(value: object, *path: str) -> object:
    """value[path[0]][path[1]]..., or None as soon as a level is missing or not a dict."""
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def _clean_name(value: object, cap: int = MAX_NAME_CHARS) -> str | None:
    """A name or id as given, or None when it is not a non-blank string of at most `cap` characters without
    control characters or lone surrogates (such a value is unreadable, and cutting it would change its meaning)."""
    if not isinstance(value, str) or not value.strip() or len(value) > cap:
        return None
    if any(unicodedata.category(ch) in ("Cc", "Cs") for ch in value):
        return None
    return value


def _safe_text(value: object, cap: int = MAX_DESCRIPTION_CHARS) -> str:
    """Text safe for a log line: control, format (bidi overrides), surrogate and line-separator characters become
    "?", and it is cut to `cap` characters."""
    text = value if isinstance(value, str) else ""
    text = "".join("?" if unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Zl", "Zp") else ch for ch in text)
    return text if len(text) <= cap else text[: cap - 1] + "…"


def _quoted(value: str, cap: int = 120) -> str:
    text = _safe_text(value.strip(), cap)
    return f"'{text}'"


def _clean_email(value: object) -> str | None:
    """A plausible email address, lower-cased, or None."""
    if not isinstance(value, str):
        return None
    # Lower-case first: lower() can lengthen a string ("İ" -> "i̇"), and the checks must hold for the result.
    email = value.strip().lower()
    if not email or len(email) > MAX_EMAIL_CHARS or not _EMAIL.fullmatch(email):
        return None
    if any(unicodedata.category(ch)[0] in ("C", "Z") for ch in email):
        return None
    return email


def _email_from_text(text: str) -> tuple[str | None, str]:
    """From "Display Name <email>" (resourceVersion 1.0) or a bare email: the email and a log description."""
    stripped = text.strip()
    if stripped.endswith(">") and "<" in stripped:
        # The address is the last <...>, so a display name that itself contains "<" cannot confuse it.
        inner = stripped[stripped.rindex("<") + 1 : -1]
        email = _clean_email(inner)
        if email is not None:
            return email, "email read from a 'Name <email>' value"
        return None, f"no email in {_quoted(stripped)}"
    email = _clean_email(stripped)
    if email is not None:
        return email, "email read from a bare email value"
    return None, f"no email in {_quoted(stripped)}"


def _read_identity(value: object) -> tuple[str | None, str]:
    """The email of an identity value in any shape Azure DevOps uses, and a log description of the outcome."""
    if isinstance(value, str):
        return _email_from_text(value)
    if isinstance(value, dict):
        # IdentityRef (resourceVersion 5.x and later): uniqueName is the sign-in name, an email for Entra users
        # and DOMAIN\user on premises; mailAddress, when present, is the email itself.
        for key in ("uniqueName", "mailAddress"):
            candidate = value.get(key)
            if isinstance(candidate, str):
                email, _ = _email_from_text(candidate)
                if email is not None:
                    return email, f"email read from an identity's {key}"
        name = value.get("displayName")
        if isinstance(name, str) and name.strip():
            return None, f"no email in identity {_quoted(name)}"
        return None, "no email in an identity object without uniqueName or mailAddress"
    if isinstance(value, bool):
        return None, "the assignee value is a boolean, not a name or identity"
    if isinstance(value, int | float):
        return None, "the assignee value is a number, not a name or identity"  # never str() a huge int
    if isinstance(value, list):
        return None, "the assignee value is a list, not a name or identity"
    return None, "the assignee value is not a name or identity"


def email_from_identity(value: object) -> str | None:
    """The lower-cased email of "Display Name <email>", a bare email, or an identity object; else None."""
    return _read_identity(value)[0]


def _assignee_change(assigned_to: object) -> AssigneeChange:
    if not isinstance(assigned_to, dict):
        return AssigneeChange(False, None, "System.AssignedTo is not an {oldValue, newValue} object")
    new = assigned_to.get("newValue")
    # No newValue means the field was cleared: after this revision nobody is assigned. A blank string says the same.
    if new is None or (isinstance(new, str) and not new.strip()):
        return AssigneeChange(True, None, "the assignee was cleared")
    email, description = _read_identity(new)
    return AssigneeChange(False, email, _safe_text(description))


def _state_change(state: object) -> StateChange | None:
    if not isinstance(state, dict):
        return None
    # Blank or unreadable names count as absent: an old value of "" is a new work item, a new one of "" is nothing.
    return StateChange(old=_clean_name(state.get("oldValue")), new=_clean_name(state.get("newValue")))


def _work_item_id(resource: object) -> int | None:
    # The documented sample carries workItemId 0 and the real id only in revision.id; real deliveries carry both.
    work_item_id = _positive_id(_get(resource, "workItemId"))
    if work_item_id is None:
        work_item_id = _positive_id(_get(resource, "revision", "id"))
    return work_item_id


def parse_workitem_update(delivery: Delivery) -> WorkItemUpdate | None:
    """The sync-relevant facts of a `workitem.updated` delivery, or None when it names no usable work item.

    Odd shapes never raise: a field that is missing, null or of the wrong type is treated as absent or unreadable.
    (No catch-all here on purpose: a bug must surface as a 500 that Azure DevOps retries, not as "ignored".)
    """
    payload = delivery.payload
    resource = _get(payload, "resource")
    work_item_id = _work_item_id(resource)
    if work_item_id is None:
        return None
    rev = _positive_id(_get(resource, "rev"))
    if rev is None:
        rev = _positive_id(_get(resource, "revision", "rev"))

    fields = _get(resource, "fields")
    changed = fields if isinstance(fields, dict) else {}
    assignee = _assignee_change(changed["System.AssignedTo"]) if "System.AssignedTo" in changed else None
    state = _state_change(changed.get("System.State"))

    changed_date = _clean_name(_get(resource, "revision", "fields", "System.ChangedDate"), MAX_DATE_CHARS)
    if changed_date is None:
        changed_date = _clean_name(_get(changed, "System.ChangedDate", "newValue"), MAX_DATE_CHARS)

    return WorkItemUpdate(
        integration_id=delivery.collection_id,
        work_item_id=work_item_id,
        rev=rev,
        work_item_type=_clean_name(_get(resource, "revision", "fields", "System.WorkItemType")),
        project_id=_clean_name(_get(payload, "resourceContainers", "project", "id")),
        assignee=assignee,
        state=state,
        changed_date=changed_date,
        event_id=_clean_name(delivery.event_id),
    )
