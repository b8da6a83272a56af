"""`python -m demo`: one work item change, from (simulated) Azure DevOps to the tracked issue, step by step.

Everything runs on 127.0.0.1 and is thrown away at the end: an in-memory Azurite on free ports (the user's
`.azurite/` data is never touched), the fake Azure DevOps from devtools/fakes, and the app served by
`python -m devhost` as `make run` serves it. No local.settings.json is needed: every setting the app needs is
passed in its environment, which wins over that file.
"""

from __future__ import annotations

import json
import sys
import time
import uuid
from contextlib import ExitStack
from pathlib import Path

from demo.console import (
    ROOT,
    SYNC_TIMEOUT,
    App,
    DemoFailed,
    app_env,
    banner,
    excerpt,
    main,
    mask,
    say,
    step,
    wait_for,
)
from devhost.azurite import Azurite, free_port
from devtools.fakes import FakeAzureDevOps

ORG = "fabrikam-demo"  # the Azure DevOps organization (in the simulation)
PAT = "demo-pat-7f3c9a1e5b2d"  # a personal access token the simulation accepts
WORK_ITEM = 42
TITLE = "Checkout fails on empty cart"
DESCRIPTION = "<p>Paying with an empty cart answers 500.</p>"
TRACKER_ORG = "acme"  # the tracker's tenant that installs the integration
ISSUE = "ISSUE-1"
EMAIL = "dana@example.com"


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
    env = app_env(azurite.connection_string, webhook_url, fake.settings_env())  # Azure DevOps -> the simulation
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

    step(6, "Create the service hook subscriptions in Azure DevOps (workitem.updated and workitem.commented)")
    app.call("POST", f"{integration}/subscription", show=("id", "status", "subscription", "webhook_secret_set"))
    every = fake.subscriptions(ORG)
    if sorted(s["eventType"] for s in every) != ["workitem.commented", "workitem.updated"]:
        raise DemoFailed(f"the simulated Azure DevOps holds {len(every)} subscriptions, not the pair")
    subscriptions = [s for s in every if s["eventType"] == "workitem.updated"]
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

    step(10, "Turn on two-way sync: tracker-side status changes and comments now reach the work item")
    app.call(
        "PUT",
        f"/api/orgs/{TRACKER_ORG}/integrations/{host_id}",
        {
            "sync_reverse_assignment": True,
            "sync_status_reverse": True,
            "sync_status_forward": True,
            "sync_comments": True,
        },
        show=("sync_status_forward", "sync_forward_assignment", "sync_comments", "state_rules"),
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

    step(12, f"Someone comments on {ISSUE} in the tracker: the comment appears on the work item")
    app.call("POST", f"{issue_path}/comments", {"author": "Dana Scully", "text": "Fixed by **#1234**, please verify."})
    if not wait_for(lambda: fake.comments(ORG, WORK_ITEM), SYNC_TIMEOUT):
        raise DemoFailed(f"the comment did not reach work item {WORK_ITEM} within {SYNC_TIMEOUT:.0f} s")
    [copy] = fake.comments(ORG, WORK_ITEM)
    say(f"(simulation) work item {WORK_ITEM} now has comment {copy['id']} ({copy['format']}):")
    for line in str(copy["text"]).splitlines():
        say(f"  | {line}")

    print(f"\nDone: both ways. {ISSUE} follows work item {WORK_ITEM}, and the work item follows {ISSUE}.", flush=True)


if __name__ == "__main__":
    sys.exit(main(run, "the app, the simulated Azure DevOps and Azurite"))
