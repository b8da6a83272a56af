"""The fake's model: Sentry Apps and their installations, tokens, organizations with their projects, members
and issues, the lock that guards them, and the set-up methods tests use to make and read them."""

from __future__ import annotations

import secrets
import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol


class Clock(Protocol):
    """What the fake reads time from: `now()` in epoch seconds (a test passes one it can move)."""

    def now(self) -> float: ...


class SystemClock:
    def now(self) -> float:
        return time.time()


SYSTEM: Clock = SystemClock()

TOKEN_LIFETIME = 8 * 3600.0  # Sentry's token_expiration(): 8 hours
GRANT_LIFETIME = 600.0  # an ApiGrant's code is valid for 10 minutes


def has_any_scope(granted: Iterable[str], allowed: Iterable[str]) -> bool:
    """Sentry's `ScopedPermission.has_permission`: the token holds one of the scopes the endpoint's permission
    class lists for the method. No hierarchy is applied here: each class lists the higher levels itself (PUT on
    an issue: `event:write` or `event:admin`), and an endpoint that lists only `event:admin` wants exactly it."""
    return bool(set(granted) & set(allowed))


@dataclass
class App:
    slug: str
    uuid: str
    name: str
    client_id: str
    client_secret: str
    webhook_url: str
    scopes: frozenset[str]
    # As Sentry stores them: resources ("issue", "comment") or event names ("issue.archived"); installation
    # webhooks go to every app.
    events: frozenset[str]
    verify_install: bool

    def subscribes(self, resource: str) -> bool:
        return any(e.partition(".")[0] == resource for e in self.events)


@dataclass
class Installation:
    uuid: str
    app: App
    org: str  # slug
    status: str  # "pending" | "installed"
    code: str | None  # the grant, spent by the token exchange
    code_expires: float
    scopes: frozenset[str]  # what the organization granted when installing: the app's scopes, unless set
    external_issues: dict[str, dict[str, Any]] = field(default_factory=dict)  # by id, as serialized


@dataclass
class Token:
    token: str
    refresh_token: str | None
    installation: Installation
    expires_at: float | None  # None: an internal integration's token, which never expires
    created: float
    id: str


@dataclass
class Member:
    id: str  # the organization member id
    user_id: str
    email: str
    name: str
    role: str = "member"


@dataclass
class Comment:
    id: str
    text: str
    user_id: str  # a person's user id, or `app:<uuid>` for a note written with an app's token (its proxy user)
    created: float
    app: Any = None  # the App whose token wrote it, if one did: its webhooks carry the app as actor


@dataclass
class Issue:
    id: str
    short_id: str
    title: str
    project: str  # slug
    status: str  # "unresolved" | "resolved" | "ignored"
    substatus: str | None
    status_details: dict[str, Any]
    assigned_to: str | None  # a user id
    first_seen: float
    comments: dict[str, Comment] = field(default_factory=dict)


@dataclass
class Org:
    slug: str
    id: str
    projects: dict[str, str] = field(default_factory=dict)  # slug -> id
    features: set[str] = field(default_factory=set)  # organization feature flags, e.g. "webhooks-unresolved"
    members: dict[str, Member] = field(default_factory=dict)  # by user id
    issues: dict[str, Issue] = field(default_factory=dict)


