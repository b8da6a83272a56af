"""Optional telemetry (shared/telemetry.py): nothing of OpenTelemetry is imported without
`APPLICATIONINSIGHTS_CONNECTION_STRING`; with it, one request through the local host reaches a fake Application
Insights ingestion endpoint on loopback, as the invocation's span and its storage and Azure DevOps calls, with no
secret in what was sent.

Each case runs the app in a fresh interpreter: telemetry configures process-wide state (the tracer provider, the
instrumented `requests`), which must not leak into the other tests.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from shared import telemetry

pytestmark = pytest.mark.usefixtures("azurite")

ROOT = Path(__file__).resolve().parent.parent
FUNCTION_KEY = "fk-SECRET-0123456789"
BEARER = "bearer-SECRET-abcdef"
PAT = "pat-SECRET-ghijkl"
QUERY_SECRET = "query-SECRET-mnopqr"
# The request the app serves, then one Azure DevOps request (a PAT, a secret in the query) to a loopback origin.
SCRIPT = f"""
import json, sys
sys.path.insert(0, {str(ROOT)!r})
from pathlib import Path
from werkzeug.test import Client
from devhost.host import FunctionHost

if sys.argv[3] == "worker":  # what the Python worker does at its start with PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY
    from azure.monitor.opentelemetry import configure_azure_monitor
    configure_azure_monitor()
host = FunctionHost(Path({str(ROOT)!r}))
answer = Client(host).get(
    "/api/health?code={FUNCTION_KEY}",
    headers={{"Authorization": "Bearer {BEARER}", "x-functions-key": "{FUNCTION_KEY}"}},
)
origin = sys.argv[1]
if origin:
    import base64
    from shared.ado.client import send
    send("GET", origin + "/org/_apis/projects", params={{"continuationToken": "{QUERY_SECRET}"}},
         authorization="Basic " + base64.b64encode(b":{PAT}").decode(), allowed_origins=[origin], timeout=5)
if sys.argv[2] == "flush":
    from opentelemetry import trace
    trace.get_tracer_provider().force_flush()
print(json.dumps({{
    "status": answer.status_code,
    "modules": sorted(m for m in sys.modules if m.split(".")[0] == "opentelemetry" or m.startswith("azure.monitor")),
}}))
"""


class FakeIngestion(ThreadingHTTPServer):
    """Application Insights' ingestion endpoint (`POST /v2.1/track`, a JSON array of envelopes, maybe gzipped),
    answering as the service does; any GET answers `{}` (it stands for the Azure DevOps origin here)."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.bodies: list[bytes] = []
        self.envelopes: list[dict] = []
        self.lock = threading.Lock()

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: FakeIngestion

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = gzip.decompress(raw) if self.headers.get("Content-Encoding") == "gzip" else raw
        received = 0
        if self.path.startswith("/v2.1/track"):
            items = json.loads(body)
            received = len(items)
            with self.server.lock:
                self.server.bodies.append(body)
                self.server.envelopes.extend(items)
        self._json({"itemsReceived": received, "itemsAccepted": received, "errors": []})

    def do_GET(self) -> None:
        self._json({"count": 0, "value": []})

    def _json(self, value: dict) -> None:
        data = json.dumps(value).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def ingestion() -> Iterator[FakeIngestion]:
    server = FakeIngestion()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _run_app(env: dict[str, str], origin: str = "", flush: bool = False, worker: bool = False) -> dict:
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, origin, "flush" if flush else "", "worker" if worker else ""],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def _env_without_telemetry() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("APPLICATIONINSIGHTS_", "PYTHON_APPLICATIONINS"))}


def test_without_the_setting_no_telemetry_module_is_imported() -> None:
    outcome = _run_app(_env_without_telemetry())
    assert outcome["status"] == 200
    assert outcome["modules"] == []


@pytest.mark.parametrize("configured_by", ["app", "worker"])
def test_a_request_reaches_application_insights_with_no_secret(
    ingestion: FakeIngestion, tmp_path: Path, configured_by: str
) -> None:
    """Configured by the app on first use, or by the Python worker at its start (then the app only adds its
    scrubbing, and configures nothing twice: one request span, one span per call)."""
    env = _env_without_telemetry()
    if configured_by == "worker":
        env[telemetry.WORKER_SETTING] = "true"
    env[telemetry.CONNECTION_SETTING] = (
        "InstrumentationKey=00000000-0000-0000-0000-000000000000;"
        f"IngestionEndpoint={ingestion.origin}/;LiveEndpoint={ingestion.origin}/"
    )
    env["APPLICATIONINSIGHTS_STATSBEAT_DISABLED_ALL"] = "true"  # the SDK's own usage reports go to Microsoft
    # Every trace kept: the default (5 traces a second, rate limited) may drop this one, the first.
    env["OTEL_TRACES_SAMPLER"], env["OTEL_TRACES_SAMPLER_ARG"] = "microsoft.fixed_percentage", "1.0"
    env["TMPDIR"] = str(tmp_path)  # where the exporter keeps telemetry to retry
    outcome = _run_app(env, ingestion.origin, flush=True, worker=configured_by == "worker")
    assert outcome["status"] == 200
    assert "azure.monitor.opentelemetry" in outcome["modules"]

    deadline = time.monotonic() + 30  # force_flush sent them; the server thread may still be reading
    while time.monotonic() < deadline:
        with ingestion.lock:
            kinds = {e.get("data", {}).get("baseType") for e in ingestion.envelopes}
        if {"RequestData", "RemoteDependencyData"} <= kinds:
            break
        time.sleep(0.05)
    with ingestion.lock:
        envelopes = list(ingestion.envelopes)
        sent = b"".join(ingestion.bodies).decode("utf-8", "replace")

    requests_ = [e["data"]["baseData"] for e in envelopes if e["data"]["baseType"] == "RequestData"]
    dependencies = [e["data"]["baseData"] for e in envelopes if e["data"]["baseType"] == "RemoteDependencyData"]
    assert [r["name"] for r in requests_] == ["GET health"], requests_  # the method and the route template
    assert requests_[0]["responseCode"] == "200"
    assert requests_[0]["properties"]["faas.name"] == "health"
    # Storage (the health check reads Table Storage on Azurite) and the Azure DevOps request, in the same trace.
    operation = {e["tags"]["ai.operation.id"] for e in envelopes if e["data"]["baseType"] == "RequestData"}
    storage = [d for d in dependencies if "/devstoreaccount1/Tables" in d["name"]]  # azure-core's HTTP span
    assert storage, dependencies
    assert {e["tags"]["ai.operation.id"] for e in envelopes if e["data"]["baseData"] in storage} == operation
    ado = [d for d in dependencies if "/org/_apis/projects" in d.get("data", "")]
    assert len(ado) == 1, dependencies
    assert ado[0]["data"] == f"{ingestion.origin}/org/_apis/projects"

    account_key = os.environ["AzureWebJobsStorage"].split("AccountKey=")[1].split(";")[0]
    for secret in (FUNCTION_KEY, BEARER, PAT, QUERY_SECRET, account_key, "Authorization", "x-functions-key"):
        assert secret not in sent, secret


def test_scrubbing_removes_query_and_user_info() -> None:
    assert telemetry.without_query("https://u:p@dev.azure.com:8443/org/_apis/x?code=k#f") == (
        "https://dev.azure.com:8443/org/_apis/x"
    )
    assert telemetry.without_query("http://[::1/") == ""
