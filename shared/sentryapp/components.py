"""The Sentry App's UI components (contract §13.1): the issue-link schema to paste into Sentry, and the options
of its select fields (Azure DevOps projects, work item types, work items).

Every request names a Sentry installation (`installationId`); it must be known here and active (404 otherwise).
Its tracker organization `sentry-<slug>` has installed one or more Azure DevOps integrations, and a select's
values say which (`<integration id>|<project name or work item id>`, see `shared.deliveries.sentry_ui`).

What an option request costs: one point read of the installation and one small query of the organization's
integrations, then per integration what `shared.lookups` costs (projects and types: a read of the integration
and a cache read, no Azure DevOps request when cached; work items: the integration and one search request,
plus one read of the work item when the query is a number).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from shared.ado.client import AdoNotFound
from shared.deliveries.sentry_ui import (
    AREA_PATH,
    CHOICE_SEPARATOR,
    DESCRIPTION,
    EXTRA_FIELDS,
    ITERATION_PATH,
    PARENT,
    PRIORITY,
    PROJECT,
    SEVERITY,
    TAGS,
    TITLE,
    WORK_ITEM,
    WORK_ITEM_TYPE,
    Choice,
    OptionsRequest,
    parse_choice,
)
from shared.errors import InvalidInput, NotFound
from shared.lookups import issues as lookups
from shared.lookups.forms import Forms
from shared.model.integration import IntegrationNotFound, normalize_id
from shared.model.sentry import SentryInstallation
from shared.store.form_defaults import FormDefaultsStore
from shared.store.integrations import IntegrationStore
from shared.store.sentry import SentryStore
from shared.store.tracker import TrackerStore
from shared.validation import positive_int

# The routes of functions/sentry_components.py. Sentry puts a `uri` on the host of the webhook URL (the path is
# replaced, not appended to), so each is the full path, /api included.
CREATE_URI = "/api/sentry/issue-link/create"
LINK_URI = "/api/sentry/issue-link/link"
OPTIONS_URI = "/api/sentry/options/"
STACKTRACE_LINK_URI = "/api/sentry/stacktrace-link"  # shared.sentryapp.stacktrace_links (contract §18)
PROJECTS, WORK_ITEM_TYPES, WORK_ITEMS = "projects", "workitemtypes", "workitems"
MAX_OPTIONS = 100  # Sentry's select shows a few; typing narrows the list
RECENT_SECONDS = 300.0  # an integration read by the lookup just made names its options (no second read)

NO_INSTALLATION = "This Sentry installation is not known to the app, or it was uninstalled; install the app again."
NO_INTEGRATION = (
    "No Azure DevOps organization is connected to this Sentry organization yet; connect one in the app's setup."
)
NOT_CONNECTED = "That Azure DevOps organization is not connected to this Sentry organization; choose from the list."
NO_SEARCH = "Work item search is not available in this Azure DevOps organization; type a work item id instead."


def _select(name: str, label: str, kind: str, **extra: Any) -> dict[str, Any]:
    return {"type": "select", "name": name, "label": label, "uri": OPTIONS_URI + kind, "async": True, **extra}


def schema() -> dict[str, Any]:
    """The `issue-link` element (Sentry validates it against its schema when it is saved). The selects are
    `async` (Sentry asks again as a person types, and the answers are filtered by what was typed), the work item
    type `depends_on` the project, and the work item search waits for typing (`skip_load_on_open`)."""
    create = {
        "uri": CREATE_URI,
        "required_fields": [
            _select(PROJECT, "Azure DevOps project", PROJECTS),
            _select(WORK_ITEM_TYPE, "Work item type", WORK_ITEM_TYPES, depends_on=[PROJECT]),
            {"type": "text", "name": TITLE, "label": "Title", "default": "issue.title"},
        ],
        "optional_fields": [
            {"type": "textarea", "name": DESCRIPTION, "label": "Description", "default": "issue.description"},
            {"type": "text", "name": AREA_PATH, "label": "Area path (for example Project\\Team)"},
            *_more_fields(),
        ],
    }
    link = {
        "uri": LINK_URI,
        "required_fields": [
            _select(WORK_ITEM, "Work item (its id or words of its title)", WORK_ITEMS, skip_load_on_open=True),
        ],
    }
    stacktrace_link = {"type": "stacktrace-link", "uri": STACKTRACE_LINK_URI}
    return {"elements": [{"type": "issue-link", "link": link, "create": create}, alert_rule_action(), stacktrace_link]}


ALERT_RULE_URI = "/api/sentry/alert-rule-action"
PRIORITIES = [[value, value] for value in ("1", "2", "3", "4")]
# Microsoft.VSTS.Common.Severity's allowed values in the Agile, Scrum and CMMI processes.
SEVERITIES = [[value, value] for value in ("1 - Critical", "2 - High", "3 - Medium", "4 - Low")]


ON_RESOLVE = [["comment", "Comment on the work item"], ["resolve", "Comment on it and resolve it"]]


def _more_fields() -> list[dict[str, Any]]:
    """The create form's optional fields beyond the area path (contract §17)."""
    return [
        {"type": "text", "name": ITERATION_PATH, "label": "Iteration path (for example Project\\Sprint 1)"},
        {"type": "text", "name": TAGS, "label": "Tags (separated by ; or ,)"},
        {"type": "select", "name": PRIORITY, "label": "Priority", "options": PRIORITIES},
        {"type": "select", "name": SEVERITY, "label": "Severity (where the type has one)", "options": SEVERITIES},
        _select(PARENT, "Parent work item (its id or words of its title)", WORK_ITEMS, skip_load_on_open=True),
        {"type": "textarea", "name": EXTRA_FIELDS, "label": "Other fields, one 'Reference.Name: value' a line"},
    ]


