"""What Sentry sends the app (contract §13.1): webhooks and UI component requests, verified and parsed. No I/O.

Sentry signs the raw body with the app's client secret: hex HMAC-SHA256 in `Sentry-Hook-Signature` (webhooks)
or `Sentry-App-Signature` (UI components; option GETs sign the empty string). The signature is checked, in
constant time, before a byte of the body is parsed. Every function here raises only the errors of this module
and `BodyTooLarge`, whatever the input: `InvalidSignature` (401), `InvalidSentryPayload` (400).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from shared.deliveries.credential import secret_matches
from shared.deliveries.envelope import InvalidDelivery, loads
from shared.errors import BodyTooLarge
from shared.validation import has_control_characters, is_valid_id, positive_int

MAX_BODY_BYTES = 1024 * 1024
HOOK_SIGNATURE = "sentry-hook-signature"
APP_SIGNATURE = "sentry-app-signature"
MAX_SHORT_TEXT = 200  # names, slugs, statuses, request ids: anything longer is not what Sentry sends
MAX_URL = 2000
_NAME = re.compile(r"[a-z][a-z_]{0,39}")  # a resource or an action: "issue", "event_alert", "created"
_SLUG = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,99}")
_SENTRY_ID_MAX = 2**63 - 1  # Sentry's ids are bigints


class InvalidSignature(Exception):
    """The request's Sentry signature is missing or does not match (HTTP 401). Never echoes what was sent."""


class InvalidSentryPayload(InvalidDelivery):
    """The body is not a Sentry request we can read (HTTP 400). The message never echoes the body."""


@dataclass(frozen=True)
class SentryWebhook:
    """One verified webhook: the headers that matter and the envelope `{action, installation, data, actor}`."""

    resource: str  # Sentry-Hook-Resource: installation, issue, comment, event_alert, ...
    action: str
    installation_uuid: str
    actor_type: str | None  # "user", "application" (an app's token: our own writes when the id is ours), ...
    actor_id: str | None
    actor_name: str | None
    data: dict[str, Any] = field(repr=False, hash=False)  # repr=False: a 1 MiB payload never reaches a log line
    request_id: str | None = None
    timestamp: int | None = None  # Sentry-Hook-Timestamp, seconds; not signed, so it proves nothing

    def is_from_app(self, app_uuid: str | None) -> bool:
        """Whether this app's own token caused the change (its echo, to be ignored)."""
        return is_app_actor(self.actor_type, self.actor_id, app_uuid)


def is_app_actor(actor_type: str | None, actor_id: str | None, app_uuid: str | None) -> bool:
    """Whether an actor is the app `app_uuid` (its own token's writes); also for an actor read back from storage."""
    return bool(app_uuid) and actor_type == "application" and actor_id == app_uuid


def is_slug(value: object) -> bool:
    """A Sentry organization slug as the app accepts one (also the tail of a tracker organization id)."""
    return isinstance(value, str) and _SLUG.fullmatch(value) is not None


@dataclass(frozen=True)
class InstallationEvent:
    action: str  # created | deleted
    uuid: str
    organization_slug: str
    code: str | None  # the grant code to exchange for a token (public integrations, `created` only)
    app_uuid: str | None
    app_slug: str | None
    status: str | None


@dataclass(frozen=True)
class Assignee:
    type: str  # user | team
    id: str
    name: str | None
    email: str | None


@dataclass(frozen=True)
class IssueEvent:
    action: str  # created | resolved | unresolved | assigned | archived | ignored
    issue_id: str  # digits
    status: str | None  # resolved | unresolved | ignored
    substatus: str | None
    assignee: Assignee | None  # None: unassigned
    web_url: str | None
    project_id: str | None
    project_slug: str | None
    title: str | None
    short_id: str | None


@dataclass(frozen=True)
class CommentEvent:
    action: str  # created | updated | deleted
    comment_id: str
    issue_id: str
    text: str
    author: str | None  # the actor's name
    author_id: str | None
    project_slug: str | None
    timestamp: str | None


def _header(headers: Mapping[str, str], name: str) -> str | None:
    """A header by case-insensitive name (a plain dict or the Functions host's mapping)."""
    try:
        items = list(headers.items())
    except (AttributeError, TypeError):
        return None
    return next((v for k, v in items if isinstance(k, str) and k.lower() == name and isinstance(v, str)), None)