class Store:
    """The base of every mixin of FakeSentry: the model and its one lock (the server is threaded)."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self.clock: Clock = SYSTEM  # FakeSentry takes another (tests.helpers.FakeClock) to move time
        self.token_lifetime = TOKEN_LIFETIME
        self._apps: dict[str, App] = {}
        self._installations: dict[str, Installation] = {}
        self._tokens: dict[str, Token] = {}
        self._orgs: dict[str, Org] = {}
        self._ids = 0

    def _next_id(self) -> str:
        self._ids += 1
        return str(self._ids)

    def _org(self, slug: str) -> Org:
        """The organization, made on first mention (holding the lock)."""
        org = self._orgs.get(slug)
        if org is None:
            org = self._orgs[slug] = Org(slug, self._next_id())
        return org

    def _find_org(self, slug_or_id: str) -> Org | None:
        return self._orgs.get(slug_or_id) or next((o for o in self._orgs.values() if o.id == slug_or_id), None)

    # ----------------------------------------------------------------------------------------- set-up

    def add_app(
        self,
        slug: str,
        client_id: str,
        client_secret: str,
        webhook_url: str,
        scopes: Iterable[str] = ("event:read", "event:write", "member:read"),
        *,
        name: str | None = None,
        events: Iterable[str] = ("issue", "comment"),
        verify_install: bool = False,
    ) -> str:
        """A Sentry App (public or internal integration); returns its uuid (the `actor.id` of its own writes).
        `events` are resources or event names as Sentry stores them. Adding a slug again replaces the app for
        installations made afterwards."""
        app = App(
            slug,
            str(uuid.uuid4()),
            name or slug,
            client_id,
            client_secret,
            webhook_url,
            frozenset(scopes),
            frozenset(events),
            verify_install,
        )
        with self._lock:
            self._apps[slug] = app
        return app.uuid

    def add_member(self, org: str, user_id: str | int, email: str, name: str, *, role: str = "member") -> None:
        with self._lock:
            o = self._org(org)
            o.members[str(user_id)] = Member(self._next_id(), str(user_id), email, name, role)

    def add_issue(
        self,
        org: str,
        issue_id: str | int,
        title: str,
        project_slug: str,
        status: str = "unresolved",
        assigned_to: str | int | None = None,
        *,
        short_id: str | None = None,
    ) -> None:
        """An issue (a Sentry group) in a project (made on first mention); `assigned_to` is a member's user id."""
        with self._lock:
            o = self._org(org)
            if project_slug not in o.projects:
                o.projects[project_slug] = self._next_id()
            number = 1 + sum(1 for i in o.issues.values() if i.project == project_slug)
            o.issues[str(issue_id)] = Issue(
                str(issue_id),
                short_id or f"{project_slug.upper()}-{number}",
                title,
                project_slug,
                status,
                "ongoing" if status == "unresolved" else None,
                {},
                None if assigned_to is None else str(assigned_to),
                self.clock.now(),
            )

    def add_static_token(self, org_slug: str, token: str, app_slug: str) -> str:
        """An internal integration's token: installed in the organization with no grant and never expiring.
        Returns the installation's uuid (made when the app has none there; no webhook, as with Sentry's
        internal integrations, which are installed when created)."""
        with self._lock:
            app = self._apps[app_slug]
            self._org(org_slug)
            install = next(
                (i for i in self._installations.values() if i.app is app and i.org == org_slug), None
            ) or Installation(str(uuid.uuid4()), app, org_slug, "installed", None, 0.0, app.scopes)
            self._installations[install.uuid] = install
            self._tokens[token] = Token(token, None, install, None, self.clock.now(), self._next_id())
            return install.uuid

    def set_scopes(self, installation_uuid: str, scopes: Iterable[str]) -> None:
        """The scopes the installation's tokens carry from now on (what the organization granted the app)."""
        with self._lock:
            self._installations[installation_uuid].scopes = frozenset(scopes)

    def set_feature(self, org: str, feature: str, enabled: bool = True) -> None:
        """Turn an organization feature flag on or off (`webhooks-unresolved`: send `issue.unresolved`)."""
        with self._lock:
            features = self._org(org).features
            features.add(feature) if enabled else features.discard(feature)

    def revoke_tokens(self, installation_uuid: str) -> None:
        """Sentry revoking every token of the installation, refresh tokens included (as when a person rotates
        them): each call with them is answered 401 from now on."""
        with self._lock:
            for token in [t for t in self._tokens.values() if t.installation.uuid == installation_uuid]:
                del self._tokens[token.token]

    def expire_token(self, token: str) -> None:
        """Make a token expired now (its refresh token still works, as with Sentry)."""
        with self._lock:
            self._tokens[token].expires_at = self.clock.now() - 1

    def _new_token(self, install: Installation) -> Token:
        now = self.clock.now()
        token = Token(
            secrets.token_hex(32), secrets.token_hex(32), install, now + self.token_lifetime, now, self._next_id()
        )
        self._tokens[token.token] = token
        return token

    # ------------------------------------------------------------------------------------------ views

    def installation(self, uuid_: str) -> dict[str, Any]:
        with self._lock:
            i = self._installations[uuid_]
            return {"uuid": i.uuid, "app": i.app.slug, "organization": i.org, "status": i.status, "code": i.code}

    def installations(self, org: str | None = None) -> list[str]:
        with self._lock:
            return [i.uuid for i in self._installations.values() if org is None or i.org == org]

    def tokens(self, installation_uuid: str) -> list[str]:
        """The live access tokens of an installation."""
        with self._lock:
            return [t.token for t in self._tokens.values() if t.installation.uuid == installation_uuid]

    def external_issues(self, installation_uuid: str) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(e) for e in self._installations[installation_uuid].external_issues.values()]
