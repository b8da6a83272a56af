"""`python -m demo`: one work item change, from (simulated) Azure DevOps to the tracked issue, step by step.

Everything runs on 127.0.0.1 and is thrown away at the end: an in-memory Azurite on free ports (the user's
`.azurite/` data is never touched), the fake Azure DevOps from devtools/fakes, and the app served by
`python -m devhost` as `make run` serves it. No local.settings.json is needed: every setting the app needs is
passed in its environment, which wins over that file.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from types import FrameType
from typing import Any

import requests

from devhost.azurite import Azurite, free_port
from devtools.fakes import FakeAzureDevOps

ROOT = Path(__file__).resolve().parent.parent
WIDTH = 108  # printed lines stay under this
NEVER = "0 0 0 1 1 *"  # NCRONTAB for "not during this demo": the timers stay quiet
ORG = "fabrikam-demo"  # the Azure DevOps organization (in the simulation)
PAT = "demo-pat-7f3c9a1e5b2d"  # a personal access token the simulation accepts
WORK_ITEM = 42
TITLE = "Checkout fails on empty cart"
DESCRIPTION = "<p>Paying with an empty cart answers 500.</p>"
TRACKER_ORG = "acme"  # the tracker's tenant that installs the integration
ISSUE = "ISSUE-1"
EMAIL = "dana@example.com"
SYNC_TIMEOUT = 30.0
# Keys whose values are credentials: never printed in full.
SECRET_KEYS = frozenset({"token", "webhook_secret", "access_token", "refresh_token", "client_secret"})


class DemoFailed(Exception):
    """A step did not go as expected; the message says what happened."""


class Interrupted(BaseException):
    """Ctrl-C or SIGTERM (a BaseException, so no `except Exception` on the way swallows it)."""


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise Interrupted


# ------------------------------------------------------------------------------------------------ printing


def mask(secret: str) -> str:
    """The first characters of a secret, enough to recognise it, never the whole of it."""
    return f"{secret[:6]}…"


def redact(data: Any) -> Any:
    """A copy of JSON data with every credential masked."""
    if isinstance(data, dict):
        return {k: mask(v) if k in SECRET_KEYS and isinstance(v, str) else redact(v) for k, v in data.items()}
    if isinstance(data, list):
        return [redact(v) for v in data]
    return data


def say(text: str = "", indent: int = 4, max_lines: int = 4) -> None:
    """Print text wrapped under WIDTH, continuation lines indented two more; long texts are cut with '…'."""
    lines = textwrap.wrap(
        text, WIDTH - 1, initial_indent=" " * indent, subsequent_indent=" " * (indent + 2), break_on_hyphens=False
    ) or [""]
    if len(lines) > max_lines:
        lines = [*lines[: max_lines - 1], lines[max_lines - 1][: WIDTH - 2] + " …"]
    print("\n".join(lines), flush=True)


def excerpt(data: Any) -> str:
    return json.dumps(redact(data), ensure_ascii=False)


def step(number: int, title: str) -> None:
    print(f"\n[{number}] {title}", flush=True)


def banner(lines: list[str]) -> None:
    rule = "=" * WIDTH
    print(rule)
    for line in lines:
        print(f" {line}")
    print(rule, flush=True)


# ---------------------------------------------------------------------------------------------------- app


class App:
    """The app in the local Functions host (`python -m devhost`, a subprocess) and a client of its HTTP API."""

    def __init__(self, port: int, env: dict[str, str], log_path: Path) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.env = env
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None
        self.http = requests.Session()
        self.http.trust_env = False  # loopback only: never through a proxy from the environment

    def start(self) -> None:
        with open(self.log_path, "wb") as log:
            # Its own session: Ctrl-C reaches only the demo, which then stops the app in order.
            self.process = subprocess.Popen(
                [sys.executable, "-m", "devhost", "--app-dir", str(ROOT), "--port", str(self.port)],
                cwd=ROOT,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def wait_healthy(self, timeout: float = 30.0) -> dict[str, Any]:
        """Poll GET /api/health until it answers 200."""
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise DemoFailed(f"the app exited with code {self.process.returncode} while starting")
            try:
                answer = self.http.get(f"{self.url}/api/health", timeout=5)
                if answer.status_code == 200:
                    return answer.json()
            except requests.RequestException:
                pass  # not listening yet
            if time.monotonic() > deadline:
                raise DemoFailed(f"GET /api/health did not answer 200 within {timeout:.0f} s")
            time.sleep(0.1)

    def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> requests.Response:
        try:
            return self.http.request(method, f"{self.url}{path}", json=body, timeout=30)
        except requests.RequestException as exc:
            raise DemoFailed(f"{method} {path} got no answer: {type(exc).__name__}") from None

    def call(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        *,
        show: tuple[str, ...] = (),
        expect: tuple[int, ...] = (200, 201),
    ) -> Any:
        """One request, printed with its answer (only the `show` keys of an object, when given); an unexpected
        status fails the demo."""
        say(f"> {method} {path}")
        if body is not None:
            say(f"  {excerpt(body)}")
        answer = self.request(method, path, body)
        try:
            data: Any = answer.json() if answer.content else None
        except ValueError:
            data = answer.text
        shown, more = data, ""
        if show and isinstance(data, dict) and answer.status_code in expect:
            shown = {k: data[k] for k in show if k in data}
            hidden = len(data) - len(shown)
            more = f" (+{hidden} more keys)" if hidden else ""
        say(f"< {answer.status_code} {excerpt(shown) if shown is not None else ''}{more}".rstrip())
        if answer.status_code not in expect:
            raise DemoFailed(f"{method} {path} answered {answer.status_code}: {answer.text[:300]}")
        return data

    def log_lines(self, *needles: str) -> list[str]:
        """Lines of the app's log that contain any of the needles."""
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return [line for line in text.splitlines() if any(n in line for n in needles)]

    def stop(self) -> None:
        """SIGTERM, as Ctrl-C in `make run` would; the host then stops its timers and queue pollers."""
        process, self.process = self.process, None
        self.http.close()
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


