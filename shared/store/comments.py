"""Comments of tracked issues in Table Storage (contract §12.3).

| table      | PartitionKey       | RowKey     | what                                                              |
|------------|--------------------|------------|-------------------------------------------------------------------|
| `comments` | `org id|issue id`  | comment id | author, text, when, version, deleted, and per linked work item    |
|            |                    |            | the copy there (`Remote`: Azure DevOps' comment id, or the claim) |

One partition per issue, so an issue's comments are one single-partition query. Updates are read-modify-write
under the entity's ETag, so the worker recording a copy and a person editing the comment never lose each other's
change. A deleted comment stays as a tombstone without its text: its copies still have to be deleted.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError

from shared.model.comments import Comment, RemoteCopy
from shared.store import base

COMMENTS = "comments"
MAX_UPDATE_ATTEMPTS = 10
MAX_LISTED = 1000


def _partition(org_id: str, issue_id: str) -> str:
    return f"{org_id}|{issue_id}"


def _entity(comment: Comment) -> dict[str, Any]:
    return {
        "PartitionKey": _partition(comment.org_id, comment.issue_id),
        "RowKey": comment.comment_id,
        "Author": comment.author,
        "Text": comment.text,
        "At": float(comment.at),
        "Version": comment.version,
        "Deleted": comment.deleted,
        "Remote": json.dumps({key: copy.to_json() for key, copy in comment.remote.items()}, separators=(",", ":")),
    }


def _comment(entity: Any) -> Comment:
    org_id, _, issue_id = entity["PartitionKey"].partition("|")
    remote = json.loads(entity.get("Remote") or "{}")
    return Comment(
        org_id=org_id,
        issue_id=issue_id,
        comment_id=entity["RowKey"],
        author=entity.get("Author", ""),
        text=entity.get("Text", ""),
        at=float(entity.get("At", 0.0)),
        version=int(entity.get("Version", 1)),
        deleted=bool(entity.get("Deleted")),
        remote={key: RemoteCopy.from_json(value) for key, value in remote.items()},
        etag=entity.metadata.get("etag") if hasattr(entity, "metadata") else None,
    )


class CommentStore:
    """Storage failures raise `StorageUnavailable` (or `TooLargeToStore`)."""

    def create(self, comment: Comment) -> bool:
        """Insert; False when a comment with that id exists already."""
        try:
            with base.storage_errors("saving a comment"):
                base.write(base.table(COMMENTS), lambda t: t.create_entity(_entity(comment)))
        except ResourceExistsError:
            return False
        return True

    def get(self, org_id: str, issue_id: str, comment_id: str) -> Comment | None:
        entity = base.read_entity(COMMENTS, _partition(org_id, issue_id), comment_id, "reading a comment")
        return _comment(entity) if entity is not None else None

    def comments_of(self, org_id: str, issue_id: str) -> list[Comment]:
        """An issue's comments, deleted ones included, oldest first (their ids sort by time)."""
        entities = base.query(
            COMMENTS, "PartitionKey eq @pk", {"pk": _partition(org_id, issue_id)}, "reading comments", limit=MAX_LISTED
        )
        return [_comment(e) for e in entities]

    def update(
        self, org_id: str, issue_id: str, comment_id: str, change: Callable[[Comment], Comment | None]
    ) -> Comment | None:
        """Apply `change` (None: no change) under the ETag, re-reading and re-applying it when another writer
        won. Returns the stored comment (None if missing)."""
        return base.update_with_etag(
            lambda: self.get(org_id, issue_id, comment_id),
            change,
            self._replace_if_unchanged,
            attempts=MAX_UPDATE_ATTEMPTS,
            what=f"comment {org_id}/{issue_id}/{comment_id}",
        )

    def remove(self, org_id: str, issue_id: str, comment_id: str) -> None:
        """Delete the entity itself (a comment whose creation is being undone); gone already is fine."""
        try:
            with base.storage_errors("removing a comment"):
                base.table(COMMENTS).delete_entity(_partition(org_id, issue_id), comment_id)
        except ResourceNotFoundError:
            pass

    @staticmethod
    def _replace_if_unchanged(current: Comment, updated: Comment) -> Comment | None:
        with base.storage_errors("updating a comment"):
            etag = base.replace_entity_if_unchanged(base.table(COMMENTS), _entity(updated), current.etag)
        return replace(updated, etag=etag) if etag is not None else None
