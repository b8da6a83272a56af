"""Which linked work item a Sentry issue shows as this app's external issue (contract §13.2), in Table Storage.

Sentry keeps one external issue per issue and app (a second POST updates it in place, `update_or_create` on
group and app), and only its id lets the app remove it. So the app keeps, per tracked issue, the link it showed
and that id: a retry that finds the link shown sends nothing, and an unlink knows what to delete.

| table         | PartitionKey | RowKey   | what                                          |
|---------------|--------------|----------|-----------------------------------------------|
| `sentrylinks` | org id       | issue id | `LinkKey` (`<integration>|<work item>`), `ExternalId` |
"""

from __future__ import annotations

from dataclasses import dataclass

from azure.core.exceptions import ResourceNotFoundError

from shared.store import base

SHOWN_LINKS = "sentrylinks"


@dataclass(frozen=True)
class ShownLink:
    link_key: str  # the link Sentry shows: `<integration>|<work item>`
    external_id: str  # Sentry's id of the external issue, which its DELETE takes


class SentryLinkStore:
    """Storage failures raise `StorageUnavailable`."""

    def get(self, org_id: str, issue_id: str) -> ShownLink | None:
        entity = base.read_entity(SHOWN_LINKS, org_id, issue_id, "reading a Sentry external issue")
        if entity is None or not entity.get("LinkKey") or not entity.get("ExternalId"):
            return None
        return ShownLink(str(entity["LinkKey"]), str(entity["ExternalId"]))

    def put(self, org_id: str, issue_id: str, shown: ShownLink) -> None:
        entity = {"PartitionKey": org_id, "RowKey": issue_id}
        entity.update(LinkKey=shown.link_key, ExternalId=shown.external_id)
        base.upsert(SHOWN_LINKS, entity, "saving a Sentry external issue")

    def delete(self, org_id: str, issue_id: str) -> None:
        try:
            with base.storage_errors("forgetting a Sentry external issue"):
                base.table(SHOWN_LINKS).delete_entity(org_id, issue_id)
        except ResourceNotFoundError:
            pass  # already gone