def signature(body: bytes, secret: str) -> str:
    """What Sentry sends: hex HMAC-SHA256 of the raw body with the client secret (tests and fakes sign with it)."""
    return hmac.new(secret.encode("utf-8", "surrogatepass"), bytes(body), hashlib.sha256).hexdigest()


def _verify(headers: Mapping[str, str], name: str, body: object, secret: object) -> bytes:
    if not isinstance(body, (bytes, bytearray, memoryview)):
        raise InvalidSentryPayload("The body is not bytes.")
    if len(body) > MAX_BODY_BYTES:
        raise BodyTooLarge("The body is larger than 1 MiB.")
    presented = _header(headers, name)
    if presented is None or not presented.strip():
        raise InvalidSignature(f"The request has no {name.title()} header.")
    if not isinstance(secret, str) or not secret:
        raise InvalidSignature("No Sentry client secret is set here, so no signature can be accepted.")
    expected = signature(bytes(body), secret)
    # Hex is case-insensitive; secret_matches compares fixed-length digests, so neither the content nor the
    # length of a wrong signature changes the time taken.
    if not secret_matches(presented.strip().lower(), [expected]):
        raise InvalidSignature(f"The {name.title()} header does not match the body.")
    return bytes(body)


def verify_ui_request(headers: Mapping[str, str], body: bytes, secret: str) -> None:
    """Check `Sentry-App-Signature` of a UI component request; pass b"" for the option GETs (Sentry signs "")."""
    _verify(headers, APP_SIGNATURE, body, secret)


def _text(value: object, limit: int = MAX_SHORT_TEXT) -> str | None:
    if isinstance(value, str) and value and len(value) <= limit and not has_control_characters(value):
        return value
    return None


def _id(value: object) -> str | None:
    """A Sentry id as text, sent as a number or a string of digits."""
    number = positive_int(value, _SENTRY_ID_MAX)
    return str(number) if number is not None else None


def _actor_id(value: object) -> str | None:
    """A user's id is a number, an application's a uuid."""
    return _id(value) or (value if is_valid_id(value) else None)


def _url(value: object) -> str | None:
    text = _text(value, MAX_URL)
    return text if text and text.startswith(("https://", "http://")) and not any(c.isspace() for c in text) else None


