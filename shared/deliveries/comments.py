"""A comment change (`shared.model.comments.CommentChange`) as a `vsts-outbound` queue message, and back: the
same compact ASCII JSON as the field changes (`shared.deliveries.outbound`) under its own `kind`, checked both
ways, so the two kinds share the queue and a message of either kind is never read as the other."""

from __future__ import annotations

from typing import Any

from shared.deliveries.envelope import InvalidDelivery, loads
from shared.deliveries.message import MAX_MESSAGE_CHARS
from shared.deliveries.outbound import decode_message, encode_message, is_link_key
from shared.model.comments import CommentChange
from shared.model.tracker import MAX_LINKS
from shared.validation import is_valid_id

_KIND = "comment"
_KEYS = {"v", "kind", "org_id", "issue_id", "comment_id", "only", "attempt"}


def is_comment_message(text: str) -> bool:
    """Whether a `vsts-outbound` message says it is a comment change (whether it is a valid one is for
    read_comment_message to say)."""
    try:
        data = loads(text) if isinstance(text, str) and len(text) <= MAX_MESSAGE_CHARS else None
    except InvalidDelivery:
        return False
    return isinstance(data, dict) and data.get("kind") == _KIND


def to_comment_message(change: CommentChange, *, attempt: int = 0) -> str:
    message: dict[str, Any] = {"org_id": change.org_id, "issue_id": change.issue_id, "comment_id": change.comment_id}
    if change.only:
        message["only"] = list(change.only)
    text = encode_message(_KIND, message, attempt)
    read_comment_message(text)  # what is written must read back: a bad change fails here, not in the worker
    return text


def read_comment_message(text: str) -> tuple[CommentChange, int]:
    """The change and its attempt count. Raises InvalidDelivery for anything to_comment_message cannot write."""
    data, attempt = decode_message(text, _KIND, _KEYS, "a comment change")
    ids = [data.get(key) for key in ("org_id", "issue_id", "comment_id")]
    if not all(is_valid_id(value) for value in ids):
        raise InvalidDelivery("The comment change names no valid comment.")
    only = data.get("only", [])
    if not isinstance(only, list) or len(only) > MAX_LINKS or not all(is_link_key(v) for v in only):
        raise InvalidDelivery("The comment change has an invalid only list.")
    return CommentChange(ids[0], ids[1], ids[2], only=tuple(dict.fromkeys(only))), attempt
