"""The issue-link forms submitted in Sentry (contract §13.1): create a work item for the Sentry issue, or link an
existing one, and answer `{"webUrl", "project", "identifier"}`, which Sentry shows as `<project>#<identifier>`.

The Sentry issue becomes a tracked issue of `sentry-<slug>` (id: the Sentry issue id, url: its page) when it is
not one yet; an existing one keeps its title. Links made here are not announced to Sentry
(`announce_to_sentry=False`): Sentry records them itself from the answer.

Requests per create: no Sentry request; to Azure DevOps what `shared.admin.workitems.create_work_item` costs (the
create, plus the type's fields on a cold process when there is a description). Per link: one read of the work
item in Azure DevOps; one Sentry request (the issue's title) only when the issue is not tracked yet.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

from shared.admin.field_defaults import parse_field_lines
from shared.admin.tracker import MAX_TITLE, add_link
from shared.admin.workitem_request import default_title, parse_request
from shared.admin.workitems import create_work_item
from shared.ado.client import AdoNotFound
from shared.connections.sentry import client_for
from shared.deliveries.sentry_ui import (
    AREA_PATH,
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
    IssueLinkRequest,
    parse_choice,
)
from shared.errors import InvalidInput, NotFound, StorageUnavailable
from shared.lookups import issues as lookups
from shared.model.tracker import Link, TrackedIssue
from shared.sentry.client import SentryError
from shared.sentryapp.components import RECENT_SECONDS, Connected, connected
from shared.store.form_defaults import FormDefaultsStore
from shared.store.integrations import IntegrationStore
from shared.store.tracker import TrackerStore
from shared.validation import positive_int

log = logging.getLogger(__name__)

SENTRY_TIMEOUT_SECONDS = 3.0  # Sentry waits for this answer; the title is worth a short wait, not a failure


def _answer(web_url: str, display_name: str, work_item_id: int, fallback_project: str) -> dict[str, str]:
    """Sentry's answer; `display_name` is `<AreaPath>#<id>`."""
    project = display_name.rpartition("#")[0]
    return {"webUrl": web_url, "project": project or fallback_project, "identifier": str(work_item_id)}


def _sentry_title(connection: Connected, issue_id: str) -> str:
    """The Sentry issue's title, for an issue linked before it was tracked (the link form has no title)."""
    installation = connection.installation
    try:
        client = client_for(installation, timeout=SENTRY_TIMEOUT_SECONDS)
        title = client.get_issue(installation.organization_slug, issue_id).get("title")
    except SentryError as exc:  # the link matters more than the title; a webhook or a person may set it later
        log.warning("Could not read the title of Sentry issue %s: %s", issue_id, exc)
        title = None
    return title.strip() if isinstance(title, str) and title.strip() else f"Sentry issue {issue_id}"


def _track(connection: Connected, request: IssueLinkRequest, title: str | None) -> None:
    """Make the Sentry issue a tracked issue (`title` None: ask Sentry for it), or give a tracked one its url."""
    tracker, org_id, issue_id = TrackerStore(), connection.org_id, request.issue_id
    issue = tracker.get_issue(org_id, issue_id)
    if issue is None:
        title = title if title is not None else _sentry_title(connection, issue_id)
        fresh = TrackedIssue(org_id, issue_id, " ".join(title.split())[:MAX_TITLE], url=request.web_url)
        if tracker.create_issue(fresh) is not None:
            return
        issue = tracker.get_issue(org_id, issue_id)  # created meanwhile by another request: theirs stays
    if issue is not None and issue.url is None:  # the work item's Hyperlink points at the issue's url
        tracker.update_issue(org_id, issue_id, lambda i: replace(i, url=request.web_url) if i.url is None else None)


def create(request: IssueLinkRequest) -> dict[str, str]:
    """Create the work item the form describes (at most once per Request-ID) and link it."""
    connection = connected(request.installation_uuid)
    fields = request.fields
    choice = parse_choice(fields[PROJECT], "project")
    integration_id = connection.integration_for(choice, "project")
    title = default_title(fields[TITLE])  # a Sentry title may be longer than a work item's holds
    body = {"integration_id": integration_id, "project": choice.value, "type": fields[WORK_ITEM_TYPE], "title": title}
    body.update(
        {key: fields[key] for key in (DESCRIPTION, AREA_PATH, ITERATION_PATH, PRIORITY, SEVERITY) if key in fields}
    )
    body.update(_more(connection, integration_id, fields))
    parse_request(body)  # checked before the issue is tracked: a form the create would refuse changes nothing
    _track(connection, request, fields[TITLE])
    created = create_work_item(connection.org_id, request.issue_id, body, request.request_id, announce_to_sentry=False)
    if request.project_slug:  # offered as the defaults of this Sentry project's next form
        try:
            FormDefaultsStore().put(request.installation_uuid, request.project_slug, fields)
        except StorageUnavailable as exc:  # the work item exists and is linked: only the convenience is lost
            log.warning("The form's choices were not remembered: %s", exc)
    return _answer(created["url"], created["display_name"], created["work_item_id"], choice.value)


def _more(connection: Connected, integration_id: str, fields: dict[str, str]) -> dict[str, Any]:
    """Tags (one text, `;` or `,` between them), extra fields (`Reference.Name: value` lines) and the parent (a
    work item of the same integration) as the create request has them."""
    more: dict[str, Any] = {}
    if TAGS in fields:
        more["tags"] = [tag.strip() for tag in fields[TAGS].replace(",", ";").split(";") if tag.strip()]
    if EXTRA_FIELDS in fields:
        more["fields"] = parse_field_lines(fields[EXTRA_FIELDS])
    if PARENT in fields:
        parent = parse_choice(fields[PARENT], "parent work item")
        if connection.integration_for(parent, "parent work item") != integration_id:
            raise InvalidInput("The parent work item must be in the same Azure DevOps organization as the new one.")
        more["parent"] = parent.value
    return more


def link(request: IssueLinkRequest) -> dict[str, str]:
    """Link the work item the form names, once it is found readable in Azure DevOps (404 otherwise)."""
    connection = connected(request.installation_uuid)
    choice = parse_choice(request.fields[WORK_ITEM], "work item")
    integration_id = connection.integration_for(choice, "work item")
    work_item_id = positive_int(choice.value)
    if work_item_id is None:
        raise InvalidInput("The work item must be chosen from the list or given as its id, a positive whole number.")
    try:
        # The one read of the work item: add_link below, not put_link, which would read it a second time.
        found = lookups.get_issue(integration_id, work_item_id, connection.org_id)
    except AdoNotFound:
        raise NotFound(f"Work item {work_item_id} does not exist or cannot be read.") from None
    _track(connection, request, None)
    add_link(TrackerStore(), connection.org_id, request.issue_id, Link(integration_id, work_item_id))
    store = IntegrationStore()
    integration = store.recently_read(integration_id, RECENT_SECONDS) or store.get_active(integration_id)
    web_url = f"{integration.domain_name}_workitems/edit/{work_item_id}"
    return _answer(web_url, found["metadata"]["display_name"], work_item_id, integration.name)