def _object(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def json_object(raw: bytes | str, what: str = "The body") -> dict[str, Any]:
    """UTF-8 `raw` as a JSON object, or InvalidSentryPayload saying what is wrong with `what`."""
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidSentryPayload(f"{what} is not UTF-8 text.") from None
    try:
        payload = loads(raw)
    except InvalidDelivery:
        raise InvalidSentryPayload(f"{what} is not valid JSON.") from None
    if not isinstance(payload, dict):
        raise InvalidSentryPayload(f"{what} is not a JSON object.")
    return payload


def from_http(headers: Mapping[str, str], body: bytes, secret: str) -> SentryWebhook:
    """A webhook, verified, then parsed. Raises BodyTooLarge, InvalidSignature or InvalidSentryPayload only."""
    raw = _verify(headers, HOOK_SIGNATURE, body, secret)
    resource = _header(headers, "sentry-hook-resource")
    if resource is None or not _NAME.fullmatch(resource):
        raise InvalidSentryPayload("The Sentry-Hook-Resource header is missing or not a resource name.")
    payload = json_object(raw)
    action = payload.get("action")
    if not isinstance(action, str) or not _NAME.fullmatch(action):
        raise InvalidSentryPayload("The webhook has no action.")
    uuid = _object(payload.get("installation")).get("uuid")
    if not is_valid_id(uuid):
        raise InvalidSentryPayload("The webhook has no installation.uuid.")
    data = payload.get("data")
    if not isinstance(data, dict):
        raise InvalidSentryPayload("The webhook's data is not a JSON object.")
    actor = _object(payload.get("actor"))
    request_id = _text(_header(headers, "request-id"))
    return SentryWebhook(
        resource=resource,
        action=action,
        installation_uuid=uuid,
        actor_type=_text(actor.get("type")),
        actor_id=_actor_id(actor.get("id")),
        actor_name=_text(actor.get("name")),
        data=data,
        request_id=request_id,
        timestamp=positive_int(_header(headers, "sentry-hook-timestamp"), 2**40),
    )


def _expect(webhook: SentryWebhook, resource: str) -> None:
    if webhook.resource != resource:
        raise InvalidSentryPayload(f"The webhook's resource is not {resource}.")


def installation_event(webhook: SentryWebhook) -> InstallationEvent:
    _expect(webhook, "installation")
    installation = _object(webhook.data.get("installation"))
    uuid = installation.get("uuid")
    if not is_valid_id(uuid) or uuid != webhook.installation_uuid:
        raise InvalidSentryPayload("The installation webhook's data.installation.uuid is missing or differs.")
    slug = _object(installation.get("organization")).get("slug")
    if not is_slug(slug):
        raise InvalidSentryPayload("The installation webhook has no organization slug.")
    app = _object(installation.get("app"))
    return InstallationEvent(
        action=webhook.action,
        uuid=uuid,
        organization_slug=slug,
        code=_text(installation.get("code")),
        app_uuid=_text(app.get("uuid")),
        app_slug=_text(app.get("slug")),
        status=_text(installation.get("status")),
    )


def _assignee(value: object) -> Assignee | None:
    assigned = _object(value)
    kind, ident = _text(assigned.get("type")), _actor_id(assigned.get("id"))
    if kind is None or ident is None:
        return None
    email = _text(assigned.get("email"), 254)
    return Assignee(type=kind, id=ident, name=_text(assigned.get("name")), email=email)


def issue_event(webhook: SentryWebhook) -> IssueEvent:
    _expect(webhook, "issue")
    issue = _object(webhook.data.get("issue"))
    issue_id = _id(issue.get("id"))
    if issue_id is None:
        raise InvalidSentryPayload("The issue webhook has no data.issue.id.")
    if issue.get("assignedTo") is not None and _assignee(issue.get("assignedTo")) is None:
        raise InvalidSentryPayload("The issue webhook's assignedTo is neither null nor a user or team.")
    project = _object(issue.get("project"))
    return IssueEvent(
        action=webhook.action,
        issue_id=issue_id,
        status=_text(issue.get("status")),
        substatus=_text(issue.get("substatus")),
        # `issue.assigned` names the assignee in data.assignee (with the email); the issue's assignedTo too.
        assignee=_assignee(webhook.data.get("assignee")) or _assignee(issue.get("assignedTo")),
        web_url=_url(issue.get("web_url")) or _url(issue.get("permalink")),
        project_id=_id(project.get("id")),
        project_slug=_text(project.get("slug")),
        title=_text(issue.get("title"), 10_000),
        short_id=_text(issue.get("shortId")),
    )


def comment_event(webhook: SentryWebhook) -> CommentEvent:
    _expect(webhook, "comment")
    data = webhook.data
    comment_id, issue_id = _id(data.get("comment_id")), _id(data.get("issue_id"))
    if comment_id is None or issue_id is None:
        raise InvalidSentryPayload("The comment webhook has no comment_id or issue_id.")
    text = data.get("comment")
    if text is None and webhook.action == "deleted":
        text = ""
    if not isinstance(text, str):
        raise InvalidSentryPayload("The comment webhook's comment is not text.")
    return CommentEvent(
        action=webhook.action,
        comment_id=comment_id,
        issue_id=issue_id,
        text=text,
        author=webhook.actor_name,
        author_id=webhook.actor_id,
        project_slug=_text(data.get("project_slug")),
        timestamp=_text(data.get("timestamp")),
    )


# What the app acts on (contract §13.2); anything else is answered 200 "ignored".
HANDLED = {
    "installation": {"created", "deleted"},
    "issue": {"resolved", "unresolved", "assigned", "ignored", "archived"},
    "comment": {"created", "updated", "deleted"},
}
_VIEWS = {"installation": installation_event, "issue": issue_event, "comment": comment_event}


def event_of(webhook: SentryWebhook) -> InstallationEvent | IssueEvent | CommentEvent | None:
    """The typed view of a webhook the app handles, or None for one it does not (raises InvalidSentryPayload)."""
    if webhook.action not in HANDLED.get(webhook.resource, ()):
        return None
    return _VIEWS[webhook.resource](webhook)
