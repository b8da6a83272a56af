"""End-to-end set-up: the app served by `python -m devhost` beside the fake Azure DevOps, on the session's
Azurite. The app reaches the fake only through its settings. Modules using these start processes: they are
marked `slow` (`pytest -m "not slow"` leaves them out)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from devhost.azurite import Azurite, free_port, port_open
from devtools.fakes import FakeAzureDevOps
from tests.helpers import wait_for

ROOT = Path(__file__).resolve().parent.parent
NEVER = "0 0 0 1 1 *"  # timers only run when a test invokes them


@dataclass
class HostProcess:
    url: str
    process: subprocess.Popen
    log_path: Path
    env: dict[str, str]

    def call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return requests.request(method, f"{self.url}{path}", timeout=60, **kwargs)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def invoke(self, function: str, text: str = "") -> None:
        response = self.call("POST", f"/admin/functions/{function}", json={"input": text})
        assert response.status_code == 202, response.text


def start_host(
    tmp: Path, extra_env: dict[str, str], port: int | None = None, *, unset: tuple[str, ...] = ()
) -> HostProcess:
    """The local host on `port` with the session's environment and `extra_env`, without the settings in `unset`
    that `extra_env` does not set."""
    port = port or free_port()
    env = {
        **os.environ,
        "DOMAIN_CHECK_SCHEDULE": NEVER,
        "SUBSCRIPTION_CHECK_SCHEDULE": NEVER,
        "RECONCILE_SCHEDULE": NEVER,
        "CLEANUP_SCHEDULE": NEVER,
        "SWEEP_SCHEDULE": NEVER,
        "SENTRY_RECONCILE_SCHEDULE": NEVER,
        "WEBHOOK_PUBLIC_URL": f"http://127.0.0.1:{port}/api/vsts/issue-updated",
        **extra_env,
    }
    env.pop("STORAGE_CONNECTION_STRING", None) if "STORAGE_CONNECTION_STRING" not in extra_env else None
    for name in set(unset) - set(extra_env):
        env.pop(name, None)
    log_path = tmp / f"host-{port}.log"
    log_file = open(log_path, "w")
    process = subprocess.Popen(
        [sys.executable, "-m", "devhost", "--app-dir", str(ROOT), "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=log_file,
        stderr=subprocess.STDOUT,
    )
    wait_for(lambda: port_open(port) or process.poll() is not None, 30, f"the host on port {port}")
    if process.poll() is not None:
        raise RuntimeError(f"the host did not start:\n{log_path.read_text()}")
    return HostProcess(f"http://127.0.0.1:{port}", process, log_path, env)


APP_QUEUES = ("vsts-workitem-updates", "vsts-outbound", "vsts-sentry-hooks", "vsts-sentry-updates")


def stop_host(host: HostProcess, *, drain: bool = True) -> None:
    """Stop the host once its queues are drained. The queue names are fixed and every module's host shares the
    session's Azurite, so a message left behind (say, the echo of a test's last change) would be taken by the
    next module's host, which cannot reach this module's fake Azure DevOps, and end in a poison queue there."""
    if drain and host.process.poll() is None:
        try:
            wait_for(lambda: all(queue_length(host, name) <= 0 for name in APP_QUEUES), 60, "the queues to drain")
        except Exception as exc:  # storage stopped on purpose, or a test that meant to leave messages
            print(f"stop_host: the queues were not drained ({type(exc).__name__}: {exc})", file=sys.stderr)
    _terminate(host)


def _terminate(host: HostProcess) -> None:
    host.process.terminate()
    try:
        host.process.wait(20)
    except subprocess.TimeoutExpired:
        host.process.kill()


@pytest.fixture(scope="module")
def fake_ado() -> Iterator[FakeAzureDevOps]:
    with FakeAzureDevOps() as fake:
        yield fake


@pytest.fixture(scope="module")
def host(
    azurite: Azurite, fake_ado: FakeAzureDevOps, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[HostProcess]:
    process = start_host(tmp_path_factory.mktemp("host"), {**fake_ado.settings_env(), "ADO_HTTP_TIMEOUT": "2"})
    yield process
    stop_host(process)


def settled(host: HostProcess, *queues: str) -> None:
    """Every one of the host's queues named (by default the deliveries' and the outbound changes') drained: what
    was queued has been applied, or failed for good."""
    from tests.helpers import wait_for

    names = queues or ("vsts-workitem-updates", "vsts-outbound")
    wait_for(lambda: all(queue_length(host, name) in (-1, 0) for name in names), 60, "the queues")


def queue_length(host: HostProcess, queue: str = "vsts-workitem-updates") -> int:
    """Messages in one of the host's queues (visible or not), or -1 when the queue does not exist."""
    from azure.core.exceptions import ResourceNotFoundError
    from azure.storage.queue import QueueClient

    client = QueueClient.from_connection_string(host.env["AzureWebJobsStorage"], queue)
    try:
        return client.get_queue_properties().approximate_message_count
    except ResourceNotFoundError:
        return -1


PAT = "e2e-pat-token-0123456789"
MEMBERS = {"dana@example.com": "u-dana", "lee@example.com": "u-lee"}


def create_world(
    host: HostProcess,
    fake: FakeAzureDevOps,
    *,
    work_items: tuple[int, ...] = (77,),
    credentials: dict | None = None,
    webhook_secret: str | None = None,
    resolve_states: list[str] | None = None,
    members: dict[str, str] = MEMBERS,
) -> tuple[str, str, str]:
    """Through the app's admin API: an organization in the fake with its integration, a tracker organization
    that installed it (both syncs on) with `members`, and issue `I<id>` linked to each work item (Active Bugs).
    Returns (the fake's organization name, the integration id, the tracker organization id)."""
    import uuid

    name, integration_id, org = f"w{uuid.uuid4().hex[:8]}", str(uuid.uuid4()), f"org-{uuid.uuid4().hex[:8]}"
    fake.add_org(name, integration_id)
    fake.add_pat(name, PAT)
    integration: dict[str, Any] = {
        "name": name,
        "domain_name": fake.org_url(name),
        "credentials": credentials or {"type": "pat", "token": PAT},
    }
    if webhook_secret:
        integration["webhook_secret"] = webhook_secret
    installation: dict[str, Any] = {"sync_reverse_assignment": True, "sync_status_reverse": True}
    if resolve_states:
        installation["resolve_states"] = resolve_states
    calls: list[tuple[str, str, dict | None]] = [
        ("PUT", f"/api/vsts/integrations/{integration_id}", integration),
        ("PUT", f"/api/orgs/{org}/integrations/{integration_id}", installation),
        *[("PUT", f"/api/orgs/{org}/members/{email}", {"user_id": user}) for email, user in members.items()],
    ]
    for wid in work_items:
        fake.add_work_item(
            name, wid, {"System.State": "Active", "System.WorkItemType": "Bug", "System.Title": f"Item {wid}"}
        )
        calls.append(("PUT", f"/api/orgs/{org}/issues/I{wid}", {"title": f"Issue for {wid}"}))
        calls.append(("PUT", f"/api/orgs/{org}/issues/I{wid}/links/{integration_id}/{wid}", None))
    for method, path, body in calls:
        response = host.call(method, path, json=body) if body is not None else host.call(method, path)
        assert response.status_code in (200, 201), (path, response.text)
    return name, integration_id, org


def tracked_issue(host: HostProcess, org: str, work_item_id: int = 77) -> dict:
    return host.call("GET", f"/api/orgs/{org}/issues/I{work_item_id}").json()