def alert_rule_action() -> dict[str, Any]:
    """The `alert-rule-action` element (contract §17): the settings of "Create an Azure DevOps work item" in an
    issue or metric alert rule, checked by `ALERT_RULE_URI` when the rule is saved. Priority and severity are
    plain selects (Sentry checks their values); the others come from Azure DevOps. Field names are those of
    `shared.sentryapp.alerts`."""
    settings = {
        "type": "alert-rule-settings",
        "uri": ALERT_RULE_URI,
        "description": "Creates one Azure DevOps work item per Sentry issue (or metric alert incident) and links it.",
        "required_fields": [
            _select(PROJECT, "Azure DevOps project", PROJECTS),
            _select(WORK_ITEM_TYPE, "Work item type", WORK_ITEM_TYPES, depends_on=[PROJECT]),
        ],
        "optional_fields": [
            {"type": "text", "name": AREA_PATH, "label": "Area path (for example Project\\Team)"},
            *[f for f in _more_fields() if f["name"] != PARENT],
            {"type": "select", "name": "on_resolve", "label": "When a metric alert resolves", "options": ON_RESOLVE},
        ],
    }
    return {"type": "alert-rule-action", "title": "Create an Azure DevOps work item", "settings": settings}


@dataclass(frozen=True)
class Connected:
    """A Sentry installation and the Azure DevOps integrations its organization installed."""

    installation: SentryInstallation
    integration_ids: tuple[str, ...]

    @property
    def org_id(self) -> str:
        return self.installation.org_id

    def integration_for(self, choice: Choice, what: str) -> str:
        """The integration a select's value names, or the only one; NotFound or InvalidInput otherwise."""
        if choice.integration_id is not None:
            integration_id = normalize_id(choice.integration_id)
            if integration_id not in self.integration_ids:
                raise NotFound(NOT_CONNECTED)
            return integration_id
        if not self.integration_ids:
            raise NotFound(NO_INTEGRATION)
        if len(self.integration_ids) > 1:
            raise InvalidInput(f"Several Azure DevOps organizations are connected; choose the {what} from the list.")
        return self.integration_ids[0]


def connected(installation_uuid: str) -> Connected:
    """Two storage requests: the installation (404 unless active) and its organization's integrations."""
    installation = SentryStore().get(installation_uuid)
    if installation is None or not installation.active:
        raise NotFound(NO_INSTALLATION)
    installed = TrackerStore().integration_ids_for_org(installation.org_id)
    return Connected(installation, tuple(normalize_id(integration_id) for integration_id in installed))


def _named(connection: Connected, integration_id: str, label: str) -> str:
    """`label`, prefixed by the integration's name when the organization has several."""
    if len(connection.integration_ids) < 2:
        return label
    integration = IntegrationStore().recently_read(integration_id, RECENT_SECONDS)
    return f"{integration.name if integration else integration_id} / {label}"


