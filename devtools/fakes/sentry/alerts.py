"""Alert rules with a Sentry App's action, as Sentry handles them (facts: getsentry/sentry
`src/sentry/rules/actions/sentry_apps/notify_event.py`, `src/sentry/sentry_apps/external_requests/
alert_rule_action_requester.py`, `send_alert_webhook_v2` in `src/sentry/sentry_apps/tasks/sentry_apps.py`).

- The app's UI schema is what a person pasted into the integration (`set_schema`); its `alert-rule-action`
  element says which fields a rule's action has.
- Saving a rule (`save_alert_rule`): Sentry first checks the settings itself (every required field present,
  no field the element does not have, a select without `uri` only one of its `options`) and refuses without
  calling the app; then it POSTs `{"fields": [{name, value}], "installationId"}` to the settings `uri` on the host
  of the app's webhook URL, signed (`Sentry-App-Signature`) with a fresh `Request-ID`. A 2xx saves the rule (its
  `message`, if any, is shown); anything else blocks the save and shows the app's `message`.
- A firing (`fire_issue_alert`) POSTs `event_alert.triggered` to the webhook URL: `data.event` the event (with
  `issue_id`, `url`, `web_url`, `issue_url`), `data.triggered_rule` the rule's name, `data.issue_alert`
  `{id, title, sentry_app_id, settings}` with the saved settings (and their labels). Each send builds its headers
  afresh, so a resend (`resend`) carries a new `Request-ID`, as Sentry's retried task does.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import requests as http

from devtools.fakes.sentry.issues import Issues
from devtools.fakes.sentry.protocol import sign
from devtools.fakes.sentry.webhooks import SENTRY_ACTOR, Webhook


class RuleRefused(Exception):
    """Sentry refused to save the rule before (or after) asking the app; `message` is what it shows."""

    def __init__(self, message: str, answer: http.Response | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.answer = answer


@dataclass
class AlertRule:
    id: int
    name: str
    installation: str
    settings: list[dict[str, Any]]  # [{name, value, label?}] as saved


class Alerts(Issues):
    """Mixin of FakeSentry: alert rules with the app's action, saved and fired as Sentry does."""

    def __init__(self) -> None:
        super().__init__()
        self._schemas: dict[str, dict[str, Any]] = {}  # app slug -> the pasted UI schema
        self._rules: dict[int, AlertRule] = {}
        self._sentry_app_ids: dict[str, int] = {}  # app slug -> Sentry's integer id of the app

    def set_schema(self, app_slug: str, schema: dict[str, Any]) -> None:
        """The UI schema pasted into the integration's settings."""
        with self._lock:
            self._apps[app_slug]  # KeyError for an unknown app
            self._schemas[app_slug] = schema
            self._sentry_app_ids.setdefault(app_slug, 1000 + len(self._sentry_app_ids))

    def _rule_element(self, app_slug: str) -> dict[str, Any]:
        elements = self._schemas.get(app_slug, {}).get("elements", [])
        found = [e for e in elements if isinstance(e, dict) and e.get("type") == "alert-rule-action"]
        if not found:
            raise RuleRefused("The integration has no alert rule action (no alert-rule-action in its schema).")
        return found[0]

    def save_alert_rule(
        self, installation_uuid: str, name: str, fields: dict[str, str], *, labels: dict[str, str] | None = None
    ) -> tuple[AlertRule, http.Response]:
        """A person saving an issue alert rule whose action is the app's. RuleRefused when Sentry or the app
        refuses it (with the message Sentry shows)."""
        with self._lock:
            install = self._installations[installation_uuid]
            app = install.app
        settings = self._rule_element(app.slug)["settings"]
        required = {f["name"]: f for f in settings.get("required_fields", [])}
        optional = {f["name"]: f for f in settings.get("optional_fields", [])}
        known = {**required, **optional}
        for field_name in fields:
            if field_name not in known:
                raise RuleRefused(f"Unexpected setting: {field_name}")
        for field_name in required:
            if not str(fields.get(field_name, "")).strip():
                raise RuleRefused(f"{required[field_name].get('label', field_name)} is required.")
        for field_name, value in fields.items():
            spec = known[field_name]
            static = spec.get("type") == "select" and "uri" not in spec
            if static and value not in [str(option[0]) for option in spec.get("options", [])]:
                raise RuleRefused(f"{spec.get('label', field_name)} is not one of its options.")
        body = {"fields": [{"name": k, "value": v} for k, v in fields.items()], "installationId": install.uuid}
        answer = self.call_app(settings["uri"], "POST", body, app=app.slug)
        try:
            result = answer.json()
        except ValueError:
            result = {}
        message = result.get("message") if isinstance(result, dict) else None
        if not 200 <= answer.status_code < 300:
            raise RuleRefused(str(message or "Something went wrong while setting up the action."), answer)
        saved = []
        for k, v in fields.items():
            entry: dict[str, Any] = {"name": k, "value": v}
            if "uri" in known[k]:  # Sentry's UI keeps the label of a select filled from a uri
                entry["label"] = (labels or {}).get(k, v)
            saved.append(entry)
        with self._lock:
            rule = AlertRule(len(self._rules) + 1, name, install.uuid, saved)
            self._rules[rule.id] = rule
        return rule, answer

    def _event(self, org: Any, issue: Any, event_id: str, environment: str) -> dict[str, Any]:
        """The event as `send_alert_webhook_v2` serializes it, with the urls it adds."""
        page = self._permalink(org, issue)
        return {
            "event_id": event_id,
            "project": int(org.projects[issue.project]),
            "issue_id": issue.id,
            "title": issue.title,
            "culprit": "app.checkout in pay",
            "level": "error",
            "platform": "python",
            "environment": environment,
            "release": "web@1.4.2",
            "message": "",
            "tags": [["environment", environment], ["level", "error"], ["browser", "Chrome 120"]],
            "url": f"{self.base_url}/api/0/projects/{org.slug}/{issue.project}/events/{event_id}/",
            "web_url": f"{page}events/{event_id}/",
            "issue_url": f"{self.base_url}/api/0/issues/{issue.id}/",
        }

    def fire_issue_alert(self, rule_id: int, issue_id: str | int, *, environment: str = "production") -> Webhook:
        """The rule fires for an event of the issue: `event_alert.triggered`, sent now."""
        with self._lock:
            rule = self._rules[rule_id]
            install = self._installations[rule.installation]
            org = self._org(install.org)
            issue = org.issues[str(issue_id)]
            data = {
                "event": self._event(org, issue, uuid.uuid4().hex, environment),
                "triggered_rule": rule.name,
                "issue_alert": {
                    "id": rule.id,
                    "title": rule.name,
                    "sentry_app_id": self._sentry_app_ids[install.app.slug],
                    "settings": [dict(entry) for entry in rule.settings],
                },
            }
            outgoing = self._build(install, "event_alert", "triggered", data, dict(SENTRY_ACTOR))
        return self._post(*outgoing)

    def fire_metric_alert(self, rule_id: int, action: str, incident_id: int, *, text: str = "") -> Webhook:
        """A metric alert rule's incident changing (`action`: critical, warning or resolved): `metric_alert.<action>`
        with `data = {metric_alert (the incident, its alert_rule with triggers and actions), description_text,
        description_title, web_url}`. Each action carries Sentry's integer `sentry_app_id`, never the uuid."""
        if action not in ("critical", "warning", "resolved"):
            raise ValueError(f"no metric alert action {action}")
        with self._lock:
            rule = self._rules[rule_id]
            install = self._installations[rule.installation]
            org = self._org(install.org)
            app_id = self._sentry_app_ids[install.app.slug]
            page = f"{self.base_url}/organizations/{org.slug}/alerts/rules/details/{rule.id}/"
            actions = [
                {"id": 1, "type": "email", "targetType": "team", "settings": None, "sentry_app_id": None},
                {"id": 2, "type": "sentry_app", "sentry_app_id": app_id, "settings": [dict(e) for e in rule.settings]},
            ]
            incident = {
                "id": str(incident_id),
                "identifier": str(incident_id),
                "organizationId": org.id,
                "projects": ["backend"],
                "title": rule.name,
                "status": 2 if action == "resolved" else (20 if action == "critical" else 10),
                "alert_rule": {
                    "id": str(rule.id),
                    "name": rule.name,
                    "triggers": [{"id": "1", "label": "critical", "actions": actions}],
                },
            }
            label = {"critical": "Critical", "warning": "Warning", "resolved": "Resolved"}[action]
            data = {
                "metric_alert": incident,
                "description_text": text or f"1000 events in the last 10 minutes ({label.lower()})",
                "description_title": f"{label}: {rule.name}",
                "web_url": page,
            }
            outgoing = self._build(install, "metric_alert", action, data, dict(SENTRY_ACTOR))
        return self._post(*outgoing)

    def resend(self, webhook: Webhook) -> Webhook:
        """Sentry's task sending a webhook again: the same body, headers built afresh (a new Request-ID)."""
        with self._lock:
            install = self._installations[webhook.installation]
            app = install.app
        body = webhook.body
        headers = {
            **webhook.headers,
            "Request-ID": uuid.uuid4().hex,
            "Sentry-Hook-Timestamp": str(int(self.clock.now())),
            "Sentry-Hook-Signature": sign(app.client_secret, body),
        }
        return self._post(app, webhook.url, headers, body)
