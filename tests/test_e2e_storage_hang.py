"""Storage that accepts connections but never answers (Azurite stopped with SIGSTOP): every HTTP path answers its
unavailable status in bounded time and writes nothing (contract §5.1: the webhook within 10 s).

The test has an Azurite of its own, so stopping it cannot stall other tests; it is always continued and stopped
at the end. The bound is asserted through the budgets the code sets, not a stopwatch; the longest answer seen
is printed (`pytest -s`) for the record.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from devhost.azurite import Azurite
from devtools.fakes import FakeAzureDevOps
from shared.intake import webhook
from shared.store import deadline
from tests.e2e import HostProcess, create_world, queue_length, start_host, stop_host, tracked_issue

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("azurite")]

SECRET = "storage-hang-webhook-secret-0123456789"
# What the webhook's storage can take at worst: its deadline, plus one SDK back-off sleep (at most 2 s) after
# which no attempt starts. Contract §5.1 asks for 503 within 10 s.
WORST_BACKOFF_SECONDS = 2


@pytest.fixture
def own_azurite(tmp_path: Path) -> Iterator[Azurite]:
    server = Azurite.on_free_ports().start()
    try:
        yield server
    finally:
        if server.process is not None:
            os.killpg(server.process.pid, signal.SIGCONT)  # a stopped process cannot act on SIGTERM
        server.stop()


def _host(tmp: Path, fake: FakeAzureDevOps, azurite: Azurite) -> HostProcess:
    return start_host(
        tmp, {**fake.settings_env(), "ADO_HTTP_TIMEOUT": "2", "AzureWebJobsStorage": azurite.connection_string}
    )


def test_with_storage_not_answering_every_path_answers_503_and_writes_nothing(
    own_azurite: Azurite, fake_ado: FakeAzureDevOps, tmp_path: Path
) -> None:
    assert webhook.STORAGE_SECONDS + WORST_BACKOFF_SECONDS <= 10
    assert deadline.OPERATION_SECONDS + WORST_BACKOFF_SECONDS <= 10

    setup = _host(tmp_path, fake_ado, own_azurite)
    try:
        name, integration_id, org = create_world(setup, fake_ado, webhook_secret=SECRET, members={})
        payload = fake_ado.update_work_item(name, 77, {"System.State": "Resolved"}, deliver=False)
    finally:
        stop_host(setup)
    # A fresh host: nothing of the integration in its memory, so every path must reach storage.
    host = _host(tmp_path, fake_ado, own_azurite)
    calls = [
        ("webhook", "POST", "/api/vsts/issue-updated", {"json": payload, "headers": {"Shared-Secret": SECRET}}),
        ("lookup", "GET", f"/api/vsts/{integration_id}/issues/77", {}),
        ("admin PUT (existing issue)", "PUT", f"/api/orgs/{org}/issues/I77", {"json": {"status": "resolved"}}),
        ("admin PUT (new issue)", "PUT", f"/api/orgs/{org}/issues/I99", {"json": {"title": "new"}}),
        ("admin GET", "GET", f"/api/vsts/integrations/{integration_id}", {}),
        ("redrive", "POST", "/api/queues/vsts-workitem-updates/redrive", {}),
        ("health", "GET", "/api/health", {}),
    ]
    answers: dict[str, tuple[int, float, dict]] = {}
    try:
        assert own_azurite.process is not None
        os.killpg(own_azurite.process.pid, signal.SIGSTOP)
        try:
            for label, method, path, options in calls:
                started = time.monotonic()
                response = host.call(method, path, **options)
                answers[label] = (response.status_code, time.monotonic() - started, response.json())
        finally:
            os.killpg(own_azurite.process.pid, signal.SIGCONT)
        longest = max(answers.items(), key=lambda item: item[1][1])
        print(
            "\nwith storage stopped:",
            {label: (status, f"{seconds:.2f} s") for label, (status, seconds, _) in answers.items()},
        )
        print(f"longest answer: {longest[0]}, {longest[1][1]:.2f} s")
        assert {label: status for label, (status, _, _) in answers.items()} == {label: 503 for label, *_ in calls}
        assert all(list(body) in (["error"], ["status", "storage", "error"]) for _, _, body in answers.values())

        # Storage is back: none of the refused requests left anything behind.
        assert queue_length(host) in (-1, 0)
        issue = tracked_issue(host, org)
        assert issue["status"] == "unresolved" and issue["activity"] == []
        assert host.call("GET", f"/api/orgs/{org}/issues/I99").status_code == 404
        # And the app works again without a restart.
        assert (
            host.call("POST", "/api/vsts/issue-updated", json=payload, headers={"Shared-Secret": SECRET}).status_code
            == 202
        )
    finally:
        stop_host(host)
