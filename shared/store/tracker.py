"""The tracker side in Table Storage: installations, members, tracked issues and their links (contract §6).

Tables, chosen so that the delivery path uses point reads and single-partition queries only:

| table           | PartitionKey                    | RowKey              | what                                  |
|-----------------|---------------------------------|---------------------|---------------------------------------|
| `installations` | integration id                  | org id              | an org's sync settings for it         |
| `members`       | org id                          | email (lower-case)  | a member, for assignee matching       |
| `issues`        | org id                          | issue id            | a tracked issue: status, assignee,    |
|                 |                                 |                     | its links, activity, watermarks       |
| `links`         | `integration id|work item id`   | `org id|issue id`   | which issues link a work item         |
| `orgintegrations` | org id                        | integration id      | which integrations an org installed   |

A link lives in the issue (the truth, shown by GET) and in the `links` index (for the delivery path); the
index is written first and removed last, and a delivery ignores an index entry its issue does not confirm.
Issues are updated read-modify-write under their ETag, so concurrent deliveries never lose an update.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError

from shared.model.tracker import (
    UNRESOLVED,
    FieldDefault,
    Installation,
    Link,
    Member,
    StateRule,
    TrackedIssue,
    activity_json,
)
from shared.store import base, crypto

INSTALLATIONS = "installations"
MEMBERS = "members"
ISSUES = "issues"
LINKS = "links"
ORG_INTEGRATIONS = "orgintegrations"
# In an organization's index partition: its index is complete (installations saved before the index existed have
# been copied into it). No integration id starts with "!" (ids are keys, and uuids in practice).
INDEX_COMPLETE = "!complete"
MAX_UPDATE_ATTEMPTS = 20  # many deliveries for one work item may race on one issue


def _issue_entity(issue: TrackedIssue) -> dict[str, Any]:
    entity: dict[str, Any] = {
        "PartitionKey": issue.org_id,
        "RowKey": issue.issue_id,
        "Title": issue.title,
        "Status": issue.status,
        "Links": json.dumps([[link.integration_id, link.work_item_id] for link in issue.links]),
        "Activity": activity_json(issue.activity),
        "Watermarks": json.dumps(issue.watermarks, separators=(",", ":")),
    }
    if issue.assignee_email is not None:
        entity["AssigneeEmail"] = issue.assignee_email
        entity["AssigneeUserId"] = issue.assignee_user_id or ""
    if issue.url is not None:
        entity["Url"] = issue.url
    if issue.sentry_seen is not None:
        entity["SentrySeen"] = json.dumps(issue.sentry_seen, separators=(",", ":"))
    return entity


def _issue_from(entity: dict[str, Any]) -> TrackedIssue:
    return TrackedIssue(
        org_id=entity["PartitionKey"],
        issue_id=entity["RowKey"],
        title=entity.get("Title", ""),
        status=entity.get("Status", UNRESOLVED),
        assignee_email=entity.get("AssigneeEmail") or None,
        assignee_user_id=entity.get("AssigneeUserId") or None,
        url=entity.get("Url") or None,
        links=tuple(Link(i, int(w)) for i, w in json.loads(entity.get("Links") or "[]")),
        activity=tuple(json.loads(entity.get("Activity") or "[]")),
        watermarks=json.loads(entity.get("Watermarks") or "{}"),
        sentry_seen=json.loads(entity["SentrySeen"]) if entity.get("SentrySeen") else None,
        etag=entity.metadata.get("etag") if hasattr(entity, "metadata") else None,
    )


def _installation_from(e: dict[str, Any]) -> Installation:
    return Installation(
        integration_id=e["PartitionKey"],
        org_id=e["RowKey"],
        sync_reverse_assignment=bool(e.get("SyncReverseAssignment")),
        sync_status_reverse=bool(e.get("SyncStatusReverse")),
        resolve_states=tuple(json.loads(e.get("ResolveStates") or "[]")),
        sync_status_forward=bool(e.get("SyncStatusForward")),
        sync_forward_assignment=bool(e.get("SyncForwardAssignment")),
        sync_comments=bool(e.get("SyncComments")),
        sync_comments_reverse=bool(e.get("SyncCommentsReverse")),
        state_rules=tuple(StateRule(**rule) for rule in json.loads(e.get("StateRules") or "[]")),
        field_defaults=tuple(FieldDefault(**d) for d in json.loads(e.get("FieldDefaults") or "[]")),
        credentials=_credentials(e),
        # Saved before credentials had owners: an operator's API or a setup page made it, as a share.
        credential_shared=bool(e.get("CredentialShared", True)),
    )


def _credentials(e: dict[str, Any]) -> dict[str, Any]:
    sealed = e.get("Credentials")
    if not sealed:
        return {}
    try:
        return json.loads(crypto.decrypt(sealed))
    except crypto.DecryptionError:  # SECRETS_KEY changed: as if none were entered (the setup page asks again)
        return {}


class TrackerStore:
    """Installations, members, tracked issues and links. Storage failures raise `StorageUnavailable`."""

    # -- installations -------------------------------------------------------------------------------

    def put_installation(self, installation: Installation) -> bool:
        """Create or replace; True when it was created."""
        entity = {
            "PartitionKey": installation.integration_id,
            "RowKey": installation.org_id,
            "SyncReverseAssignment": installation.sync_reverse_assignment,
            "SyncStatusReverse": installation.sync_status_reverse,
            "ResolveStates": json.dumps(list(installation.resolve_states)),
            "SyncStatusForward": installation.sync_status_forward,
            "SyncForwardAssignment": installation.sync_forward_assignment,
            "SyncComments": installation.sync_comments,
            "SyncCommentsReverse": installation.sync_comments_reverse,
            "StateRules": json.dumps([rule.public() for rule in installation.state_rules]),
            "FieldDefaults": json.dumps([d.public() for d in installation.field_defaults]),
            "CredentialShared": installation.credential_shared,
        }
        if installation.credentials:
            entity["Credentials"] = crypto.encrypt_json(installation.credentials)
        # The index first: an index entry whose installation is missing is passed over; the reverse would hide it.
        base.upsert(
            ORG_INTEGRATIONS,
            {"PartitionKey": installation.org_id, "RowKey": installation.integration_id},
            "indexing an installation",
        )
        return self._put(INSTALLATIONS, entity, "saving an installation")

    def get_installation(self, integration_id: str, org_id: str) -> Installation | None:
        entity = base.read_entity(INSTALLATIONS, integration_id, org_id, "reading an installation")
        return _installation_from(entity) if entity is not None else None

    def installations_of(self, integration_id: str) -> list[Installation]:
        """Every organization's installation of an integration: one single-partition query."""
        entities = base.query(INSTALLATIONS, "PartitionKey eq @pk", {"pk": integration_id}, "reading installations")
        return [_installation_from(e) for e in entities]

    def integration_ids_for_org(self, org_id: str) -> list[str]:
        """The integrations an organization installed, by id: one single-partition query of its index (asked on
        each keystroke of a select option). The first time, installations saved before the index existed are
        found by a scan and indexed, once."""
        if not base.is_valid_key(org_id):
            return []
        rows = base.query(ORG_INTEGRATIONS, "PartitionKey eq @org", {"org": org_id}, "reading installations")
        ids = {row["RowKey"] for row in rows}
        if INDEX_COMPLETE not in ids:
            ids |= self._index_earlier_installations(org_id)
        ids.discard(INDEX_COMPLETE)
        return sorted(ids)

    def installations_for_org(self, org_id: str, limit: int = 100) -> list[Installation]:
        """An organization's installations, by integration id, for the status page's filter: a query on RowKey
        across partitions (a scan of a table with one row per installation; select options use the index above,
        this is only asked by an operator's page view)."""
        if not base.is_valid_key(org_id):
            return []
        entities = base.query(INSTALLATIONS, "RowKey eq @org", {"org": org_id}, "reading installations", limit=limit)
        return sorted((_installation_from(e) for e in entities), key=lambda i: i.integration_id)

    def _index_earlier_installations(self, org_id: str) -> set[str]:
        entities = base.query(
            INSTALLATIONS, "RowKey eq @org", {"org": org_id}, "reading installations", select=["PartitionKey"]
        )
        found = {entity["PartitionKey"] for entity in entities}
        for integration_id in sorted(found) + [INDEX_COMPLETE]:
            base.upsert(ORG_INTEGRATIONS, {"PartitionKey": org_id, "RowKey": integration_id}, "indexing installations")
        return found

    def list_installations(self, limit: int) -> list[Installation]:
        """Up to `limit` installations of every integration, in key order (one query; for the status page)."""
        entities = base.query(
            INSTALLATIONS,
            "PartitionKey ge @low",
            {"low": ""},
            "listing installations",
            results_per_page=min(limit, 1000),
            limit=limit,
        )
        return [_installation_from(e) for e in entities]

    # -- members ---------------------------------------------------------------------------------------

    def put_member(self, member: Member) -> bool:
        entity = {"PartitionKey": member.org_id, "RowKey": member.email, "UserId": member.user_id}
        if member.name is not None:
            entity["Name"] = member.name
        return self._put(MEMBERS, entity, "saving a member")

    def get_member(self, org_id: str, email: str) -> Member | None:
        entity = base.read_entity(MEMBERS, org_id, email, "reading a member")
        if entity is None:
            return None
        return Member(org_id, email, entity.get("UserId", ""), entity.get("Name"))

    def delete_member(self, org_id: str, email: str) -> bool:
        if base.read_entity(MEMBERS, org_id, email, "reading a member") is None:
            return False
        self._delete(MEMBERS, org_id, email, "deleting a member")
        return True

    # -- issues ----------------------------------------------------------------------------------------

    def get_issue(self, org_id: str, issue_id: str) -> TrackedIssue | None:
        entity = base.read_entity(ISSUES, org_id, issue_id, "reading an issue")
        return _issue_from(entity) if entity is not None else None

    def create_issue(self, issue: TrackedIssue) -> TrackedIssue | None:
        """Insert; None when an issue with that id exists already."""
        try:
            with base.storage_errors("creating an issue"):
                meta = base.write(base.table(ISSUES), lambda t: t.create_entity(_issue_entity(issue)))
        except ResourceExistsError:
            return None
        return replace(issue, etag=meta.get("etag"))

    def update_issue(
        self, org_id: str, issue_id: str, change: Callable[[TrackedIssue], TrackedIssue | None]
    ) -> TrackedIssue | None:
        """Apply `change` under the issue's ETag, re-reading and re-applying it when another writer won.

        `change` returns the new issue, or None for no change. Returns the stored issue (None if missing).
        """
        return base.update_with_etag(
            lambda: self.get_issue(org_id, issue_id),
            change,
            self._replace_issue_if_unchanged,
            attempts=MAX_UPDATE_ATTEMPTS,
            what=f"issue {org_id}/{issue_id}",
        )

    def issues_page(self, org_id: str, after: str, limit: int) -> list[TrackedIssue]:
        """Up to `limit` issues of the organization with ids after `after` (a single-partition query), without
        their activity (for a timer that pages through an organization's issues)."""
        entities = base.query(
            ISSUES,
            "PartitionKey eq @pk and RowKey gt @after",
            {"pk": org_id, "after": after},
            "listing issues",
            select=["PartitionKey", "RowKey", "Title", "Status", "AssigneeEmail", "Links", "SentrySeen"],
            results_per_page=limit,
            limit=limit,
        )
        return [_issue_from(e) for e in entities]

    def _replace_issue_if_unchanged(self, current: TrackedIssue, updated: TrackedIssue) -> TrackedIssue | None:
        with base.storage_errors("updating an issue"):
            etag = base.replace_entity_if_unchanged(base.table(ISSUES), _issue_entity(updated), current.etag)
        return replace(updated, etag=etag) if etag is not None else None

    # -- links -----------------------------------------------------------------------------------------

    def add_link_index(self, link: Link, org_id: str, issue_id: str) -> None:
        entity = {"PartitionKey": link.key, "RowKey": f"{org_id}|{issue_id}", "OrgId": org_id, "IssueId": issue_id}
        base.upsert(LINKS, entity, "saving a link")

    def remove_link_index(self, link: Link, org_id: str, issue_id: str) -> None:
        self._delete(LINKS, link.key, f"{org_id}|{issue_id}", "removing a link")

    def linked_issues(self, link: Link) -> list[tuple[str, str]]:
        """(org id, issue id) of every issue linked to the work item: one single-partition query."""
        entities = base.query(
            LINKS, "PartitionKey eq @pk", {"pk": link.key}, "reading links", select=["OrgId", "IssueId"]
        )
        return [(e["OrgId"], e["IssueId"]) for e in entities]

    def linked_work_items(self, integration_id: str) -> list[int]:
        """Every work item of the integration that some issue links (a key-range query, for the reconcile timer;
        `}` is the character after the `|` that ends the integration id in the key)."""
        entities = base.query(
            LINKS,
            "PartitionKey ge @low and PartitionKey lt @high",
            {"low": f"{integration_id}|", "high": f"{integration_id}}}"},
            "reading links",
            select=["PartitionKey"],
        )
        return sorted({w for w in (_work_item_of(e["PartitionKey"]) for e in entities) if w is not None})

    # -- shared ----------------------------------------------------------------------------------------

    @staticmethod
    def _put(table: str, entity: dict[str, Any], what: str) -> bool:
        """Create or replace; True when it was created."""
        existed = base.read_entity(table, entity["PartitionKey"], entity["RowKey"], what)
        base.upsert(table, entity, what)
        return existed is None

    @staticmethod
    def _delete(table: str, partition_key: str, row_key: str, what: str) -> None:
        try:
            with base.storage_errors(what):
                base.table(table).delete_entity(partition_key, row_key)
        except ResourceNotFoundError:
            pass  # already gone


def _work_item_of(partition_key: str) -> int | None:
    _, _, work_item = partition_key.rpartition("|")
    return int(work_item) if work_item.isdigit() else None
