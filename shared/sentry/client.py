"""The Sentry client: the only code that speaks HTTP to Sentry (contract §13).

One `requests.Session` per process, blind to the environment's proxies and .netrc. Every call has a timeout,
follows no redirect, and goes to the one configured origin (`SENTRY_URL`): a URL elsewhere is refused before
anything is sent, so neither a token nor the client secret can leak. 429 and 503 are retried a bounded number
of times, honouring `Retry-After` (or Sentry's `X-Sentry-Rate-Limit-Reset`) within a cap on the total wait;
beyond it the caller gets `SentryThrottled.retry_after` to back off behind its queue. Nothing else is retried.

401 and 403 mean different things (Sentry's `ScopedPermission`): 401 is the token (missing, invalid, expired:
`SentryUnauthorized`, which a refresh may cure); 403 is a permission the installation was not granted
(`SentryForbidden`, naming the scope the call needs), which no refresh or retry cures: a person must grant it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import requests
from requests.adapters import HTTPAdapter

from shared.clock import SYSTEM, Clock
from shared.waits import MAX_ATTEMPTS, asked_wait, next_wait

log = logging.getLogger(__name__)

INSTALLATION_PATH = "/api/0/sentry-app-installations/{uuid}/"
EXTERNAL_ISSUES_PATH = "/api/0/sentry-app-installations/{uuid}/external-issues/"
ISSUE_PATH = "/api/0/organizations/{org}/issues/{id}/"
MEMBERS_PATH = "/api/0/organizations/{org}/members/"

# The scope each call needs (Sentry's GroupPermission, MemberPermission, SentryAppInstallationExternalIssuePermission)
SCOPE_READ_ISSUE = "event:read"
SCOPE_WRITE_ISSUE = "event:write"
SCOPE_READ_MEMBERS = "member:read"
SCOPE_LINK = "event:read"

DEFAULT_TIMEOUT_SECONDS = 10.0
MAX_MESSAGE = 300
ISSUE_STATUSES = frozenset({"resolved", "resolvedInNextRelease", "unresolved", "ignored"})


class SentryError(Exception):
    """Sentry failed, or answered what cannot be used (reported as 502). `status` is the HTTP status Sentry
    answered, when it did; `retry_after` the seconds it asked to wait, when it said."""

    def __init__(self, message: str, *, status: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


class SentryUnauthorized(SentryError):
    """401: the token (or the client id and secret) was refused; refresh it or install again."""


class SentryNotFound(SentryError):
    """404: the installation, organization, issue or link is gone, or this token may not see it."""


class SentryThrottled(SentryError):
    """429 beyond the bounded retries: try again after `retry_after` (when Sentry said)."""


class SentryUnavailable(SentryThrottled):
    """503 beyond the bounded retries, or Sentry could not be reached: try again later."""


class SentryTimeout(SentryError):
    """No answer within the call's timeout."""


class SentryRejected(SentryError):
    """Another 4xx: Sentry refused the request itself (`status`); the message is Sentry's, shortened."""


class SentryForbidden(SentryRejected):
    """403: the token is good but the installation lacks the permission; `scope` names the one the call needs
    (None when the call did not say). Retrying or refreshing changes nothing."""

    def __init__(self, message: str, *, status: int | None = 403, scope: str | None = None) -> None:
        super().__init__(message, status=status)
        self.scope = scope


@dataclass(frozen=True)
class Member:
    member_id: str
    user_id: str  # what `actor()` takes; an invitation not yet accepted has none, so is never a Member
    email: str | None
    name: str | None


def _session() -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # no proxy or .netrc from the environment ever sees a token
    session.mount("https://", HTTPAdapter(pool_connections=8, pool_maxsize=16, max_retries=0))
    session.mount("http://", HTTPAdapter(pool_connections=8, pool_maxsize=16, max_retries=0))
    return session


SESSION = _session()


# What SENTRY_URL is read as (shared.settings): scheme://host[:port], lower-case, nothing else.
_ORIGIN = re.compile(r"https?://[a-z0-9.-]+(?::[0-9]{1,5})?")


def is_origin(value: str) -> bool:
    return isinstance(value, str) and bool(_ORIGIN.fullmatch(value))


