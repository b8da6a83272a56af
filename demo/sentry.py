"""`python -m demo.sentry` (`make demo-sentry`): the Sentry App's loop, step by step, with Sentry and Azure DevOps
both simulated: a Sentry issue creates a work item; resolving the work item resolves the Sentry issue; assigning
the Sentry issue assigns the work item.

Everything runs on 127.0.0.1 and is thrown away at the end: an in-memory Azurite on free ports, the fakes of
devtools/fakes (Azure DevOps and Sentry), and the app served by `python -m devhost` as `make run` serves it.
"""

from __future__ import annotations

import sys
import time
import uuid
from contextlib import ExitStack
from pathlib import Path

from demo.console import ROOT, SYNC_TIMEOUT, App, DemoFailed, app_env, banner, excerpt, main, mask, say, step, wait_for
from devhost.azurite import Azurite, free_port
from devtools.fakes import FakeAzureDevOps, FakeSentry

ADO_ORG = "fabrikam-demo"
PAT = "demo-pat-7f3c9a1e5b2d"
SENTRY_ORG = "acme"
TRACKER_ORG = f"sentry-{SENTRY_ORG}"  # the tracker organization of a Sentry organization
APP_SLUG = "azure-boards-sync"
CLIENT_ID = "demo-client-id-5d1c"
CLIENT_SECRET = "demo-client-secret-8e2b4f6a0c"
ISSUE = "4242"
ISSUE_TITLE = "ZeroDivisionError: division by zero"
DANA = ("101", "dana@example.com", "Dana Scully")
PROJECT = "proj-id"  # the simulated organization's project