def _matching(options: list[dict[str, str]], query: str) -> list[dict[str, str]]:
    needle = query.casefold()
    return [option for option in options if needle in option["label"].casefold()][:MAX_OPTIONS]


def _projects(connection: Connected, request: OptionsRequest) -> list[dict[str, str]]:
    if not connection.integration_ids:
        raise NotFound(NO_INTEGRATION)
    forms, options, missing = Forms(), [], 0
    for integration_id in connection.integration_ids:
        try:
            projects = forms.projects(integration_id, org_id=connection.org_id)
        except IntegrationNotFound:  # disabled: the others' projects are still offered
            missing += 1
            continue
        options += [
            {"label": _named(connection, integration_id, p["label"]), "value": integration_id + "|" + p["value"]}
            for p in projects
        ]
    if missing == len(connection.integration_ids):
        raise NotFound("The Azure DevOps integrations of this Sentry organization are disabled.")
    return _remembered(_matching(options, request.query), _last(connection, request).get(PROJECT))


def _work_item_types(connection: Connected, request: OptionsRequest) -> list[dict[str, str]]:
    project = request.dependent_data.get(PROJECT)
    if project is None:
        raise InvalidInput("Choose the Azure DevOps project first.")
    choice = parse_choice(project, "project")
    types = Forms().work_item_types(
        connection.integration_for(choice, "project"), choice.value, org_id=connection.org_id
    )
    last = _last(connection, request)
    return _remembered(
        _matching(types, request.query), last.get(WORK_ITEM_TYPE) if last.get(PROJECT) == project else None
    )


def _last(connection: Connected, request: OptionsRequest) -> dict[str, str]:
    """The last choices of the form in this Sentry project (one storage read; none without a project)."""
    if not request.project_slug:
        return {}
    return FormDefaultsStore().get(connection.installation.uuid, request.project_slug)


def _remembered(options: list[dict[str, Any]], value: str | None) -> list[dict[str, Any]]:
    """The option chosen last time marked `default` (Sentry's select takes it as its defaultValue)."""
    return [{**o, "default": True} if value is not None and o["value"] == value else o for o in options]


def _work_items(connection: Connected, request: OptionsRequest) -> list[dict[str, str]]:
    if not request.query:
        return []  # the search waits for typing
    if not connection.integration_ids:
        raise NotFound(NO_INTEGRATION)
    number, found, unsearchable = positive_int(request.query), {}, 0
    for integration_id in connection.integration_ids:
        try:
            options = _found(integration_id, number, request.query, connection.org_id)
        except (AdoNotFound, IntegrationNotFound):  # no search there (or disabled): the others still answer
            unsearchable += 1
            continue
        for option in options:
            value = integration_id + CHOICE_SEPARATOR + option["value"]
            found.setdefault(value, {"label": _named(connection, integration_id, option["label"]), "value": value})
    if not found and unsearchable == len(connection.integration_ids):
        raise NotFound(NO_SEARCH)
    return list(found.values())[:MAX_OPTIONS]


def _found(integration_id: str, number: int | None, query: str, org_id: str) -> list[dict[str, str]]:
    """Work items of one integration matching `query`: when it is a number, the work item with that id first
    (whatever the search ranks); then the search. AdoNotFound when there is no search and no such id."""
    options = []
    if number is not None:
        try:
            item = lookups.get_issue(integration_id, number, org_id)
            options.append({"label": f"({item['key']}) {item['title'] or ''}", "value": item["key"]})
        except AdoNotFound:
            pass
    try:
        options += lookups.search_issues(integration_id, query, MAX_OPTIONS, org_id)
    except AdoNotFound:
        if not options:
            raise
    return options


_OPTIONS: dict[str, Callable[[Connected, OptionsRequest], list[dict[str, str]]]] = {
    PROJECTS: _projects,
    WORK_ITEM_TYPES: _work_item_types,
    WORK_ITEMS: _work_items,
}


def options(kind: str, request: OptionsRequest) -> list[dict[str, str]]:
    """A select's options `[{"label", "value"}]` (`kind`: projects, workitemtypes or workitems)."""
    if kind not in _OPTIONS:
        raise NotFound("The app has no such list of options.")
    return _OPTIONS[kind](connected(request.installation_uuid), request)
