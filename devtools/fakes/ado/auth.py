"""Credentials (PATs, OAuth refresh and access tokens, Entra access tokens), how organization requests are
authenticated, and the two anonymous endpoints: the account (resource area) lookup and the OAuth token."""

from __future__ import annotations

import base64
import secrets
import uuid

from werkzeug.wrappers import Request, Response

from devtools.fakes.ado.data import DEFAULT_CALLER, Org, Store
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
        # Whom each credential acts as ("Display <email>"): "pat:<token>", "bearer:<token>", "refresh:<token>".
        self._credential_identities: dict[str, str] = {}

    # ---------------------------------------------------------------------------------------- set-up

    def add_pat(self, org: str, token: str, *, identity: str | None = None) -> None:
        """A PAT of the organization. `identity` ('Display Name <email>') is whom its changes are made by
        (`System.ChangedBy`, a delivery's `revisedBy`); default DEFAULT_CALLER."""
        with self._lock:
            self._org(org).pats.add(token)
            self._remember_identity(f"pat:{token}", identity)

    def remove_pat(self, org: str, token: str) -> None:
        """Revoke a PAT: requests with it are then refused."""
        with self._lock:
            self._org(org).pats.discard(token)

    def add_refresh_token(self, org: str, refresh_token: str, *, identity: str | None = None) -> None:
        """An OAuth refresh token; the tokens it is exchanged for act as `identity` (as add_pat)."""
        with self._lock:
            self._refresh_tokens[refresh_token] = self._org(org).key
            self._remember_identity(f"refresh:{refresh_token}", identity)

    def add_access_token(self, org: str, token: str, *, identity: str | None = None) -> None:
        """A Bearer token valid for the organization (an OAuth or Entra access token), acting as `identity`."""
        with self._lock:
            self._access_tokens[token] = self._org(org).key
            self._remember_identity(f"bearer:{token}", identity)

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
        return self._credential(request, org) is not None

    def _credential(self, request: Request, org: Org) -> str | None:
        """The request's valid credential for this organization ("pat:<token>" or "bearer:<token>"), else None."""
        scheme, _, value = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "basic":
            try:
                decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
            except (ValueError, UnicodeDecodeError):
                return None
            _, sep, token = decoded.partition(":")  # any user name; the PAT is the password
            return f"pat:{token}" if sep and token in org.pats else None
        if scheme.lower() == "bearer" and self._access_tokens.get(value.strip()) == org.key:
            return f"bearer:{value.strip()}"
        return None

    def _caller(self, request: Request, org: Org) -> str:
        """Whom an authorized request acts as: 'Display Name <email>'. Call it holding the lock."""
        credential = self._credential(request, org)
        return self._credential_identities.get(credential or "", DEFAULT_CALLER)

    def _remember_identity(self, credential: str, identity: str | None) -> None:
        if identity is not None:
            self._credential_identities[credential] = identity

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

    def _handle_connection_data(self, request: Request, org: Org, **_: object) -> Response:
        """Who the credential is, and the host: `instanceId` is the organization's collection id (what the setup
        page takes as the integration's key). The shape is the one Azure DevOps' clients read (authenticatedUser,
        instanceId, deploymentType, locationServiceData); the exact identity ids are made up."""
        with self._lock:
            caller = self._caller(request, org)
            url = self.org_url(org.name)
        display, _, email = caller.partition(" <")
        user = {
            "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"identity:{email.rstrip('>').lower()}")),
            "providerDisplayName": display,
            "isActive": True,
            "properties": {"Account": {"$type": "System.String", "$value": email.rstrip(">")}},
        }
        return json_response(
            {
                "authenticatedUser": user,
                "authorizedUser": user,
                "instanceId": org.host_id,
                "deploymentId": str(uuid.uuid5(uuid.NAMESPACE_URL, f"deployment:{org.host_id.lower()}")),
                "deploymentType": "hosted",
                "locationServiceData": {
                    "serviceOwner": "00025394-6065-48ca-87d9-7f5672854ef7",
                    "defaultAccessMappingMoniker": "PublicAccessMapping",
                    "accessMappings": [
                        {"displayName": "Public Access Mapping", "moniker": "PublicAccessMapping", "accessPoint": url}
                    ],
                },
            }
        )

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
            used = form.get("assertion", "")
            org_key = self._refresh_tokens.pop(used, None)  # used once: Azure DevOps rotates
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
            identity = self._credential_identities.pop(f"refresh:{used}", None)
            self._remember_identity(f"bearer:{access_token}", identity)
            self._remember_identity(f"refresh:{refresh_token}", identity)
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
