"""The sync-relevant facts of a `workitem.updated` delivery (contract §5.2), without any I/O.

Defensive: even an authenticated delivery comes in several shapes (documented samples, resourceVersion 1.0
strings, IdentityRef objects), so no odd shape may raise: a field that is missing, null or of the wrong type is
treated as absent or unreadable.
"""

from __future__ import annotations

import unicodedata

from shared.deliveries.envelope import Delivery
from shared.model.changes import AssigneeChange, StateChange, WorkItemUpdate
from shared.validation import normalize_email, positive_int

MAX_NAME_CHARS = 128  # ids, work item type and state names: Azure DevOps' own names are far shorter
MAX_DATE_CHARS = 64  # ISO-8601, including Azure DevOps' blank-padded form "...09.493            Z"
MAX_DESCRIPTION_CHARS = 200


def _id_of(value: object) -> int | None:
    """A positive int32 from an int or an ASCII digit string (real payloads use numbers, the samples strings)."""
    return positive_int(value.strip() if isinstance(value, str) else value)


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


def _email_from_text(text: str) -> tuple[str | None, str]:
    """From "Display Name <email>" (resourceVersion 1.0) or a bare email: the email and a log description."""
    stripped = text.strip()
    if stripped.endswith(">") and "<" in stripped:
        # The address is the last <...>, so a display name that itself contains "<" cannot confuse it.
        inner = stripped[stripped.rindex("<") + 1 : -1]
        email = normalize_email(inner)
        if email is not None:
            return email, "email read from a 'Name <email>' value"
        return None, f"no email in {_quoted(stripped)}"
    email = normalize_email(stripped)
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
    work_item_id = _id_of(_get(resource, "workItemId"))
    if work_item_id is None:
        work_item_id = _id_of(_get(resource, "revision", "id"))
    return work_item_id


def parse_workitem_commented(delivery: Delivery) -> WorkItemUpdate | None:
    """A `workitem.commented` delivery (reference §1.3: the resource is the work item, `resource.id` its id, the
    comment HTML in `System.History`, and `commentVersionRef.commentId` in real payloads). Only the work item and
    the comment id are kept: the text is read through the Comments API, since the delivery's rendered HTML
    cannot tell the app's own comments from others'. None when it names no usable work item."""
    payload = delivery.payload
    resource = _get(payload, "resource")
    work_item_id = _id_of(_get(resource, "id"))
    if work_item_id is None:
        return None
    return WorkItemUpdate(
        integration_id=delivery.collection_id,
        work_item_id=work_item_id,
        rev=_id_of(_get(resource, "rev")),
        work_item_type=_clean_name(_get(resource, "fields", "System.WorkItemType")),
        project_id=_clean_name(_get(payload, "resourceContainers", "project", "id")),
        assignee=None,
        state=None,
        changed_date=_clean_name(_get(resource, "fields", "System.ChangedDate"), MAX_DATE_CHARS),
        event_id=_clean_name(delivery.event_id),
        commented=True,
        comment_id=_id_of(_get(resource, "commentVersionRef", "commentId")),
    )


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
    rev = _id_of(_get(resource, "rev"))
    if rev is None:
        rev = _id_of(_get(resource, "revision", "rev"))

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
