"""The tracker's admin operations (contract §6, `orgs/...`): validate completely, then write.

Bad input raises `InvalidInput` (400) before anything is written; missing things raise `NotFound` (404).
Changes a person makes here are recorded in the issue's activity with source `api`.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit

from shared.admin.changes import forward_change, with_status_and_assignee
from shared.admin.field_defaults import parse_field_defaults
from shared.admin.sentry_links import announce_link
from shared.ado.client import AdoNotFound
from shared.connections.ado import CredentialNotShared, call_tracking_reauth, client_for, usable_by
from shared.errors import Conflict, InvalidInput, NotFound
from shared.model.tracker import (
    ANY,
    STATUSES,
    UNRESOLVED,
    Installation,
    Link,
    Member,
    StateRule,
    TrackedIssue,
)
from shared.store.integrations import IntegrationStore, normalize_id
from shared.store.tracker import TrackerStore
from shared.validation import (
    check_fields,
    is_valid_id,
    normalize_email,
    positive_int,
    require_bool,
    require_id,
    require_text,
)

MAX_TITLE = 1000
MAX_STATES = 50
MAX_NAME = 128  # a project, type or state name
MAX_URL = 2048
INSTALLATION_FIELDS = {
    "sync_reverse_assignment",
    "sync_status_reverse",
    "resolve_states",
    "sync_status_forward",
    "sync_forward_assignment",
    "sync_comments",
    "sync_comments_reverse",
    "state_rules",
    "field_defaults",
}
RULE_FIELDS = {"project", "type", "resolved", "unresolved"}
SOURCE = "api"


def _email(value: str) -> str:
    email = normalize_email(value)
    if email is None:
        raise InvalidInput("The member's email is not a valid email address.")
    return email


def put_installation(
    org_id: str, integration_id: str, body: dict[str, Any], *, share: bool = True
) -> tuple[Installation, bool]:
    """Create or replace an organization's installation settings. With the function key (`share`), this shares the
    integration's credentials with the organization (contract §16); the setup page saves settings without sharing.
    The organization's own credentials, and an earlier share, are kept."""
    org_id = require_id(org_id, "organization id")
    integration_id = normalize_id(integration_id)
    require_id(integration_id, "integration id")
    check_fields(body, INSTALLATION_FIELDS)
    states = body.get("resolve_states", [])
    if (
        not isinstance(states, list)
        or len(states) > MAX_STATES
        or not all(isinstance(s, str) and s.strip() and len(s) <= MAX_NAME for s in states)
    ):
        raise InvalidInput(f"resolve_states must be a list of at most {MAX_STATES} state names.")
    installation = Installation(
        integration_id=integration_id,
        org_id=org_id,
        sync_reverse_assignment=require_bool(body, "sync_reverse_assignment"),
        sync_status_reverse=require_bool(body, "sync_status_reverse"),
        resolve_states=tuple(dict.fromkeys(s.strip() for s in states)),
        # The two-way settings (§12.1) are optional and default to off.
        sync_status_forward=require_bool(body, "sync_status_forward") if "sync_status_forward" in body else False,
        sync_forward_assignment=require_bool(body, "sync_forward_assignment")
        if "sync_forward_assignment" in body
        else False,
        sync_comments=require_bool(body, "sync_comments") if "sync_comments" in body else False,
        sync_comments_reverse=require_bool(body, "sync_comments_reverse") if "sync_comments_reverse" in body else False,
        state_rules=_state_rules(body.get("state_rules", [])),
        field_defaults=parse_field_defaults(body.get("field_defaults", [])),
    )
    if IntegrationStore().get(integration_id) is None:
        raise NotFound("No integration has that id.")
    tracker = TrackerStore()
    existing = tracker.get_installation(integration_id, org_id)
    installation = replace(
        installation,
        credentials=existing.credentials if existing is not None else {},
        credential_shared=share or (existing is not None and existing.credential_shared),
    )
    return installation, tracker.put_installation(installation)


