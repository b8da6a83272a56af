"""Service hook subscriptions: the REST endpoints that create, read, replace and delete them (with Azure
DevOps' validation of the webHooks consumer), and the methods tests use to inspect and change them."""

from __future__ import annotations

import copy
import re
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from werkzeug.wrappers import Request, Response

from devtools.fakes.ado.data import Org, Project, Store
from devtools.fakes.ado.protocol import Reject, arg, error, iso_7, json_response, read_json

SUBSCRIPTION_STATUSES = ("enabled", "onProbation", "disabledByUser", "disabledBySystem", "disabledByInactiveIdentity")
WORK_ITEM_EVENTS = (
    "workitem.created",
    "workitem.updated",
    "workitem.deleted",
    "workitem.restored",
    "workitem.commented",
)
# The webHooks consumer's validation of `httpHeaders` (HOOKS consumers example).
HTTP_HEADERS_RE = re.compile(r"^([\S]+[\s]*:[\s]*[\S]+[\s]*[\r\n\f]+)*?([\S]+[\s]*:[\s]*[\S]+)+$")


def subscription_not_found(sub_id: str) -> Response:
    return error(404, f"Subscription with id {sub_id} does not exist.", "SubscriptionNotFoundException")


class Hooks(Store):
    """Mixin of FakeAzureDevOps: service hook subscriptions."""

    def __init__(self) -> None:
        super().__init__()
        self._subscriptions: dict[str, tuple[str, dict[str, Any]]] = {}  # id -> (org key, stored body)

    # ---------------------------------------------------------------------------------------- set-up

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

    # ------------------------------------------------------------------------------------------ internals

    def _subscription(self, subscription_id: str) -> dict[str, Any]:
        try:
            return self._subscriptions[subscription_id.lower()][1]
        except KeyError:
            raise KeyError(f"no subscription {subscription_id!r}") from None

    def _org_subscriptions(self, org: Org) -> list[dict[str, Any]]:
        """The organization's subscriptions that deliver: only `enabled` ones ("any new events are lost"
        while a subscription is on probation)."""
        return [sub for key, sub in self._subscriptions.values() if key == org.key and sub["status"] == "enabled"]

    # -------------------------------------------------------------------------------------- endpoints

    def _handle_subscriptions(self, request: Request, org: Org, project: Project | None, major: int) -> Response:
        if request.method == "GET":
            wanted = {key: arg(request, key) for key in ("publisherId", "eventType", "consumerId", "consumerActionId")}
            with self._lock:
                value = [
                    self._public_subscription(sub)
                    for key, sub in self._subscriptions.values()
                    if key == org.key and all(v is None or sub.get(k) == v for k, v in wanted.items())
                ]
            return json_response({"count": len(value), "value": value})
        body = read_json(request)
        sub = self._validated_subscription(org, body)
        now = datetime.now(UTC)
        sub_id = str(uuid.uuid4())
        sub.update(
            {
                "id": sub_id,
                "url": f"{self.org_url(org.name)}_apis/hooks/subscriptions/{sub_id}",
                "status": "enabled",
                "probationRetries": 0,
                "createdDate": iso_7(now),
                "modifiedDate": iso_7(now),
            }
        )
        sub["publisherInputs"]["hostId"] = org.host_id  # Azure DevOps adds it on create
        with self._lock:
            self._subscriptions[sub_id] = (org.key, sub)
            return json_response(self._public_subscription(sub))

    def _handle_subscription(
        self, request: Request, org: Org, project: Project | None, major: int, sub_id: str
    ) -> Response:
        with self._lock:
            entry = self._subscriptions.get(sub_id.lower())
            if entry is None or entry[0] != org.key:
                return subscription_not_found(sub_id)
            if request.method == "GET":
                return json_response(self._public_subscription(entry[1]))
            if request.method == "DELETE":
                del self._subscriptions[sub_id.lower()]
                return Response(status=204)
        # PUT: replace the subscription (a new status, e.g. "enabled", is taken from the body).
        body = read_json(request)
        replacement = self._validated_subscription(org, body)
        status = body.get("status", entry[1]["status"])
        if status not in SUBSCRIPTION_STATUSES:
            return error(400, f"status must be one of {', '.join(SUBSCRIPTION_STATUSES)}.")
        with self._lock:
            current = self._subscriptions.get(sub_id.lower())
            if current is None:
                return subscription_not_found(sub_id)
            old = current[1]
            replacement["publisherInputs"]["hostId"] = org.host_id
            for key in ("id", "url", "createdDate", "probationRetries"):
                replacement[key] = old[key]
            replacement["status"] = status
            replacement["modifiedDate"] = iso_7(datetime.now(UTC))
            self._subscriptions[sub_id.lower()] = (org.key, replacement)
            return json_response(self._public_subscription(replacement))

    def _validated_subscription(self, org: Org, body: Any) -> dict[str, Any]:
        """A copy of a create/replace body, or a 400 with a message, as Azure DevOps answers bad bodies."""
        if not isinstance(body, dict):
            raise Reject(error(400, "The request body must be a Subscription object."))
        missing = [
            name
            for name in ("publisherId", "eventType", "consumerId", "consumerActionId")
            if not isinstance(body.get(name), str) or not body[name]
        ]
        inputs = body.get("consumerInputs")
        if not isinstance(inputs, dict) or not isinstance(inputs.get("url"), str) or not inputs["url"]:
            missing.append("consumerInputs.url")
        if missing:
            raise Reject(error(400, f"The subscription is missing required values: {', '.join(missing)}."))
        assert isinstance(inputs, dict)
        if body["publisherId"] != "tfs":
            raise Reject(error(400, f"Publisher {body['publisherId']} was not found."))
        if body["eventType"] not in WORK_ITEM_EVENTS:
            raise Reject(error(400, f"Event type {body['eventType']} is not supported by this fake."))
        if (body["consumerId"], body["consumerActionId"]) != ("webHooks", "httpRequest"):
            raise Reject(error(400, "Only the webHooks consumer's httpRequest action is supported."))
        target = urlsplit(inputs["url"])
        if target.scheme not in ("http", "https") or not target.netloc:
            raise Reject(error(400, f"The value of input url is not a valid absolute URI: {inputs['url']}."))
        headers = inputs.get("httpHeaders")
        if headers and (not isinstance(headers, str) or not HTTP_HEADERS_RE.match(headers)):
            raise Reject(error(400, "The value of input httpHeaders is not valid: use Key:value, one per line."))
        publisher_inputs = body.get("publisherInputs") or {}
        if not isinstance(publisher_inputs, dict):
            raise Reject(error(400, "publisherInputs must be an object."))
        project = publisher_inputs.get("projectId")
        if project:
            with self._lock:
                if org.project(str(project)) is None:
                    raise Reject(error(400, f"The project with id {project} does not exist."))
        version = str(body.get("resourceVersion") or "1.0")
        if not version.startswith("1.0"):
            # The fake only builds 1.0 payloads; later versions change identity fields (reference §1.4).
            raise Reject(error(400, f"resourceVersion {version} is not supported by this fake; use 1.0."))
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
