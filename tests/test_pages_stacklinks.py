"""Stack frame links in a real browser (headless Chromium), the app served by the local host beside the fake
Azure DevOps: the setup page's step "Link stack frames to code" (repositories listed from Azure DevOps, no
JavaScript), then a click on a link in a page laid out like Sentry's stack frame, which lands on the fake Azure
Repos file view at that line (contract §18)."""

from __future__ import annotations

import http.server
import threading
import uuid
from collections.abc import Iterator
from html import escape
from urllib.parse import urlencode

import pytest

from devhost.azurite import free_port
from shared.model.sentry import INTERNAL, SentryInstallation
from shared.store.sentry import SentryStore
from tests.browser import by, choose, click, fill, text

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("azurite")]

PAT = "stacklinks-pat-0123456789abcdef"


def frame_page(link: str, filename: str, line: int) -> bytes:
    """A stack frame as Sentry's issue page lays it out: the file, the function and line, and the integration's
    "open in" link beside the context line, opening a new tab (openInContextLine)."""
    return (
        "<!doctype html><title>Sentry issue</title><div class='traceback'><ul class='frames'>"
        "<li class='frame'><div class='title'>"
        f"<code class='filename'>{escape(filename)}</code> in <code class='function'>charge</code> at line "
        f"<span class='lineno'>{line}</span></div>"
        f"<ol class='context'><li class='active'><pre>raise PaymentError()</pre>"
        f"<a class='open-in' href='{escape(link)}' target='_blank' rel='noreferrer'>Open this line in Azure Repos</a>"
        "</li></ol></li></ul></div>"
    ).encode()


@pytest.fixture
def sentry_page() -> Iterator[dict[str, bytes | int]]:
    served: dict[str, bytes | int] = {"body": b""}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = served["body"]
            assert isinstance(body, bytes)
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    port = free_port()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    served["port"] = port
    yield served
    server.shutdown()
    server.server_close()


def test_a_person_maps_a_repository_and_a_stack_frame_link_lands_on_the_line(
    browser, host, fake_ado, sentry_page
) -> None:
    name, host_id = f"k{uuid.uuid4().hex[:8]}", str(uuid.uuid4())
    fake_ado.add_org(name, host_id)
    fake_ado.add_pat(name, PAT)
    fake_ado.add_project(name, "p-shop", "Shop", process="Agile")
    fake_ado.add_repository(name, "Shop", "web", ["/src/app.py"])
    fake_ado.add_repository(name, "Shop", "billing", {"release": ["/invoice.py"]})
    slug, installation_uuid = f"s{uuid.uuid4().hex[:8]}", str(uuid.uuid4())
    SentryStore().put(SentryInstallation(installation_uuid, slug, kind=INTERNAL, token="static-token"))
    org_id = f"sentry-{slug}"

    made = host.call("POST", "/api/setup/links", json={"org_id": org_id, "lifetime_minutes": 10})
    assert made.status_code == 201, made.text
    browser.get(made.json()["url"])
    click(browser, "Open the setup page")
    fill(browser, "org_url", fake_ado.org_url(name))
    browser.find_element(by("CSS_SELECTOR"), "input[name=auth][value=pat]").click()
    fill(browser, "pat", PAT)
    click(browser, "Check and connect")
    assert f"Connected to {name}" in text(browser), text(browser)

    click(browser, "Link stack frames to code", kind="a")
    assert "No code mappings yet." in text(browser)
    choose(browser, "project", "Shop")
    click(browser, "Next: choose the repository")
    options = [o.text for o in browser.find_elements(by("CSS_SELECTOR"), "select[name=repository] option")]
    assert options == ["billing", "web"]  # listed from Azure DevOps
    choose(browser, "repository", "billing")
    fill(browser, "branch", "release")
    fill(browser, "stack_root", "app/billing/")
    fill(browser, "source_root", "")
    click(browser, "Add the mapping")
    assert "Added: app/billing/ links to Shop/billing on release." in text(browser), text(browser)
    choose(browser, "project", "Shop")
    click(browser, "Next: choose the repository")
    choose(browser, "repository", "web")
    fill(browser, "stack_root", "app/")
    fill(browser, "source_root", "src")
    fill(browser, "sentry_project", "backend")
    click(browser, "Add the mapping")
    saved = host.call("GET", f"/api/orgs/{org_id}/code-mappings").json()
    assert [(m["stack_root"], m["repository"], m["branch"], m["sentry_project"]) for m in saved] == [
        ("app/billing/", "billing", "release", "*"),
        ("app/", "web", "main", "backend"),
    ]
    assert PAT not in browser.page_source

    # Sentry's stack frame, with the link Sentry builds: webhook host + uri + installationId and projectSlug,
    # then lineNo and filename from the frame.
    query = urlencode({"installationId": installation_uuid, "projectSlug": "backend"})
    frame = urlencode({"lineNo": 10, "filename": "app/billing/invoice.py"})
    link = f"{host.url}/api/sentry/stacktrace-link?{query}&{frame}"
    sentry_page["body"] = frame_page(link, "app/billing/invoice.py", 10)
    browser.get(f"http://127.0.0.1:{sentry_page['port']}/organizations/{slug}/issues/1/")
    first_tab = browser.current_window_handle
    browser.find_element(by("CSS_SELECTOR"), "a.open-in").click()
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(browser, 30).until(lambda b: len(b.window_handles) == 2)
    [new_tab] = [h for h in browser.window_handles if h != first_tab]
    browser.switch_to.window(new_tab)
    WebDriverWait(browser, 30).until(lambda b: "_git/" in b.current_url and "Repos" in b.title)
    assert browser.current_url.startswith(
        fake_ado.org_url(name) + "Shop/_git/billing?path=/invoice.py&version=GBrelease&line=10&lineEnd=11"
    )
    assert browser.find_element(by("ID"), "line").text == "10"
    browser.close()
    browser.switch_to.window(first_tab)

    # A frame whose file is not in the mapped repository: the app's page, naming the file and how to add a mapping.
    missing = f"{host.url}/api/sentry/stacktrace-link?{query}&" + urlencode({"lineNo": 3, "filename": "app/gone.py"})
    browser.get(missing)
    page = text(browser)
    assert "app/gone.py" in page and "Link stack frames to code" in page and "billing" not in page