def _wait_asked(response: requests.Response, now: float) -> float | None:
    """Seconds Sentry asked to wait: Retry-After (seconds or an HTTP date), else its rate-limit reset time."""
    value = (response.headers.get("Retry-After") or "").strip()
    if value:
        return asked_wait(value, now)
    try:  # the reset is an epoch time in seconds: the wait is what is left until then
        return asked_wait(str(float(response.headers.get("X-Sentry-Rate-Limit-Reset", "")) - now), now)
    except ValueError:
        return None


def _message(response: requests.Response) -> str:
    """Sentry's own words: `{"detail": ...}`, or a field's first error (`{"assignedTo": ["..."]}`)."""
    try:
        body = response.json()
    except ValueError:
        body = None
    text = body.get("detail") if isinstance(body, dict) else None
    if not isinstance(text, str) and isinstance(body, dict) and body:
        key, errors = next(iter(body.items()))
        first = errors[0] if isinstance(errors, list) and errors else errors
        text = f"{key}: {first}" if isinstance(first, str) else None
    return " ".join((text if isinstance(text, str) and text else f"HTTP {response.status_code}").split())[:MAX_MESSAGE]


def _fail(response: requests.Response, scope: str | None) -> SentryError:
    status = response.status_code
    if 300 <= status < 400:
        return SentryError(f"Sentry answered a redirect ({status}), which is never followed")
    if status == 401:
        return SentryUnauthorized(f"Sentry refused the credentials ({status}): {_message(response)}", status=status)
    if status == 403:
        needs = f"; the call needs the {scope} scope" if scope else ""
        return SentryForbidden(f"Sentry refused the permission (403): {_message(response)}{needs}", scope=scope)
    if status == 404:
        return SentryNotFound(f"Sentry answered 404: {_message(response)}", status=status)
    if 400 <= status < 500:
        return SentryRejected(f"Sentry refused the request ({status}): {_message(response)}", status=status)
    return SentryError(f"Sentry failed ({status}): {_message(response)}", status=status)


def send(
    method: str,
    url: str,
    *,
    origin: str,
    timeout: float,
    authorization: str | None = None,
    json: Any = None,
    params: Mapping[str, str] | None = None,
    clock: Clock = SYSTEM,
    scope: str | None = None,
) -> Any:
    """One Sentry call under the rules above; returns the decoded JSON body ({} when there is none). `scope` is
    the permission the call needs, named by SentryForbidden when Sentry answers 403."""
    # The path begins at the first "/" after the origin, so a URL that starts so is on that origin and no other.
    if not is_origin(origin) or not url.startswith(origin + "/"):
        raise SentryError("refused to send a Sentry request outside SENTRY_URL")
    headers = {"Accept": "application/json"}
    if authorization is not None:
        headers["Authorization"] = authorization
    waited = 0.0
    for attempt in range(1, MAX_ATTEMPTS + 1):
        try:
            response = SESSION.request(
                method, url, json=json, params=params, headers=headers, timeout=timeout, allow_redirects=False
            )
        except requests.Timeout:
            raise SentryTimeout(f"Sentry did not answer within {timeout:g} s") from None
        except requests.RequestException as exc:
            raise SentryUnavailable(f"Sentry could not be reached ({type(exc).__name__})") from None
        if response.status_code not in (429, 503):
            break
        asked = _wait_asked(response, clock.now())
        wait = next_wait(attempt, asked, waited)
        if wait is None:
            kind = SentryThrottled if response.status_code == 429 else SentryUnavailable
            raise kind(f"Sentry answered {response.status_code}: {_message(response)}", retry_after=asked)
        log.info("Sentry answered %d; retrying in %.1f s", response.status_code, wait)
        response.close()
        clock.sleep(wait)
        waited += wait
    if not 200 <= response.status_code < 300:
        raise _fail(response, scope)
    try:
        return response.json() if response.content else {}  # 204, or an empty 200: nothing to decode
    except ValueError:
        raise SentryError("Sentry answered with a body that is not JSON") from None


def segment(value: object) -> str:
    """A path segment, quoted so no value can change the path (or the origin)."""
    text = str(value)
    if text in ("", ".", ".."):  # a dot segment would be resolved away, and the call reach another endpoint
        raise ValueError("an empty or dot path segment")
    return quote(text, safe="")


def actor(user_id: str) -> str:
    """The `assignedTo` value that assigns a Sentry user."""
    return f"user:{user_id}"


