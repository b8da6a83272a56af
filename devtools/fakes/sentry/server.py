"""The fake's HTTP server: `FakeSentry` (on 127.0.0.1, a free port), its routes, and the dispatch from a request
to an endpoint: organization endpoints check the bearer token, its organization and its app's scopes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.routing import Map, RequestRedirect, Rule
from werkzeug.wrappers import Request, Response

from devtools.fakes.http import LoopbackServer
from devtools.fakes.sentry.alerts import Alerts
from devtools.fakes.sentry.data import SYSTEM, TOKEN_LIFETIME, Clock, Token, has_any_scope
from devtools.fakes.sentry.protocol import NO_PERMISSION, NOT_FOUND, detail

INSTALLATION = "/api/0/sentry-app-installations/<installation_uuid>/"
# The scopes each endpoint's permission class accepts per method: the token needs one of them, else 403
# (`ScopedPermission.has_permission`). From getsentry/sentry: `GroupPermission` (src/sentry/api/bases/group.py)
# for the organization's issue; `MemberPermission` (api/bases/organization_member.py) for the members list;
# `SentryAppInstallationExternalIssuePermission` (sentry_apps/api/bases/sentryapps.py): POST any event scope,
# DELETE only `event:admin`; `SentryAppInstallationPermission.has_permission` lets an app's own token PUT its
# installation whatever its scopes (empty tuple: no scope asked). The token exchange authenticates with the
# client id and secret instead (None).
SCOPES: dict[str, dict[str, tuple[str, ...]] | None] = {
    "authorizations": None,
    "installation": {"PUT": ()},
    "external_issues": {"POST": ("event:read", "event:write", "event:admin")},
    "external_issue": {"DELETE": ("event:admin",)},
    "issue": {"GET": ("event:read", "event:write", "event:admin"), "PUT": ("event:write", "event:admin")},
    "members": {"GET": ("member:read", "member:write", "member:admin")},
    # GroupPermission again: GET any event scope, POST/PUT event:write or event:admin, DELETE event:admin only.
    "notes": {"GET": ("event:read", "event:write", "event:admin"), "POST": ("event:write", "event:admin")},
    "note": {"PUT": ("event:write", "event:admin"), "DELETE": ("event:admin",)},
}
ORG_ENDPOINTS = frozenset({"issue", "members", "notes", "note"})


class FakeSentry(LoopbackServer, Alerts):
    """Sentry on 127.0.0.1: Sentry Apps and their installations, tokens, issues, comments, members, external
    issues, webhooks, and the app's UI components called as Sentry calls them."""

    thread_name = "fake-sentry"

    def __init__(self, *, clock: Clock = SYSTEM, token_lifetime: float = TOKEN_LIFETIME) -> None:
        super().__init__()
        self.clock = clock
        self.token_lifetime = token_lifetime
        self._down = False
        self._map = Map(
            [
                Rule(f"{INSTALLATION}authorizations/", endpoint="authorizations", methods=["POST"]),
                Rule(INSTALLATION, endpoint="installation", methods=["PUT"]),
                Rule(f"{INSTALLATION}external-issues/", endpoint="external_issues", methods=["POST"]),
                Rule(f"{INSTALLATION}external-issues/<external_id>/", endpoint="external_issue", methods=["DELETE"]),
                Rule("/api/0/organizations/<org>/issues/<issue_id>/", endpoint="issue", methods=["GET", "PUT"]),
                Rule("/api/0/organizations/<org>/members/", endpoint="members", methods=["GET"]),
                # Sentry's urls.py routes both `notes` and `comments` to the group notes endpoints.
                Rule(
                    "/api/0/organizations/<org>/issues/<issue_id>/<any(notes,comments):_kind>/",
                    endpoint="notes",
                    methods=["GET", "POST"],
                ),
                Rule(
                    "/api/0/organizations/<org>/issues/<issue_id>/<any(notes,comments):_kind>/<note_id>/",
                    endpoint="note",
                    methods=["PUT", "DELETE"],
                ),
            ],
            merge_slashes=False,
        )

    def _closed(self) -> None:
        self._stop_sender()
        self._http.close()

    def settings_env(self, app_slug: str | None = None) -> dict[str, str]:
        """The app settings that point the app at this fake, as the given (or only) Sentry App."""
        with self._lock:
            app = self._apps[app_slug] if app_slug else self._only_app()
        return {
            "SENTRY_URL": self.base_url,
            "SENTRY_CLIENT_ID": app.client_id,
            "SENTRY_CLIENT_SECRET": app.client_secret,
        }

    def reset_log(self) -> None:
        """Forget recorded requests and webhooks."""
        with self._lock:
            self._log.clear()
            self._webhooks.clear()

    # ------------------------------------------------------------------------------------------- faults

    def set_down(self, down: bool = True) -> None:
        """Sentry down: every API request gets a 503 (webhooks from set-up methods still go)."""
        with self._lock:
            self._down = down

    def rate_limit_next(self, method: str, path_regex: str, *, count: int = 1, reset_in: int = 1) -> None:
        """The next matching requests get Sentry's 429: its documented X-Sentry-Rate-Limit-* headers (Reset in
        epoch seconds) and no Retry-After (for that, use fail_next with headers)."""
        reset = int(self.clock.now()) + reset_in
        headers = {
            "X-Sentry-Rate-Limit-Limit": "40",
            "X-Sentry-Rate-Limit-Remaining": "0",
            "X-Sentry-Rate-Limit-Reset": str(reset),
            "X-Sentry-Rate-Limit-ConcurrentLimit": "25",
            "X-Sentry-Rate-Limit-ConcurrentRemaining": "24",
            "Content-Type": "application/json",
        }
        message = "You are attempting to use this endpoint too frequently. Limit is 40 requests in 1 seconds"
        self.fail_next(method, path_regex, 429, headers=headers, body={"detail": message}, count=count)

    # ----------------------------------------------------------------------------------------------- HTTP

    def _internal_error(self, exc: Exception) -> Response:
        return detail(500, f"fake Sentry failed: {type(exc).__name__}: {exc}")

    def _dispatch(self, request: Request) -> Response:
        with self._lock:
            down = self._down
        if down:
            return Response("<h1>503 Service Unavailable</h1>", status=503, content_type="text/html")
        adapter = self._map.bind("sentry.fake")
        try:
            rule, args = adapter.match(request.path, method=request.method, return_rule=True)
        except RequestRedirect:
            return detail(404, f"{NOT_FOUND}: Sentry's API paths end with a slash")
        except MethodNotAllowed:
            return detail(405, f'Method "{request.method}" not allowed.')
        except NotFound:
            return detail(404, NOT_FOUND)
        handler = getattr(self, f"_handle_{rule.endpoint}")
        by_method = SCOPES[rule.endpoint]
        if by_method is None:
            return handler(request, **args)  # the token exchange authenticates with the client id and secret
        with self._lock:
            token = self._authenticate(request)  # 401: no token, an unknown or expired one
            if not self._permitted(token, by_method[request.method]):
                return detail(403, NO_PERMISSION)
        if rule.endpoint in ORG_ENDPOINTS:
            return self._org_request(request, handler, args, token)
        return handler(request, **args)

    def _permitted(self, token: Token, allowed: tuple[str, ...]) -> bool:
        """The token holds one of the `allowed` scopes (none asked: any token of an app passes)."""
        return not allowed or has_any_scope(token.installation.scopes, allowed)

    def _org_request(
        self, request: Request, handler: Callable[..., Response], args: dict[str, Any], token: Token
    ) -> Response:
        """The organization (404), then the token's right to it (403): an installation's token is its
        organization's only."""
        with self._lock:
            org = self._find_org(str(args.pop("org")))
            if org is None:
                return detail(404, NOT_FOUND)
            if token.installation.org != org.slug:
                return detail(403, NO_PERMISSION)
        return handler(request, token=token, org=org, **args)
