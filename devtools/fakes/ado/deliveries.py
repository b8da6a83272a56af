"""Service hook deliveries: a work item update becomes a `workitem.updated` event (resourceVersion 1.0), each
matching subscription gets its own copy by POST as the webHooks consumer sends it, and the answer moves the
subscription on probation or disables it as Azure DevOps does. Only loopback hosts are ever sent to."""

from __future__ import annotations

import base64
import copy
import json
import re
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import requests as http

from devtools.fakes.ado.data import DEFAULT_REVISED_BY, FAR_FUTURE, Org, Store, WorkItem
from devtools.fakes.ado.protocol import iso_7
from devtools.fakes.http import post_loopback

ZERO_GUID = "00000000-0000-0000-0000-000000000000"
TRANSIENT_DELIVERY_STATUSES = frozenset({408, 502, 503, 504})  # Azure DevOps retries these, no probation
Addressed = list[tuple[dict[str, Any], dict[str, Any]]]  # (subscription, payload) pairs to POST


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


def parse_http_headers(text: str) -> dict[str, str]:
    """The webHooks consumer's `httpHeaders`: one `Key:value` per line."""
    headers: dict[str, str] = {}
    for line in re.split(r"[\r\n\f]+", text or ""):
        key, sep, value = line.partition(":")
        if sep and key.strip():
            headers[key.strip()] = value.strip()
    return headers


class Deliveries(Store):
    """Mixin of FakeAzureDevOps: work item events and their deliveries."""

    def __init__(self) -> None:
        super().__init__()
        self.delivery_timeout = 10.0  # seconds per service hook POST
        self._deliveries: list[Delivery] = []
        self._notification_id = 0
        self._http = http.Session()
        self._http.trust_env = False  # deliveries go straight to loopback, never through an environment proxy

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
            diff = self._apply_update(item, changes, revised_by)
            payloads, returned = self._updated_event(o, item, diff, revised_by, deliver=deliver)
        self._send(payloads)
        return returned

    def _updated_event(
        self, org: Org, item: WorkItem, diff: dict[str, Any], revised_by: str, *, deliver: bool = True
    ) -> tuple[Addressed, dict[str, Any]]:
        """Record an applied update and address its `workitem.updated` event (call holding the lock; then
        `_send` the copies outside it). Returns the copies and the payload to show (the first copy)."""
        resource = self._update_resource(org, item, diff, revised_by)
        item.updates.append(copy.deepcopy(resource))
        return self._address(org, item, self._event(org, item, resource), diff, deliver=deliver)

    def _snapshot_event(
        self, org: Org, item: WorkItem, event_type: str, extra: Mapping[str, Any] | None = None
    ) -> tuple[Addressed, dict[str, Any]]:
        """Address a `workitem.created` or `workitem.commented` event, whose resource is the work item itself
        (reference §1.3); `extra` adds to the resource (e.g. `commentVersionRef`). Call holding the lock."""
        item_url = f"{self.org_url(org.name)}_apis/wit/workItems/{item.id}"
        resource: dict[str, Any] = {
            "id": item.id,
            "rev": item.rev,
            "fields": copy.deepcopy(item.fields),
            "_links": {
                "self": {"href": item_url},
                "workItemUpdates": {"href": f"{item_url}/updates"},
                "workItemRevisions": {"href": f"{item_url}/revisions"},
                "workItemType": {"href": self._item_links(org, item)["workItemType"]["href"]},
                "fields": {"href": f"{self.org_url(org.name)}_apis/wit/fields"},
                "html": {"href": f"{self.org_url(org.name)}web/wi.aspx?pcguid={org.host_id}&id={item.id}"},
            },
            "url": item_url,
            **copy.deepcopy(dict(extra or {})),
        }
        return self._address(org, item, self._event(org, item, resource, event_type), None)

    def _address(
        self, org: Org, item: WorkItem, event: dict[str, Any], diff: Mapping[str, Any] | None, *, deliver: bool = True
    ) -> tuple[Addressed, dict[str, Any]]:
        """One copy of the event per enabled subscription that wants it, and the payload to show."""
        targets = [sub for sub in self._org_subscriptions(org) if self._wants(sub, org, item, diff, event["eventType"])]
        payloads = [(copy.deepcopy(sub), self._addressed(event, sub["id"])) for sub in (targets if deliver else [])]
        returned = payloads[0][1] if payloads else self._addressed(event, ZERO_GUID)
        return payloads, copy.deepcopy(returned)

    def _send(self, payloads: Addressed) -> None:
        # POST outside the lock: the receiver (the app) may call back into the fake while handling it.
        for sub, payload in payloads:
            self._post_delivery(sub, payload)

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

    @property
    def deliveries(self) -> list[Delivery]:
        with self._lock:
            return list(self._deliveries)

    # ------------------------------------------------------------------------------------------ payloads

    def _update_resource(self, org: Org, item: WorkItem, diff: dict[str, Any], revised_by: str) -> dict[str, Any]:
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

    def _event(
        self, org: Org, item: WorkItem, resource: dict[str, Any], event_type: str = "workitem.updated"
    ) -> dict[str, Any]:
        """The delivery envelope, without subscriptionId/notificationId (each copy gets its own)."""
        base = self.org_url(org.name)
        fields = item.fields
        who = re.sub(r"\s*<[^<>]*>\s*$", "", str(fields.get("System.ChangedBy", ""))) or "someone"
        label = f"{fields.get('System.WorkItemType', 'Work item')} #{item.id}"
        link = f"{base}web/wi.aspx?pcguid={org.host_id}&id={item.id}"
        verb = {"workitem.created": "created", "workitem.commented": "commented on"}.get(event_type, "updated")
        summary = f"{label} ({fields.get('System.Title', '')}) {verb} by {who}."
        change = resource["fields"].get("System.State") if event_type == "workitem.updated" else None
        state = change.get("newValue") if isinstance(change, dict) else None
        details = f"\r\n\r\n- New State: {state}\r\n" if state else ""
        return {
            "id": str(uuid.uuid4()),
            "eventType": event_type,
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
            "createdDate": iso_7(datetime.now(UTC)),
        }

    def _addressed(self, event: dict[str, Any], subscription_id: str) -> dict[str, Any]:
        self._notification_id += 1
        return {"subscriptionId": subscription_id, "notificationId": self._notification_id, **copy.deepcopy(event)}

    @staticmethod
    def _wants(sub: dict[str, Any], org: Org, item: WorkItem, diff: Mapping[str, Any] | None, event_type: str) -> bool:
        """Whether a subscription's event type and publisher filters select this event (`changedFields` only
        filters updates: `diff` is None for the other events)."""
        if sub.get("eventType") != event_type:
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
        return not changed or diff is None or any(key.lower() in changed for key in diff)

    # ------------------------------------------------------------------------------------------- posting

    def _post_delivery(self, sub: dict[str, Any], payload: dict[str, Any]) -> Delivery:
        """POST one payload as the webHooks consumer does, record it, and apply the probation rules."""
        inputs = sub.get("consumerInputs") or {}
        url = str(inputs.get("url", ""))
        headers = {"Content-Type": "application/json; charset=utf-8", "User-Agent": "VSServices/19.0 (fake)"}
        headers.update(parse_http_headers(str(inputs.get("httpHeaders") or "")))
        user, password = inputs.get("basicAuthUsername"), inputs.get("basicAuthPassword")
        if user or password:
            token = base64.b64encode(f"{user or ''}:{password or ''}".encode()).decode()
            headers["Authorization"] = f"Basic {token}"
        status, error = post_loopback(self._http, url, json.dumps(payload).encode(), headers, self.delivery_timeout)
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
