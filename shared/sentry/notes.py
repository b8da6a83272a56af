"""Comments on a Sentry issue ("notes" in Sentry's code), made with the installation's token: the
organization-scoped group notes routes (Sentry's urls.py; `/api/0/issues/{id}/comments/` is deprecated).
`GroupPermission`: POST and PUT need `event:write`, DELETE `event:admin`; PUT and DELETE find only the caller's own
notes (group_notes_details.py). Each call goes through the client's one request path."""

from __future__ import annotations

from shared.sentry.client import SCOPE_READ_ISSUE, SCOPE_WRITE_ISSUE, SentryClient, segment

NOTES_PATH = "/api/0/organizations/{org}/issues/{id}/comments/"
NOTE_PATH = "/api/0/organizations/{org}/issues/{id}/comments/{note}/"
SCOPE_DELETE_NOTE = "event:admin"
# GroupNotesEndpoint's answer to the same text by the same user on the issue within the last hour (400).
DUPLICATE_NOTE = "You have already posted that comment."


def add_note(client: SentryClient, organization: str, issue_id: str, text: str) -> dict:
    """Comment on the issue as the app. The same text within an hour raises SentryRejected whose message holds
    DUPLICATE_NOTE."""
    path = NOTES_PATH.format(org=segment(organization), id=segment(issue_id))
    answer = client.call("POST", path, json={"text": text}, scope=SCOPE_WRITE_ISSUE)
    return answer if isinstance(answer, dict) else {}


def list_notes(client: SentryClient, organization: str, issue_id: str) -> list[dict]:
    """The issue's comments, newest first (the first page: enough to find one just added)."""
    path = NOTES_PATH.format(org=segment(organization), id=segment(issue_id))
    answer = client.call("GET", path, scope=SCOPE_READ_ISSUE)
    return [note for note in answer if isinstance(note, dict)] if isinstance(answer, list) else []


def edit_note(client: SentryClient, organization: str, issue_id: str, note_id: str, text: str) -> None:
    path = NOTE_PATH.format(org=segment(organization), id=segment(issue_id), note=segment(note_id))
    client.call("PUT", path, json={"text": text}, scope=SCOPE_WRITE_ISSUE)


def delete_note(client: SentryClient, organization: str, issue_id: str, note_id: str) -> None:
    """Needs event:admin; without it SentryForbidden."""
    path = NOTE_PATH.format(org=segment(organization), id=segment(issue_id), note=segment(note_id))
    client.call("DELETE", path, scope=SCOPE_DELETE_NOTE)
