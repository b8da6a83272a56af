"""Create a work item for a tracked issue and link it (contract §12.4), at most once per `Idempotency-Key`.

Order: the body is checked completely (400), then the issue, the organization's installation of the integration
and the active integration must exist (404), and the issue must have room for one more link (409; a repeat of a
created key is answered before that check), all before anything is written anywhere. Then the work item is
created, linked (index first, then the issue, as `PUT .../links/...` does), and answered.

Idempotency (a request without the header is not idempotent: each one creates a work item):

1. The key (1-128 printable ASCII characters) is scoped to the issue: record `(org|issue, sha256(key))` in the
   `idempotency` table (`shared.store.idempotency`). A record holds the hash of the request body, its state
   (`creating`, then `created` with the answer), a lease and an expiry 24 hours on (checked on read; a later
   request with an expired key starts afresh).
2. `created`: the stored answer is answered again (201, the same body); nothing is sent to Azure DevOps.
   A different body under the same key: 422, nothing done.
3. Before Azure DevOps is called, the request claims the key with a conditional insert (or a replace under the
   ETag it read), so of two concurrent requests one proceeds and the other answers 409 "in progress" with
   Retry-After. The claim holds a lease as long as the create call can take (ADO_HTTP_TIMEOUT x attempts +
   the retry waits + a margin).
4. The work item is created with a tag `idempotency-<20 hex of sha256(org|issue|key)>` (searchable; a
   Hyperlink's URL is not), and the tag is taken off again once the key's answer is stored (contract §17: people
   do not see it on their board). That costs a second write, a revision and a service hook delivery per create
   with a key; a crash between the two leaves the tag, which changes nothing.
5. After the create call, the link is written, then the record becomes `created`. A crash (or a storage
   failure) in between leaves `creating`: the retry first asks WIQL for the tagged work item in the project;
   found, it is linked and answered (linking twice changes nothing); not found and the lease still running,
   another request may be at work: 409; lease over, the retry takes the claim over (under the ETag) and creates.
6. A refusal (400/401/403/404 from Azure DevOps: nothing was created) releases the key, so the corrected
   request can reuse it. A timeout or a 5xx keeps the claim: the work item may exist, and the retry searches.

Azure DevOps requests per create: one (the create) when no description is given or the type's body field is
cached (an hour, per process); two on a cold process with a description (the type, then the create); plus the
tag's removal with an `Idempotency-Key`. A retry
of a `created` key: none. A recovered `creating` key: WIQL and the work item (plus the create if not found).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from shared.admin.field_defaults import how_to_default
from shared.admin.sentry_links import announce_link
from shared.admin.tracker import add_link
from shared.admin.workitem_request import CreateRequest, default_title, parse_request, patch_document
from shared.ado import workitems as ado
from shared.ado.client import (
    AdoClient,
    AdoError,
    AdoNotFound,
    AdoRequestRejected,
    AdoUnauthorized,
)
from shared.clock import SYSTEM, Clock
from shared.connections.ado import call_tracking_reauth, get_client_for_org
from shared.errors import Conflict, InvalidInput, NotFound
from shared.model.tracker import Link, TrackedIssue
from shared.settings import get_settings
from shared.store.idempotency import CREATED, CREATING, IdempotencyRecord, IdempotencyStore
from shared.store.integrations import Integration, IntegrationStore
from shared.store.tracker import TrackerStore
from shared.validation import require_id
from shared.waits import MAX_ATTEMPTS, MAX_TOTAL_WAIT_SECONDS

T = TypeVar("T")
log = logging.getLogger(__name__)
TTL_SECONDS = 24 * 3600
LEASE_MARGIN_SECONDS = 5.0
TYPE_CACHE_SECONDS = 3600.0
TYPE_CACHE_MAX = 1024
_KEY = re.compile(r"[\x20-\x7e]{1,128}")
MARKER_PREFIX = "idempotency-"


class KeyReused(InvalidInput):
    """The Idempotency-Key was used with another body: answered 422."""


class InProgress(Conflict):
    """Another request with this Idempotency-Key is at work: answered 409 with Retry-After."""

    def __init__(self, retry_after: float) -> None:
        super().__init__("A request with this Idempotency-Key is still in progress; send it again shortly.")
        self.retry_after = retry_after


def check_key(value: str | None) -> str | None:
    if value is None:
        return None
    if not _KEY.fullmatch(value) or value.strip() != value:
        raise InvalidInput("The Idempotency-Key header must be 1-128 printable ASCII characters.")
    return value


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def create_work_item(
    org_id: str,
    issue_id: str,
    body: dict[str, Any],
    idempotency_key: str | None = None,
    *,
    clock: Clock = SYSTEM,
    announce_to_sentry: bool = True,
    request_fingerprint: str | None = None,
) -> dict[str, Any]:
    """The answer `{"integration_id", "work_item_id", "url", "display_name"}` of a created and linked work item.
    On a Sentry organization's issue the link is shown in Sentry too (`announce_to_sentry`), but for the work
    items created from Sentry's own UI, which Sentry shows itself. `request_fingerprint` stands for the body when
    a key is reused: requests that differ in it are one request (an alert's firings differ in their event's
    details, yet must make one work item)."""
    request = parse_request(body)
    key = check_key(idempotency_key)
    org_id, issue_id = require_id(org_id, "organization id"), require_id(issue_id, "issue id")
    tracker = TrackerStore()
    issue = tracker.get_issue(org_id, issue_id)
    if issue is None:
        raise NotFound("No issue has that id in this organization.")
    installation = tracker.get_installation(request.integration_id, org_id)
    if installation is None:
        raise NotFound("This organization has not installed that integration; install it before creating work items.")
    defaults = installation.defaults_for(request.project, request.type)  # contract §17; the request's own win
    if defaults:
        request = replace(request, fields={**defaults, **request.fields})
    store = IntegrationStore()
    integration, client = get_client_for_org(request.integration_id, org_id, store=store)  # its credentials (§16)
    work = _Work(tracker, store, integration, client, issue, request, clock, announce_to_sentry)
    if key is None:
        return work.link(work.create(None))
    return _once(work, key, body, clock, request_fingerprint)


def _once(work: _Work, key: str, body: dict[str, Any], clock: Clock, fingerprint: str | None = None) -> dict[str, Any]:
    scope = f"{work.issue.org_id}|{work.issue.issue_id}"
    same = fingerprint if fingerprint is not None else json.dumps(body, sort_keys=True, separators=(",", ":"))
    key_hash, request_hash = _sha(key), _sha(same)
    marker = MARKER_PREFIX + _sha(f"{scope}|{key}")[:20]
    records = IdempotencyStore()
    now = clock.now()
    record, stored_etag = records.get(scope, key_hash, now)
    if record is not None:
        if record.request_hash != request_hash:
            raise KeyReused("This Idempotency-Key was already used with a different request; use a new key.")
        if record.state == CREATED and record.answer is not None:
            return record.answer
        found = work.find(marker)
        if found is not None:  # created before a crash, or by the request still at work: link it and say so
            answer = work.link(found)
            records.finish(record, answer)  # losing this race is fine: the other holds the same answer
            work.unmark(found, marker)
            return answer
        if record.lease_until > now:
            raise InProgress(record.lease_until - now)
    work.prepare()  # reads the type (once an hour), before the claim, so the lease covers only the create
    lease = get_settings().http_timeout * MAX_ATTEMPTS + MAX_TOTAL_WAIT_SECONDS + LEASE_MARGIN_SECONDS
    fresh = IdempotencyRecord(scope, key_hash, request_hash, CREATING, now + lease, now + TTL_SECONDS)
    claimed = records.claim(fresh, stored_etag)
    if claimed is None:
        raise InProgress(lease)
    try:
        created = work.create(marker)
    except (InvalidInput, AdoRequestRejected, AdoNotFound, AdoUnauthorized):
        records.release(claimed)  # Azure DevOps refused it: nothing exists, the key may be used again
        raise
    answer = work.link(created)
    records.finish(claimed, answer)
    work.unmark(created, marker)
    return answer


@dataclass
class _Work:
    tracker: TrackerStore
    store: IntegrationStore
    integration: Integration
    client: AdoClient
    issue: TrackedIssue
    request: CreateRequest
    clock: Clock
    announce_to_sentry: bool
    body_field: str | None = None

    def call(self, request: Callable[[AdoClient], T]) -> T:
        return call_tracking_reauth(self.store, self.integration, lambda: request(self.client))

    def prepare(self) -> None:
        """What a create needs before it is sent: room for one more link (Conflict otherwise; checked here, not
        earlier, so a repeat of a created key is answered even when that link filled the issue), and the type."""
        self.issue.with_link(Link(self.integration.id, 0))
        if self.request.description is None or self.body_field is not None:
            return
        cache_key = (self.integration.id, self.request.project.casefold(), self.request.type.casefold())
        self.body_field = _type_cache.get(cache_key, self.clock.monotonic())
        if self.body_field is None:
            self.body_field = self.call(lambda c: ado.body_field(c, self.request.project, self.request.type))
            _type_cache.put(cache_key, self.body_field, self.clock.monotonic())

    def create(self, marker: str | None) -> dict[str, Any]:
        self.prepare()
        title = self.request.title or default_title(self.issue.title)
        ops = patch_document(self.request, title, self.body_field, self.issue.url, marker, self.client.base_url)
        try:
            item = self.call(lambda c: ado.create_work_item(c, self.request.project, self.request.type, ops))
        except AdoRequestRejected as exc:
            sentence = ado.field_error(exc)
            if sentence is not None:
                project, kind = self.request.project, self.request.type
                hint = how_to_default(self.issue.org_id, self.integration.id, project, kind)
                raise InvalidInput(f"{sentence} {hint}") from None
            if exc.status == 400:
                raise InvalidInput(_refusal(exc)) from None
            raise
        if not isinstance(item, dict) or not isinstance(item.get("id"), int):
            raise AdoError("Azure DevOps answered the create with something that is not a work item")
        return item

    def find(self, marker: str) -> dict[str, Any] | None:
        ids = self.call(lambda c: ado.find_by_tag(c, self.request.project, marker))
        return self.call(lambda c: c.get_work_item(ids[0])) if ids else None

    def unmark(self, item: dict[str, Any], marker: str) -> None:
        """Take the marker tag off once the key's answer is stored (a retry no longer needs to find the work item),
        so people never see it. Under a test of the revision: a work item changed since is left as it is, and a
        failure leaves the tag, which is harmless."""
        fields = item.get("fields") if isinstance(item.get("fields"), dict) else {}
        tags = [t.strip() for t in str(fields.get("System.Tags") or "").split(";") if t.strip()]
        if marker not in tags or not isinstance(item.get("rev"), int):
            return
        kept = [tag for tag in tags if tag != marker]
        ops: list[dict[str, Any]] = [{"op": "test", "path": "/rev", "value": item["rev"]}]
        ops.append({"op": "replace", "path": "/fields/System.Tags", "value": "; ".join(kept)})
        try:
            self.call(lambda c: c.update_work_item(item["id"], ops))
        except AdoError as exc:
            log.info("The marker tag of work item %s stays: %s", item["id"], exc)

    def link(self, item: dict[str, Any]) -> dict[str, Any]:
        link = Link(self.integration.id, item["id"])
        add_link(self.tracker, self.issue.org_id, self.issue.issue_id, link)
        if self.announce_to_sentry:  # before the key is `created`: a retry after a queue failure links and queues again
            announce_link(self.issue.org_id, self.issue.issue_id, link)
        fields = item.get("fields") if isinstance(item.get("fields"), dict) else {}
        href = ((item.get("_links") or {}).get("html") or {}).get("href")
        return {
            "integration_id": self.integration.id,
            "work_item_id": item["id"],
            "url": href if isinstance(href, str) else f"{self.client.base_url}_workitems/edit/{item['id']}",
            "display_name": f"{fields.get('System.AreaPath', '')}#{item['id']}",
        }


def _refusal(exc: AdoRequestRejected) -> str:
    text = str(exc).split(": ", 1)[-1].rstrip(".")
    return f"Azure DevOps refused the work item: {text}."


class _TypeCache:
    """Which field each type's form shows the description in, per process (types change rarely)."""

    def __init__(self) -> None:
        self._entries: dict[tuple[str, str, str], tuple[float, str]] = {}
        self._lock = threading.Lock()

    def get(self, key: tuple[str, str, str], now: float) -> str | None:
        entry = self._entries.get(key)
        return entry[1] if entry is not None and now - entry[0] < TYPE_CACHE_SECONDS else None

    def put(self, key: tuple[str, str, str], value: str, now: float) -> None:
        with self._lock:
            if len(self._entries) >= TYPE_CACHE_MAX:
                self._entries.clear()  # bounded; refilled one type read at a time
            self._entries[key] = (now, value)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


_type_cache = _TypeCache()
