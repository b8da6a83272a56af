"""`GET /api/status` and its redrive form (`functions/status.py`, `shared.pages.status`), called as the Functions
host calls them: the page with its session cookie and headers, a redrive that moves a poisoned message back,
every forged or malformed post refused with a sentence and nothing moved, and no secret in the page."""

from __future__ import annotations

import re
from dataclasses import replace
from html import unescape
from urllib.parse import urlencode

import azure.functions as func
import pytest

from functions.status import status_page, status_redrive
from shared.model.sentry import INTERNAL, SentryInstallation
from shared.pages import status
from shared.store import queues
from shared.store.integrations import IntegrationStore
from shared.store.sentry import SentryStore
from tests.helpers import count_storage_requests, make_integration, new_id

pytestmark = pytest.mark.usefixtures("azurite")

LOCAL = "http://127.0.0.1:7071"
FORM = "application/x-www-form-urlencoded"


@pytest.fixture
def app_queue(monkeypatch: pytest.MonkeyPatch) -> str:
    """The app's only queue during the test, of this test alone; one message waits in its poison queue."""
    name = f"sp{new_id()[:8]}"
    monkeypatch.setattr(queues, "APP_QUEUES", (name,))
    queues.enqueue("a poisoned message", name + queues.POISON_SUFFIX)
    return name


def get_page(url: str = f"{LOCAL}/api/status", cookie: str | None = None) -> func.HttpResponse:
    headers = {"Cookie": cookie} if cookie else {}
    return status_page(func.HttpRequest("GET", url, headers=headers, body=b""))


def session() -> tuple[str, str]:
    """(the cookie a browser would send back, the form token of the page)."""
    response = get_page()
    cookie = response.headers["Set-Cookie"].split(";")[0]
    token = re.search(r'name="token" value="([^"]+)"', response.get_body().decode()).group(1)
    return cookie, token


def post(body: bytes | str, headers: dict[str, str]) -> func.HttpResponse:
    raw = body.encode() if isinstance(body, str) else body
    return status_redrive(func.HttpRequest("POST", f"{LOCAL}/api/status/redrive", headers=headers, body=raw))


def poisoned(queue: str) -> int:
    return queues.depth(queue + queues.POISON_SUFFIX) or 0


def test_the_page_is_html_with_a_strict_policy_and_a_strict_session_cookie(app_queue) -> None:
    response = get_page()
    assert response.status_code == 200 and response.mimetype == "text/html"
    assert "default-src 'none'" in response.headers["Content-Security-Policy"]
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith(f"{status.COOKIE}=") and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert "Path=/api/status" in cookie and "Secure" not in cookie  # loopback: plain http
    html = response.get_body().decode()
    assert f'id="queue-{app_queue}"' in html and "1 message(s) failed every retry" in html
    assert 'action="/api/status/redrive"' in html and "<script" not in html and "style=" not in html
    secure = get_page("https://my-app.azurewebsites.net/api/status?code=k").headers["Set-Cookie"]
    assert "; Secure" in secure


def test_a_browser_with_a_valid_session_keeps_it(app_queue) -> None:
    cookie, token = session()
    again = get_page(cookie=cookie)
    assert "Set-Cookie" not in again.headers and token in again.get_body().decode()


def test_redrive_from_the_form_moves_the_message_back_and_shows_the_new_depths(app_queue) -> None:
    cookie, token = session()
    body = urlencode({"queue": app_queue + "-poison", "token": token})
    response = post(body, {"Cookie": cookie, "Content-Type": FORM, "Sec-Fetch-Site": "same-origin"})
    html = response.get_body().decode()
    assert response.status_code == 200, html
    assert f"Moved 1 message(s) from {app_queue}-poison back to {app_queue}." in html
    assert (poisoned(app_queue), queues.depth(app_queue)) == (0, 1)
    assert "failed every retry" not in html


