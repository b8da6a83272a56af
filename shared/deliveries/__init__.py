"""What arrives, parsed and checked without any I/O, in the spirit of gidgethub's `sansio`: the envelope of a
service hook delivery, the credential it presents, the work item change it carries, and that change as a queue
message. The HTTP adapter reads the request, calls these, and maps `InvalidDelivery` to 400 and `BodyTooLarge` to
413; no odd shape may raise anything else.
"""

from shared.deliveries.credential import extract_credential, secret_matches
from shared.deliveries.envelope import MAX_BODY_BYTES, Delivery, InvalidDelivery, parse_delivery
from shared.deliveries.message import MAX_MESSAGE_CHARS, from_message, read_message, to_message
from shared.deliveries.workitem import email_from_identity, parse_workitem_commented, parse_workitem_update
from shared.errors import BodyTooLarge
from shared.model.changes import AssigneeChange, StateChange, WorkItemUpdate

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
    "from_message",
    "parse_delivery",
    "parse_workitem_commented",
    "parse_workitem_update",
    "read_message",
    "secret_matches",
    "to_message",
]