class SentryClient:
    """Calls on one installation's behalf. `token` gives its bearer token and is asked before every call, so
    a refreshed token is used at once (the refresh itself lives with the stored tokens)."""

    def __init__(
        self,
        origin: str,
        token: Callable[[], str],
        *,
        timeout: float | Callable[[], float] = DEFAULT_TIMEOUT_SECONDS,  # a callable: a timer's budget left
        clock: Clock = SYSTEM,
    ) -> None:
        if not is_origin(origin):
            raise ValueError("origin must be scheme://host[:port], as SENTRY_URL is read")
        self.origin = origin
        self._token = token
        self._timeout = timeout
        self._clock = clock

    def call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, str] | None = None,
        scope: str | None = None,
    ) -> Any:
        return send(
            method,
            self.origin + path,
            origin=self.origin,
            timeout=self._timeout() if callable(self._timeout) else self._timeout,
            authorization=f"Bearer {self._token()}",
            json=json,
            params=params,
            clock=self._clock,
            scope=scope,
        )

    def get_issue(self, organization: str, issue_id: str) -> dict:
        path = ISSUE_PATH.format(org=segment(organization), id=segment(issue_id))
        answer = self.call("GET", path, scope=SCOPE_READ_ISSUE)
        if not isinstance(answer, dict):
            raise SentryError("Sentry answered an issue that is not a JSON object")
        return answer

    def update_issue(
        self, organization: str, issue_id: str, *, status: str | None = None, assigned_to: str | None = None
    ) -> dict:
        """Set the status and/or the assignee (`actor(user_id)`, or "" to unassign); None leaves it as it is."""
        body: dict[str, str] = {}
        if status is not None:
            if status not in ISSUE_STATUSES:
                raise ValueError(f"status must be one of {sorted(ISSUE_STATUSES)}")
            body["status"] = status
        if assigned_to is not None:
            body["assignedTo"] = assigned_to
        if not body:
            raise ValueError("nothing to update")
        path = ISSUE_PATH.format(org=segment(organization), id=segment(issue_id))
        answer = self.call("PUT", path, json=body, scope=SCOPE_WRITE_ISSUE)
        return answer if isinstance(answer, dict) else {}

    def find_member(self, organization: str, email: str) -> Member | None:
        """The member with this email who has joined (so can be assigned), matched case-insensitively."""
        path = MEMBERS_PATH.format(org=segment(organization))
        answer = self.call("GET", path, params={"query": f"email:{email}"}, scope=SCOPE_READ_MEMBERS)
        wanted = email.strip().lower()
        for item in answer if isinstance(answer, list) else []:
            user = item.get("user") if isinstance(item, dict) else None
            if not isinstance(user, dict) or user.get("id") is None:
                continue
            emails = {item.get("email"), user.get("email"), user.get("username")}
            if wanted in {e.strip().lower() for e in emails if isinstance(e, str)}:
                name = user.get("name")
                mail = item.get("email")
                return Member(
                    str(item.get("id")),
                    str(user["id"]),
                    mail if isinstance(mail, str) else None,
                    name if isinstance(name, str) else None,
                )
        return None

    def link_external_issue(
        self, installation_uuid: str, *, issue_id: str, web_url: str, project: str, identifier: str
    ) -> str:
        """Show a work item on the Sentry issue (a second POST replaces it); returns the link's id. No unlink on
        purpose: that DELETE needs `event:admin`, which the app does not ask for (docs/sentry.md §1)."""
        body = {"issueId": int(issue_id), "webUrl": web_url, "project": project, "identifier": identifier}
        path = EXTERNAL_ISSUES_PATH.format(uuid=segment(installation_uuid))
        answer = self.call("POST", path, json=body, scope=SCOPE_LINK)
        link_id = answer.get("id") if isinstance(answer, dict) else None
        if not isinstance(link_id, (str, int)) or isinstance(link_id, bool) or link_id == "":
            raise SentryError("Sentry answered the external issue without an id")
        return str(link_id)

    def confirm_installation(self, installation_uuid: str) -> None:
        """Tell Sentry the installation is set up (`status: installed`), optional in the platform's flow."""
        self.call("PUT", INSTALLATION_PATH.format(uuid=segment(installation_uuid)), json={"status": "installed"})
