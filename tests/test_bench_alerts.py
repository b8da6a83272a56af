"""`make bench`'s alert figures (issue 19): what the bench sends is an alert the app queues, its counting keeps the
app's own requests only, and the report renders the new figures."""

from __future__ import annotations

import json
from dataclasses import dataclass

from bench import report
from bench.sentry import _event_alert_triggered, firing_requests
from shared.deliveries.sentry import from_http, signature
from shared.deliveries.sentry_alerts import AlertEvent
from shared.deliveries.sentry_messages import event_of


@dataclass
class _Logged:
    method: str
    path: str


def test_a_firing_counts_every_azure_devops_request_and_only_the_apps_calls_to_sentrys_api() -> None:
    ado = [_Logged("POST", "/org/proj-id/_apis/wit/workitems/$Bug"), _Logged("PATCH", "/org/_apis/wit/workitems/9")]
    sentry = [
        _Logged("POST", "/api/0/sentry-app-installations/u/external-issues/"),
        _Logged("POST", "/api/sentry/webhook"),  # not the app's call: a webhook the fake sent
        _Logged("GET", "/organizations/acme/issues/1/"),
    ]
    assert firing_requests(ado, sentry) == (2, 1)
    assert firing_requests([], []) == (0, 0)


def test_the_benchs_event_alert_webhook_is_an_alert_the_app_accepts() -> None:
    resource, payload = _event_alert_triggered("5c2b8a3e-0000-4000-8000-000000000001", 41)
    body = json.dumps({**payload, "actor": {"type": "user", "id": 101, "name": "Dana"}}).encode()
    headers = {
        "Content-Type": "application/json",
        "Request-ID": "0" * 32,
        "Sentry-Hook-Resource": resource,
        "Sentry-Hook-Timestamp": "1700000000",
        "Sentry-Hook-Signature": signature(body, "secret"),
    }
    event = event_of(from_http(headers, body, "secret"))
    assert isinstance(event, AlertEvent)
    assert event.issue_id == "42" and event.rule == "Errors in checkout"
    assert event.settings["work_item_type"] == "Bug"


class _Every(dict):
    """A results section in which every figure is 3."""

    def __missing__(self, key: str) -> int:
        return 3


def test_the_report_renders_the_alert_figures() -> None:
    sections = ("machine", "webhook", "counts", "domain_check", "import", "outbound")
    results = {name: _Every() for name in sections}
    results["sentry"] = _Every(alert_cold_ado=4, alert_warm_ado=3, alert_p99_ms=1200.0)
    results["seconds"] = {"total": 1.0}
    text = report.render(results)
    [firing] = [line for line in text.splitlines() if line.startswith("| Requests per alert firing")]
    assert "**4** / 3 cold, **3** / 3 warm" in firing
    [ack] = [line for line in text.splitlines() if line.startswith("| `event_alert` webhook acknowledge")]
    assert ack.endswith("| **missed** |")  # a p99 of 1200 ms is over Sentry's 1 s
