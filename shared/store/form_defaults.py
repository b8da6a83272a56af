"""The create form's last choices per Sentry installation and Sentry project (contract §17), offered as the
selects' defaults next time, as Sentry's own integration does (`get_persisted_default_config_fields`). In the
`state` table: PartitionKey `form-defaults|<installation uuid>`, RowKey the Sentry project's slug."""

from __future__ import annotations

from shared.store import base

TABLE = "state"
PREFIX = "form-defaults|"
REMEMBERED = ("project", "work_item_type", "area_path", "iteration_path")


class FormDefaultsStore:
    def get(self, installation_uuid: str, project_slug: str) -> dict[str, str]:
        if not base.is_valid_key(project_slug):
            return {}
        entity = base.read_entity(TABLE, PREFIX + installation_uuid, project_slug, "reading a form's last choices")
        return {name: str(entity[name]) for name in REMEMBERED if entity and entity.get(name)}

    def put(self, installation_uuid: str, project_slug: str, choices: dict[str, str]) -> None:
        if not base.is_valid_key(project_slug):
            return
        entity = {"PartitionKey": PREFIX + installation_uuid, "RowKey": project_slug}
        entity.update({name: choices[name] for name in REMEMBERED if choices.get(name)})
        base.upsert(TABLE, entity, "saving a form's last choices")
