"""Credentials (PATs, OAuth refresh and access tokens, Entra access tokens), how organization requests are
authenticated, and the two anonymous endpoints: the account (resource area) lookup and the OAuth token."""

from __future__ import annotations

import base64
import secrets

from werkzeug.wrappers import Request, Response

from devtools.fakes.ado.data import Org, Store
from devtools.fakes.ado.protocol import arg, error, json_response

CORE_AREA_ID = "79134c72-4a58-4b42-976c-04e7115f32bf"
# Resource areas the lookup knows; all resolve to the organization URL because the fake serves every area.
RESOURCE_AREAS = {
    CORE_AREA_ID: "Core",
    "5264459e-e5e0-4bd8-b118-0985e68a4ec5": "wit",
    "ea48a0a1-269c-42d8-b8ad-ddc8fcdcf578": "Search",
}
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
SIGN_IN_PAGE = (
    b"<!DOCTYPE html>\n<html><head><title>Azure DevOps Services | Sign In</title></head>"
    b'<body><form method="post" action="/_signin"><p>Sign in to continue to Azure DevOps.</p></form></body></html>\n'
)


class Auth(Store):
    """Mixin of FakeAzureDevOps: credentials and the anonymous endpoints."""

    client_secret: str
    redirect_uri: str | None

    def __init__(self) -> None:
        super().__init__()
        self._access_tokens: dict[str, str] = {}  # token -> org key
        self._refresh_tokens: dict[str, str] = {}  # token -> org key
        self._refresh_count = 0

    # ---------------------------------------------------------------------------------------- set-up

    def add_pat(self, org: str, token: str) -> None:
        with self._lock:
            self._org(org).pats.add(token)

    def remove_pat(self, org: str, token: str) -> None:
        """Revoke a PAT: requests with it are then refused."""
        with self._lock:
            self._org(org).pats.discard(token)

    def add_refresh_token(self, org: str, refresh_token: str) -> None:
        with self._lock:
            self._refresh_tokens[refresh_token] = self._org(org).key

    def add_access_token(self, org: str, token: str) -> None:
        """A Bearer token valid for the organization (an OAuth or Entra access token)."""
        with self._lock:
            self._access_tokens[token] = self._org(org).key

    def expire_access_token(self, token: str) -> None:
        with self._lock:
            self._access_tokens.pop(token, None)

    @property
    def refresh_count(self) -> int:
        """Successful OAuth refreshes so far."""
        with self._lock:
            return self._refresh_count

    # ------------------------------------------------------------------------------- authentication

    def _authorized(self, request: Request, org: Org) -> bool:
        scheme, _, value = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "basic":
            try:
                decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
            except (ValueError, UnicodeDecodeError):
                return False
            _, sep, token = decoded.partition(":")  # any user name; the PAT is the password
            return bool(sep) and token in org.pats
        if scheme.lower() == "bearer":
            return self._access_tokens.get(value.strip()) == org.key
        return False

    def _unauthorized(self, request: Request) -> Response:
        """401 when the client suppressed the sign-in redirect, else Azure DevOps' 203 HTML sign-in page."""
        if request.headers.get("X-TFS-FedAuthRedirect", "").strip().lower() == "suppress":
            return error(
                401,
                "TF400813: The user '' is not authorized to access this resource.",
                "UnauthorizedRequestException",
                type_name=(
                    "Microsoft.TeamFoundation.Framework.Server.UnauthorizedRequestException, "
                    "Microsoft.TeamFoundation.Framework.Server"
                ),
                headers={"WWW-Authenticate": f'Bearer, Basic realm="{self.base_url}/"'},
            )
        return Response(SIGN_IN_PAGE, status=203, content_type="text/html; charset=utf-8")

    # ---------------------------------------------------------------------------- anonymous endpoints

    def _handle_resource_area(self, request: Request, area_id: str) -> Response:
        host_id = arg(request, "hostId")
        account_name = arg(request, "accountName")
        name = RESOURCE_AREAS.get(area_id.lower())
        with self._lock:
            org: Org | None = None
            if host_id:
                org = next(
                    (o for o in self._orgs.values() if host_id.lower() in (o.host_id.lower(), o.account_id.lower())),
                    None,
                )
            elif account_name:
                org = self._orgs.get(account_name.lower())
            if name is None or org is None:
                return error(404, f"No resource area {area_id} was found for this host.", "ResourceAreaNotFound")
            location = org.location_url or self.org_url(org.name).rstrip("/")
        return json_response({"id": area_id, "name": name, "locationUrl": location})

    def _handle_token(self, request: Request) -> Response:
        if request.mimetype != "application/x-www-form-urlencoded":
            return json_response({"Error": "invalid_request", "ErrorDescription": "Send a form body."}, 400)
        form = request.form
        if form.get("client_assertion_type") != JWT_BEARER:
            return json_response({"Error": "invalid_request", "ErrorDescription": "Bad client_assertion_type."}, 400)
        if not secrets.compare_digest(form.get("client_assertion", ""), self.client_secret):
            return json_response({"Error": "invalid_client"}, 401)
        if form.get("grant_type") != "refresh_token":
            return json_response({"Error": "unsupported_grant_type"}, 400)
        if self.redirect_uri is not None and form.get("redirect_uri") != self.redirect_uri:
            return json_response({"Error": "invalid_request", "ErrorDescription": "redirect_uri mismatch."}, 400)
        with self._lock:
            org_key = self._refresh_tokens.pop(form.get("assertion", ""), None)  # used once: Azure DevOps rotates
            if org_key is None:
                return json_response(
                    {
                        "Error": "invalid_grant",
                        "ErrorDescription": "The refresh token is invalid, expired or has already been used.",
                    },
                    400,
                )
            access_token = f"fake-access-{secrets.token_hex(16)}"
            refresh_token = f"fake-refresh-{secrets.token_hex(16)}"
            self._access_tokens[access_token] = org_key
            self._refresh_tokens[refresh_token] = org_key
            self._refresh_count += 1
        return json_response(
            {
                "access_token": access_token,
                "token_type": "jwt-bearer",
                "expires_in": "3599",  # a string, as Azure DevOps answers it
                "refresh_token": refresh_token,
                "scope": "vso.work",
            }
        )