# ------------------------------------------------------------------------------------------------- the demo


def wait_for(predicate: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def run(stack: ExitStack, log_path: Path) -> None:
    """The walkthrough. Everything it starts is registered on `stack`, which stops it in reverse order."""
    banner(
        [
            "Azure DevOps Boards <-> issue tracker: a guided demo",
            "",
            "* Azure DevOps here is a SIMULATION: the loopback fake from devtools/fakes/ado/, serving on 127.0.0.1.",
            "  Nothing leaves this machine; no Azure DevOps account is needed.",
            "* Storage is a real Azurite (Azure Storage emulator), in memory on free ports; .azurite/ is untouched.",
            "* The app runs in the local Functions host (python -m devhost), exactly as `make run` serves it.",
            "  Like Core Tools, the local host does not check function keys, so no key is sent below.",
        ]
    )

    step(1, "Start Azurite, the simulated Azure DevOps and the app")
    azurite = Azurite.on_free_ports()  # location=None: in-memory persistence
    stack.callback(azurite.stop)
    azurite.start()
    say(f"Azurite (in memory)       blob/queue/table on 127.0.0.1:{'/'.join(map(str, azurite.ports))}")

    fake = FakeAzureDevOps()
    stack.callback(fake.stop)
    fake.start()
    host_id = str(uuid.uuid4())  # the organization's collection id: the integration's key
    fake.add_org(ORG, host_id)
    fake.add_pat(ORG, PAT)
    fields = {"System.Title": TITLE, "System.Description": DESCRIPTION, "System.State": "Active"}
    fake.add_work_item(ORG, WORK_ITEM, {**fields, "System.WorkItemType": "Bug"})
    say(f"Azure DevOps (SIMULATED)  {fake.base_url}, organization {ORG!r} with a PAT")
    say(f"                          host id {host_id} (the integration's key)")
    say(f'                          Bug {WORK_ITEM} "{TITLE}", state Active, unassigned')

    port = free_port()
    webhook_url = f"http://127.0.0.1:{port}/api/vsts/issue-updated"
    env = {
        **os.environ,
        "AzureWebJobsStorage": azurite.connection_string,  # the host's queue
        "STORAGE_CONNECTION_STRING": azurite.connection_string,  # the app's tables (over any local.settings.json)
        "TABLE_PREFIX": "demo",
        "SECRETS_KEY": base64.urlsafe_b64encode(os.urandom(32)).decode(),  # a fresh Fernet key
        **fake.settings_env(),  # Azure DevOps URLs -> the simulation
        "WEBHOOK_PUBLIC_URL": webhook_url,
        "DOMAIN_CHECK_SCHEDULE": NEVER,
        "SUBSCRIPTION_CHECK_SCHEDULE": NEVER,
        "RECONCILE_SCHEDULE": NEVER,
    }
    app = App(port, env, log_path)
    stack.callback(app.stop)
    started = time.monotonic()
    app.start()
    say(f"The app                   python -m devhost --app-dir {ROOT} --port {port}")
    health = app.wait_healthy()
    say(f"                          GET /api/health -> 200 {excerpt(health)} after {time.monotonic() - started:.1f} s")

    step(2, "Register the integration: the Azure DevOps organization, its URL and a credential")
    integration = f"/api/vsts/integrations/{host_id}"
    body = {"name": ORG, "domain_name": fake.org_url(ORG), "credentials": {"type": "pat", "token": PAT}}
    app.call("PUT", integration, body, show=("id", "name", "status", "credentials", "webhook_secret"))
    say("(No webhook_secret was given, so the app generated one and returns it this once; masked here.)")

    step(3, f"Install it for the tracker organization {TRACKER_ORG!r}, syncing assignee and status back")
    app.call(
        "PUT",
        f"/api/orgs/{TRACKER_ORG}/integrations/{host_id}",
        {"sync_reverse_assignment": True, "sync_status_reverse": True},
    )

    step(4, "Add a member: assignees in Azure DevOps are matched to members by email")
    app.call("PUT", f"/api/orgs/{TRACKER_ORG}/members/{EMAIL}", {"user_id": "u-dana", "name": "Dana Scully"})

    step(5, f"Create a tracked issue and link it to work item {WORK_ITEM}")
    issue_path = f"/api/orgs/{TRACKER_ORG}/issues/{ISSUE}"
    app.call("PUT", issue_path, {"title": TITLE})
    app.call("PUT", f"{issue_path}/links/{host_id}/{WORK_ITEM}")

    step(6, "Create the service hook subscription in Azure DevOps (workitem.updated -> the app's webhook)")
    app.call("POST", f"{integration}/subscription", show=("id", "status", "subscription", "webhook_secret_set"))
    subscriptions = fake.subscriptions(ORG)
    if len(subscriptions) != 1:
        raise DemoFailed(f"the simulated Azure DevOps holds {len(subscriptions)} subscriptions, not 1")
    inputs = subscriptions[0]["consumerInputs"]
    header_name, _, secret = str(inputs.get("httpHeaders", "")).partition(":")
    say(f"The simulated Azure DevOps now holds subscription {subscriptions[0]['id']}:")
    say(f"  event {subscriptions[0]['eventType']}, status {subscriptions[0]['status']}")
    say(f"  url {inputs['url']}")
    say(f"  httpHeaders {header_name}:{mask(secret)} (a fresh secret; the app keeps it encrypted)")
    if inputs["url"] != webhook_url or header_name.lower() != "shared-secret" or not secret:
        raise DemoFailed("the subscription does not point at the webhook with a shared-secret header")

    step(7, f"Someone changes work item {WORK_ITEM} in Azure DevOps: assigns it to Dana and resolves it")
    changes = {"System.AssignedTo": f"Dana Scully <{EMAIL}>", "System.State": "Resolved"}
    say(f"(simulation) fake.update_work_item({ORG!r}, {WORK_ITEM}, changes) with changes =")
    say(f"  {json.dumps(changes, ensure_ascii=False)}")
    before = len(fake.deliveries)
    payload = fake.update_work_item(ORG, WORK_ITEM, changes)
    delivered = fake.deliveries[before:]
    resource = payload["resource"]
    say(f"Azure DevOps POSTs the service hook to the app (eventType {payload['eventType']}):")
    say(f"  > POST /api/vsts/issue-updated   (header Shared-Secret: {mask(secret)})")
    say(f"    resource: workItemId {resource['workItemId']}, rev {resource['rev']}, changed fields:")
    for name in ("System.AssignedTo", "System.State"):
        change = resource["fields"].get(name, {})
        say(f"      {name}: {change.get('oldValue', '(none)')} -> {change.get('newValue', '(none)')}")
    if len(delivered) != 1:
        raise DemoFailed(f"Azure DevOps made {len(delivered)} deliveries, not 1")
    say(f"  < {delivered[0].status or delivered[0].error}   (accepted: queued in Azurite for apply_workitem_update)")
    if delivered[0].status != 202:
        raise DemoFailed(f"the webhook answered the delivery with {delivered[0].status or delivered[0].error}")

    step(8, f"The queue function applies it: wait for {ISSUE} to be resolved and assigned (up to 30 s)")
    started = time.monotonic()

    def synced() -> bool:
        answer = app.request("GET", issue_path)
        view = answer.json() if answer.status_code == 200 else {}
        return view.get("status") == "resolved" and (view.get("assignee") or {}).get("email") == EMAIL

    if not wait_for(synced, SYNC_TIMEOUT):
        app.call("GET", issue_path)
        raise DemoFailed(f"{ISSUE} was not resolved and assigned to {EMAIL} within {SYNC_TIMEOUT:.0f} s")
    say(f"(synced {time.monotonic() - started:.1f} s after the delivery)")
    say(f"> GET {issue_path}")
    view = app.request("GET", issue_path).json()
    say(f"< 200 id {view['id']!r}, title {view['title']!r}")
    say(f"      status   {view['status']!r}")
    say(f"      assignee {excerpt(view['assignee'])}")
    say(f"      links    {excerpt(view['links'])}")
    say("      activity (newest last):")
    for entry in view["activity"]:
        say(
            f"        {entry['type']:<10} source {entry['source']}, work item {entry['work_item_id']}, "
            f"rev {entry['rev']}, at {entry['at']}"
        )
    say("What the host logged for the two invocations:")
    for line in app.log_lines("Executed vsts_webhook", "Executed apply_workitem_update"):
        say(f"  {line.partition(' devhost: ')[2] or line}", max_lines=2)

    step(9, "Lookups: the work item as an external issue, and a search")
    lookup = app.call("GET", f"/api/vsts/{host_id}/issues/{WORK_ITEM}")
    found = app.call("GET", f"/api/vsts/{host_id}/issues?q=checkout")
    if lookup.get("title") != TITLE or [r.get("value") for r in found] != [str(WORK_ITEM)]:
        raise DemoFailed(f"the lookup or the search did not show work item {WORK_ITEM}")

    step(10, "Turn on two-way sync: tracker-side status changes now reach the work item")
    app.call(
        "PUT",
        f"/api/orgs/{TRACKER_ORG}/integrations/{host_id}",
        {"sync_reverse_assignment": True, "sync_status_reverse": True, "sync_status_forward": True},
        show=("sync_status_forward", "sync_forward_assignment", "state_rules"),
    )

    step(11, f"Someone reopens {ISSUE} in the tracker: the work item moves back, and the echo changes nothing")
    before = len(fake.deliveries)
    app.call("PUT", issue_path, {"status": "unresolved"}, show=("status",))
    if not wait_for(lambda: fake.work_item(ORG, WORK_ITEM)["fields"].get("System.State") == "Active", SYNC_TIMEOUT):
        raise DemoFailed(f"work item {WORK_ITEM} did not move back to Active within {SYNC_TIMEOUT:.0f} s")
    item = fake.work_item(ORG, WORK_ITEM)
    say(f"(simulation) work item {WORK_ITEM} is now {item['fields']['System.State']!r} at rev {item['rev']}:")
    patches = fake.count("PATCH", rf"/_apis/wit/workitems/{WORK_ITEM}$")
    say(f"  the app read it and sent {patches} JSON Patch: test /rev, then System.State -> the first InProgress state")
    if patches != 1:
        raise DemoFailed(f"the app sent {patches} patches to work item {WORK_ITEM}, not 1")
    if not wait_for(lambda: len(fake.deliveries) > before, SYNC_TIMEOUT):
        raise DemoFailed("Azure DevOps did not deliver the service hook for the app's own change")
    echo = fake.deliveries[before]
    echo_rev = echo.payload["resource"]["rev"]
    say(f"Azure DevOps delivered that change back to the webhook too (rev {echo_rev}): {echo.status}")

    def echo_applied() -> bool:
        needle = f"work item {WORK_ITEM} rev {echo_rev}: 1 linked issue(s), changes none"
        return any(needle in line for line in app.log_lines("apply_workitem_update:"))

    if not wait_for(echo_applied, SYNC_TIMEOUT):
        raise DemoFailed("the echo of the app's own change was not recognised as stale")
    view = app.request("GET", issue_path).json()
    if fake.count("PATCH", rf"/_apis/wit/workitems/{WORK_ITEM}$") != 1:
        raise DemoFailed("the echo of the app's own change was sent back to Azure DevOps")
    say("The queue function saw it was the app's own revision: no change, no activity, nothing sent again.")
    say("      activity (newest last):")
    for entry in view["activity"][-2:]:
        extra = f", fields {entry['fields']}" if "fields" in entry else ""
        say(f"        {entry['type']:<12} source {entry['source']}, work item {entry['work_item_id']}{extra}")

    print(f"\nDone: both ways. {ISSUE} follows work item {WORK_ITEM}, and the work item follows {ISSUE}.", flush=True)


def main() -> int:
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    started = time.monotonic()
    log_file = tempfile.NamedTemporaryFile(prefix="vsts-demo-app-", suffix=".log", delete=False)
    log_file.close()
    log_path = Path(log_file.name)
    failure: str | None = None
    stack = ExitStack()
    try:
        run(stack, log_path)
    except Interrupted:
        failure = "interrupted"
    except DemoFailed as exc:
        failure = str(exc)
    except Exception as exc:  # anything unexpected still ends in a clear message and a clean-up
        failure = f"{type(exc).__name__}: {exc}"
    finally:
        # A second Ctrl-C must not cut the clean-up short and leave processes behind.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print("\nStopping the app, the simulated Azure DevOps and Azurite ...", flush=True)
        try:
            stack.close()
        except Exception as exc:
            failure = failure or f"clean-up failed: {type(exc).__name__}: {exc}"
    if failure is None:
        log_path.unlink(missing_ok=True)
        print(f"Finished in {time.monotonic() - started:.1f} s.")
        return 0
    print(f"\nDEMO FAILED: {failure}", file=sys.stderr)
    print(f"The app's log is in {log_path}", file=sys.stderr)
    return 130 if failure == "interrupted" else 1


if __name__ == "__main__":
    sys.exit(main())
