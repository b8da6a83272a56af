"""A loopback fake of Microsoft Entra ID's v2.0 endpoints a service principal's client-credentials sign-in uses, on
https (azure-identity accepts no other authority), so the app's `entra` credentials are tested end to end:
the app is pointed at it with `AZURE_AUTHORITY_HOST` (azure-identity's own setting) and trusts its self-signed
certificate through `REQUESTS_CA_BUNDLE` (`settings_env()`), as it would a private cloud's.

- `GET /{tenant}/v2.0/.well-known/openid-configuration`: the tenant's endpoints (MSAL reads `token_endpoint`
  and checks `issuer`); an unknown tenant is 400 `invalid_tenant` AADSTS90002.
- `POST /{tenant}/oauth2/v2.0/token`: strict about its form (application/x-www-form-urlencoded): `grant_type`
  must be `client_credentials`, `client_id`, `client_secret` and `scope` are required, `scope` must be one
  `{resource}/.default`, and nothing else may be sent but what MSAL adds (`client_info`, `claims`). Errors are
  Entra's: AADSTS700016 (no such application in the tenant, 400 `unauthorized_client`), AADSTS7000215 (wrong
  secret, 401 `invalid_client`), AADSTS1002012 / AADSTS70011 (scope), AADSTS900144 (a missing field),
  AADSTS70003 (grant type). Facts: Microsoft identity platform docs, "OAuth 2.0 client credentials flow".

Tests register applications (`add_app`), each with the access token it is given (so the fake Azure DevOps can be
told to accept it), and read what was asked (`requests`, `token_requests`).
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import secrets
import tempfile
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from werkzeug.wrappers import Request, Response

from devtools.fakes.http import LoopbackServer

ALLOWED_FIELDS = {"grant_type", "client_id", "client_secret", "scope", "client_info", "claims"}
REQUIRED_FIELDS = ("grant_type", "client_id", "client_secret", "scope")


@dataclass
class App:
    tenant: str
    client_id: str
    secret: str
    access_token: str


def _error(status: int, error: str, code: int, description: str) -> Response:
    body = {
        "error": error,
        "error_description": f"AADSTS{code}: {description} Trace ID: {uuid.uuid4()} Correlation ID: {uuid.uuid4()}",
        "error_codes": [code],
        "timestamp": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M:%SZ"),
        "trace_id": str(uuid.uuid4()),
        "correlation_id": str(uuid.uuid4()),
    }
    return Response(json.dumps(body), status=status, content_type="application/json; charset=utf-8")


def _self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 (its own CA), and its key, written to `directory`."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fake-entra 127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "fake-entra.pem", directory / "fake-entra.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


class FakeEntra(LoopbackServer):
    """Microsoft Entra ID's token endpoint for service principals, on https://127.0.0.1."""

    thread_name = "fake-entra"

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.RLock()
        self._apps: dict[tuple[str, str], App] = {}
        self._tenants: set[str] = set()
        self._directory = tempfile.TemporaryDirectory(prefix="fake-entra-")
        self.ca_bundle, self._key = _self_signed(Path(self._directory.name))

    def _ssl_context(self) -> Any:
        return (str(self.ca_bundle), str(self._key))

    def _closed(self) -> None:
        self._directory.cleanup()

    def settings_env(self) -> dict[str, str]:
        """What points the app's service principals here, and makes it trust this fake's certificate."""
        return {"AZURE_AUTHORITY_HOST": self.base_url, "REQUESTS_CA_BUNDLE": str(self.ca_bundle)}

    def add_app(self, tenant: str, client_id: str, secret: str, access_token: str | None = None) -> str:
        """A service principal of `tenant`; returns the access token its sign-ins get."""
        token = access_token or f"fake-entra-{secrets.token_hex(16)}"
        with self._lock:
            self._tenants.add(tenant.lower())
            self._apps[(tenant.lower(), client_id.lower())] = App(tenant, client_id, secret, token)
        return token

    def token_requests(self) -> list[dict[str, list[str]]]:
        """The form of each token request received, in order."""
        from urllib.parse import parse_qs

        return [
            parse_qs(r.body.decode(), keep_blank_values=True)
            for r in self.requests
            if r.method == "POST" and r.path.endswith("/oauth2/v2.0/token")
        ]

    def _internal_error(self, exc: Exception) -> Response:
        return _error(500, "server_error", 90033, f"The fake failed: {type(exc).__name__}: {exc}")

    def _dispatch(self, request: Request) -> Response:
        parts = [p for p in request.path.split("/") if p]
        if len(parts) == 4 and parts[1:] == ["v2.0", ".well-known", "openid-configuration"]:
            if request.method != "GET":
                return _error(405, "invalid_request", 900561, "The endpoint only accepts GET requests.")
            return self._configuration(parts[0])
        if len(parts) == 4 and parts[1:] == ["oauth2", "v2.0", "token"]:
            if request.method != "POST":
                return _error(405, "invalid_request", 900561, "The endpoint only accepts POST requests.")
            return self._token(request, parts[0])
        return _error(404, "invalid_request", 900023, f"The path {request.path} is not an Entra ID endpoint.")

    def _known_tenant(self, tenant: str) -> bool:
        with self._lock:
            return tenant.lower() in self._tenants

    def _configuration(self, tenant: str) -> Response:
        if not self._known_tenant(tenant):
            return _error(400, "invalid_tenant", 90002, f"Tenant '{tenant}' not found.")
        base = f"{self.base_url}/{tenant}"
        body = {
            "token_endpoint": f"{base}/oauth2/v2.0/token",
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
            "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
            "issuer": f"{base}/v2.0",
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "tenant_region_scope": "EU",
        }
        return Response(json.dumps(body), content_type="application/json; charset=utf-8")

    def _token(self, request: Request, tenant: str) -> Response:
        if request.mimetype != "application/x-www-form-urlencoded":
            return _error(400, "invalid_request", 900144, "The request body must contain the parameter 'grant_type'.")
        form = request.form
        unknown = sorted(set(form) - ALLOWED_FIELDS)
        if unknown:
            return _error(400, "invalid_request", 900144, f"The request body has unexpected parameters: {unknown}.")
        if any(len(form.getlist(field)) > 1 for field in form):
            return _error(400, "invalid_request", 90014, "A parameter was sent twice.")
        for field in REQUIRED_FIELDS:
            if not form.get(field):
                return _error(400, "invalid_request", 900144, f"The request body must contain the parameter '{field}'.")
        if form["grant_type"] != "client_credentials":
            return _error(400, "unsupported_grant_type", 70003, "The app requested an unsupported grant type.")
        if not self._known_tenant(tenant):
            return _error(400, "invalid_request", 90002, f"Tenant '{tenant}' not found.")
        scopes = form["scope"].split()
        if len(scopes) != 1 or not scopes[0].endswith("/.default"):
            return _error(400, "invalid_scope", 1002012, f"The provided value for scope {form['scope']} is not valid.")
        with self._lock:
            app = self._apps.get((tenant.lower(), form["client_id"].lower()))
        if app is None:
            return _error(
                400,
                "unauthorized_client",
                700016,
                f"Application with identifier '{form['client_id']}' was not found in the directory '{tenant}'.",
            )
        if not secrets.compare_digest(form["client_secret"], app.secret):
            return _error(
                401, "invalid_client", 7000215, f"Invalid client secret provided for app '{form['client_id']}'."
            )
        body = {"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": app.access_token}
        return Response(json.dumps(body), content_type="application/json; charset=utf-8")
