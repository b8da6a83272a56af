"""The fake's HTTP server: `FakeSentry` (on 127.0.0.1, a free port), its routes, and the dispatch from a request
to an endpoint: organization endpoints check the bearer token, its organization and its app's scopes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.routing import Map, RequestRedirect, Rule
from werkzeug.wrappers import Request, Response

from devtools.fakes.http import LoopbackServer
from devtools.fakes.sentry.data import TOKEN_LIFETIME, has_scope
from devtools.fakes.sentry.issues import Issues
from devtools.fakes.sentry.protocol import NO_PERMISSION, NOT_FOUND, detail
from shared.clock import SYSTEM, Clock

INSTALLATION = "/api/0/sentry-app-installations/<installation_uuid>/"
# Organization endpoints and the scope each method needs (a higher level of the same resource also does).
ORG_SCOPES: dict[str, dict[str, str]] = {
    "issue": {"GET": "event:read", "PUT": "event:write"},
    "members": {"GET": "member:read"},
}


class FakeSentry(LoopbackServer, Issues):
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
        scopes = ORG_SCOPES.get(rule.endpoint)
        if scopes is None:
            return handler(request, **args)  # installation endpoints authenticate for themselves
        return self._org_request(request, handler, args, scopes[request.method])

    def _org_request(
        self, request: Request, handler: Callable[..., Response], args: dict[str, Any], scope: str
    ) -> Response:
        """Authentication (401), the organization (404), then the token's right to it and the scope (403)."""
        with self._lock:
            token = self._authenticate(request)
            org = self._find_org(str(args.pop("org")))
            if org is None:
                return detail(404, NOT_FOUND)
            if token.installation.org != org.slug or not has_scope(token.installation.app.scopes, scope):
                return detail(403, NO_PERMISSION)
        return handler(request, token=token, org=org, **args)