def run(stack: ExitStack, log_path: Path) -> None:
    banner(
        [
            "Sentry <-> Azure DevOps Boards through this app: a guided demo",
            "",
            "* Sentry and Azure DevOps here are SIMULATIONS: the loopback fakes from devtools/fakes/, on 127.0.0.1.",
            "  Nothing leaves this machine; no account is needed anywhere.",
            "* Storage is a real Azurite, in memory on free ports; the app runs in the local Functions host.",
        ]
    )

    step(1, "Start Azurite, the simulated Azure DevOps and Sentry, and the app")
    azurite = Azurite.on_free_ports()
    stack.callback(azurite.stop)
    azurite.start()
    ado = FakeAzureDevOps()
    stack.callback(ado.stop)
    ado.start()
    host_id = str(uuid.uuid4())
    ado.add_org(ADO_ORG, host_id)
    ado.add_pat(ADO_ORG, PAT)
    ado.add_identity(ADO_ORG, DANA[1], DANA[2])
    sentry = FakeSentry()
    stack.callback(sentry.stop)
    sentry.start()
    port = free_port()
    app_uuid = sentry.add_app(
        APP_SLUG,
        CLIENT_ID,
        CLIENT_SECRET,
        f"http://127.0.0.1:{port}/api/sentry/webhook",
        ("event:read", "event:write", "member:read", "org:read"),
    )
    sentry.add_member(SENTRY_ORG, DANA[0], DANA[1], DANA[2])
    sentry.add_issue(SENTRY_ORG, ISSUE, ISSUE_TITLE, "backend")
    say(f"Azure DevOps (SIMULATED)  {ado.base_url}, organization {ADO_ORG!r} with a PAT")
    say(f"Sentry (SIMULATED)        {sentry.base_url}, organization {SENTRY_ORG!r}, issue {ISSUE} {ISSUE_TITLE!r}")
    say(f"                          the Sentry App {APP_SLUG!r} (uuid {app_uuid}), webhook -> the app")
    env = app_env(
        azurite.connection_string,
        f"http://127.0.0.1:{port}/api/vsts/issue-updated",
        ado.settings_env(),
        sentry.settings_env(APP_SLUG),
    )
    app = App(port, env, log_path)
    stack.callback(app.stop)
    app.start()
    app.wait_healthy()
    say(f"The app                   python -m devhost --app-dir {ROOT} --port {port}")
    say(f"                          SENTRY_URL {sentry.base_url}, SENTRY_CLIENT_SECRET {mask(CLIENT_SECRET)}")

    step(2, "Connect Azure DevOps: the integration and its service hook")
    integration = f"/api/vsts/integrations/{host_id}"
    body = {"name": ADO_ORG, "domain_name": ado.org_url(ADO_ORG), "credentials": {"type": "pat", "token": PAT}}
    app.call("PUT", integration, body, show=("id", "name", "status"))
    app.call("POST", f"{integration}/subscription", show=("id", "status"))

    step(3, f"Someone installs the app in the Sentry organization {SENTRY_ORG!r}")
    installation = sentry.install(APP_SLUG, SENTRY_ORG, by_user=DANA[0])
    say(f"(simulation) Sentry POSTs installation.created for {installation} with a one-time grant code;")
    say("the app exchanges it for a token (kept encrypted) and its refresh token.")
    installed = f"/api/sentry/installations/{installation}"
    if not wait_for(lambda: app.request("GET", installed).status_code == 200, SYNC_TIMEOUT):  # exchanged, saved
        raise DemoFailed("the app did not exchange the grant code")
    app.call("GET", installed)

    step(4, f"Connect the two: the tracker organization {TRACKER_ORG!r} installs the Azure DevOps integration")
    every_sync = {
        "sync_reverse_assignment": True,
        "sync_status_reverse": True,
        "sync_status_forward": True,
        "sync_forward_assignment": True,
        "sync_comments": True,
    }
    app.call("PUT", f"/api/orgs/{TRACKER_ORG}/integrations/{host_id}", every_sync)

    step(5, f"In Sentry, Dana opens issue {ISSUE} and creates an Azure DevOps work item from it")
    fields = {
        "project": f"{host_id}|{PROJECT}",
        "work_item_type": "Bug",
        "title": ISSUE_TITLE,
        "description": "Raised in `checkout.total()` when the cart is empty.",
    }
    say("(simulation) Sentry POSTs the issue-link form, signed, to /api/sentry/issue-link/create:")
    say(f"  fields {excerpt(fields)}")
    answer = sentry.link_issue(installation, ISSUE, "/api/sentry/issue-link/create", fields, by_user=DANA[0])
    if answer.status_code not in (200, 201):
        raise DemoFailed(f"issue-link/create answered {answer.status_code}: {answer.text[:300]}")
    created = answer.json()
    say(f"< {answer.status_code} {excerpt(created)}")
    work_item = int(created["identifier"])
    item = ado.work_item(ADO_ORG, work_item)
    say(f"(simulation) Azure DevOps now has {item['fields']['System.WorkItemType']} {work_item}")
    say(f"  {item['fields']['System.Title']!r}, state {item['fields']['System.State']!r}")
    say(f"(simulation) Sentry shows it on the issue: {excerpt(sentry.external_issues(installation))}")

    step(6, f"In Azure DevOps, someone resolves work item {work_item}: the Sentry issue is resolved")
    ado.update_work_item(ADO_ORG, work_item, {"System.State": "Resolved"})
    if not wait_for(lambda: sentry.issue(SENTRY_ORG, ISSUE)["status"] == "resolved", SYNC_TIMEOUT):
        raise DemoFailed(f"Sentry issue {ISSUE} was not resolved within {SYNC_TIMEOUT:.0f} s")
    puts = sentry.count("PUT", rf"/issues/{ISSUE}/$")
    say(f"(simulation) Sentry issue {ISSUE} is now 'resolved' ({puts} PUT from the app, as the app itself).")

    def echo_ignored() -> bool:
        return bool(app.log_lines("the app's own change: ignored"))

    patches = ado.count("PATCH", rf"/_apis/wit/workitems/{work_item}$")
    if not wait_for(echo_ignored, SYNC_TIMEOUT):
        raise DemoFailed("Sentry's webhook for the app's own change was not recognised as the app's")
    echo = [w for w in sentry.webhooks if w.payload.get("actor", {}).get("type") == "application"]
    say(f"Sentry sent that change back as issue.{echo[-1].action} with actor {excerpt(echo[-1].payload['actor'])}:")
    say("the app recognised its own write and did nothing, so nothing went back to Azure DevOps.")
    if ado.count("PATCH", rf"/_apis/wit/workitems/{work_item}$") != patches:
        raise DemoFailed("the echo of the app's own write to Sentry reached Azure DevOps")

    step(7, f"In Sentry, Dana assigns issue {ISSUE} to herself: the work item is assigned to her")
    sentry.change_issue(SENTRY_ORG, ISSUE, assigned_to=DANA[0], by_user=DANA[0])

    def assigned() -> bool:
        return DANA[1] in str(ado.work_item(ADO_ORG, work_item)["fields"].get("System.AssignedTo", ""))

    started = time.monotonic()
    if not wait_for(assigned, SYNC_TIMEOUT):
        raise DemoFailed(f"work item {work_item} was not assigned to {DANA[1]} within {SYNC_TIMEOUT:.0f} s")
    say(f"(simulation) work item {work_item} is assigned to {DANA[1]} ({time.monotonic() - started:.1f} s later)")

    print(f"\nDone: Sentry issue {ISSUE} and work item {work_item} follow each other.", flush=True)


if __name__ == "__main__":
    sys.exit(main(run, "the app, the simulated Azure DevOps and Sentry, and Azurite"))
