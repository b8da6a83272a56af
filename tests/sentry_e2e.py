"""End-to-end set-up for the Sentry App: the app served by `python -m devhost` beside both fakes (Azure DevOps
and Sentry) on the session's Azurite. The fake Sentry's app points its webhook at the host, so Sentry's
webhooks and UI component calls reach the app as they would in production.

`sentry_host` is a module fixture (host, fake Azure DevOps, fake Sentry); `sentry_world` sets up one Sentry
organization with the app installed, an Azure DevOps integration installed for it with every sync on, two
members, and a Sentry issue linked to a work item."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from devhost.azurite import Azurite, free_port
from devtools.fakes import FakeAzureDevOps, FakeSentry
from tests.e2e import PAT, HostProcess, start_host, stop_host
from tests.helpers import wait_for

APP = "boards-sync"
CLIENT_ID = "e2e-sentry-client-id"
CLIENT_SECRET = "e2e-sentry-client-secret-0123456789"
SCOPES = ("event:read", "event:write", "member:read", "org:read")
# Sentry users of every world: user id -> (email, name). The emails are members in Azure DevOps too.
PEOPLE = {"101": ("dana@example.com", "Dana Lee"), "102": ("lee@example.com", "Lee Roe")}


@dataclass
class SentryHost:
    host: HostProcess
    ado: FakeAzureDevOps
    sentry: FakeSentry
    app_uuid: str


def start_sentry_host(tmp: Path, ado: FakeAzureDevOps, sentry: FakeSentry, extra_env: dict[str, str]) -> SentryHost:
    port = free_port()
    app_uuid = sentry.add_app(APP, CLIENT_ID, CLIENT_SECRET, f"http://127.0.0.1:{port}/api/sentry/webhook", SCOPES)
    env = {**ado.settings_env(), **sentry.settings_env(APP), "ADO_HTTP_TIMEOUT": "2", **extra_env}
    return SentryHost(start_host(tmp, env, port=port), ado, sentry, app_uuid)


@pytest.fixture(scope="module")
def fake_sentry() -> Iterator[FakeSentry]:
    with FakeSentry() as fake:
        yield fake


@pytest.fixture(scope="module")
def sentry_host(
    azurite: Azurite,
    fake_ado: FakeAzureDevOps,
    fake_sentry: FakeSentry,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[SentryHost]:
    started = start_sentry_host(tmp_path_factory.mktemp("sentry-host"), fake_ado, fake_sentry, {})
    yield started
    stop_host(started.host)


@dataclass
class SentryWorld:
    org_slug: str
    org_id: str  # the tracker organization: sentry-<slug>
    installation_uuid: str
    ado_org: str  # the fake Azure DevOps organization's name
    integration_id: str
    issue_id: str  # the Sentry issue, tracked and linked to work_item_id
    work_item_id: int


def seed_installation(world: SentryHost, org_slug: str) -> str:
    """The app installed in `org_slug` as an internal integration, written straight to storage (for tests of
    other parts than the installation itself): a static token the fake accepts. Returns the uuid."""
    from shared.model.sentry import INTERNAL, SentryInstallation
    from shared.store.sentry import SentryStore

    token = uuid.uuid4().hex
    installation_uuid = world.sentry.add_static_token(org_slug, token, APP)
    SentryStore().put(
        SentryInstallation(installation_uuid, org_slug, kind=INTERNAL, app_uuid=world.app_uuid, token=token)
    )
    return installation_uuid


def _install(world: SentryHost, org_slug: str) -> str:
    """Installed through the fake, which sends installation.created: returns once the app holds the tokens."""
    from shared.store.sentry import SentryStore

    installation_uuid = world.sentry.install(APP, org_slug)
    wait_for(
        lambda: (i := SentryStore().get(installation_uuid)) is not None and bool(i.token),
        30,
        "the installation's tokens",
    )
    return installation_uuid


def sentry_world(world: SentryHost, *, work_item_id: int = 77, install: str = "seed") -> SentryWorld:
    """A Sentry organization with the app installed (`install`: "seed" writes it to storage, "webhook" installs it
    through the fake, which sends installation.created), an Azure DevOps integration it installed with every sync
    on, the PEOPLE as Sentry and Azure DevOps members, and a Sentry issue tracked and linked to a work item."""
    host, ado, sentry = world.host, world.ado, world.sentry
    slug = f"s{uuid.uuid4().hex[:8]}"
    for user_id, (email, name) in PEOPLE.items():
        sentry.add_member(slug, user_id, email, name)
    issue_id = str(int(uuid.uuid4().int % 10**9) + 1)
    sentry.add_issue(slug, issue_id, "ZeroDivisionError: division by zero", "backend")
    installation_uuid = seed_installation(world, slug) if install == "seed" else _install(world, slug)
    org_id = f"sentry-{slug}"
    ado_org, integration_id = f"w{uuid.uuid4().hex[:8]}", str(uuid.uuid4())
    ado.add_org(ado_org, integration_id)
    ado.add_pat(ado_org, PAT)
    for email, name in PEOPLE.values():
        ado.add_identity(ado_org, email, name)
    ado.add_work_item(
        ado_org,
        work_item_id,
        {"System.State": "Active", "System.WorkItemType": "Bug", "System.Title": f"Item {work_item_id}"},
    )
    every_sync = {
        "sync_reverse_assignment": True,
        "sync_status_reverse": True,
        "sync_status_forward": True,
        "sync_forward_assignment": True,
        "sync_comments": True,
    }
    integration = {"name": ado_org, "domain_name": ado.org_url(ado_org), "credentials": {"type": "pat", "token": PAT}}
    web_url = sentry.issue(slug, issue_id).get("permalink")
    calls: list[tuple[str, str, dict | None]] = [
        ("PUT", f"/api/vsts/integrations/{integration_id}", integration),
        ("PUT", f"/api/orgs/{org_id}/integrations/{integration_id}", every_sync),
        *[("PUT", f"/api/orgs/{org_id}/members/{email}", {"user_id": uid}) for uid, (email, _) in PEOPLE.items()],
        ("PUT", f"/api/orgs/{org_id}/issues/{issue_id}", {"title": "ZeroDivisionError", "url": web_url}),
        ("PUT", f"/api/orgs/{org_id}/issues/{issue_id}/links/{integration_id}/{work_item_id}", None),
    ]
    for method, path, body in calls:
        response = host.call(method, path, json=body) if body is not None else host.call(method, path)
        assert response.status_code in (200, 201), (path, response.text)
    # The link made through the admin API is shown in Sentry behind a queue: settled before a test counts requests.
    wait_for(
        lambda: any(e["issueId"] == issue_id for e in sentry.external_issues(installation_uuid)),
        30,
        "the world's link to appear in Sentry",
    )
    return SentryWorld(slug, org_id, installation_uuid, ado_org, integration_id, issue_id, work_item_id)