@pytest.mark.parametrize(
    ("change", "status_code", "sentence"),
    [
        ({"Cookie": None}, 403, "The form has expired or did not come from the status page"),
        ({"Sec-Fetch-Site": "cross-site"}, 403, "did not come from this app's status page"),
        ({"Sec-Fetch-Site": "same-site"}, 403, "did not come from this app's status page"),
        ({"Sec-Fetch-Site": None, "Origin": "https://evil.example"}, 403, "did not come from this app's status page"),
        ({"Content-Type": "text/plain"}, 415, "The form must be sent as application/x-www-form-urlencoded."),
        ({"token": "forged"}, 403, "The form has expired or did not come from the status page"),
        ({"body": "queue=x&token=y&extra=1"}, 400, "The form must hold exactly one each of: queue, token."),
        ({"body": "queue=a&queue=b&token=y"}, 400, "The form must hold exactly one each of: queue, token."),
        ({"body": b"\xff\xfe"}, 400, "The form must hold exactly one each of: queue, token."),
        ({"body": "x" * 3000}, 413, "The form is larger than 2048 bytes."),
        ({"queue": "vsts-nope-poison"}, 404, "The app has no queue named vsts-nope-poison."),
        ({"queue": "NOT a queue"}, 400, "The queue name must be"),
    ],
)
def test_a_forged_or_malformed_post_is_refused_with_a_sentence_and_moves_nothing(
    app_queue, change: dict, status_code: int, sentence: str
) -> None:
    cookie, token = session()
    headers = {"Cookie": cookie, "Content-Type": FORM, "Sec-Fetch-Site": "same-origin"}
    form = {"queue": app_queue + "-poison", "token": token}
    for key in ("queue", "token"):
        form[key] = change.get(key, form[key])
    body = change.get("body", urlencode(form))
    for name in ("Cookie", "Sec-Fetch-Site", "Origin", "Content-Type"):
        if name in change:
            headers.pop(name, None)
            if change[name] is not None:
                headers[name] = change[name]
    response = post(body, headers)
    html = unescape(response.get_body().decode())
    assert response.status_code == status_code, html
    assert sentence in html and response.mimetype == "text/html"
    assert poisoned(app_queue) == 1 and queues.depth(app_queue) is None


def test_origin_is_checked_when_the_browser_sends_no_fetch_metadata(app_queue) -> None:
    cookie, token = session()
    body = urlencode({"queue": app_queue, "token": token})
    same = post(body, {"Cookie": cookie, "Content-Type": FORM, "Origin": "http://127.0.0.1:7071"})
    assert same.status_code == 200 and poisoned(app_queue) == 0


def test_an_expired_session_is_refused(app_queue) -> None:
    import time

    response = status.status_page(f"{LOCAL}/api/status", None, now=time.time() - 2 * status.SESSION_SECONDS)
    cookie = response.headers["Set-Cookie"].split(";")[0]
    token = re.search(r'name="token" value="([^"]+)"', response.html).group(1)
    body = urlencode({"queue": app_queue, "token": token})
    refused = post(body, {"Cookie": cookie, "Content-Type": FORM, "Sec-Fetch-Site": "same-origin"})
    assert refused.status_code == 403 and poisoned(app_queue) == 1


def test_no_secret_reaches_the_page(app_queue) -> None:
    integration = make_integration(credentials={"type": "pat", "token": "pat-0123456789-secret"})
    IntegrationStore().update(integration.id, lambda cur: replace(cur, needs_reauth=True))
    SentryStore().put(SentryInstallation(new_id(), f"s{new_id()[:8]}", kind=INTERNAL, token="sntrys_secret_token"))
    html = get_page("http://127.0.0.1:7071/api/status?code=the-function-key").get_body().decode()
    assert integration.id in html and "needs_reauth" in html
    for secret in ("pat-0123456789-secret", integration.webhook_secret, "sntrys_secret_token", "the-function-key"):
        assert secret not in html


def test_a_page_view_costs_a_fixed_number_of_storage_requests(app_queue) -> None:
    get_page()  # clients made, tables created by earlier writes
    with count_storage_requests() as calls:
        assert get_page().status_code == 200
    # integrations, last deliveries, tracker installations, Sentry installations, timers, comment counts,
    # failures: one query each; each queue and its poison queue: one request each.
    assert len(calls) == 7 + 2 * len(queues.APP_QUEUES), calls


def test_without_secrets_key_the_page_says_the_app_is_misconfigured(app_queue, env) -> None:
    env.delenv("SECRETS_KEY")
    response = get_page()
    assert response.status_code == 503 and "The app is misconfigured" in response.get_body().decode()
