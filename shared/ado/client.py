"""The Azure DevOps client: the only code that speaks HTTP to Azure DevOps.

One `requests.Session` per process, reused across invocations (warm calls reuse the connection). Every request carries
its operation's api-version on the organization's server (`shared.ado.versions`) in `Accept`, and
`X-TFS-FedAuthRedirect: Suppress`, so an expired credential answers 401 instead of a sign-in page; a 203 or an HTML
body is treated as an authentication failure anyway. Credentials go only to allowed origins (`shared.domains`), and
redirects are never followed. 429 and 503 are retried a bounded number of times, honouring `Retry-After`, within a cap
on the total wait; other 4xx are never retried. Failures become the typed exceptions below.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection, Mapping
from typing import Any
from urllib.parse import quote

import requests
from requests.adapters import HTTPAdapter

from shared.ado import versions
from shared.ado.domains import is_allowed_origin, origin_of
from shared.telemetry import ensure_configured
from shared.waits import MAX_ATTEMPTS, asked_wait, next_wait

log = logging.getLogger(__name__)

# URL templates: {base} is an organization (or collection) URL ending in "/".
WORK_ITEM_URL = "{base}_apis/wit/workitems/{id}"
WORK_ITEM_SEARCH_URL = "{base}_apis/search/workitemsearchresults"
WORK_ITEM_TYPE_STATES_URL = "{base}{project}/_apis/wit/workitemtypes/{type}/states"
WIQL_URL = "{base}_apis/wit/wiql"
WORK_ITEMS_BATCH_URL = "{base}_apis/wit/workitemsbatch"
SUBSCRIPTIONS_URL = "{base}_apis/hooks/subscriptions"
SUBSCRIPTION_URL = "{base}_apis/hooks/subscriptions/{id}"

MAX_BATCH_IDS = 200  # Azure DevOps' limit per workitemsbatch call (VS403474 beyond it)
MAX_ERROR_MESSAGE = 300


class AdoError(Exception):
    """Azure DevOps failed in a way the caller reports as 502."""


class AdoNotFound(AdoError):
    """404: missing, or not readable with these credentials (Azure DevOps does not say which)."""


class AdoUnauthorized(AdoError):
    """The credentials were refused: 401, 403, 203 or an HTML sign-in page."""


class AdoThrottled(AdoError):
    """429 after the bounded retries."""

    def __init__(self, message: str, retry_after: float | None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class AdoUnavailable(AdoThrottled):
    """503 after the bounded retries, or the service could not be reached."""


class AdoTimeout(AdoError):
    """No answer within ADO_HTTP_TIMEOUT."""


class AdoRequestRejected(AdoError):
    """Another 4xx: Azure DevOps refused the request itself (its message is kept, shortened)."""

    def __init__(self, message: str, status: int, response: requests.Response | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.response = response  # for what the message leaves out, e.g. which field a rule error names


class OriginNotAllowed(AdoError):
    """A request would have sent credentials to an origin that is not Azure DevOps."""


def _new_session() -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # proxies and .netrc from the environment must not see credentials
    adapter = HTTPAdapter(pool_connections=16, pool_maxsize=32, max_retries=0)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


SESSION = _new_session()


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header: a number of seconds or an HTTP date."""
    return asked_wait(value, time.time())


def _message(response: requests.Response) -> str:
    """Azure DevOps' own error message (e.g. "TF401232: ..."), shortened, or the status line."""
    try:
        body = response.json()
        message = body.get("message") if isinstance(body, dict) else None
    except ValueError:
        message = None
    text = message if isinstance(message, str) and message else f"HTTP {response.status_code}"
    return " ".join(text.split())[:MAX_ERROR_MESSAGE]


def _is_html(response: requests.Response) -> bool:
    return "html" in response.headers.get("Content-Type", "").lower()


