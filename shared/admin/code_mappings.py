"""Code mappings through the admin API (contract §18): the whole list of a tracker organization, replaced at once.

Validated completely before anything is written (`InvalidInput`, one sentence); every mapping's integration must
be one the organization installed, so a mapping never reaches into another organization's Azure DevOps.
"""

from __future__ import annotations

from shared.errors import InvalidInput
from shared.model.code_mappings import CodeMapping, parse_mappings
from shared.store.code_mappings import CodeMappingStore
from shared.store.tracker import TrackerStore
from shared.validation import require_id


def put_code_mappings(org_id: str, body: object) -> tuple[CodeMapping, ...]:
    org_id = require_id(org_id, "organization id")
    mappings = parse_mappings(body)
    installed = {i.lower() for i in TrackerStore().integration_ids_for_org(org_id)}
    for position, mapping in enumerate(mappings, 1):
        if mapping.integration_id not in installed:
            raise InvalidInput(
                f"Mapping {position}: the organization has not installed integration {mapping.integration_id}."
            )
    CodeMappingStore().put(org_id, mappings)
    return mappings


def get_code_mappings(org_id: str) -> tuple[CodeMapping, ...]:
    return CodeMappingStore().get(require_id(org_id, "organization id"))
