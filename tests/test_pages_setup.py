"""The setup page in a real browser (headless Chromium), served by the local host beside the fake Azure DevOps:
a person's whole setup, a wrong credential, an expired link, forged posts, Sentry's redirect once, and no
entered secret on any page. `WRITE_SCREENSHOTS=1` saves a screenshot of each step as docs/screenshots/setup-*.png
(`WRITE_SCREENSHOTS=1 .venv/bin/python -m pytest tests/test_pages_setup.py`)."""

from __future__ import annotations

import base64
import http.server
import os
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from devhost.azurite import free_port
from shared.model.sentry import SentryInstallation
from shared.pages.setup_entry import create_link, token_hash
from shared.store.integrations import IntegrationStore
from shared.store.sentry import SentryStore
from shared.store.tracker import TrackerStore
from tests.browser import by as _by
from tests.browser import choose as _choose
from tests.browser import click as _click
from tests.browser import fill as _fill
from tests.browser import text as _text
from tests.e2e import tracked_issue
from tests.helpers import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("azurite")]

SCREENSHOTS = Path(__file__).resolve().parent.parent / "docs" / "screenshots"
PAT = "browser-pat-0123456789abcdef"
WRONG_PAT = "browser-wrong-pat-9876543210"
WEIGHTS: dict[str, tuple[int, int]] = {}  # page -> (bytes of HTML, requests the page made)


def _link(host, org_id: str) -> str:
    response = host.call("POST", "/api/setup/links", json={"org_id": org_id, "lifetime_minutes": 10})
    assert response.status_code == 201, response.text
    return response.json()["url"]


def _open(browser, link: str) -> None:
    """A setup link as a person opens it: the GET shows a button (it does not use the link), the button does."""
    browser.get(link)
    assert "Open the setup page" in _text(browser), _text(browser)
    _click(browser, "Open the setup page")


