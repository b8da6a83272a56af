"""The integration platform: installing an app (the grant `code` in `installation.created`), the token exchange
and refresh, bearer tokens, the installation endpoints (verify install, external issues), and Sentry calling
the app's UI components (issue link, select options) signed with `Sentry-App-Signature`."""

from __future__ import annotations

import hmac
import json
import secrets
import uuid
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

import requests as http
from werkzeug.wrappers import Request, Response

from devtools.fakes.http import Reject, is_loopback
from devtools.fakes.sentry.data import GRANT_LIFETIME, App, Installation, Issue, Token
from devtools.fakes.sentry.protocol import (
    NO_PERMISSION,
    NOT_AUTHENTICATED,
    NOT_FOUND,
    detail,
    dumps,
    field_errors,
    iso,
    json_response,
    read_json,
    sign,
)
from devtools.fakes.sentry.webhooks import Webhooks

REQUIRED = "This field is required."


class Apps(Webhooks):
    """Mixin of FakeSentry: installations, tokens and the app's UI components."""

    def __init__(self) -> None:
        super().__init__()
        self.component_timeout = 10.0  # seconds for Sentry's calls to the app's issue-link and select URIs

    # ------------------------------------------------------------------------------------- installations

    def install(
        self,
        app_slug: str,
        org_slug: str,
        *,
        by_user: str | int | None = None,
        scopes: Iterable[str] | None = None,
    ) -> str:
        """Install the app in the organization (a person clicking Install): a new installation with a one-time
        grant code, announced by `installation.created` before this returns. Its tokens carry `scopes` (default:
        the app's). Returns the installation uuid."""
        with self._lock:
            app = self._apps[app_slug]
            org = self._org(org_slug)
            install = Installation(
                str(uuid.uuid4()),
                app,
                org_slug,
                "pending" if app.verify_install else "installed",
                secrets.token_hex(32),
                self.clock.now() + GRANT_LIFETIME,
                app.scopes if scopes is None else frozenset(scopes),
            )
            self._installations[install.uuid] = install
            data = {"installation": self._installation_json(install, with_code=True)}
            outgoing = [self._build(install, "installation", "created", data, self._user_actor(org, by_user))]
        self._send_now(outgoing)
        return install.uuid

    def uninstall(self, installation_uuid: str, *, by_user: str | int | None = None) -> None:
        """Remove the installation and its tokens, announced by `installation.deleted`."""
        with self._lock:
            install = self._installations.pop(installation_uuid)
            for token in [t for t in self._tokens.values() if t.installation is install]:
                del self._tokens[token.token]
            data = {"installation": self._installation_json(install, with_code=False)}
            actor = self._user_actor(self._org(install.org), by_user)
            outgoing = [self._build(install, "installation", "deleted", data, actor)]
        self._send_now(outgoing)

    def _installation_json(self, install: Installation, *, with_code: bool) -> dict[str, Any]:
        data: dict[str, Any] = {
            "app": {"uuid": install.app.uuid, "slug": install.app.slug},
            "organization": {"slug": install.org, "id": self._org(install.org).id},
            "uuid": install.uuid,
            "status": install.status,
        }
        if with_code and install.code is not None:
            data["code"] = install.code
        return data

    # ------------------------------------------------------------------------------------------- tokens

    def _authenticate(self, request: Request) -> Token:
        """The bearer token's record, or Sentry's 401 (call holding the lock)."""
        scheme, _, value = request.headers.get("Authorization", "").partition(" ")
        if not scheme:
            raise Reject(detail(401, NOT_AUTHENTICATED))
        token = self._tokens.get(value.strip()) if scheme.lower() == "bearer" else None
        if token is None:
            raise Reject(detail(401, "Invalid token"))
        if token.expires_at is not None and self.clock.now() >= token.expires_at:
            raise Reject(detail(401, "Token expired"))
        return token

    def _handle_authorizations(self, request: Request, installation_uuid: str) -> Response:
        """`POST /api/0/sentry-app-installations/{uuid}/authorizations/`: the client id and secret in the body
        authenticate the app; then a grant code or a refresh token becomes a new token pair."""
        try:
            body = json.loads(request.get_data(cache=True) or b"null")
        except ValueError:
            body = None
        if not isinstance(body, dict) or not body:
            return detail(401, "Invalid request")
        with self._lock:
            app = next((a for a in self._apps.values() if a.client_id == body.get("client_id")), None)
            secret = str(body.get("client_secret") or "")
            if app is None or not secret or not hmac.compare_digest(app.client_secret, secret):
                return detail(401, "Invalid Client ID / Secret pair")
            install = self._installations.get(installation_uuid)
            if install is None:
                return detail(404, NOT_FOUND)
            grant_type = body.get("grant_type")
            if grant_type == "authorization_code":
                token = self._exchange(app, install, body.get("code"))
            elif grant_type == "refresh_token":
                token = self._refresh(app, install, body.get("refresh_token"))
            else:
                return detail(403, "Invalid grant_type")
            return json_response(
                {
                    "id": token.id,
                    "scopes": sorted(install.scopes),
                    "application": None,
                    "expiresAt": iso(token.expires_at or 0),
                    "dateCreated": iso(token.created),
                    "state": body.get("state"),
                    "token": token.token,
                    "refreshToken": token.refresh_token,
                },
                201,
            )

    def _exchange(self, app: App, install: Installation, code: Any) -> Token:
        if not code:
            raise Reject(field_errors({"code": REQUIRED}))
        if install.app is not app:
            raise Reject(detail(400, f"Given installation is not for integration: {app.slug}"))
        granted = next((i for i in self._installations.values() if i.code is not None and i.code == code), None)
        if granted is None:
            raise Reject(detail(401, "Could not find grant for given code"))
        if granted is not install:
            raise Reject(detail(401, "Forbidden grant"))
        if self.clock.now() >= install.code_expires:
            raise Reject(detail(401, "Grant has already expired"))
        install.code = None  # exchanged once, then deleted
        return self._new_token(install)

    def _refresh(self, app: App, install: Installation, refresh_token: Any) -> Token:
        # Sentry's field is `refresh_token` (snake case), not the `refreshToken` it answers with.
        if not refresh_token:
            raise Reject(field_errors({"refresh_token": REQUIRED}))
        if install.app is not app:
            raise Reject(detail(400, f"Given installation is not for integration: {app.slug}"))
        old = next((t for t in self._tokens.values() if t.refresh_token == refresh_token), None)
        if old is None:
            raise Reject(detail(401, "Given refresh token does not exist"))
        if old.installation.app is not app:
            raise Reject(detail(400, "Token does not belong to the application"))
        del self._tokens[old.token]  # the old access token dies with its refresh token
        return self._new_token(old.installation)

    def _own_installation(self, request: Request, installation_uuid: str) -> Installation:
        """The installation, when the bearer token is its app's (call holding the lock). Authentication (401) and
        the method's scope (403) were checked by the dispatch, in that order, before the installation is looked
        up (404), as Sentry's endpoint runs its permission class before `convert_args`."""
        token = self._authenticate(request)
        install = self._installations.get(installation_uuid)
        if install is None:
            raise Reject(detail(404, NOT_FOUND))
        if token.installation.app is not install.app:
            raise Reject(detail(403, NO_PERMISSION))
        return install

    def _handle_installation(self, request: Request, installation_uuid: str) -> Response:
        """`PUT /api/0/sentry-app-installations/{uuid}/` with `{"status": "installed"}`: verify the install."""
        body = read_json(request)
        with self._lock:
            install = self._own_installation(request, installation_uuid)
            if body.get("status") != "installed":
                value = body.get("status")
                return field_errors({"status": f"Invalid value '{value}' for status. Valid values: 'installed'"})
            install.status = "installed"
            return json_response(self._installation_json(install, with_code=False))

    # ---------------------------------------------------------------------------------- external issues

    def _handle_external_issues(self, request: Request, installation_uuid: str) -> Response:
        """`POST …/external-issues/` `{issueId, webUrl, project, identifier}`: show a link on the issue."""
        body = read_json(request)
        with self._lock:
            install = self._own_installation(request, installation_uuid)
            issue = self._org(install.org).issues.get(str(body.get("issueId")))
            if issue is None:
                return Response(status=404)  # Sentry answers this one with no body
            missing = {name: REQUIRED for name in ("webUrl", "project", "identifier") if not body.get(name)}
            if missing:
                return field_errors(missing)
            if not str(body["webUrl"]).startswith(("http://", "https://")):
                return field_errors({"webUrl": "Enter a valid URL."})
            linked = self._link_external(install, issue, str(body["webUrl"]), body["project"], body["identifier"])
            return json_response(linked)

    def _handle_external_issue(self, request: Request, installation_uuid: str, external_id: str) -> Response:
        with self._lock:
            install = self._own_installation(request, installation_uuid)
            if install.external_issues.pop(external_id, None) is None:
                return Response(status=404)
            return Response(status=204)

    def _link_external(
        self, install: Installation, issue: Issue, web_url: str, project: Any, identifier: Any
    ) -> dict[str, Any]:
        """One link per issue and app, updated in place on a second POST (call holding the lock)."""
        current = next((e for e in install.external_issues.values() if e["issueId"] == issue.id), None)
        linked = {
            "id": current["id"] if current else self._next_id(),
            "issueId": issue.id,
            "serviceType": install.app.slug,
            "displayName": f"{project}#{identifier}",
            "webUrl": web_url,
        }
        install.external_issues[linked["id"]] = linked
        return dict(linked)

    # ------------------------------------------------------------------------------ the app's components

    def call_app(
        self,
        path: str,
        method: str = "GET",
        body: Any = None,
        query: dict[str, str] | None = None,
        *,
        app: str | None = None,
    ) -> http.Response:
        """Call the app as Sentry calls its UI components: `path` on the host of the app's webhook URL,
        `Sentry-App-Signature` over the exact body (the empty string when there is none, as for GETs)."""
        with self._lock:
            chosen = self._apps[app] if app else self._only_app()
        parts = urlsplit(chosen.webhook_url)
        url = f"{parts.scheme}://{parts.netloc}{path}"
        if not is_loopback(url):
            raise ValueError(f"the fake calls only loopback addresses, not {url}")
        raw = "" if body is None else dumps(body)
        headers = {
            "Content-Type": "application/json",
            "Request-ID": uuid.uuid4().hex,
            "Sentry-App-Signature": sign(chosen.client_secret, raw),
        }
        return self._http.request(
            method,
            url,
            params=query,
            data=raw.encode() if body is not None else None,
            headers=headers,
            timeout=self.component_timeout,
            allow_redirects=False,
        )

    def _only_app(self) -> App:
        if len(self._apps) != 1:
            raise ValueError("name the app: the fake has " + (", ".join(self._apps) or "no apps"))
        return next(iter(self._apps.values()))

    def link_issue(
        self,
        installation_uuid: str,
        issue_id: str | int,
        uri: str,
        fields: dict[str, Any],
        *,
        by_user: str | int,
        action: str = "create",
    ) -> http.Response:
        """A person submitting the issue-link form (`action` create or link): Sentry's body to `uri`; when the
        answer is `{webUrl, project, identifier}` (strings), the link is recorded on the issue as Sentry does."""
        with self._lock:
            install = self._installations[installation_uuid]
            org = self._org(install.org)
            issue = org.issues[str(issue_id)]
            actor = self._user_actor(org, by_user)
            body = {
                "fields": dict(fields),
                "issueId": int(issue.id) if issue.id.isdigit() else issue.id,
                "installationId": install.uuid,
                "webUrl": self._permalink(org, issue),
                "project": {"slug": issue.project, "id": int(org.projects[issue.project])},
                "actor": {"type": "user", "id": actor["id"], "name": actor["name"]},
            }
        answer = self.call_app(uri, "POST", body, app=install.app.slug)
        try:
            result = answer.json()
        except ValueError:
            result = None
        if (
            200 <= answer.status_code < 300
            and isinstance(result, dict)
            and all(isinstance(result.get(k), str) for k in ("webUrl", "project", "identifier"))
        ):
            with self._lock:
                self._link_external(install, issue, result["webUrl"], result["project"], result["identifier"])
        return answer

    def select_options(
        self,
        installation_uuid: str,
        uri: str,
        *,
        query: str | None = None,
        dependent_data: dict[str, Any] | None = None,
        project_slug: str | None = None,
    ) -> http.Response:
        """A select field loading its options: GET `uri` with installationId, projectSlug, query and
        dependentData (JSON), signed over the empty string."""
        with self._lock:
            install = self._installations[installation_uuid]
        params = {"installationId": install.uuid}
        if project_slug:
            params["projectSlug"] = project_slug
        if query:
            params["query"] = query
        if dependent_data:
            params["dependentData"] = json.dumps(dependent_data)
        return self.call_app(uri, "GET", query=params, app=install.app.slug)
