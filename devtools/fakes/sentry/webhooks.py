"""Webhooks as a Sentry App receives them: `{action, installation: {uuid}, data, actor}`, compact JSON signed
with the app's client secret (`Sentry-Hook-Signature`), POSTed with a 1 s timeout and never retried.

Changes made through the set-up methods (a person in Sentry's UI) are delivered before the method returns;
changes made through the API are delivered afterwards, in order, from one background thread, as Sentry's
task queue does, so the caller's request is answered first. Only loopback hosts are ever sent to."""

from __future__ import annotations

import json
import queue
import threading
import uuid
from dataclasses import dataclass
from typing import Any

import requests as http

from devtools.fakes.http import post_loopback
from devtools.fakes.sentry.data import App, Installation, Org, Store
from devtools.fakes.sentry.protocol import dumps, sign

SENTRY_ACTOR = {"type": "application", "id": "sentry", "name": "Sentry"}  # Sentry's own automation
Outgoing = tuple[App, str, dict[str, str], bytes]  # app, url, headers, body


@dataclass
class Webhook:
    """One webhook POST. `status` is None when no HTTP answer came (`error` says why)."""

    resource: str
    action: str
    installation: str
    url: str
    status: int | None
    error: str | None
    headers: dict[str, str]
    body: bytes
    time: float

    @property
    def payload(self) -> Any:
        return json.loads(self.body)


def app_actor(app: App) -> dict[str, Any]:
    """The actor of a change made with an app's token: the app's uuid, the key to ignore its own echoes."""
    return {"type": "application", "id": app.uuid, "name": app.name}


class Webhooks(Store):
    """Mixin of FakeSentry: building, signing and POSTing webhooks, and their record."""

    def __init__(self) -> None:
        super().__init__()
        self.webhook_timeout = 1.0  # seconds: Sentry's SENTRY_APPS_WEBHOOK_TIMEOUT_SEC
        self._webhooks: list[Webhook] = []
        self._http = http.Session()
        self._http.trust_env = False  # straight to loopback, never through an environment proxy
        self._outbox: queue.Queue[list[Outgoing] | None] = queue.Queue()
        self._sender: threading.Thread | None = None

    @property
    def webhooks(self) -> list[Webhook]:
        with self._lock:
            return list(self._webhooks)

    def _user_actor(self, org: Org, user_id: str | int | None) -> dict[str, Any]:
        """A person's actor (Sentry sends the user's numeric id); None is Sentry itself (auto-resolve...)."""
        if user_id is None:
            return dict(SENTRY_ACTOR)
        member = org.members.get(str(user_id))
        name = member.name if member else str(user_id)
        return {"type": "user", "id": int(user_id) if str(user_id).isdigit() else str(user_id), "name": name}

    def _build(
        self, install: Installation, resource: str, action: str, data: dict[str, Any], actor: dict[str, Any]
    ) -> Outgoing:
        body = dumps({"action": action, "installation": {"uuid": install.uuid}, "data": data, "actor": actor})
        headers = {
            "Content-Type": "application/json",
            "Request-ID": uuid.uuid4().hex,
            "Sentry-Hook-Resource": resource,
            "Sentry-Hook-Timestamp": str(int(self.clock.now())),
            "Sentry-Hook-Signature": sign(install.app.client_secret, body),
        }
        return install.app, install.app.webhook_url, headers, body.encode()

    def _subscribed(self, org: Org, resource: str) -> list[Installation]:
        """The organization's installed apps that subscribe to a resource (call holding the lock)."""
        return [
            i
            for i in self._installations.values()
            if i.org == org.slug and i.status == "installed" and i.app.subscribes(resource)
        ]

    def _send_now(self, outgoing: list[Outgoing]) -> None:
        # POST outside the lock: the receiver (the app) may call back into the fake while handling it.
        for item in outgoing:
            self._post(*item)

    def _send_later(self, outgoing: list[Outgoing]) -> None:
        if not outgoing:
            return
        with self._lock:
            if self._sender is None:
                self._sender = threading.Thread(target=self._drain, name="fake-sentry-webhooks", daemon=True)
                self._sender.start()
        self._outbox.put(outgoing)

    def _drain(self) -> None:
        while (batch := self._outbox.get()) is not None:
            self._send_now(batch)

    def _stop_sender(self) -> None:
        with self._lock:
            sender, self._sender = self._sender, None
        if sender is not None:
            self._outbox.put(None)
            sender.join(timeout=5)

    def _post(self, app: App, url: str, headers: dict[str, str], body: bytes) -> Webhook:
        status, error = post_loopback(self._http, url, body, headers, self.webhook_timeout)
        payload = json.loads(body)
        webhook = Webhook(
            headers["Sentry-Hook-Resource"],
            str(payload["action"]),
            str(payload["installation"]["uuid"]),
            url,
            status,
            error,
            headers,
            body,
            self.clock.now(),
        )
        with self._lock:
            self._webhooks.append(webhook)
        return webhook