def _state_rules(value: Any) -> tuple[StateRule, ...]:
    if not isinstance(value, list) or len(value) > MAX_STATES:
        raise InvalidInput(f"state_rules must be a list of at most {MAX_STATES} rules.")
    rules = []
    for n, rule in enumerate(value, 1):
        if not isinstance(rule, dict):
            raise InvalidInput(f"state_rules[{n}] must be an object with project, type, resolved and unresolved.")
        check_fields(rule, RULE_FIELDS)
        names = {
            key: require_text(rule, key, MAX_NAME).strip() if key in rule else None
            for key in ("project", "type", "resolved", "unresolved")
        }
        if names["resolved"] is None and names["unresolved"] is None:
            raise InvalidInput(f"state_rules[{n}] must name a resolved or an unresolved state.")
        rules.append(StateRule(names["project"] or ANY, names["type"] or ANY, names["resolved"], names["unresolved"]))
    return tuple(rules)


def get_installation(org_id: str, integration_id: str) -> Installation:
    installation = None
    if is_valid_id(org_id) and is_valid_id(normalize_id(integration_id)):
        installation = TrackerStore().get_installation(normalize_id(integration_id), org_id)
    if installation is None:
        raise NotFound("This organization has not installed that integration.")
    return installation


def put_member(org_id: str, email: str, body: dict[str, Any]) -> tuple[Member, bool]:
    org_id = require_id(org_id, "organization id")
    email = _email(email)
    check_fields(body, {"user_id", "name"})
    user_id = require_text(body, "user_id", 256)
    name = require_text(body, "name", 256) if body.get("name") is not None else None
    member = Member(org_id, email, user_id, name)
    return member, TrackerStore().put_member(member)


def delete_member(org_id: str, email: str) -> None:
    org_id = require_id(org_id, "organization id")
    if not TrackerStore().delete_member(org_id, _email(email)):
        raise NotFound("No member has that email in this organization.")


def put_issue(org_id: str, issue_id: str, body: dict[str, Any]) -> tuple[TrackedIssue, bool]:
    org_id = require_id(org_id, "organization id")
    issue_id = require_id(issue_id, "issue id")
    check_fields(body, {"title", "status", "assignee", "url"})
    title = require_text(body, "title", MAX_TITLE) if "title" in body else None
    url = _url(body)
    status = body.get("status")
    if "status" in body and status not in STATUSES:
        raise InvalidInput("status must be unresolved or resolved.")
    tracker = TrackerStore()
    member: Member | None = None
    assign = "assignee" in body
    if assign and body["assignee"] is not None:
        if not isinstance(body["assignee"], str):
            raise InvalidInput("assignee must be the email of a member, or null.")
        member = tracker.get_member(org_id, _email(body["assignee"]))
        if member is None:
            raise InvalidInput("assignee must be a member of the organization.")

    def change(issue: TrackedIssue) -> TrackedIssue:
        if title is not None:
            issue = replace(issue, title=title)
        if "url" in body:
            issue = replace(issue, url=url)
        return with_status_and_assignee(issue, status, assign, member, SOURCE)

    saved = tracker.update_issue(org_id, issue_id, change)  # one read when there is no such issue yet
    if saved is None:
        if title is None:
            raise InvalidInput("A new issue needs a title.")
        fresh = TrackedIssue(org_id, issue_id, title, status or UNRESOLVED, url=url)
        if member is not None:
            fresh = replace(fresh, assignee_email=member.email, assignee_user_id=member.user_id)
        created = tracker.create_issue(fresh)
        if created is not None:
            return created, True
        saved = tracker.update_issue(org_id, issue_id, change)  # created meanwhile by another request
    if saved is None:
        raise NotFound("The issue disappeared during the update; send the request again.")
    # Queued after the save, whether or not the values changed, so a request sent again after a 503 here (the
    # save done, the queueing not) still reaches Azure DevOps.
    fields = tuple(name for name, given in (("status", status is not None), ("assignee", assign)) if given)
    forward_change(saved, fields)
    return saved, False


def _url(body: dict[str, Any]) -> str | None:
    """The issue's page in the tracker: an absolute http(s) URL, or null to clear it."""
    if body.get("url") is None:
        return None
    url = require_text(body, "url", MAX_URL)
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or any(c.isspace() for c in url):
        raise InvalidInput("url must be an absolute http or https URL.")
    return url


