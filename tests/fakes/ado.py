"""A loopback fake of the Azure DevOps REST endpoints the app uses, started beside the app in end-to-end tests.

The app reaches it only through settings (`settings_env()`), so it must behave like Azure DevOps at the HTTP
level: the same paths (matched case-insensitively, as Azure DevOps does), the mandatory api-version, the
203 sign-in page or 401 for a bad credential, Azure DevOps' error bodies and codes (TF401232, VS403474, ...),
rotating OAuth refresh tokens, and service hook deliveries with Azure DevOps' probation rules. Facts are from
the project's reference notes (`reference/azure-devops-platform.md`); where those are silent the fake says so
in a comment.

Tests drive it with helpers (`add_org`, `add_work_item`, `update_work_item`, ...), inject faults
(`fail_next`, `set_delay`) and inspect what the app sent (`requests`, `count`, `max_concurrent`,
`deliveries`). Everything is guarded by one lock because the server is threaded.

Safety: deliveries go only to loopback hosts; any other URL is recorded as a failed delivery, never sent.
"""

from __future__ import annotations

import base64
import copy
import json
import math
import re
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

import requests as http
from requests.structures import CaseInsensitiveDict
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.http import parse_options_header
from werkzeug.routing import Map, Rule
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

CORE_AREA_ID = "79134c72-4a58-4b42-976c-04e7115f32bf"
# Resource areas the lookup knows; all resolve to the organization URL because the fake serves every area.
RESOURCE_AREAS = {
    CORE_AREA_ID: "Core",
    "5264459e-e5e0-4bd8-b118-0985e68a4ec5": "wit",
    "ea48a0a1-269c-42d8-b8ad-ddc8fcdcf578": "Search",
}
DEFAULT_PROJECT = "proj-id"
DEFAULT_REVISED_BY = "Jamal Hartnett <fabrikamfiber4@hotmail.com>"
ZERO_GUID = "00000000-0000-0000-0000-000000000000"
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
LATEST_API_VERSION = (7, 2)
BATCH_LIMIT = 200
SEARCH_TOP_LIMIT = 1000
FAR_FUTURE = "9999-01-01T00:00:00Z"  # System.RevisedDate of the current revision

STATE_CATEGORIES = ("Proposed", "InProgress", "Resolved", "Completed", "Removed")
STATE_COLORS = {
    "Proposed": "b2b2b2",
    "InProgress": "007acc",
    "Resolved": "ff9d00",
    "Completed": "339933",
    "Removed": "ffffff",
}
# The Agile process' types, so tests need set_states only for custom workflows.
DEFAULT_STATES: dict[str, list[tuple[str, str]]] = {
    "bug": [
        ("New", "Proposed"),
        ("Active", "InProgress"),
        ("Resolved", "Resolved"),
        ("Closed", "Completed"),
        ("Removed", "Removed"),
    ],
    "user story": [
        ("New", "Proposed"),
        ("Active", "InProgress"),
        ("Resolved", "Resolved"),
        ("Closed", "Completed"),
        ("Removed", "Removed"),
    ],
    "task": [("New", "Proposed"), ("Active", "InProgress"), ("Closed", "Completed"), ("Removed", "Removed")],
}
SUBSCRIPTION_STATUSES = ("enabled", "onProbation", "disabledByUser", "disabledBySystem", "disabledByInactiveIdentity")
WORK_ITEM_EVENTS = (
    "workitem.created",
    "workitem.updated",
    "workitem.deleted",
    "workitem.restored",
    "workitem.commented",
)
TRANSIENT_DELIVERY_STATUSES = frozenset({408, 502, 503, 504})  # Azure DevOps retries these, no probation
# The webHooks consumer's validation of `httpHeaders` (HOOKS consumers example).
HTTP_HEADERS_RE = re.compile(r"^([\S]+[\s]*:[\s]*[\S]+[\s]*[\r\n\f]+)*?([\S]+[\s]*:[\s]*[\S]+)+$")
# Identity fields come back as IdentityRef objects from the REST API at api-version >= 5.0 (reference §1.4).
IDENTITY_FIELDS = frozenset(
    name.lower()
    for name in (
        "System.AssignedTo",
        "System.CreatedBy",
        "System.ChangedBy",
        "System.AuthorizedAs",
        "Microsoft.VSTS.Common.ActivatedBy",
        "Microsoft.VSTS.Common.ResolvedBy",
        "Microsoft.VSTS.Common.ClosedBy",
    )
)
COLUMN_NAMES = {
    "system.id": ("System.Id", "ID"),
    "system.title": ("System.Title", "Title"),
    "system.state": ("System.State", "State"),
    "system.rev": ("System.Rev", "Rev"),
    "system.changeddate": ("System.ChangedDate", "Changed Date"),
    "system.createddate": ("System.CreatedDate", "Created Date"),
    "system.assignedto": ("System.AssignedTo", "Assigned To"),
    "system.workitemtype": ("System.WorkItemType", "Work Item Type"),
    "system.teamproject": ("System.TeamProject", "Team Project"),
}
SIGN_IN_PAGE = (
    b"<!DOCTYPE html>\n<html><head><title>Azure DevOps Services | Sign In</title></head>"
    b'<body><form method="post" action="/_signin"><p>Sign in to continue to Azure DevOps.</p></form></body></html>\n'
)


@dataclass
class RecordedRequest:
    """One request the fake received. `started`/`ended` are monotonic; `time` is the wall clock at arrival."""

    method: str
    path: str
    query_string: str
    headers: CaseInsensitiveDict[str]
    body: bytes
    time: float
    started: float
    ended: float | None = None
    status: int | None = None

    @property
    def args(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(self.query_string, keep_blank_values=True).items()}

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Delivery:
    """One service hook POST. `status` is None when no HTTP answer came (`error` says why)."""

    subscription_id: str
    url: str
    status: int | None
    error: str | None
    headers: dict[str, str]
    payload: dict[str, Any]
    time: float


@dataclass
class _Fault:
    method: str
    pattern: re.Pattern[str]
    status: int
    headers: dict[str, str]
    body: bytes
    remaining: int


@dataclass
class _Delay:
    method: str
    pattern: re.Pattern[str]
    seconds: float


@dataclass
class _Project:
    id: str
    name: str


@dataclass
class _WorkItem:
    id: int
    project: str  # the project's id
    rev: int
    fields: dict[str, Any]
    update_count: int  # the id of the latest update (creation is update 1)
    updates: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class _Org:
    name: str
    host_id: str
    account_id: str
    location_url: str | None
    pats: set[str] = field(default_factory=set)
    projects: dict[str, _Project] = field(default_factory=dict)  # by id, lower-cased
    work_items: dict[int, _WorkItem] = field(default_factory=dict)
    states: dict[tuple[str, str], list[tuple[str, str]]] = field(default_factory=dict)  # (project id, type)

    @property
    def key(self) -> str:
        return self.name.lower()

    def project(self, name_or_id: str) -> _Project | None:
        wanted = name_or_id.lower()
        found = self.projects.get(wanted)
        if found is None:
            found = next((p for p in self.projects.values() if p.name.lower() == wanted), None)
        return found


class _Reject(Exception):
    """Raised by a handler to answer with `response` instead (bad input, missing things)."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status)
        self.response = response


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Keep test output free of one access-log line per request."""