def send(
    method: str,
    url: str,
    *,
    authorization: str | None,
    allowed_origins: Collection[str],
    timeout: float,
    json: Any = None,
    data: Mapping[str, str] | None = None,
    params: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
    api_version: str = versions.SERVICES,
    sleep: Callable[[float], None] = time.sleep,
) -> requests.Response:
    """One Azure DevOps request with the retry and error rules above; returns a 2xx response."""
    if authorization is not None and not is_allowed_origin(url, allowed_origins):
        raise OriginNotAllowed(f"refused to send credentials to {origin_of(url) or 'an invalid URL'}")
    request_headers = {"Accept": versions.accept(api_version), "X-TFS-FedAuthRedirect": "Suppress"}
    if authorization is not None:
        request_headers["Authorization"] = authorization
    request_headers.update(headers or {})
    ensure_configured()  # traced when APPLICATIONINSIGHTS_CONNECTION_STRING is set (shared/telemetry.py)
    waited = 0.0
    for attempt in range(1, MAX_ATTEMPTS + 1):
        try:
            response = SESSION.request(
                method,
                url,
                json=json,
                data=data,
                params=params,
                headers=request_headers,
                timeout=timeout,
                allow_redirects=False,
            )
        except requests.Timeout:
            raise AdoTimeout(f"Azure DevOps did not answer within {timeout:g} s") from None
        except requests.RequestException as exc:
            raise AdoUnavailable(f"Azure DevOps could not be reached ({type(exc).__name__})", None) from None
        status = response.status_code
        if status in (429, 503):
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            wait = next_wait(attempt, retry_after, waited)
            if wait is not None:
                log.info("Azure DevOps answered %d; retrying in %.1f s", status, wait)
                response.close()
                sleep(wait)
                waited += wait
                continue
            error = AdoThrottled if status == 429 else AdoUnavailable
            raise error(f"Azure DevOps answered {status}: {_message(response)}", retry_after)
        if status == 203 or (200 <= status < 300 and _is_html(response)):
            raise AdoUnauthorized("Azure DevOps answered with a sign-in page: the credentials are not valid")
        if status in (401, 403):
            raise AdoUnauthorized(f"Azure DevOps refused the credentials ({status}): {_message(response)}")
        if 300 <= status < 400:
            raise AdoUnauthorized(f"Azure DevOps redirected the request ({status}); the credentials may not be valid")
        if status == 404:
            raise AdoNotFound(_message(response))
        if 400 <= status < 500:
            raise AdoRequestRejected(
                f"Azure DevOps refused the request ({status}): {_message(response)}", status, response
            )
        if status >= 500:
            raise AdoError(f"Azure DevOps failed ({status}): {_message(response)}")
        return response
    raise AssertionError("unreachable")  # the loop returns or raises


def _json(response: requests.Response) -> Any:
    if response.status_code == 204 or not response.content:
        return {}
    try:
        return response.json()
    except ValueError:
        raise AdoError("Azure DevOps answered with a body that is not JSON") from None