def get_issue(org_id: str, issue_id: str) -> TrackedIssue:
    if not is_valid_id(org_id) or not is_valid_id(issue_id):
        raise NotFound("No issue has that id in this organization.")
    issue = TrackerStore().get_issue(org_id, issue_id)
    if issue is None:
        raise NotFound("No issue has that id in this organization.")
    return issue


def _link_args(org_id: str, issue_id: str, integration_id: str, work_item_id: str) -> tuple[str, str, Link]:
    org_id = require_id(org_id, "organization id")
    issue_id = require_id(issue_id, "issue id")
    integration_id = require_id(normalize_id(integration_id), "integration id")
    work_item = positive_int(work_item_id)
    if work_item is None:
        raise InvalidInput("The work item id must be a positive whole number.")
    return org_id, issue_id, Link(integration_id, work_item)


def put_link(
    org_id: str, issue_id: str, integration_id: str, work_item_id: str, *, announce_to_sentry: bool = True
) -> TrackedIssue:
    """Link a work item that exists and is readable. On a Sentry organization's issue the link is shown in Sentry
    too (`announce_to_sentry`), but for the links made in Sentry's own UI, which Sentry shows itself."""
    org_id, issue_id, link = _link_args(org_id, issue_id, integration_id, work_item_id)
    tracker = TrackerStore()
    existing = tracker.get_issue(org_id, issue_id)
    if existing is None:
        raise NotFound("No issue has that id in this organization.")
    if existing.with_link(link) is None:
        if announce_to_sentry:  # queued again: a request repeated after a 503 (saved, not queued) still reaches Sentry
            announce_link(org_id, issue_id, link)
        return existing  # linked already: nothing to write (the cap is checked before anything is written)
    store = IntegrationStore()
    integration = store.get(link.integration_id)
    if integration is None:
        raise NotFound("No integration has that id.")
    if not integration.active:  # as for lookups: a disabled integration's credentials are not used
        raise NotFound("No active integration has that id.")
    try:
        usable = usable_by(integration, tracker.get_installation(integration.id, org_id))  # its credentials (§16)
    except CredentialNotShared as exc:
        raise NotFound(str(exc)) from None
    _, client = client_for(usable, store=store)  # the work item must exist and be readable (§12.4)
    try:
        call_tracking_reauth(store, usable, lambda: client.get_work_item(link.work_item_id))
    except AdoNotFound:
        raise NotFound(f"Work item {link.work_item_id} does not exist or cannot be read.") from None
    saved = add_link(tracker, org_id, issue_id, link)
    if announce_to_sentry:
        announce_link(org_id, issue_id, link)
    return saved


def add_link(tracker: TrackerStore, org_id: str, issue_id: str, link: Link) -> TrackedIssue:
    """Link a work item known to exist (already linked: unchanged)."""
    tracker.add_link_index(link, org_id, issue_id)  # index first: a delivery ignores what the issue does not confirm
    try:
        saved = tracker.update_issue(org_id, issue_id, lambda issue: issue.with_link(link))
    except Conflict:  # other links were added meanwhile, up to the cap
        tracker.remove_link_index(link, org_id, issue_id)
        raise
    if saved is None:
        tracker.remove_link_index(link, org_id, issue_id)
        raise NotFound("No issue has that id in this organization.")
    return saved


def delete_link(org_id: str, issue_id: str, integration_id: str, work_item_id: str) -> TrackedIssue:
    org_id, issue_id, link = _link_args(org_id, issue_id, integration_id, work_item_id)
    tracker = TrackerStore()
    saved = tracker.update_issue(org_id, issue_id, lambda issue: issue.without_link(link))
    if saved is None:
        raise NotFound("No issue has that id in this organization.")
    tracker.remove_link_index(link, org_id, issue_id)  # removed last, after the issue stopped confirming it
    announce_link(org_id, issue_id, link)  # Sentry stops showing it (or shows another link of the issue)
    return saved