def _json_response(data: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    return Response(
        json.dumps(data), status=status, headers=dict(headers or {}), content_type="application/json; charset=utf-8"
    )


def _error(
    status: int,
    message: str,
    type_key: str = "InvalidArgumentValueException",
    *,
    type_name: str | None = None,
    event_id: int = 3000,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """Azure DevOps' WrappedException error body."""
    body = {
        "$id": "1",
        "innerException": None,
        "message": message,
        "typeName": type_name
        or f"Microsoft.VisualStudio.Services.WebApi.{type_key}, Microsoft.VisualStudio.Services.WebApi",
        "typeKey": type_key,
        "errorCode": 0,
        "eventId": event_id,
    }
    return _json_response(body, status, headers)


def _work_item_not_found(work_item_id: int) -> Response:
    return _error(
        404,
        f"TF401232: Work item {work_item_id} does not exist, or you do not have permissions to read it.",
        "WorkItemUnauthorizedAccessException",
        type_name=(
            "Microsoft.TeamFoundation.WorkItemTracking.Server.WorkItemUnauthorizedAccessException, "
            "Microsoft.TeamFoundation.WorkItemTracking.Server"
        ),
        event_id=3200,
    )


def _iso_ms(moment: datetime) -> str:
    """Azure DevOps' field date format: UTC, milliseconds, 'Z'."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _iso_7(moment: datetime) -> str:
    """The envelope's createdDate format: seven fractional digits."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond:06d}0Z"


def _parse_iso(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _arg(request: Request, name: str) -> str | None:
    """A query parameter by name, case-insensitively (Azure DevOps ignores the case of parameter names)."""
    wanted = name.lower()
    for key, value in request.args.items(multi=True):
        if key.lower() == wanted:
            return value
    return None


def _api_version(request: Request) -> str | None:
    """The api-version from the query, else from an `Accept: application/json;api-version=X` media type."""
    value = _arg(request, "api-version")
    if value:
        return value.strip()
    for media_type in request.headers.get("Accept", "").split(","):
        _, params = parse_options_header(media_type)
        for key, param in params.items():
            if key.lower() == "api-version" and param.strip():
                return param.strip()
    return None


def _api_major(version: str) -> int:
    """The major version, or a 400 like Azure DevOps' for a malformed or too-new version."""
    match = re.fullmatch(r"(\d+)\.(\d+)(?:-preview(?:\.\d+)?)?", version, re.IGNORECASE)
    if match is None:
        raise _Reject(_error(400, f"The api-version '{version}' is not valid.", "VssInvalidApiVersionException"))
    major, minor = int(match.group(1)), int(match.group(2))
    if (major, minor) > LATEST_API_VERSION:
        latest = ".".join(map(str, LATEST_API_VERSION))
        raise _Reject(
            _error(
                400,
                f"The requested REST API version of {version} is out of range for this server. "
                f"The latest REST API version this server supports is {latest}.",
                "VssVersionOutOfRangeException",
            )
        )
    return major


def _read_json(request: Request) -> Any:
    """The JSON body of a POST/PUT; Azure DevOps binds bodies only from JSON media types."""
    if request.mimetype not in ("application/json", "application/json-patch+json"):
        raise _Reject(
            _error(
                415,
                f"The request's Content-Type '{request.mimetype or 'none'}' is not supported; send application/json.",
                "VssRequestContentTypeNotSupportedException",
            )  # fmt: skip
        )
    try:
        return json.loads(request.get_data(cache=True) or b"null")
    except ValueError:
        raise _Reject(_error(400, "The request body is not valid JSON.")) from None


def _int_or_reject(value: Any, name: str, default: int) -> int:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _Reject(_error(400, f"{name} must be a non-negative integer."))
    return value


def _is_loopback(url: str) -> bool:
    host = (urlsplit(url).hostname or "").lower()
    return host in ("127.0.0.1", "localhost", "::1") or host.startswith("127.")


def _parse_http_headers(text: str) -> dict[str, str]:
    """The webHooks consumer's `httpHeaders`: one `Key:value` per line."""
    headers: dict[str, str] = {}
    for line in re.split(r"[\r\n\f]+", text or ""):
        key, sep, value = line.partition(":")
        if sep and key.strip():
            headers[key.strip()] = value.strip()
    return headers


def _strip_parens(text: str) -> str:
    """Remove parentheses that wrap the whole condition: '(a IN (1))' -> 'a IN (1)'."""
    text = text.strip()
    while text.startswith("(") and text.endswith(")"):
        depth = 0
        for index, char in enumerate(text):
            depth += {"(": 1, ")": -1}.get(char, 0)
            if depth == 0 and index < len(text) - 1:
                return text  # the first '(' closes before the end: not a wrapping pair
        text = text[1:-1].strip()
    return text


_WIQL_RE = re.compile(
    r"^\s*SELECT\s+(?P<columns>.+?)\s+FROM\s+WorkItems\b(?:\s+WHERE\s+(?P<where>.+?))?"
    r"(?:\s+ORDER\s+BY\s+(?P<order>.+?))?\s*$",
    re.IGNORECASE | re.DOTALL,
)
_WIQL_FIELD_RE = re.compile(r"\[([\w.]+)\]")
_WIQL_ID_IN_RE = re.compile(r"\[System\.Id\]\s+IN\s*\((?P<ids>[^()]*)\)", re.IGNORECASE)
_WIQL_ID_CMP_RE = re.compile(r"\[System\.Id\]\s*(?P<op><>|>=|<=|=|>|<)\s*(?P<value>\d+)", re.IGNORECASE)
_WIQL_DATE_RE = re.compile(
    r"\[(?P<field>System\.ChangedDate|System\.CreatedDate)\]\s*(?P<op><>|>=|<=|=|>|<)\s*'(?P<value>[^']*)'",
    re.IGNORECASE,
)
_WIQL_EQ_RE = re.compile(
    r"\[(?P<field>[\w.]+)\]\s*(?P<op><>|=)\s*(?:'(?P<value>(?:[^']|'')*)'|(?P<macro>@project))", re.IGNORECASE
)
_WIQL_ORDER_RE = re.compile(r"\[(?P<field>[\w.]+)\]\s*(?P<dir>ASC|DESC)?", re.IGNORECASE)
_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "=": lambda a, b: a == b,
    "<>": lambda a, b: a != b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
}


class FakeAzureDevOps:
    """Azure DevOps on 127.0.0.1: organizations, credentials, work items, states, service hooks, WIQL."""

    def __init__(self, *, client_secret: str = "fake-client-secret", redirect_uri: str | None = None) -> None:
        self.client_secret = client_secret
        # When set, token requests must carry exactly this redirect_uri (Azure DevOps checks the registration).
        self.redirect_uri = redirect_uri
        self.delivery_timeout = 10.0  # seconds per service hook POST
        self._lock = threading.RLock()
        self._orgs: dict[str, _Org] = {}
        self._access_tokens: dict[str, str] = {}  # token -> org key
        self._refresh_tokens: dict[str, str] = {}  # token -> org key
        self._subscriptions: dict[str, tuple[str, dict[str, Any]]] = {}  # id -> (org key, stored body)
        self._log: list[RecordedRequest] = []
        self._deliveries: list[Delivery] = []
        self._faults: list[_Fault] = []
        self._delays: list[_Delay] = []
        self._refresh_count = 0
        self._notification_id = 0
        self._watermark = 0
        self._last_timestamp: datetime | None = None
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self._http = http.Session()
        self._http.trust_env = False  # deliveries go straight to loopback, never through an environment proxy
        self._map = Map(self._rules(), strict_slashes=False, merge_slashes=False)

    # ----------------------------------------------------------------------------------------- lifecycle

    def start(self) -> Self:
        if self._server is not None:
            raise RuntimeError("the fake is already running")
        self._server = make_server("127.0.0.1", 0, self._wsgi, threaded=True, request_handler=_QuietHandler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-ado", daemon=True
        )  # a short poll interval makes stop() quick
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(timeout=5)
        self._http.close()

    def __enter__(self) -> Self:
        return self.start() if self._server is None else self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("the fake is not running; call start()")
        return f"http://127.0.0.1:{self._server.server_port}"

    def org_url(self, org: str) -> str:
        """The organization URL, with its trailing slash: what the app stores as `domain_name`."""
        return f"{self.base_url}/{org}/"

    def settings_env(self) -> dict[str, str]:
        """The app settings that point the app at this fake."""
        base = self.base_url
        return {
            "ADO_ACCOUNT_LOOKUP_URL": (
                f"{base}/_apis/resourceareas/79134C72-4A58-4B42-976C-04E7115F32BF?hostId=%s&api-preview=5.0-preview.1"
            ),
            "ADO_OAUTH_TOKEN_URL": f"{base}/oauth2/token",
            "ADO_SEARCH_BASE_URL": f"{base}/{{organization}}/",
            "ADO_ALLOWED_ORIGINS": base,
            "ADO_CLIENT_SECRET": self.client_secret,
        }

    # -------------------------------------------------------------------------------- organizations, auth

    def add_org(
        self, name: str, host_id: str, *, location_url: str | None = None, account_id: str | None = None
    ) -> None:
        """An organization. `host_id` is its collection id (the integration key); the lookup accepts it and
        `account_id` (default: derived from host_id), as the reference leaves open which one Azure DevOps takes.
        """
        with self._lock:
            if name.lower() in self._orgs:
                raise ValueError(f"organization {name!r} already exists")
            account = account_id or str(uuid.uuid5(uuid.NAMESPACE_URL, f"account:{host_id.lower()}"))
            org = _Org(name=name, host_id=host_id, account_id=account, location_url=location_url)
            org.projects[DEFAULT_PROJECT] = _Project(DEFAULT_PROJECT, DEFAULT_PROJECT)
            self._orgs[org.key] = org

    def set_location(self, host_id: str, url: str | None) -> None:
        """What the lookup answers as `locationUrl` for this host id; None restores the default."""
        with self._lock:
            self._org_by_host(host_id).location_url = url

    def add_project(self, org: str, project_id: str, name: str | None = None) -> None:
        """A project (id and name); projects used by work items or set_states are added implicitly."""
        with self._lock:
            self._ensure_project(self._org(org), project_id).name = name or project_id

    def add_pat(self, org: str, token: str) -> None:
        with self._lock:
            self._org(org).pats.add(token)

    def remove_pat(self, org: str, token: str) -> None:
        """Revoke a PAT: requests with it are then refused."""
        with self._lock:
            self._org(org).pats.discard(token)

    def add_refresh_token(self, org: str, refresh_token: str) -> None:
        with self._lock:
            self._refresh_tokens[refresh_token] = self._org(org).key

    def add_access_token(self, org: str, token: str) -> None:
        """A Bearer token valid for the organization (an OAuth or Entra access token)."""
        with self._lock:
            self._access_tokens[token] = self._org(org).key

    def expire_access_token(self, token: str) -> None:
        with self._lock:
            self._access_tokens.pop(token, None)

    @property
    def refresh_count(self) -> int:
        """Successful OAuth refreshes so far."""
        with self._lock:
            return self._refresh_count

    # --------------------------------------------------------------------------------- work items, states

    def add_work_item(
        self, org: str, work_item_id: int, fields: Mapping[str, Any], *, project: str = DEFAULT_PROJECT, rev: int = 1
    ) -> dict[str, Any]:
        """A work item; common system fields get defaults unless given. Returns {id, rev, project, fields}."""
        with self._lock:
            o = self._org(org)
            if work_item_id in o.work_items:
                raise ValueError(f"work item {work_item_id} already exists in {org!r}")
            proj = self._ensure_project(o, project)
            now = self._next_timestamp()
            self._watermark += 1
            values: dict[str, Any] = {
                "System.AreaPath": proj.name,
                "System.TeamProject": proj.name,
                "System.IterationPath": proj.name,
                "System.WorkItemType": "Bug",
                "System.State": "New",
                "System.Reason": "New",
                "System.CreatedDate": now,
                "System.ChangedDate": now,
                "System.Title": f"Work item {work_item_id}",
            }
            values.update(fields)
            values.update({"System.Id": work_item_id, "System.Rev": rev, "System.Watermark": self._watermark})
            values = {k: v for k, v in values.items() if v is not None}  # fields without values are omitted
            item = _WorkItem(id=work_item_id, project=proj.id, rev=rev, fields=values, update_count=rev)
            o.work_items[work_item_id] = item
            return self._snapshot(item)

    def work_item(self, org: str, work_item_id: int) -> dict[str, Any]:
        """The current work item: {id, rev, project, fields} (identity fields as given, strings)."""
        with self._lock:
            return self._snapshot(self._item(org, work_item_id))

    def updates(self, org: str, work_item_id: int) -> list[dict[str, Any]]:
        """The `resource` of every update made with update_work_item, oldest first."""
        with self._lock:
            return copy.deepcopy(self._item(org, work_item_id).updates)

    def update_work_item(
        self,
        org: str,
        work_item_id: int,
        changes: Mapping[str, Any],
        *,
        revised_by: str = DEFAULT_REVISED_BY,
        deliver: bool = True,
    ) -> dict[str, Any]:
        """Change fields (None clears one), bump rev and System.ChangedDate, and return the `workitem.updated`
        delivery payload (resourceVersion 1.0). With `deliver`, POST it to every enabled, matching subscription
        (each copy carries its own subscriptionId and notificationId; the first copy is returned).
        """
        with self._lock:
            o = self._org(org)
            item = self._item(org, work_item_id)
            now = self._next_timestamp()
            self._watermark += 1
            old = dict(item.fields)
            new = dict(old)
            for key, value in changes.items():
                if value is None:
                    new.pop(key, None)
                else:
                    new[key] = value
            item.rev += 1
            item.update_count += 1
            new.update(
                {
                    "System.Rev": item.rev,
                    "System.ChangedDate": now,
                    "System.AuthorizedDate": now,
                    "System.ChangedBy": revised_by,
                    "System.AuthorizedAs": revised_by,
                    "System.Watermark": self._watermark,
                }
            )
            diff: dict[str, dict[str, Any]] = {}
            for key in [*old, *(k for k in new if k not in old)]:
                if old.get(key) != new.get(key):
                    entry: dict[str, Any] = {}
                    if key in old:
                        entry["oldValue"] = old[key]
                    if key in new:
                        entry["newValue"] = new[key]
                    diff[key] = entry
            # The previous revision ends now; the new one is current (Azure DevOps always sends this pair).
            diff["System.RevisedDate"] = {"oldValue": now, "newValue": FAR_FUTURE}
            item.fields = new
            resource = self._update_resource(o, item, diff, revised_by)
            item.updates.append(copy.deepcopy(resource))
            event = self._event(o, item, resource)
            targets = [sub for sub in self._org_subscriptions(o) if self._wants(sub, o, item, diff)] if deliver else []
            payloads: list[tuple[dict[str, Any], dict[str, Any]]] = []
            for sub in targets:
                payloads.append((copy.deepcopy(sub), self._addressed(event, sub["id"])))
            returned = payloads[0][1] if payloads else self._addressed(event, ZERO_GUID)
            returned = copy.deepcopy(returned)
        # POST outside the lock: the receiver (the app) may call back into the fake while handling it.
        for sub, payload in payloads:
            self._post_delivery(sub, payload)
        return returned

    def deliver(self, org: str, payload: Mapping[str, Any], *, subscription_id: str | None = None) -> list[Delivery]:
        """Send `payload` as it is (a replay) to the organization's enabled subscriptions, or to just one."""
        with self._lock:
            o = self._org(org)
            targets = [
                copy.deepcopy(sub)
                for sub in self._org_subscriptions(o)
                if subscription_id is None or sub["id"] == subscription_id.lower()
            ]
        return [self._post_delivery(sub, dict(payload)) for sub in targets]

    def set_states(self, org: str, project: str, work_item_type: str, states: Iterable[tuple[str, str]]) -> None:
        """The states of a work item type in a project, as (name, category) pairs."""
        states = list(states)
        for name, category in states:
            if category not in STATE_CATEGORIES:
                raise ValueError(f"state {name!r}: category must be one of {STATE_CATEGORIES}, not {category!r}")
        with self._lock:
            o = self._org(org)
            proj = self._ensure_project(o, project)
            o.states[(proj.id.lower(), work_item_type.lower())] = states

    # ---------------------------------------------------------------------------------------- subscriptions

    def subscriptions(self, org: str) -> list[dict[str, Any]]:
        """The organization's subscriptions as stored (secrets included, unlike the REST answers)."""
        with self._lock:
            o = self._org(org)
            return [copy.deepcopy(sub) for key, sub in self._subscriptions.values() if key == o.key]

    def set_subscription_status(self, subscription_id: str, status: str) -> None:
        if status not in SUBSCRIPTION_STATUSES:
            raise ValueError(f"status must be one of {SUBSCRIPTION_STATUSES}")
        with self._lock:
            self._subscription(subscription_id)["status"] = status

    def remove_subscription(self, subscription_id: str) -> None:
        with self._lock:
            self._subscription(subscription_id)
            del self._subscriptions[subscription_id.lower()]

    @property
    def deliveries(self) -> list[Delivery]:
        with self._lock:
            return list(self._deliveries)

    # --------------------------------------------------------------------------------------------- faults

    def fail_next(
        self,
        method: str,
        path_regex: str,
        status: int,
        *,
        headers: Mapping[str, str] | None = None,
        body: bytes | str | dict[str, Any] | list[Any] = b"",
        count: int = 1,
    ) -> None:
        """Answer the next `count` requests whose method matches (`*` for any) and whose path matches
        `path_regex` (re.search) with this response, before authentication, instead of the real one.
        A dict or list body is sent as JSON.
        """
        response_headers = dict(headers or {})
        if isinstance(body, dict | list):
            raw = json.dumps(body).encode()
            response_headers.setdefault("Content-Type", "application/json; charset=utf-8")
        else:
            raw = body.encode() if isinstance(body, str) else body
        with self._lock:
            self._faults.append(_Fault(method.upper(), re.compile(path_regex), status, response_headers, raw, count))

    def set_delay(self, path_regex: str, seconds: float, *, method: str = "*") -> None:
        """Delay every matching response by `seconds` (until clear_faults), without blocking other requests."""
        with self._lock:
            self._delays.append(_Delay(method.upper(), re.compile(path_regex), seconds))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()
            self._delays.clear()

    # ------------------------------------------------------------------------------------------ request log

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._log)

    def count(self, method: str, path_regex: str) -> int:
        """Requests received whose method matches (`*` for any) and whose path matches (re.search)."""
        with self._lock:
            return sum(1 for r in self._log if self._matches(method, path_regex, r.method, r.path))

    def max_concurrent(self, path_regex: str, method: str = "*") -> int:
        """The highest number of matching requests that were in flight at the same time.

        A request counts from its arrival until its response was ready; the client sees the response only
        after that, so a client-side bound of N in flight can never show up here as more than N.
        """
        with self._lock:
            spans = [
                (r.started, r.ended if r.ended is not None else math.inf)
                for r in self._log
                if self._matches(method, path_regex, r.method, r.path)
            ]
        events = sorted([(start, 1) for start, _ in spans] + [(end, -1) for _, end in spans])
        current = highest = 0
        for _, step in events:  # at equal times the end (-1) sorts first: touching spans do not overlap
            current += step
            highest = max(highest, current)
        return highest

    def reset_log(self) -> None:
        """Forget recorded requests and deliveries."""
        with self._lock:
            self._log.clear()
            self._deliveries.clear()

    # ------------------------------------------------------------------------------------------ internals

    @staticmethod
    def _matches(method: str, path_regex: str, actual_method: str, path: str) -> bool:
        return method in ("*", actual_method.upper()) and re.search(path_regex, path) is not None

    def _org(self, name: str) -> _Org:
        try:
            return self._orgs[name.lower()]
        except KeyError:
            raise KeyError(f"unknown organization {name!r}; call add_org first") from None

    def _org_by_host(self, host_id: str) -> _Org:
        wanted = host_id.lower()
        for org in self._orgs.values():
            if wanted in (org.host_id.lower(), org.account_id.lower()):
                return org
        raise KeyError(f"no organization has host id {host_id!r}")

    def _item(self, org: str, work_item_id: int) -> _WorkItem:
        try:
            return self._org(org).work_items[work_item_id]
        except KeyError:
            raise KeyError(f"work item {work_item_id} does not exist in {org!r}") from None

    def _subscription(self, subscription_id: str) -> dict[str, Any]:
        try:
            return self._subscriptions[subscription_id.lower()][1]
        except KeyError:
            raise KeyError(f"no subscription {subscription_id!r}") from None

    def _org_subscriptions(self, org: _Org) -> list[dict[str, Any]]:
        """The organization's subscriptions that deliver: only `enabled` ones ("any new events are lost"
        while a subscription is on probation)."""
        return [sub for key, sub in self._subscriptions.values() if key == org.key and sub["status"] == "enabled"]

    @staticmethod
    def _ensure_project(org: _Org, project: str) -> _Project:
        found = org.project(project)
        if found is None:
            found = org.projects[project.lower()] = _Project(project, project)
        return found

    @staticmethod
    def _snapshot(item: _WorkItem) -> dict[str, Any]:
        return {"id": item.id, "rev": item.rev, "project": item.project, "fields": copy.deepcopy(item.fields)}

    def _next_timestamp(self) -> str:
        """Now (ms precision), strictly later than any timestamp given before, so ChangedDate always grows."""
        now = datetime.now(UTC)
        now = now.replace(microsecond=now.microsecond // 1000 * 1000)
        if self._last_timestamp is not None and now <= self._last_timestamp:
            now = self._last_timestamp + timedelta(milliseconds=1)
        self._last_timestamp = now
        return _iso_ms(now)

    def _identity_ref(self, value: Any) -> Any:
        """An IdentityRef object for a 'Display Name <unique name>' string (REST api-version >= 5.0)."""
        if not isinstance(value, str):
            return value
        match = re.fullmatch(r"\s*(.*?)\s*<([^<>]+)>\s*", value)
        display, unique = (match.group(1) or match.group(2), match.group(2)) if match else (value, value)
        identity = str(uuid.uuid5(uuid.NAMESPACE_URL, f"identity:{unique.lower()}"))
        descriptor = "aad." + base64.urlsafe_b64encode(identity.encode()).decode().rstrip("=")
        avatar = f"{self.base_url}/_apis/GraphProfile/MemberAvatars/{descriptor}"
        return {
            "displayName": display,
            "url": f"{self.base_url}/_apis/Identities/{identity}",
            "_links": {"avatar": {"href": avatar}},
            "id": identity,
            "uniqueName": unique,
            "imageUrl": avatar,
            "descriptor": descriptor,
        }

    def _item_links(self, org: _Org, item: _WorkItem) -> dict[str, Any]:
        url = f"{self.org_url(org.name)}_apis/wit/workItems/{item.id}"
        return {
            "self": {"href": url},
            "workItemUpdates": {"href": f"{url}/updates"},
            "workItemRevisions": {"href": f"{url}/revisions"},
            "workItemComments": {"href": f"{url}/comments"},
            "html": {"href": f"{self.org_url(org.name)}web/wi.aspx?pcguid={org.host_id}&id={item.id}"},
            "workItemType": {
                "href": f"{self.org_url(org.name)}{item.project}/_apis/wit/workItemTypes/"
                f"{item.fields.get('System.WorkItemType', '')}"
            },
            "fields": {"href": f"{self.org_url(org.name)}_apis/wit/fields"},
        }

    def _render_item(
        self, org: _Org, item: _WorkItem, major: int, fields: list[str] | None, expand: str | None
    ) -> dict[str, Any]:
        """A work item as the REST API answers it."""
        values = copy.deepcopy(item.fields)
        if fields:
            wanted = {name.lower() for name in fields}
            values = {k: v for k, v in values.items() if k.lower() in wanted}
        if major >= 5:
            values = {k: self._identity_ref(v) if k.lower() in IDENTITY_FIELDS else v for k, v in values.items()}
        rendered: dict[str, Any] = {"id": item.id, "rev": item.rev, "fields": values}
        expand = (expand or "").lower()
        if expand in ("relations", "all"):
            rendered["relations"] = []
        if not fields or expand in ("links", "all"):
            rendered["_links"] = self._item_links(org, item)
        rendered["url"] = f"{self.org_url(org.name)}_apis/wit/workItems/{item.id}"
        return rendered

    def _update_resource(self, org: _Org, item: _WorkItem, diff: dict[str, Any], revised_by: str) -> dict[str, Any]:
        """The `resource` of a workitem.updated event (a WorkItemUpdate, resourceVersion 1.0)."""
        item_url = f"{self.org_url(org.name)}_apis/wit/workItems/{item.id}"
        revised_by_ref = self._identity_ref(revised_by)
        revised_by_ref["name"] = revised_by  # 1.0 payloads carry the 'Display <email>' form here too
        return {
            "id": item.update_count,
            "workItemId": item.id,
            "rev": item.rev,
            "revisedBy": revised_by_ref,
            "revisedDate": FAR_FUTURE,
            "fields": diff,
            "_links": {
                "self": {"href": f"{item_url}/updates/{item.update_count}"},
                "workItemUpdates": {"href": f"{item_url}/updates"},
                "parent": {"href": item_url},
                "html": {"href": f"{self.org_url(org.name)}web/wi.aspx?pcguid={org.host_id}&id={item.id}"},
            },
            "url": f"{item_url}/updates/{item.update_count}",
            "revision": {
                "id": item.id,
                "rev": item.rev,
                "fields": copy.deepcopy(item.fields),
                "url": f"{item_url}/revisions/{item.rev}",
            },
        }

    def _event(self, org: _Org, item: _WorkItem, resource: dict[str, Any]) -> dict[str, Any]:
        """The delivery envelope, without subscriptionId/notificationId (each copy gets its own)."""
        base = self.org_url(org.name)
        fields = item.fields
        who = re.sub(r"\s*<[^<>]*>\s*$", "", str(fields.get("System.ChangedBy", ""))) or "someone"
        label = f"{fields.get('System.WorkItemType', 'Work item')} #{item.id}"
        link = f"{base}web/wi.aspx?pcguid={org.host_id}&id={item.id}"
        summary = f"{label} ({fields.get('System.Title', '')}) updated by {who}."
        state = resource["fields"].get("System.State", {}).get("newValue")
        details = f"\r\n\r\n- New State: {state}\r\n" if state else ""
        return {
            "id": str(uuid.uuid4()),
            "eventType": "workitem.updated",
            "publisherId": "tfs",
            "message": {"text": f"{summary}\r\n({link})", "html": summary, "markdown": f"[{label}]({link}) {summary}"},
            "detailedMessage": {"text": f"{summary}\r\n({link}){details}", "html": summary, "markdown": summary},
            "resource": resource,
            "resourceVersion": "1.0",
            "resourceContainers": {
                "collection": {"id": org.host_id, "baseUrl": base},
                "account": {"id": org.account_id, "baseUrl": base},
                "project": {"id": item.project, "baseUrl": base},
            },
            "createdDate": _iso_7(datetime.now(UTC)),
        }

    def _addressed(self, event: dict[str, Any], subscription_id: str) -> dict[str, Any]:
        self._notification_id += 1
        return {"subscriptionId": subscription_id, "notificationId": self._notification_id, **copy.deepcopy(event)}

    @staticmethod
    def _wants(sub: dict[str, Any], org: _Org, item: _WorkItem, diff: Mapping[str, Any]) -> bool:
        """Whether a subscription's event type and publisher filters select this update."""
        if sub.get("eventType") != "workitem.updated":
            return False
        inputs = sub.get("publisherInputs") or {}
        project = str(inputs.get("projectId") or "")
        if project and org.project(project) is not org.projects.get(item.project.lower()):
            return False
        wit = str(inputs.get("workItemType") or "")
        if wit and wit.lower() != str(item.fields.get("System.WorkItemType", "")).lower():
            return False
        area = str(inputs.get("areaPath") or "").lower()
        item_area = str(item.fields.get("System.AreaPath", "")).lower()
        if area and item_area != area and not item_area.startswith(area + "\\"):
            return False
        changed = {name.strip().lower() for name in re.split(r"[,;]", str(inputs.get("changedFields") or ""))}
        changed.discard("")
        return not changed or any(key.lower() in changed for key in diff)

    def _post_delivery(self, sub: dict[str, Any], payload: dict[str, Any]) -> Delivery:
        """POST one payload as the webHooks consumer does, record it, and apply the probation rules."""
        inputs = sub.get("consumerInputs") or {}
        url = str(inputs.get("url", ""))
        headers = {"Content-Type": "application/json; charset=utf-8", "User-Agent": "VSServices/19.0 (fake)"}
        headers.update(_parse_http_headers(str(inputs.get("httpHeaders") or "")))
        user, password = inputs.get("basicAuthUsername"), inputs.get("basicAuthPassword")
        if user or password:
            token = base64.b64encode(f"{user or ''}:{password or ''}".encode()).decode()
            headers["Authorization"] = f"Basic {token}"
        status: int | None = None
        error: str | None = None
        if not _is_loopback(url):
            error = "refused: the fake delivers only to loopback addresses"
        else:
            try:
                answer = self._http.post(
                    url,
                    data=json.dumps(payload).encode(),
                    headers=headers,
                    timeout=self.delivery_timeout,
                    allow_redirects=False,
                )
                status = answer.status_code
                answer.close()
            except http.Timeout:
                error = "timeout"
            except http.RequestException as exc:
                error = type(exc).__name__
        delivery = Delivery(str(sub["id"]), url, status, error, headers, payload, time.time())
        with self._lock:
            self._deliveries.append(delivery)
            current = self._subscriptions.get(str(sub["id"]).lower())
            if current is not None and current[1]["status"] == "enabled":
                # Azure DevOps: 2xx succeeds; 410 disables at once; 408/502/503/504 and timeouts are retried
                # for ~3 minutes (not emulated: recorded only); any other answer or no answer: probation.
                succeeded = status is not None and 200 <= status < 300
                transient = status in TRANSIENT_DELIVERY_STATUSES or error == "timeout"
                if status == 410:
                    current[1]["status"] = "disabledBySystem"
                elif not succeeded and not transient:
                    current[1]["status"] = "onProbation"
        return delivery

    # ----------------------------------------------------------------------------------------------- HTTP

    @staticmethod
    def _rules() -> list[Rule]:
        """Paths relative to the base URL. Literal segments are lower-case: matching is case-insensitive."""
        rules = [
            Rule("/_apis/resourceareas/<area_id>", endpoint="resource_area", methods=["GET"]),
            Rule("/oauth2/token", endpoint="token", methods=["POST"]),
            Rule("/<org>/<project>/_apis/wit/workitemtypes/<wit_type>/states", endpoint="states", methods=["GET"]),
            Rule("/<org>/_apis/hooks/subscriptions", endpoint="subscriptions", methods=["GET", "POST"]),
            Rule(
                "/<org>/_apis/hooks/subscriptions/<sub_id>",
                endpoint="subscription",
                methods=["GET", "PUT", "DELETE"],
            ),
            Rule("/<org>/<project>/<team>/_apis/wit/wiql", endpoint="wiql", methods=["POST"]),
        ]
        # Where Azure DevOps takes an optional project segment after the organization.
        for path, endpoint, method in (
            ("_apis/wit/workitems/<int:work_item_id>", "work_item", "GET"),
            ("_apis/wit/workitems", "work_items", "GET"),
            ("_apis/wit/workitemsbatch", "batch", "POST"),
            ("_apis/wit/wiql", "wiql", "POST"),
            ("_apis/search/workitemsearchresults", "search", "POST"),
        ):
            rules.append(Rule(f"/<org>/{path}", endpoint=endpoint, methods=[method]))
            rules.append(Rule(f"/<org>/<project>/{path}", endpoint=endpoint, methods=[method]))
        return rules

    def _wsgi(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        request = Request(environ)
        body = request.get_data(cache=True)
        record = RecordedRequest(
            method=request.method,
            path=request.path,
            query_string=request.query_string.decode("latin-1"),
            headers=CaseInsensitiveDict(dict(request.headers.items())),
            body=body,
            time=time.time(),
            started=time.monotonic(),
        )
        with self._lock:
            self._log.append(record)
            delay = max(
                (
                    d.seconds
                    for d in self._delays
                    if self._matches(d.method, d.pattern.pattern, record.method, record.path)
                ),
                default=0.0,
            )
        if delay > 0:
            time.sleep(delay)  # outside the lock, on this request's own thread
        try:
            response = self._fault_response(record) or self._dispatch(request)
        except _Reject as reject:
            response = reject.response
        except Exception as exc:  # a bug in the fake must show up as a clear 500, not a hung test
            response = _error(500, f"fake Azure DevOps failed: {type(exc).__name__}: {exc}", "FakeServerError")
        with self._lock:
            record.status = response.status_code
            record.ended = time.monotonic()
        return response(environ, start_response)

    def _fault_response(self, record: RecordedRequest) -> Response | None:
        with self._lock:
            for fault in self._faults:
                if fault.remaining > 0 and self._matches(
                    fault.method, fault.pattern.pattern, record.method, record.path
                ):
                    fault.remaining -= 1
                    if fault.remaining == 0:
                        self._faults.remove(fault)
                    return Response(fault.body, status=fault.status, headers=fault.headers)
        return None

    def _dispatch(self, request: Request) -> Response:
        segments = request.path.split("/")
        adapter = self._map.bind("fake-azure-devops")
        try:
            rule, args = adapter.match("/".join(s.lower() for s in segments), method=request.method, return_rule=True)
        except MethodNotAllowed as exc:
            allowed = ", ".join(sorted(exc.valid_methods or []))
            return _error(405, f"The method {request.method} is not allowed here.", headers={"Allow": allowed})
        except NotFound:
            return _error(404, f"The resource {request.path} was not found.", "ResourceNotFoundException")
        except HTTPException as exc:
            return _error(exc.code or 400, exc.description or "Bad request.")
        # Matching ran on the lower-cased path; take variable values back from the original segments.
        for index, part in enumerate(rule.rule.split("/")):
            variable = re.fullmatch(r"<(?:\w+:)?(\w+)>", part)
            if variable and isinstance(args.get(variable.group(1)), str):
                args[variable.group(1)] = segments[index]
        handler = getattr(self, f"_handle_{rule.endpoint}")
        if rule.endpoint in ("resource_area", "token"):
            return handler(request, **args)  # anonymous endpoints, no api-version needed
        return self._org_request(request, handler, args)

    def _org_request(self, request: Request, handler: Callable[..., Response], args: dict[str, Any]) -> Response:
        """Organization endpoints: organization, credential, api-version and project, in that order."""
        with self._lock:
            org = self._orgs.get(str(args.pop("org")).lower())
            authorized = org is not None and self._authorized(request, org)
        if org is None:
            # No credential can be valid for an organization that does not exist. (Exact Azure DevOps
            # answer not in the reference.)
            return _error(404, "The organization was not found.", "OrganizationNotFoundException")
        if not authorized:
            return self._unauthorized(request)
        version = _api_version(request)
        if version is None:
            return _error(
                400,
                f'No api-version was supplied for the "{request.method}" request. The version must be supplied '
                'either as part of the Accept header (e.g. "application/json; api-version=1.0") or as a query '
                'parameter (e.g. "?api-version=1.0").',
                "VssVersionNotSpecifiedException",
            )
        major = _api_major(version)
        args.pop("team", None)
        project_segment = args.pop("project", None)
        project: _Project | None = None
        if project_segment is not None:
            with self._lock:
                project = org.project(project_segment)
            if project is None:
                return _error(
                    404,
                    f"TF200016: The following project does not exist: {project_segment}. Verify that the name of "
                    "the project is correct and that the project exists on the specified Azure DevOps Server.",
                    "ProjectDoesNotExistWithNameException",
                )
        return handler(request, org=org, project=project, major=major, **args)

    def _authorized(self, request: Request, org: _Org) -> bool:
        scheme, _, value = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "basic":
            try:
                decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
            except (ValueError, UnicodeDecodeError):
                return False
            _, sep, token = decoded.partition(":")  # any user name; the PAT is the password
            return bool(sep) and token in org.pats
        if scheme.lower() == "bearer":
            return self._access_tokens.get(value.strip()) == org.key
        return False

    def _unauthorized(self, request: Request) -> Response:
        """401 when the client suppressed the sign-in redirect, else Azure DevOps' 203 HTML sign-in page."""
        if request.headers.get("X-TFS-FedAuthRedirect", "").strip().lower() == "suppress":
            return _error(
                401,
                "TF400813: The user '' is not authorized to access this resource.",
                "UnauthorizedRequestException",
                type_name=(
                    "Microsoft.TeamFoundation.Framework.Server.UnauthorizedRequestException, "
                    "Microsoft.TeamFoundation.Framework.Server"
                ),
                headers={"WWW-Authenticate": f'Bearer, Basic realm="{self.base_url}/"'},
            )
        return Response(SIGN_IN_PAGE, status=203, content_type="text/html; charset=utf-8")

    # ---------------------------------------------------------------------------------------- handlers

    def _handle_resource_area(self, request: Request, area_id: str) -> Response:
        host_id = _arg(request, "hostId")
        account_name = _arg(request, "accountName")
        name = RESOURCE_AREAS.get(area_id.lower())
        with self._lock:
            org: _Org | None = None
            if host_id:
                org = next(
                    (o for o in self._orgs.values() if host_id.lower() in (o.host_id.lower(), o.account_id.lower())),
                    None,
                )
            elif account_name:
                org = self._orgs.get(account_name.lower())
            if name is None or org is None:
                return _error(404, f"No resource area {area_id} was found for this host.", "ResourceAreaNotFound")
            location = org.location_url or self.org_url(org.name).rstrip("/")
        return _json_response({"id": area_id, "name": name, "locationUrl": location})

    def _handle_token(self, request: Request) -> Response:
        if request.mimetype != "application/x-www-form-urlencoded":
            return _json_response({"Error": "invalid_request", "ErrorDescription": "Send a form body."}, 400)
        form = request.form
        if form.get("client_assertion_type") != JWT_BEARER:
            return _json_response({"Error": "invalid_request", "ErrorDescription": "Bad client_assertion_type."}, 400)
        if not secrets.compare_digest(form.get("client_assertion", ""), self.client_secret):
            return _json_response({"Error": "invalid_client"}, 401)
        if form.get("grant_type") != "refresh_token":
            return _json_response({"Error": "unsupported_grant_type"}, 400)
        if self.redirect_uri is not None and form.get("redirect_uri") != self.redirect_uri:
            return _json_response({"Error": "invalid_request", "ErrorDescription": "redirect_uri mismatch."}, 400)
        with self._lock:
            org_key = self._refresh_tokens.pop(form.get("assertion", ""), None)  # used once: Azure DevOps rotates
            if org_key is None:
                return _json_response(
                    {
                        "Error": "invalid_grant",
                        "ErrorDescription": "The refresh token is invalid, expired or has already been used.",
                    },
                    400,
                )
            access_token = f"fake-access-{secrets.token_hex(16)}"
            refresh_token = f"fake-refresh-{secrets.token_hex(16)}"
            self._access_tokens[access_token] = org_key
            self._refresh_tokens[refresh_token] = org_key
            self._refresh_count += 1
        return _json_response(
            {
                "access_token": access_token,
                "token_type": "jwt-bearer",
                "expires_in": "3599",  # a string, as Azure DevOps answers it
                "refresh_token": refresh_token,
                "scope": "vso.work",
            }
        )

    def _handle_work_item(
        self, request: Request, org: _Org, project: _Project | None, major: int, work_item_id: int
    ) -> Response:
        fields = _arg(request, "fields")
        expand = _arg(request, "$expand")
        if fields and expand:
            return _error(400, "The expand parameter can not be used with the fields parameter.")
        with self._lock:
            item = org.work_items.get(work_item_id)
            if item is None:
                return _work_item_not_found(work_item_id)
            field_list = [f.strip() for f in fields.split(",") if f.strip()] if fields else None
            return _json_response(self._render_item(org, item, major, field_list, expand))

    def _handle_work_items(self, request: Request, org: _Org, project: _Project | None, major: int) -> Response:
        """GET .../_apis/wit/workitems?ids=1,2: the same rules as the batch call."""
        ids_text = _arg(request, "ids") or ""
        try:
            ids = [int(part) for part in ids_text.split(",") if part.strip()]
        except ValueError:
            return _error(400, "ids must be a comma-separated list of work item ids.")
        fields = _arg(request, "fields")
        return self._work_items_answer(
            org,
            major,
            ids,
            [f.strip() for f in fields.split(",") if f.strip()] if fields else None,
            _arg(request, "$expand"),
            _arg(request, "errorPolicy") or "fail",
        )

    def _handle_batch(self, request: Request, org: _Org, project: _Project | None, major: int) -> Response:
        body = _read_json(request)
        if not isinstance(body, dict):
            return _error(400, "The request body must be a WorkItemBatchGetRequest object.")
        ids = body.get("ids")
        if not isinstance(ids, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
            return _error(400, "ids must be a list of work item ids.")
        fields = body.get("fields")
        if fields is not None and (not isinstance(fields, list) or not all(isinstance(f, str) for f in fields)):
            return _error(400, "fields must be a list of field reference names.")
        return self._work_items_answer(
            org, major, ids, fields, body.get("$expand"), str(body.get("errorPolicy") or "fail")
        )

    def _work_items_answer(
        self,
        org: _Org,
        major: int,
        ids: list[int],
        fields: list[str] | None,
        expand: str | None,
        error_policy: str,
    ) -> Response:
        if not ids:
            return _error(400, "At least one work item id is required.")
        if len(ids) > BATCH_LIMIT:
            return _error(
                400, f"VS403474: You requested {len(ids)} work items which exceeds the limit of {BATCH_LIMIT}"
            )
        if fields and expand and str(expand).lower() != "none":
            return _error(400, "The expand parameter can not be used with the fields parameter.")
        policy = error_policy.lower()
        if policy not in ("fail", "omit"):
            return _error(400, f"errorPolicy must be fail or omit, not {error_policy!r}.")
        values: list[dict[str, Any] | None] = []
        with self._lock:
            for work_item_id in ids:
                item = org.work_items.get(work_item_id)
                if item is None:
                    if policy == "fail":
                        return _work_item_not_found(work_item_id)
                    values.append(None)  # errorPolicy omit: the entry comes back null
                else:
                    values.append(self._render_item(org, item, major, fields, expand))
        return _json_response({"count": len(values), "value": values})

    def _handle_search(self, request: Request, org: _Org, project: _Project | None, major: int) -> Response:
        body = _read_json(request)
        if not isinstance(body, dict):
            return _error(400, "The request body must be a WorkItemSearchRequest object.")
        text = body.get("searchText")
        if not isinstance(text, str) or not text.strip():
            return _error(400, "searchText must not be empty.")
        top = _int_or_reject(body.get("$top"), "$top", 100)
        skip = _int_or_reject(body.get("$skip"), "$skip", 0)
        if top > SEARCH_TOP_LIMIT:
            return _error(400, f"$top must be at most {SEARCH_TOP_LIMIT}, not {top}.")
        filters = body.get("filters") or {}
        if not isinstance(filters, dict):
            return _error(400, "filters must be an object of field names to lists of values.")
        needle = text.strip().lower()
        with self._lock:
            matches = []
            for item in sorted(org.work_items.values(), key=lambda i: i.id):
                if needle not in str(item.fields.get("System.Title", "")).lower():
                    continue
                if project is not None and item.project != project.id:
                    continue
                if not all(
                    str(item.fields.get(name, "")).lower() in {str(v).lower() for v in (values or [])}
                    for name, values in filters.items()
                ):
                    continue
                matches.append(item)
            results = [self._search_result(org, item) for item in matches[skip : skip + top]]
        return _json_response({"count": len(matches), "results": results, "infoCode": 0, "facets": {}})

    def _search_result(self, org: _Org, item: _WorkItem) -> dict[str, Any]:
        """One search result: lower-case field names, string values, identities as 'Name <email>'."""
        f = item.fields
        proj = org.projects[item.project.lower()]
        return {
            "project": {"id": proj.id, "name": proj.name},
            "fields": {
                "system.id": str(item.id),
                "system.workitemtype": str(f.get("System.WorkItemType", "")),
                "system.title": str(f.get("System.Title", "")),
                "system.assignedto": str(f.get("System.AssignedTo", "")),
                "system.state": str(f.get("System.State", "")),
                "system.tags": str(f.get("System.Tags", "")),
                "system.rev": str(item.rev),
                "system.createddate": str(f.get("System.CreatedDate", "")),
                "system.changeddate": str(f.get("System.ChangedDate", "")),
            },
            "hits": [],
            "url": f"{self.org_url(org.name)}_apis/wit/workItems/{item.id}",
        }

    def _handle_states(
        self, request: Request, org: _Org, project: _Project | None, major: int, wit_type: str
    ) -> Response:
        assert project is not None  # the route requires the project segment
        with self._lock:
            states = org.states.get((project.id.lower(), wit_type.lower()))
        if states is None:
            states = DEFAULT_STATES.get(wit_type.lower())
        if states is None:
            return _error(
                404,
                f"Work item type {wit_type} does not exist in project {project.name}.",
                "WorkItemTypeNotFoundException",
            )
        value = [{"name": name, "color": STATE_COLORS[category], "category": category} for name, category in states]
        return _json_response({"count": len(value), "value": value})

    def _handle_subscriptions(self, request: Request, org: _Org, project: _Project | None, major: int) -> Response:
        if request.method == "GET":
            wanted = {key: _arg(request, key) for key in ("publisherId", "eventType", "consumerId", "consumerActionId")}
            with self._lock:
                value = [
                    self._public_subscription(sub)
                    for key, sub in self._subscriptions.values()
                    if key == org.key and all(v is None or sub.get(k) == v for k, v in wanted.items())
                ]
            return _json_response({"count": len(value), "value": value})
        body = _read_json(request)
        sub = self._validated_subscription(org, body)
        now = datetime.now(UTC)
        sub_id = str(uuid.uuid4())
        sub.update(
            {
                "id": sub_id,
                "url": f"{self.org_url(org.name)}_apis/hooks/subscriptions/{sub_id}",
                "status": "enabled",
                "probationRetries": 0,
                "createdDate": _iso_7(now),
                "modifiedDate": _iso_7(now),
            }
        )
        sub["publisherInputs"]["hostId"] = org.host_id  # Azure DevOps adds it on create
        with self._lock:
            self._subscriptions[sub_id] = (org.key, sub)
            return _json_response(self._public_subscription(sub))

    def _handle_subscription(
        self, request: Request, org: _Org, project: _Project | None, major: int, sub_id: str
    ) -> Response:
        with self._lock:
            entry = self._subscriptions.get(sub_id.lower())
            if entry is None or entry[0] != org.key:
                return _error(404, f"Subscription with id {sub_id} does not exist.", "SubscriptionNotFoundException")
            if request.method == "GET":
                return _json_response(self._public_subscription(entry[1]))
            if request.method == "DELETE":
                del self._subscriptions[sub_id.lower()]
                return Response(status=204)
        # PUT: replace the subscription (a new status, e.g. "enabled", is taken from the body).
        body = _read_json(request)
        replacement = self._validated_subscription(org, body)
        status = body.get("status", entry[1]["status"])
        if status not in SUBSCRIPTION_STATUSES:
            return _error(400, f"status must be one of {', '.join(SUBSCRIPTION_STATUSES)}.")
        with self._lock:
            current = self._subscriptions.get(sub_id.lower())
            if current is None:
                return _error(404, f"Subscription with id {sub_id} does not exist.", "SubscriptionNotFoundException")
            old = current[1]
            replacement["publisherInputs"]["hostId"] = org.host_id
            for key in ("id", "url", "createdDate", "probationRetries"):
                replacement[key] = old[key]
            replacement["status"] = status
            replacement["modifiedDate"] = _iso_7(datetime.now(UTC))
            self._subscriptions[sub_id.lower()] = (org.key, replacement)
            return _json_response(self._public_subscription(replacement))

    def _validated_subscription(self, org: _Org, body: Any) -> dict[str, Any]:
        """A copy of a create/replace body, or a 400 with a message, as Azure DevOps answers bad bodies."""
        if not isinstance(body, dict):
            raise _Reject(_error(400, "The request body must be a Subscription object."))
        missing = [
            name
            for name in ("publisherId", "eventType", "consumerId", "consumerActionId")
            if not isinstance(body.get(name), str) or not body[name]
        ]
        inputs = body.get("consumerInputs")
        if not isinstance(inputs, dict) or not isinstance(inputs.get("url"), str) or not inputs["url"]:
            missing.append("consumerInputs.url")
        if missing:
            raise _Reject(_error(400, f"The subscription is missing required values: {', '.join(missing)}."))
        assert isinstance(inputs, dict)
        if body["publisherId"] != "tfs":
            raise _Reject(_error(400, f"Publisher {body['publisherId']} was not found."))
        if body["eventType"] not in WORK_ITEM_EVENTS:
            raise _Reject(_error(400, f"Event type {body['eventType']} is not supported by this fake."))
        if (body["consumerId"], body["consumerActionId"]) != ("webHooks", "httpRequest"):
            raise _Reject(_error(400, "Only the webHooks consumer's httpRequest action is supported."))
        target = urlsplit(inputs["url"])
        if target.scheme not in ("http", "https") or not target.netloc:
            raise _Reject(_error(400, f"The value of input url is not a valid absolute URI: {inputs['url']}."))
        headers = inputs.get("httpHeaders")
        if headers and (not isinstance(headers, str) or not HTTP_HEADERS_RE.match(headers)):
            raise _Reject(_error(400, "The value of input httpHeaders is not valid: use Key:value, one per line."))
        publisher_inputs = body.get("publisherInputs") or {}
        if not isinstance(publisher_inputs, dict):
            raise _Reject(_error(400, "publisherInputs must be an object."))
        project = publisher_inputs.get("projectId")
        if project:
            with self._lock:
                if org.project(str(project)) is None:
                    raise _Reject(_error(400, f"The project with id {project} does not exist."))
        version = str(body.get("resourceVersion") or "1.0")
        if not version.startswith("1.0"):
            # The fake only builds 1.0 payloads; later versions change identity fields (reference §1.4).
            raise _Reject(_error(400, f"resourceVersion {version} is not supported by this fake; use 1.0."))
        sub = copy.deepcopy(body)
        sub["resourceVersion"] = version
        sub["publisherInputs"] = dict(publisher_inputs)
        sub["consumerInputs"] = {k: str(v) for k, v in inputs.items()}
        return sub

    @staticmethod
    def _public_subscription(sub: dict[str, Any]) -> dict[str, Any]:
        """A subscription as the REST API shows it: confidential inputs masked."""
        shown = copy.deepcopy(sub)
        if shown.get("consumerInputs", {}).get("basicAuthPassword"):
            shown["consumerInputs"]["basicAuthPassword"] = "********"
        return shown

    def _handle_wiql(self, request: Request, org: _Org, project: _Project | None, major: int) -> Response:
        body = _read_json(request)
        query = body.get("query") if isinstance(body, dict) else None
        if not isinstance(query, str) or not query.strip():
            return _error(400, 'The request body must be {"query": "<WIQL>"}.')
        time_precision = (_arg(request, "timePrecision") or "").lower() == "true"
        top = _arg(request, "$top")
        match = _WIQL_RE.match(query)
        if match is None:
            return _error(400, f"The query could not be parsed: {query}", "WorkItemTrackingQueryException")
        columns = []
        for column in (c.strip() for c in match.group("columns").split(",")):
            name = _WIQL_FIELD_RE.fullmatch(column)
            if name is None:
                return _error(400, f"Expecting a field name in brackets. The error is caused by «{column}».")
            ref, label = COLUMN_NAMES.get(name.group(1).lower(), (name.group(1), name.group(1)))
            columns.append(
                {"referenceName": ref, "name": label, "url": f"{self.org_url(org.name)}_apis/wit/fields/{ref}"}
            )
        predicates = self._wiql_predicates(match.group("where"), project, time_precision)
        with self._lock:
            items = [i for i in org.work_items.values() if all(p(i) for p in predicates)]
            sort_columns: list[dict[str, Any]] = []
            items.sort(key=lambda i: i.id)
            if match.group("order"):
                order = _WIQL_ORDER_RE.match(match.group("order").strip())
                if order is None:
                    return _error(400, f"The ORDER BY clause could not be parsed: {match.group('order')}")
                key_name = order.group("field")
                descending = (order.group("dir") or "").lower() == "desc"
                if key_name.lower() != "system.id":
                    items.sort(key=lambda i: str(i.fields.get(key_name, "")))
                if descending:
                    items.reverse()
                ref, label = COLUMN_NAMES.get(key_name.lower(), (key_name, key_name))
                sort_columns.append({"field": {"referenceName": ref, "name": label}, "descending": descending})
            if top is not None and top.isdigit():
                items = items[: int(top)]
            work_items = [{"id": i.id, "url": f"{self.org_url(org.name)}_apis/wit/workItems/{i.id}"} for i in items]
        result: dict[str, Any] = {
            "queryType": "flat",
            "queryResultType": "workItem",
            "asOf": _iso_ms(datetime.now(UTC)),
            "columns": columns,
            "workItems": work_items,
        }
        if sort_columns:
            result["sortColumns"] = sort_columns
        return _json_response(result)

    def _wiql_predicates(
        self, where: str | None, project: _Project | None, time_precision: bool
    ) -> list[Callable[[_WorkItem], bool]]:
        """The WHERE clause as predicates: conditions joined by AND (OR and nesting are not supported)."""
        if not where:
            return []
        if re.search(r"\bOR\b", re.sub(r"'(?:[^']|'')*'", "''", where), re.IGNORECASE):
            raise _Reject(_error(400, "The fake's WIQL does not support OR.", "WorkItemTrackingQueryException"))
        predicates: list[Callable[[_WorkItem], bool]] = []
        for raw in re.split(r"\s+AND\s+", where.strip(), flags=re.IGNORECASE):
            condition = _strip_parens(raw)
            predicates.append(self._wiql_predicate(condition, project, time_precision))
        return predicates

    def _wiql_predicate(
        self, condition: str, project: _Project | None, time_precision: bool
    ) -> Callable[[_WorkItem], bool]:
        if m := _WIQL_ID_IN_RE.fullmatch(condition):
            try:
                ids = {int(part) for part in m.group("ids").split(",")}
            except ValueError:
                raise _Reject(
                    _error(400, f"Expecting a list of numbers. The error is caused by «{condition}».")
                ) from None
            return lambda item: item.id in ids
        if m := _WIQL_ID_CMP_RE.fullmatch(condition):
            compare, value = _COMPARE[m.group("op")], int(m.group("value"))
            return lambda item: compare(item.id, value)
        if m := _WIQL_DATE_RE.fullmatch(condition):
            return self._wiql_date_predicate(m, condition, time_precision)
        if m := _WIQL_EQ_RE.fullmatch(condition):
            field_name = m.group("field")
            if m.group("macro"):
                if project is None:
                    raise _Reject(_error(400, "The @project macro needs a project in the request URL."))
                expected = project.name.lower()
            else:
                expected = m.group("value").replace("''", "'").lower()
            equal = m.group("op") == "="
            return lambda item: (str(item.fields.get(field_name, "")).lower() == expected) == equal
        raise _Reject(
            _error(
                400, f"The fake cannot evaluate this WIQL condition: «{condition}».", "WorkItemTrackingQueryException"
            )
        )

    @staticmethod
    def _wiql_date_predicate(m: re.Match[str], condition: str, time_precision: bool) -> Callable[[_WorkItem], bool]:
        text = m.group("value").strip()
        has_time = re.search(r"[T ]\d{1,2}:\d{2}", text) is not None
        if has_time and not time_precision:
            # Azure DevOps' answer when a time is given without ?timePrecision=true (real 400).
            raise _Reject(
                _error(
                    400,
                    "You cannot supply a time with the date when running a query using date precision. "
                    f"The error is caused by «{condition}».",
                    "WorkItemTrackingQueryException",
                )
            )
        try:
            literal = _parse_iso(text) if "-" in text else datetime.strptime(text, "%m/%d/%Y").replace(tzinfo=UTC)
        except ValueError:
            raise _Reject(
                _error(
                    400, f"Expecting a date. The error is caused by «{condition}».", "WorkItemTrackingQueryException"
                )
            ) from None
        compare, field_name = _COMPARE[m.group("op")], m.group("field")

        def predicate(item: _WorkItem) -> bool:
            value = next((v for k, v in item.fields.items() if k.lower() == field_name.lower()), None)
            if not isinstance(value, str):
                return False
            moment = _parse_iso(value)
            if time_precision:
                return compare(moment, literal)
            lhs: date = moment.date()  # date precision: only the day counts
            return compare(lhs, literal.date())

        return predicate
