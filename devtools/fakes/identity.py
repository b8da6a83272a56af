"""A loopback fake of App Service's managed identity endpoint (what `IDENTITY_ENDPOINT` and `IDENTITY_HEADER` name
on App Service and Flex Consumption), minting tokens that Azurite's `--oauth basic` accepts.

The protocol, from Microsoft's "Managed identities for App Service" (REST endpoint reference): `GET
IDENTITY_ENDPOINT?api-version=2019-08-01&resource=<resource>[&client_id=<id>]` with the header
`X-IDENTITY-HEADER: <IDENTITY_HEADER>`; the answer is JSON with `access_token`, `expires_on` (epoch seconds, as
text), `resource`, `token_type` ("Bearer") and `client_id`. A request without the right header, with another
api-version, without a resource, or for a client id that is not one of the app's identities is refused (400/401).

The token is a JWT whose claims are those Entra ID issues for a managed identity (`aud` = the resource, `iss`
= `https://sts.windows.net/<tenant>/`, `iat`, `nbf`, `exp`, `oid`, `tid`, `appid`). Its signature is not a real
one: Azurite's basic OAuth checks audience, issuer and lifetime only (azurite 3.35
`TableTokenAuthenticator.authenticateBasic`), as this fake's tests show. `audience` and `token_lifetime` let a
test hand out a token for the wrong audience or one that has already expired.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
import uuid
from typing import Any

from werkzeug.wrappers import Request, Response

from devtools.fakes.http import LoopbackServer

API_VERSION = "2019-08-01"
ISSUER_PREFIX = "https://sts.windows.net/"


def _segment(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data, separators=(",", ":")).encode()).rstrip(b"=").decode()


def decode_claims(token: str) -> dict[str, Any]:
    """The claims of a JWT (not verified)."""
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


class FakeManagedIdentity(LoopbackServer):
    thread_name = "fake-identity"

    def __init__(self, client_ids: tuple[str, ...] = ()) -> None:
        super().__init__()
        self._lock = threading.RLock()
        self.header_secret = secrets.token_urlsafe(16)
        self.tenant = str(uuid.uuid4())
        self.system_assigned = str(uuid.uuid4())
        self.user_assigned = set(client_ids)
        self.audience: str | None = None  # None: the resource asked for
        self.token_lifetime = 3600.0  # seconds; negative: the JWT has already expired when it is handed out
        self.issued: list[dict[str, Any]] = []  # the claims of every token handed out

    def environment(self) -> dict[str, str]:
        """The variables App Service sets for an app with a managed identity."""
        return {"IDENTITY_ENDPOINT": f"{self.base_url}/msi/token", "IDENTITY_HEADER": self.header_secret}

    def _dispatch(self, request: Request) -> Response:
        if request.method != "GET" or request.path != "/msi/token":
            return self._error(404, "not_found", "No such endpoint.")
        if request.headers.get("X-IDENTITY-HEADER") != self.header_secret:
            return self._error(401, "unauthorized", "The X-IDENTITY-HEADER header is missing or wrong.")
        if request.args.get("api-version") != API_VERSION:
            return self._error(400, "invalid_request", f"api-version must be {API_VERSION}.")
        resource = request.args.get("resource", "")
        if not resource:
            return self._error(400, "invalid_request", "resource is required.")
        client_id = request.args.get("client_id") or self.system_assigned
        if client_id != self.system_assigned and client_id not in self.user_assigned:
            return self._error(
                400, "invalid_request", "No managed identity with this client_id is assigned to the app."
            )
        now = int(time.time())
        with self._lock:
            expires = now + int(self.token_lifetime)
            claims = {
                "aud": self.audience or resource.removesuffix("/.default"),
                "iss": f"{ISSUER_PREFIX}{self.tenant}/",
                "iat": now - 60,
                "nbf": now - 60,
                "exp": expires,
                "appid": client_id,
                "oid": str(uuid.uuid5(uuid.NAMESPACE_URL, client_id)),
                "sub": str(uuid.uuid5(uuid.NAMESPACE_URL, client_id)),
                "tid": self.tenant,
                "ver": "1.0",
            }
            self.issued.append(claims)
        token = ".".join([_segment({"typ": "JWT", "alg": "RS256"}), _segment(claims), secrets.token_urlsafe(32)])
        body = {
            "access_token": token,
            # What the endpoint says about the token, which a client trusts; a long one here so that a client does
            # not ask again at once for a JWT that has expired on purpose.
            "expires_on": str(max(expires, now + 3600)),
            "resource": resource,
            "token_type": "Bearer",
            "client_id": client_id,
        }
        return Response(json.dumps(body), status=200, content_type="application/json")

    @staticmethod
    def _error(status: int, code: str, description: str) -> Response:
        body = json.dumps({"error": code, "error_description": description})
        return Response(body, status=status, content_type="application/json")

    def _internal_error(self, exc: Exception) -> Response:
        return self._error(500, "server_error", f"{type(exc).__name__}: {exc}")
