"""A real browser for the page tests: Debian's Chromium, headless, driven by Selenium through chromedriver.

`make test` installs both when they are missing (through apt, as root); where it could not, the tests that need
the browser are skipped with a message saying so, never passed. Chromium starts with the flags this machine's
closed network needs (no background networking: its refused connections otherwise slow every start).
"""

from __future__ import annotations

import shutil
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1200,900",
)


def browser_missing() -> str | None:
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not Path(p).exists()]
    return (
        f"SKIPPED BROWSER TESTS: {', '.join(missing)} not installed (make test installs them as root)"
        if missing
        else None
    )


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """One headless Chromium for the module (a fresh profile), or a loud skip when it is not installed."""
    reason = browser_missing()
    if reason:
        warnings.warn(reason, stacklevel=1)
        print(f"\n*** {reason} ***")
        pytest.skip(reason)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    for flag in (*FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def by(what: str) -> object:
    """Selenium's locator kind by name (`NAME`, `TAG_NAME`, ...), imported only where a browser runs."""
    from selenium.webdriver.common.by import By

    return getattr(By, what)


def text(browser) -> str:
    return browser.find_element(by("TAG_NAME"), "body").text


def fill(browser, name: str, value: str) -> None:
    field = browser.find_element(by("NAME"), name)
    field.clear()
    field.send_keys(value)


def choose(browser, name: str, label: str) -> None:
    from selenium.webdriver.support.ui import Select

    Select(browser.find_element(by("NAME"), name)).select_by_visible_text(label)


def click(browser, text: str, *, kind: str = "button") -> None:
    """Click a button (or a link) that loads a page, and wait for that page: the event, not a sleep."""
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    old = browser.find_element(by("TAG_NAME"), "html")
    browser.find_element(by("XPATH"), f"//{kind}[normalize-space()='{text}']").click()
    WebDriverWait(browser, 30).until(expected_conditions.staleness_of(old))
    WebDriverWait(browser, 30).until(lambda b: b.execute_script("return document.readyState") == "complete")
