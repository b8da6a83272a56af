"""The work item Comments API, a preview API (`shared.ado.versions`: `7.1-preview.4`, on Azure DevOps Server 2022
`7.0-preview.3`; reference `sentry-outbound-and-apps.md` §5): add, edit and delete a comment, and look for one
among a work item's comments. Text is markdown (`format=markdown`) where the server takes it, and HTML on Azure
DevOps Server 2022, whose Comments API has no `format` (the caller chooses the text by
`AdoClient.markdown_comments`). Each call goes through the client's one request path, so its retries, errors and
credentials are the same as every other call's."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from shared.ado import versions
from shared.ado.client import AdoClient

COMMENTS_URL = "{base}{project}/_apis/wit/workItems/{id}/comments"
PAGE_SIZE = 200  # the most one page of comments holds


def _url(client: AdoClient, project: str, work_item_id: int, comment_id: int | None = None) -> str:
    url = COMMENTS_URL.format(base=client.base_url, project=quote(project, safe=""), id=int(work_item_id))
    return url if comment_id is None else f"{url}/{int(comment_id)}"


def _format(client: AdoClient) -> dict[str, str]:
    return {"format": "markdown"} if client.markdown_comments else {}


def add_comment(client: AdoClient, project: str, work_item_id: int, text: str) -> Any:
    """Azure DevOps answers the comment, with its `id`. `text` is markdown, or HTML where comments are HTML."""
    url = _url(client, project, work_item_id)
    return client.call("POST", url, json={"text": text}, params=_format(client), preview=versions.COMMENTS)


def update_comment(client: AdoClient, project: str, work_item_id: int, comment_id: int, text: str) -> Any:
    url = _url(client, project, work_item_id, comment_id)
    return client.call("PATCH", url, json={"text": text}, params=_format(client), preview=versions.COMMENTS)


def delete_comment(client: AdoClient, project: str, work_item_id: int, comment_id: int) -> None:
    client.call("DELETE", _url(client, project, work_item_id, comment_id), preview=versions.COMMENTS)


def list_comments(client: AdoClient, project: str, work_item_id: int, token: str | None = None) -> Any:
    """One page of the work item's comments, newest first, deleted ones included (`includeDeleted`)."""
    params = {"$top": str(PAGE_SIZE), "order": "desc", "includeDeleted": "true"}
    if token:
        params["continuationToken"] = token
    return client.call("GET", _url(client, project, work_item_id), params=params, preview=versions.COMMENTS)


def find_comment(
    client: AdoClient, project: str, work_item_id: int, matches: Callable[[dict], bool], max_pages: int
) -> dict | None:
    """The newest comment (deleted ones included) that `matches`, looking through at most `max_pages` pages,
    newest first; None when none does."""
    token: str | None = None
    for _ in range(max_pages):
        params = {"$top": str(PAGE_SIZE), "order": "desc", "includeDeleted": "true"}
        if token:
            params["continuationToken"] = token
        answer = client.call("GET", _url(client, project, work_item_id), params=params, preview=versions.COMMENTS)
        comments = answer.get("comments") if isinstance(answer, dict) else None
        for comment in comments if isinstance(comments, list) else []:
            if isinstance(comment, dict) and matches(comment):
                return comment
        token = answer.get("continuationToken") if isinstance(answer, dict) else None
        if not isinstance(token, str) or not token:
            return None
    return None
