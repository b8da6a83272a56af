"""The work item Comments API (a preview API, `api-version=7.1-preview.4`; reference
`sentry-outbound-and-apps.md` §5): add, edit and delete a comment in markdown, and look for one among a work
item's comments. Each call goes through the client's one request path, so its retries, errors and credentials
are the same as every other call's."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from shared.ado.client import AdoClient

COMMENTS_API_VERSION = "7.1-preview.4"
COMMENTS_URL = "{base}{project}/_apis/wit/workItems/{id}/comments"
PAGE_SIZE = 200  # the most one page of comments holds
_HEADERS = {"Accept": f"application/json;api-version={COMMENTS_API_VERSION}"}


def _url(client: AdoClient, project: str, work_item_id: int, comment_id: int | None = None) -> str:
    url = COMMENTS_URL.format(base=client.base_url, project=quote(project, safe=""), id=int(work_item_id))
    return url if comment_id is None else f"{url}/{int(comment_id)}"


def _params(**extra: str) -> dict[str, str]:
    return {"api-version": COMMENTS_API_VERSION, **extra}


def add_comment(client: AdoClient, project: str, work_item_id: int, text: str) -> Any:
    """Azure DevOps answers the comment, with its `id`."""
    url = _url(client, project, work_item_id)
    return client.call("POST", url, json={"text": text}, params=_params(format="markdown"), headers=_HEADERS)


def update_comment(client: AdoClient, project: str, work_item_id: int, comment_id: int, text: str) -> Any:
    url = _url(client, project, work_item_id, comment_id)
    return client.call("PATCH", url, json={"text": text}, params=_params(format="markdown"), headers=_HEADERS)


def delete_comment(client: AdoClient, project: str, work_item_id: int, comment_id: int) -> None:
    client.call("DELETE", _url(client, project, work_item_id, comment_id), params=_params(), headers=_HEADERS)


def find_comment(
    client: AdoClient, project: str, work_item_id: int, matches: Callable[[dict], bool], max_pages: int
) -> dict | None:
    """The newest comment (deleted ones included) that `matches`, looking through at most `max_pages` pages,
    newest first; None when none does."""
    token: str | None = None
    for _ in range(max_pages):
        params = _params(**{"$top": str(PAGE_SIZE), "order": "desc", "includeDeleted": "true"})
        if token:
            params["continuationToken"] = token
        answer = client.call("GET", _url(client, project, work_item_id), params=params, headers=_HEADERS)
        comments = answer.get("comments") if isinstance(answer, dict) else None
        for comment in comments if isinstance(comments, list) else []:
            if isinstance(comment, dict) and matches(comment):
                return comment
        token = answer.get("continuationToken") if isinstance(answer, dict) else None
        if not isinstance(token, str) or not token:
            return None
    return None
