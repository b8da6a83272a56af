"""One-time setup links (contract §14), in Table Storage.

| table        | PartitionKey                  | RowKey | what                                         |
|--------------|-------------------------------|--------|----------------------------------------------|
| `setuplinks` | sha256 (hex) of the link token | `link` | the tracker organization, expiry, when used |

Only the token's hash is stored, so reading the table never gives anyone a working link. A link is consumed by
a conditional replace under the ETag that was read: of two browsers opening the same link at once, one wins.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shared.store import base

LINKS = "setuplinks"
ROW = "link"
VALID = "valid"
UNKNOWN = "unknown"
EXPIRED = "expired"
USED = "used"


@dataclass(frozen=True)
class Consumed:
    """The outcome of opening a link: `state` VALID (and the organization) or why not."""

    state: str
    org_id: str | None = None


class SetupLinkStore:
    def create(self, token_hash: str, org_id: str, *, now: float, expires_at: float) -> None:
        """Record a new link; a hash that exists already is refused (tokens are random: it never happens)."""
        entity = {"PartitionKey": token_hash, "RowKey": ROW, "OrgId": org_id, "CreatedAt": now, "ExpiresAt": expires_at}
        with base.storage_errors("saving a setup link"):
            base.write(base.table(LINKS), lambda t: t.create_entity(entity))

    def peek(self, token_hash: str, *, now: float) -> Consumed:
        """What `consume` would find, without using the link (a GET, which mail and chat scanners send too)."""
        return self._read(token_hash, now)[0]

    def consume(self, token_hash: str, *, now: float) -> Consumed:
        """Mark the link used, once; UNKNOWN, EXPIRED or USED when it cannot open a session."""
        found, entity = self._read(token_hash, now)
        if entity is None:
            return found
        used = {key: entity[key] for key in ("PartitionKey", "RowKey", "OrgId", "CreatedAt", "ExpiresAt")}
        used["UsedAt"] = now
        with base.storage_errors("using a setup link"):
            etag = base.replace_entity_if_unchanged(base.table(LINKS), used, entity.metadata.get("etag"))
        return found if etag is not None else Consumed(USED)

    @staticmethod
    def _read(token_hash: str, now: float) -> tuple[Consumed, Any]:
        """The link's state now, and its entity when it is still valid (None otherwise)."""
        if not base.is_valid_key(token_hash):
            return Consumed(UNKNOWN), None
        entity = base.read_entity(LINKS, token_hash, ROW, "reading a setup link")
        if entity is None:
            return Consumed(UNKNOWN), None
        if entity.get("UsedAt") is not None:
            return Consumed(USED), None
        if not _number(entity.get("ExpiresAt")) > now:
            return Consumed(EXPIRED), None
        return Consumed(VALID, str(entity["OrgId"])), entity


def _number(value: Any) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0.0