def _shot(browser, name: str) -> None:
    """A screenshot of the whole page, and its weight: the HTML's bytes and the requests it made (1: itself)."""
    # The whole page, not only the window (Chromium's DevTools protocol; headless windows stop at the screen).
    shot = browser.execute_cdp_cmd("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True})
    assert base64.b64decode(shot["data"]).startswith(b"\x89PNG")
    if os.environ.get("WRITE_SCREENSHOTS") == "1":  # only when asked: a test run leaves the checkout as it was
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        (SCREENSHOTS / f"setup-{name}.png").write_bytes(base64.b64decode(shot["data"]))
    html_bytes = browser.execute_script(
        "return new TextEncoder().encode(new XMLSerializer().serializeToString(document)).length"
    )
    resources = browser.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    WEIGHTS[name] = (int(html_bytes), 1 + len(resources))
    assert resources == [], f"the {name} page loaded {resources}"


def _no_secret(browser, *secrets: str) -> None:
    for secret in secrets:
        assert secret not in browser.page_source


def _org(fake_ado) -> tuple[str, str]:
    name, host_id = f"b{uuid.uuid4().hex[:8]}", str(uuid.uuid4())
    fake_ado.add_org(name, host_id)
    fake_ado.add_pat(name, PAT)
    fake_ado.add_project(name, "p-web", "Web", process="Agile")
    return name, host_id


def test_a_persons_whole_setup(browser, host, fake_ado) -> None:
    name, host_id = _org(fake_ado)
    org_id = f"acme-{uuid.uuid4().hex[:6]}"
    link = _link(host, org_id)
    browser.get(link)
    assert org_id in _text(browser) and browser.get_cookie("setup_session") is None  # a scanner's GET uses nothing
    browser.get(link)  # so the person's own click still works
    _shot(browser, "open")
    _click(browser, "Open the setup page")
    assert browser.current_url == f"{host.url}/api/setup"  # the link's token left the address bar
    assert "Connect Azure DevOps" in browser.title and org_id in _text(browser)
    cookie = browser.get_cookie("setup_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/api/setup"
    _shot(browser, "connect")

    _fill(browser, "org_url", fake_ado.org_url(name))
    browser.find_element(_by("CSS_SELECTOR"), "input[name=auth][value=pat]").click()
    _fill(browser, "pat", PAT)
    _click(browser, "Check and connect")
    assert f"Connected to {name}" in _text(browser), _text(browser)
    _no_secret(browser, PAT)
    assert IntegrationStore().get(host_id).credentials == {"type": "pat", "token": PAT}
    # connectionData is a preview API: the strict fake refuses it without -preview (and fails the test).
    [connection] = [r for r in fake_ado.requests if r.path.lower() == f"/{name}/_apis/connectiondata"]
    assert connection.headers["Accept"] == "application/json;api-version=7.1-preview.1"

    # What to sync, then a state rule picked from the organization's own lists.
    browser.find_element(_by("NAME"), "sync_status_forward").click()
    browser.find_element(_by("NAME"), "sync_comments").click()
    _click(browser, "Save what to sync")
    assert "Saved: 4 of 6 kinds of change are synced." in _text(browser)
    _shot(browser, "sync")
    _choose(browser, "project", "Web")
    _click(browser, "Next: choose the type")
    _choose(browser, "type", "User Story")
    _click(browser, "Next: choose the states")
    _choose(browser, "resolved", "Closed (Completed)")
    _choose(browser, "unresolved", "Active (InProgress)")
    _shot(browser, "rule")
    _click(browser, "Add the rule")
    assert "Added a rule for User Story in Web: resolve to Closed, reopen to Active." in _text(browser)
    installation = TrackerStore().get_installation(host_id, org_id)
    assert installation.sync_status_forward and installation.sync_comments and installation.sync_status_reverse
    assert [rule.public() for rule in installation.state_rules] == [
        {"project": "Web", "type": "User Story", "resolved": "Closed", "unresolved": "Active"}
    ]

    # The service hook, created in the fake for the person, and the last page.
    _click(browser, "Next: create the service hook", kind="a")
    _shot(browser, "hook")
    _click(browser, "Create the service hook")
    assert "The service hook was created" in _text(browser) and "What now works" in _text(browser)
    subscriptions = fake_ado.subscriptions(name)  # workitem.updated and its workitem.commented twin
    assert sorted(s["eventType"] for s in subscriptions) == ["workitem.commented", "workitem.updated"]
    assert {s["consumerInputs"]["url"] for s in subscriptions} == {host.env["WEBHOOK_PUBLIC_URL"]}
    _shot(browser, "done")
    _no_secret(browser, PAT, IntegrationStore().get(host_id).webhook_secret)

    # And the test the last page suggests, with a real work item change.
    fake_ado.add_work_item(name, 41, {"System.State": "Active"}, project="p-web")
    assert host.call("PUT", f"/api/orgs/{org_id}/issues/I41", json={"title": "Checkout fails"}).status_code == 201
    assert host.call("PUT", f"/api/orgs/{org_id}/issues/I41/links/{host_id}/41").status_code in (200, 201)
    fake_ado.update_work_item(name, 41, {"System.State": "Resolved"})
    wait_for(lambda: tracked_issue(host, org_id, 41)["status"] == "resolved", what="the work item change to sync")


def test_a_wrong_credential_is_said_in_plain_words(browser, host, fake_ado) -> None:
    name, host_id = _org(fake_ado)
    _open(browser, _link(host, f"acme-{uuid.uuid4().hex[:6]}"))
    _fill(browser, "org_url", fake_ado.org_url(name))
    browser.find_element(_by("CSS_SELECTOR"), "input[name=auth][value=pat]").click()
    _fill(browser, "pat", WRONG_PAT)
    _click(browser, "Check and connect")
    assert "Azure DevOps refused the personal access token" in _text(browser)
    assert "expired or was revoked" in _text(browser)
    _no_secret(browser, WRONG_PAT)
    assert browser.find_element(_by("NAME"), "pat").get_attribute("value") == ""
    assert IntegrationStore().get(host_id) is None
    _shot(browser, "wrong-credential")


def test_another_organizations_credential_is_neither_borrowed_nor_replaced(browser, host, fake_ado) -> None:
    """Issue 18, finding 1, from the setup page: tracker organization B syncs with the Azure DevOps organization
    (an operator connected it with B's PAT and installed it for B). Organization A proves access with an X
    member's PAT of its own: its credential is kept for A alone, B's is untouched, and what A then does in Azure
    DevOps is done with A's PAT (its work items are A's), never with B's; when A's PAT is revoked, A's work
    fails instead of borrowing B's."""
    name, host_id = _org(fake_ado)
    b_pat, a_pat = "b-operator-pat-0123456789", "a-member-pat-0123456789"
    fake_ado.add_pat(name, b_pat, identity="Bea Bot <bea@b.example>")
    fake_ado.add_pat(name, a_pat, identity="Ann Member <ann@a.example>")
    b_org, a_org = f"b-{uuid.uuid4().hex[:6]}", f"a-{uuid.uuid4().hex[:6]}"
    body = {"name": name, "domain_name": fake_ado.org_url(name), "credentials": {"type": "pat", "token": b_pat}}
    assert host.call("PUT", f"/api/vsts/integrations/{host_id}", json=body).status_code == 201
    sync = {"sync_reverse_assignment": True, "sync_status_reverse": True}
    assert host.call("PUT", f"/api/orgs/{b_org}/integrations/{host_id}", json=sync).status_code == 201

    browser.delete_all_cookies()
    _open(browser, _link(host, a_org))
    _fill(browser, "org_url", fake_ado.org_url(name))
    browser.find_element(_by("CSS_SELECTOR"), "input[name=auth][value=pat]").click()
    _fill(browser, "pat", a_pat)
    _click(browser, "Check and connect")
    assert "kept for this organization only" in _text(browser), _text(browser)
    _no_secret(browser, a_pat, b_pat)
    assert IntegrationStore().get(host_id).credentials == {"type": "pat", "token": b_pat}

    def create(org: str) -> requests.Response:
        assert host.call("PUT", f"/api/orgs/{org}/issues/I1", json={"title": "Checkout fails"}).status_code in (
            200,
            201,
        )
        work_item = {"integration_id": host_id, "project": "Web", "type": "Bug"}
        return host.call("POST", f"/api/orgs/{org}/issues/I1/workitems", json=work_item)

    made = {org: create(org) for org in (a_org, b_org)}
    assert all(answer.status_code == 201 for answer in made.values()), {o: a.text for o, a in made.items()}
    by = {
        org: fake_ado.work_item(name, answer.json()["work_item_id"])["fields"]["System.ChangedBy"]
        for org, answer in made.items()
    }
    assert "Ann Member" in by[a_org] and "Bea Bot" in by[b_org], by

    fake_ado.remove_pat(name, a_pat)
    refused = host.call(
        "POST",
        f"/api/orgs/{a_org}/issues/I1/workitems",
        json={"integration_id": host_id, "project": "Web", "type": "Bug"},
    )
    assert refused.status_code >= 400 and b_pat not in refused.text
    assert IntegrationStore().get(host_id).needs_reauth is False  # A's refused PAT is not the integration's


def test_field_defaults_offer_a_types_required_fields_and_their_allowed_values(browser, host, fake_ado) -> None:
    """Contract §17 on the setup page: a process rule makes Custom.Team required on Task; the sync step lists it,
    with its allowed values as a select, and saves the chosen one into the installation's field_defaults."""
    name, host_id = _org(fake_ado)
    fake_ado.require_field(name, "Web", "Task", "Custom.Team", ("Payments", "Web"))
    org_id = f"acme-{uuid.uuid4().hex[:6]}"
    _open(browser, _link(host, org_id))
    _fill(browser, "org_url", fake_ado.org_url(name))
    browser.find_element(_by("CSS_SELECTOR"), "input[name=auth][value=pat]").click()
    _fill(browser, "pat", PAT)
    _click(browser, "Check and connect")
    assert f"Connected to {name}" in _text(browser), _text(browser)
    assert "No field defaults yet." in _text(browser)  # connecting leads to the sync step
    from selenium.webdriver.support.ui import Select

    Select(browser.find_element(_by("ID"), "defaults_project")).select_by_visible_text("Web")
    _click(browser, "Next: choose the type and its required fields")
    _choose(browser, "type", "Task")
    _click(browser, "Next: its required fields")
    assert "Custom.Team" in _text(browser) and "System.Title" not in _text(browser)
    team = Select(browser.find_element(_by("ID"), "field_0"))
    assert [o.text for o in team.options] == ["(no default)", "Payments", "Web"]
    team.select_by_visible_text("Payments")
    _shot(browser, "field-defaults")
    _click(browser, "Save the field defaults")
    assert "Saved the field defaults for Task in Web: Custom.Team = Payments." in _text(browser)
    assert "Custom.Team = Payments" in _text(browser)  # listed on the sync step
    saved = TrackerStore().get_installation(host_id, org_id)
    assert [d.public() for d in saved.field_defaults] == [
        {"project": "Web", "type": "Task", "fields": {"Custom.Team": "Payments"}}
    ]
    # The type was read at the server's api-version (the strict fake checks it, and fails the test otherwise).
    assert any(r.path.lower() == f"/{name}/web/_apis/wit/workitemtypes/task" for r in fake_ado.requests)


def test_an_expired_link_says_to_ask_for_a_new_one(browser, host) -> None:
    old = create_link({"org_id": "acme", "lifetime_minutes": 1}, base_url=host.url, now=time.time() - 120)
    browser.get(old["url"])
    assert "This setup link has expired. Ask the app's operator for a new setup link." in _text(browser)
    assert browser.get_cookie("setup_session") is None or "acme" not in str(browser.get_cookie("setup_session"))
    _shot(browser, "expired-link")
    assert requests.get(old["url"], timeout=30, allow_redirects=False).status_code == 410


@pytest.fixture(scope="module")
def other_origin() -> Iterator[tuple[str, dict[str, bytes]]]:
    """Another origin of this machine (same site, another port), serving `pages`: where a forged form lives."""
    pages: dict[str, bytes] = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = pages.get(self.path, b"")
            self.send_response(200 if body else 404)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", pages
    server.shutdown()


def test_a_forged_form_post_is_refused_and_saves_nothing(browser, host, fake_ado, other_origin) -> None:
    name, host_id = _org(fake_ado)
    _open(browser, _link(host, f"acme-{uuid.uuid4().hex[:6]}"))  # the victim has a session, and its cookie is sent
    origin, pages = other_origin
    pages["/forged"] = (
        f'<form method="post" action="{host.url}/api/setup/connect">'
        f'<input name="org_url" value="{fake_ado.org_url(name)}"><input name="auth" value="pat">'
        f'<input name="pat" value="{PAT}"><input name="form_token" value="guessed">'
        "<button>Win a prize</button></form>"
    ).encode()
    browser.get(f"{origin}/forged")
    _click(browser, "Win a prize")
    assert "This form was not sent from this setup page, so nothing was saved." in _text(browser)
    assert IntegrationStore().get(host_id) is None
    _shot(browser, "forged")
    # From the page itself, but with a wrong anti-forgery token: refused too.
    browser.get(f"{host.url}/api/setup")
    browser.execute_script("document.querySelector('input[name=form_token]').value = 'forged'")
    _fill(browser, "org_url", fake_ado.org_url(name))
    browser.find_element(_by("CSS_SELECTOR"), "input[name=auth][value=pat]").click()
    _fill(browser, "pat", PAT)
    _click(browser, "Check and connect")
    assert "nothing was saved" in _text(browser)
    assert IntegrationStore().get(host_id) is None


def test_sentrys_redirect_is_accepted_once(browser, host) -> None:
    slug = f"s{uuid.uuid4().hex[:8]}"
    installation = SentryStore().put(
        SentryInstallation(uuid=str(uuid.uuid4()), organization_slug=slug, token="t", grant_code_hash=token_hash("g1"))
    )
    address = f"{host.url}/api/setup?code=g1&installationId={installation.uuid}&orgSlug={slug}"
    browser.delete_all_cookies()
    browser.get(address)
    assert browser.current_url == f"{host.url}/api/setup"
    assert f"sentry-{slug}" in _text(browser) and "Connect Azure DevOps" in browser.title
    browser.get(address)
    assert "This setup address was used already." in _text(browser)
    _shot(browser, "sentry-used")


def test_page_weights_are_reported(browser, host) -> None:
    """Printed for the report (`pytest -s`); every page is one request and well under 20 KB. The first page is
    measured here, so that the test measures something when it runs alone; the others when their tests ran."""
    browser.delete_all_cookies()
    _open(browser, _link(host, f"acme-{uuid.uuid4().hex[:6]}"))
    _shot(browser, "connect")
    assert WEIGHTS["connect"][0] > 1000  # a whole page was measured, not an error body
    for name, (size, count) in sorted(WEIGHTS.items()):
        print(f"setup-{name}: {size} bytes of HTML, {count} request(s)")
        assert size < 20_000 and count == 1
