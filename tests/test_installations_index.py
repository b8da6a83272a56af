"""The integrations an organization installed are read from an index per organization, one single-partition
query, never a scan of every installation (issue 18, finding 10: a select option asks on each keystroke)."""

from __future__ import annotations

from urllib.parse import unquote

import pytest

from shared.model.tracker import Installation
from shared.store import base
from shared.store.tracker import INSTALLATIONS, TrackerStore
from tests.helpers import count_storage_requests, new_id

pytestmark = pytest.mark.usefixtures("azurite")


def test_an_organizations_integrations_are_one_partition_query_of_its_index() -> None:
    store, org, other = TrackerStore(), f"org-{new_id()[:8]}", f"org-{new_id()[:8]}"
    mine = sorted(new_id() for _ in range(3))
    for integration_id in mine:
        store.put_installation(Installation(integration_id, org))
        store.put_installation(Installation(integration_id, other))
    store.put_installation(Installation(new_id(), other))
    assert store.integration_ids_for_org(org) == mine  # the first time also looks for earlier installations, once
    with count_storage_requests() as seen:
        ids = store.integration_ids_for_org(org)
    assert ids == mine
    [request] = seen
    assert f"/{INSTALLATIONS}(" not in request and f"/{INSTALLATIONS}()" not in request  # not the whole table
    assert f"PartitionKey eq '{org}'" in unquote(request).replace("+", " ")


def test_an_organization_with_none_is_an_empty_list() -> None:
    assert TrackerStore().integration_ids_for_org(f"org-{new_id()[:8]}") == []
    assert TrackerStore().integration_ids_for_org("bad/key") == []


def test_installations_saved_before_the_index_existed_are_found_and_indexed_once() -> None:
    store, org, earlier, later = TrackerStore(), f"org-{new_id()[:8]}", new_id(), new_id()
    base.upsert(INSTALLATIONS, {"PartitionKey": earlier, "RowKey": org}, "an installation saved by an older version")
    store.put_installation(Installation(later, org))
    assert store.integration_ids_for_org(org) == sorted([earlier, later])
    with count_storage_requests() as seen:
        assert store.integration_ids_for_org(org) == sorted([earlier, later])
    assert len(seen) == 1