class AdoClient:
    """Calls on one organization, with one credential. `authorization` gives the Authorization header;
    `api_level` is the server's (`shared.ado.versions`: 7.1 for Azure DevOps Services, 7.0 for Server 2022)."""

    def __init__(
        self,
        base_url: str,
        authorization: Callable[[], str],
        *,
        allowed_origins: Collection[str],
        timeout: float | Callable[[], float],  # a callable is asked before each request (a timer's budget)
        search_base_url: str | None = None,
        api_level: str = versions.SERVICES,
    ) -> None:
        self.base_url = base_url
        self.api_level = api_level
        self.search_base_url = search_base_url or base_url
        self._authorization = authorization
        self._allowed_origins = allowed_origins
        self._timeout = timeout

    def call(self, method: str, url: str, *, preview: str | None = None, **kwargs: Any) -> Any:
        """One request on this organization, with its credential, at the operation's api-version on this server
        (`preview`: a preview operation of `versions.PREVIEW`); the JSON answer (`{}` when empty)."""
        response = send(
            method,
            url,
            authorization=self._authorization(),
            allowed_origins=self._allowed_origins,
            timeout=self._timeout() if callable(self._timeout) else self._timeout,
            api_version=versions.api_version(self.api_level, preview),
            **kwargs,
        )
        return _json(response)

    @property
    def markdown_comments(self) -> bool:
        """Whether comments may be sent as markdown here (not on Azure DevOps Server 2022: HTML only)."""
        return versions.markdown_comments(self.api_level)

    def get_work_item(self, work_item_id: int) -> dict:
        return self.call("GET", WORK_ITEM_URL.format(base=self.base_url, id=int(work_item_id)))

    def update_work_item(self, work_item_id: int, operations: list[dict]) -> dict:
        """One JSON Patch; Azure DevOps answers the work item with its new revision."""
        url = WORK_ITEM_URL.format(base=self.base_url, id=int(work_item_id))
        return self.call("PATCH", url, json=operations, headers={"Content-Type": "application/json-patch+json"})

    def search_work_items(self, text: str, top: int) -> dict:
        body = {"searchText": text, "$top": top, "$skip": 0}
        return self.call("POST", WORK_ITEM_SEARCH_URL.format(base=self.search_base_url), json=body)

    def create_subscription(self, body: dict) -> dict:
        return self.call("POST", SUBSCRIPTIONS_URL.format(base=self.base_url), json=body)

    def get_subscription(self, subscription_id: str) -> dict:
        return self.call("GET", SUBSCRIPTION_URL.format(base=self.base_url, id=quote(subscription_id, safe="")))

    def delete_subscription(self, subscription_id: str) -> None:
        self.call("DELETE", SUBSCRIPTION_URL.format(base=self.base_url, id=quote(subscription_id, safe="")))

    def query_work_item_ids(self, wiql: str) -> list[int]:
        """The ids a flat WIQL query selects (`timePrecision`, so dates compare to the second)."""
        answer = self.call(
            "POST", WIQL_URL.format(base=self.base_url), json={"query": wiql}, params={"timePrecision": "true"}
        )
        items = answer.get("workItems") if isinstance(answer, dict) else None
        return [item["id"] for item in items or [] if isinstance(item, dict) and isinstance(item.get("id"), int)]

    def get_work_items_batch(self, ids: list[int], fields: list[str]) -> list[dict]:
        """Up to MAX_BATCH_IDS work items; ids that are gone or unreadable are left out."""
        if len(ids) > MAX_BATCH_IDS:
            raise ValueError(f"at most {MAX_BATCH_IDS} ids per batch")
        body = {"ids": ids, "fields": fields, "errorPolicy": "omit"}
        answer = self.call("POST", WORK_ITEMS_BATCH_URL.format(base=self.base_url), json=body)
        values = answer.get("value") if isinstance(answer, dict) else None
        return [item for item in values or [] if isinstance(item, dict)]

    def get_work_item_type_states(self, project: str, work_item_type: str) -> dict:
        url = WORK_ITEM_TYPE_STATES_URL.format(
            base=self.base_url, project=quote(project, safe=""), type=quote(work_item_type, safe="")
        )
        return self.call("GET", url)


def get_base_url(lookup_url: str, integration_id: str, *, allowed_origins: Collection[str], timeout: float) -> Any:
    """The organization's `locationUrl` from the account lookup, as answered (unvalidated).

    The lookup needs no authentication, so no credential is sent: none can leak to wherever it points.
    """
    url = lookup_url % quote(integration_id, safe="")
    version = versions.api_version(versions.SERVICES, versions.RESOURCE_AREAS)  # Azure DevOps Services only
    response = send(
        "GET", url, authorization=None, allowed_origins=allowed_origins, timeout=timeout, api_version=version
    )
    body = _json(response)
    return body.get("locationUrl") if isinstance(body, dict) else None


def refresh_oauth_token(
    token_url: str, *, refresh_token: str, client_secret: str, redirect_uri: str | None, timeout: float
) -> dict:
    """Azure DevOps (legacy) OAuth refresh, with the form fields Sentry sends; returns the token response."""
    form = {
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": client_secret,
        "grant_type": "refresh_token",
        "assertion": refresh_token,
    }
    if redirect_uri:
        form["redirect_uri"] = redirect_uri
    try:
        response = send(
            "POST",
            token_url,
            authorization=None,
            allowed_origins=(),
            timeout=timeout,
            data=form,
            headers={"Accept": "application/json"},
        )
    except AdoRequestRejected as exc:
        # invalid_grant (a used or revoked refresh token) or invalid_client: only re-authorization helps.
        raise AdoUnauthorized(f"the OAuth refresh was refused ({exc.status})") from None
    body = _json(response)
    if not isinstance(body, dict) or not isinstance(body.get("access_token"), str):
        raise AdoError("the OAuth token endpoint answered without an access_token")
    return body
