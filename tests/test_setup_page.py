"""The setup page's handlers (contract §14) with `azure.functions.HttpRequest`, on Azurite, Azure DevOps and
Microsoft Entra ID faked at the HTTP boundary: links and Sentry's redirect open a session once; each step's
failure is said in plain words and saves nothing; forged posts are refused; no entered secret is on a page."""

from __future__ import annotations

import json
import re
import time
import uuid
from dataclasses import replace
from urllib.parse import urlencode

import azure.functions as func
import pytest
import requests

from shared.ado.credentials import pat_header
from shared.model.integration import DISABLED
from shared.model.sentry import SentryInstallation
from shared.model.tracker import Installation
from shared.pages.setup_entry import create_link, token_hash
from shared.store.integrations import IntegrationStore
from shared.store.sentry import SentryStore
from shared.store.tracker import TrackerStore
from tests.helpers import make_integration, new_id

pytestmark = pytest.mark.usefixtures("azurite")

HOST = "127.0.0.1:7071"
ORIGIN = f"http://{HOST}"
ORG_URL = "https://dev.azure.com/fabrikam/"
PAT = "pat-entered-0123456789abcdef"
SECRET = "client-secret-entered~0123456789"
FORM = "application/x-www-form-urlencoded"


def _handler(registered_functions: dict, name: str):
    return registered_functions[name].get_user_function()


def _get(registered_functions: dict, params: dict[str, str], cookie: str | None = None) -> func.HttpResponse:
    headers = {"host": HOST, **({"cookie": cookie} if cookie else {})}
    req = func.HttpRequest("GET", f"{ORIGIN}/api/setup?{urlencode(params)}", headers=headers, params=params, body=b"")
    return _handler(registered_functions, "setup_page")(req)


def _post(
    registered_functions: dict, step: str, fields: dict[str, str], cookie: str | None, **headers: str
) -> func.HttpResponse:
    all_headers = {"host": HOST, "content-type": FORM, "origin": ORIGIN, "sec-fetch-site": "same-origin", **headers}
    if cookie:
        all_headers["cookie"] = cookie
    req = func.HttpRequest(
        "POST", f"{ORIGIN}/api/setup/{step}", headers=all_headers, body=urlencode(fields).encode(), params={}
    )
    return _handler(registered_functions, f"setup_{step}")(req)


def _text(response: func.HttpResponse) -> str:
    return response.get_body().decode()


def _cookie(response: func.HttpResponse) -> str:
    return response.headers["Set-Cookie"].split(";", 1)[0]


def _form_token(response: func.HttpResponse) -> str:
    return re.search(r'name="form_token" value="([^"]+)"', _text(response)).group(1)


def _session(registered_functions: dict, org_id: str) -> tuple[str, str]:
    """(cookie, form token) of a session opened with a fresh link."""
    link = create_link({"org_id": org_id}, base_url=ORIGIN, now=time.time())
    opened = _post(registered_functions, "open", {"link": link["url"].split("link=")[1]}, None)
    cookie = _cookie(opened)
    return cookie, _form_token(_get(registered_functions, {}, cookie))


def _connection_data(ado, org_url: str = ORG_URL, status: int = 200, instance: str | None = None) -> str:
    instance = instance or str(uuid.uuid4())
    ado.get(f"{org_url}_apis/connectionData", status=status, json={"instanceId": instance} if status == 200 else {})
    return instance


def _wiql(ado, org_url: str = ORG_URL, status: int = 200) -> None:
    ado.post(f"{org_url}_apis/wit/wiql", status=status, json={"workItems": []} if status == 200 else {})


# -- setup links -----------------------------------------------------------------------------------------


def test_a_link_is_made_with_the_function_key_route_and_opens_the_page_once(registered_functions) -> None:
    make = _handler(registered_functions, "create_setup_link")
    req = func.HttpRequest(
        "POST", f"{ORIGIN}/api/setup/links", body=json.dumps({"org_id": "acme", "lifetime_minutes": 5}).encode()
    )
    made = make(req)
    assert made.status_code == 201
    body = json.loads(made.get_body())
    assert body["url"].startswith(f"{ORIGIN}/api/setup?link=")
    assert time.time() + 240 < body["expires_at"] <= time.time() + 300
    token = body["url"].split("link=")[1]

    for _ in range(3):  # a GET, as a mail or chat scanner sends, shows a button and uses nothing
        shown = _get(registered_functions, {"link": token})
        assert shown.status_code == 200 and "Set-Cookie" not in shown.headers
        assert "Open the setup page" in _text(shown) and "acme" in _text(shown)
        assert 'action="/api/setup/open"' in _text(shown)
    forged = _post(registered_functions, "open", {"link": token}, None, origin="https://elsewhere.example")
    assert forged.status_code == 403 and "Set-Cookie" not in forged.headers  # and the link is still good
    opened = _post(registered_functions, "open", {"link": token}, None)
    assert opened.status_code == 303
    assert opened.headers["Location"] == "/api/setup"  # the token leaves the address bar
    cookie = opened.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/api/setup" in cookie
    assert "Secure" not in cookie  # served on loopback
    page = _get(registered_functions, {}, _cookie(opened))
    assert page.status_code == 200 and "Connect Azure DevOps" in _text(page) and "acme" in _text(page)
    assert token not in _text(page)

    for again in (
        _get(registered_functions, {"link": token}),
        _post(registered_functions, "open", {"link": token}, None),
    ):
        assert again.status_code == 410
        assert "used already" in _text(again) and "Set-Cookie" not in again.headers


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"org_id": ""},
        {"org_id": "a/b"},
        {"org_id": "acme", "lifetime_minutes": 1441},
        {"org_id": "acme", "lifetime_minutes": 0},
        {"org_id": "acme", "lifetime_minutes": True},
        {"org_id": "acme", "extra": 1},
    ],
)
def test_a_bad_link_request_is_400_and_saves_nothing(registered_functions, body: dict) -> None:
    req = func.HttpRequest("POST", f"{ORIGIN}/api/setup/links", body=json.dumps(body).encode())
    response = _handler(registered_functions, "create_setup_link")(req)
    assert response.status_code == 400 and list(json.loads(response.get_body())) == ["error"]


def test_an_expired_or_forged_link_says_so_and_what_to_do(registered_functions) -> None:
    old = create_link({"org_id": "acme", "lifetime_minutes": 1}, base_url=ORIGIN, now=time.time() - 120)
    expired = _get(registered_functions, {"link": old["url"].split("link=")[1]})
    assert expired.status_code == 410 and "has expired" in _text(expired) and "new setup link" in _text(expired)
    forged = _get(registered_functions, {"link": "not-a-link-anyone-made"})
    assert forged.status_code == 403 and "not valid" in _text(forged) and "Set-Cookie" not in forged.headers


def test_without_a_session_the_page_says_how_to_get_a_link(registered_functions) -> None:
    for cookie in (None, "setup_session=forged.value"):
        page = _get(registered_functions, {}, cookie)
        assert page.status_code == 200
        assert "setup link" in _text(page) and "form_token" not in _text(page)
        assert "default-src 'none'" in page.headers["Content-Security-Policy"]


# -- Sentry's redirect -------------------------------------------------------------------------------------


def _installation(code: str, *, created_at: float | None = None) -> SentryInstallation:
    slug = f"s{uuid.uuid4().hex[:8]}"
    installation = SentryInstallation(
        uuid=str(uuid.uuid4()),
        organization_slug=slug,
        token="tok",
        created_at=created_at,
        grant_code_hash=token_hash(code),
    )
    return SentryStore().put(installation)


def test_sentrys_redirect_opens_a_session_once(registered_functions) -> None:
    installation = _installation("grant-code-1")
    params = {"code": "grant-code-1", "installationId": installation.uuid, "orgSlug": installation.organization_slug}
    opened = _get(registered_functions, params)
    assert opened.status_code == 303 and opened.headers["Location"] == "/api/setup"
    page = _get(registered_functions, {}, _cookie(opened))
    assert f"sentry-{installation.organization_slug}" in _text(page)
    assert SentryStore().get(installation.uuid).setup_claimed_at is not None
    again = _get(registered_functions, params)
    assert again.status_code == 410 and "used already" in _text(again) and "install it again" in _text(again)


def test_a_redirect_that_does_not_match_the_installation_is_refused(registered_functions) -> None:
    installation = _installation("grant-code-2")
    good = {"code": "grant-code-2", "installationId": installation.uuid, "orgSlug": installation.organization_slug}
    for params in (
        {**good, "code": "grant-code-x"},
        {**good, "orgSlug": "another-org"},
        {"code": "grant-code-2"},
    ):
        refused = _get(registered_functions, params)
        assert refused.status_code == 403 and "does not match" in _text(refused)
    assert SentryStore().get(installation.uuid).setup_claimed_at is None  # the real redirect still works
    assert _get(registered_functions, good).status_code == 303


def test_a_redirect_before_the_installation_is_applied_waits_on_the_page(registered_functions) -> None:
    """Sentry sends the person and `installation.created` at once: the page says "a moment" and asks again (a
    meta refresh, the pages allow no script), then opens the session once the installation is saved."""
    code, uuid_, slug = "grant-code-4", str(uuid.uuid4()), f"s{uuid.uuid4().hex[:8]}"
    params = {"code": code, "installationId": uuid_, "orgSlug": slug}
    waiting = _get(registered_functions, params)
    assert waiting.status_code == 202 and "A moment" in _text(waiting), _text(waiting)
    assert "install it again" not in _text(waiting) and "Set-Cookie" not in waiting.headers
    refresh = re.search(r'<meta http-equiv="refresh" content="3;url=([^"]+)">', _text(waiting)).group(1)
    assert "tries=1" in refresh and f"installationId={uuid_}" in refresh.replace("&amp;", "&")
    SentryStore().put(
        SentryInstallation(uuid=uuid_, organization_slug=slug, token="tok", grant_code_hash=token_hash(code))
    )
    opened = _get(registered_functions, {**params, "tries": "1"})
    assert opened.status_code == 303 and f"sentry-{slug}" in _text(_get(registered_functions, {}, _cookie(opened)))


def test_a_redirect_whose_installation_never_arrives_stops_asking(registered_functions) -> None:
    params = {"code": "c", "installationId": str(uuid.uuid4()), "orgSlug": "acme", "tries": "40"}
    stopped = _get(registered_functions, params)
    assert stopped.status_code == 409 and "refresh" not in _text(stopped) and "operator" in _text(stopped)


def test_a_redirect_more_than_10_minutes_after_the_installation_is_refused(registered_functions) -> None:
    installation = _installation("grant-code-3", created_at=time.time() - 11 * 60)
    params = {"code": "grant-code-3", "installationId": installation.uuid, "orgSlug": installation.organization_slug}
    refused = _get(registered_functions, params)
    assert refused.status_code == 410 and "more than 10 minutes old" in _text(refused)


# -- step 1: connect ---------------------------------------------------------------------------------------


def test_connecting_with_a_pat_saves_the_integration_keyed_by_the_organizations_id(registered_functions, ado) -> None:
    org_id = f"org-{new_id()[:8]}"
    cookie, form_token = _session(registered_functions, org_id)
    instance = _connection_data(ado, instance=str(uuid.uuid4()).upper())
    _wiql(ado)
    fields = {"form_token": form_token, "org_url": "dev.azure.com/fabrikam/Web", "auth": "pat", "pat": PAT}
    page = _post(registered_functions, "connect", fields, cookie)
    assert page.status_code == 200, _text(page)
    assert "Connected to fabrikam" in _text(page) and PAT not in _text(page)
    saved = IntegrationStore().get(instance.lower())
    assert saved.domain_name == ORG_URL and saved.credentials == {"type": "pat", "token": PAT}
    installation = TrackerStore().get_installation(instance.lower(), org_id)
    assert installation.sync_status_reverse and installation.sync_reverse_assignment
    assert not installation.syncs_forward
    # The cookie now carries the integration; the connect page shows the credential as set, never its value.
    again = _get(registered_functions, {"step": "connect"}, _cookie(page))
    assert "set" in _text(again) and "fabrikam" in _text(again) and PAT not in _text(again)


ENTRA_TENANT = "3f2504e0-4f89-11d3-9a0c-0305e82c3301"
ENTRA_CLIENT = "6ba7b810-9dad-11d1-80b4-00c04fd430c8"


def _entra(ado, *, token_status: int = 200, error: str = "", tenant_found: bool = True) -> None:
    login = f"https://login.microsoftonline.com/{ENTRA_TENANT}"
    config = {
        "token_endpoint": f"{login}/oauth2/v2.0/token",
        "issuer": f"{login}/v2.0",
        "authorization_endpoint": f"{login}/oauth2/v2.0/authorize",
    }
    if tenant_found:
        ado.get(f"{login}/v2.0/.well-known/openid-configuration", json=config)
    else:
        ado.get(
            f"{login}/v2.0/.well-known/openid-configuration",
            status=400,
            json={"error": "invalid_tenant", "error_description": f"AADSTS90002: Tenant '{ENTRA_TENANT}' not found."},
        )
    ado.get(
        "https://login.microsoftonline.com/common/discovery/instance",
        json={"tenant_discovery_endpoint": f"{login}/v2.0/.well-known/openid-configuration", "metadata": []},
    )
    if token_status == 200:
        ado.post(
            f"{login}/oauth2/v2.0/token", json={"access_token": "entra-at", "expires_in": 3600, "token_type": "Bearer"}
        )
    else:
        ado.post(
            f"{login}/oauth2/v2.0/token",
            status=token_status,
            json={"error": "invalid_client", "error_description": error},
        )


def _entra_fields(form_token: str) -> dict[str, str]:
    # A fresh secret each time: azure-identity caches a credential per (tenant, client, secret).
    return {
        "form_token": form_token,
        "org_url": ORG_URL,
        "auth": "entra",
        "tenant_id": ENTRA_TENANT,
        "client_id": ENTRA_CLIENT,
        "client_secret": f"{SECRET}-{uuid.uuid4().hex}",
    }


def test_connecting_a_service_principal_sends_its_entra_token(registered_functions, ado) -> None:
    cookie, form_token = _session(registered_functions, f"org-{new_id()[:8]}")
    _entra(ado)
    instance = _connection_data(ado)
    _wiql(ado)
    fields = _entra_fields(form_token)
    page = _post(registered_functions, "connect", fields, cookie)
    assert page.status_code == 200, _text(page)
    assert fields["client_secret"] not in _text(page)
    assert IntegrationStore().get(instance).credentials["client_secret"] == fields["client_secret"]
    [call] = [c for c in ado.calls if "connectionData" in c.request.url]
    assert call.request.headers["Authorization"] == "Bearer entra-at"


@pytest.mark.parametrize(
    ("case", "sentence"),
    [
        ("pat-refused", "has expired or was revoked"),
        ("no-org", "has no organization at"),
        ("pat-no-scope", "lacks the scope Work Items (Read)"),
        ("sp-not-member", "not a member of the organization fabrikam"),
        ("sp-no-access", "may not read its work items"),
        ("wrong-tenant-app", "registered in another tenant"),
        ("wrong-secret", "The client secret is wrong"),
        ("expired-secret", "The client secret has expired"),
        ("no-tenant", "has no tenant"),
        ("down", "could not be reached or is unavailable"),
    ],
)
def test_a_credential_or_url_that_does_not_work_is_said_in_plain_words_and_saves_nothing(
    registered_functions, ado, case: str, sentence: str
) -> None:
    org_id = f"org-{new_id()[:8]}"
    cookie, form_token = _session(registered_functions, org_id)
    entra = case.startswith(("sp-", "wrong-", "expired-", "no-tenant"))
    errors = {
        "wrong-tenant-app": "AADSTS700016: Application with identifier 'x' was not found in the directory.",
        "wrong-secret": "AADSTS7000215: Invalid client secret provided.",
        "expired-secret": "AADSTS7000222: The provided client secret keys are expired.",
    }
    if entra:
        _entra(
            ado,
            token_status=401 if case in errors else 200,
            error=errors.get(case, ""),
            tenant_found=case != "no-tenant",
        )
    instance = str(uuid.uuid4())
    if case in ("pat-refused", "sp-not-member"):
        _connection_data(ado, status=401)
    elif case == "no-org":
        _connection_data(ado, status=404)
    elif case == "down":
        ado.get(f"{ORG_URL}_apis/connectionData", body=requests.ConnectionError("refused"))
    else:
        _connection_data(ado, instance=instance)
        _wiql(ado, status=401)
    fields = (
        _entra_fields(form_token)
        if entra
        else {"form_token": form_token, "org_url": ORG_URL, "auth": "pat", "pat": PAT}
    )
    page = _post(registered_functions, "connect", fields, cookie)
    text = _text(page)
    assert page.status_code == (503 if case == "down" else 400), text
    assert sentence in text
    assert PAT not in text and SECRET not in text
    assert 'value="https://dev.azure.com/fabrikam/"' in text  # what was entered stays, but no secret
    assert IntegrationStore().get(instance) is None
    assert "Set-Cookie" not in page.headers


# -- forged posts ------------------------------------------------------------------------------------------


def test_a_forged_post_is_refused_and_saves_nothing(registered_functions, ado) -> None:
    org_id = f"org-{new_id()[:8]}"
    cookie, form_token = _session(registered_functions, org_id)
    fields = {"form_token": form_token, "org_url": ORG_URL, "auth": "pat", "pat": PAT}
    other_cookie, _ = _session(registered_functions, org_id)
    cases = [
        (_post(registered_functions, "connect", {**fields, "form_token": "forged"}, cookie), 403),
        (_post(registered_functions, "connect", {k: v for k, v in fields.items() if k != "form_token"}, cookie), 403),
        (_post(registered_functions, "connect", fields, other_cookie), 403),  # another session's token
        (_post(registered_functions, "connect", fields, cookie, origin="https://evil.example"), 403),
        (_post(registered_functions, "connect", fields, cookie, **{"sec-fetch-site": "cross-site"}), 403),
        (_post(registered_functions, "connect", fields, None), 401),
        (_post(registered_functions, "connect", fields, cookie, **{"content-type": "text/plain"}), 400),
    ]
    for response, status in cases:
        assert response.status_code == status, _text(response)
        assert "Nothing was saved" in _text(response) or "nothing was saved" in _text(response)
    assert not [c for c in ado.calls if "dev.azure.com" in c.request.url]  # Azure DevOps was not even asked


# -- steps 2 and 3 -------------------------------------------------------------------------------------------


def _connected(registered_functions, ado) -> tuple[str, str, str, str]:
    org_id = f"org-{new_id()[:8]}"
    cookie, form_token = _session(registered_functions, org_id)
    instance = _connection_data(ado)
    _wiql(ado)
    ado.get(f"{ORG_URL}_apis/projects", json={"count": 1, "value": [{"id": str(uuid.uuid4()), "name": "Web"}]})
    page = _post(
        registered_functions,
        "connect",
        {"form_token": form_token, "org_url": ORG_URL, "auth": "pat", "pat": PAT},
        cookie,
    )
    assert page.status_code == 200, _text(page)
    return org_id, instance, _cookie(page), form_token


def test_what_to_sync_is_saved_and_keeps_the_state_rules(registered_functions, ado) -> None:
    org_id, instance, cookie, form_token = _connected(registered_functions, ado)
    store = TrackerStore()
    from shared.admin.tracker import put_installation

    put_installation(
        org_id,
        instance,
        {
            "sync_reverse_assignment": True,
            "sync_status_reverse": True,
            "state_rules": [{"project": "Web", "type": "Bug", "resolved": "Done"}],
        },
    )
    fields = {"form_token": form_token, "sync_status_forward": "on", "sync_comments": "on"}
    page = _post(registered_functions, "sync", fields, cookie)
    assert page.status_code == 200 and "Saved: 2 of 6" in _text(page)
    saved = store.get_installation(instance, org_id)
    assert (saved.sync_status_reverse, saved.sync_status_forward, saved.sync_comments) == (False, True, True)
    assert [rule.resolved for rule in saved.state_rules] == ["Done"]
    removed = _post(registered_functions, "rules", {"form_token": form_token, "remove": "0"}, cookie)
    assert removed.status_code == 200 and "Removed the rule for Bug in Web" in _text(removed)
    assert store.get_installation(instance, org_id).state_rules == ()


def test_a_step_before_connecting_asks_to_connect_first(registered_functions) -> None:
    cookie, form_token = _session(registered_functions, f"org-{new_id()[:8]}")
    for step in ("sync", "hook", "rules", "defaults"):
        page = _post(registered_functions, step, {"form_token": form_token}, cookie)
        assert page.status_code == 409 and "Connect an Azure DevOps organization first" in _text(page)


def test_the_service_hook_needs_webhook_public_url_and_says_so(registered_functions, ado, env) -> None:
    env.delenv("WEBHOOK_PUBLIC_URL")
    _, instance, cookie, form_token = _connected(registered_functions, ado)
    shown = _get(registered_functions, {"step": "hook"}, cookie)
    assert "WEBHOOK_PUBLIC_URL" in _text(shown) and f"{ORIGIN}/api/vsts/issue-updated" in _text(shown)
    page = _post(registered_functions, "hook", {"form_token": form_token}, cookie)
    assert page.status_code == 409 and "WEBHOOK_PUBLIC_URL is not set" in _text(page)
    assert IntegrationStore().get(instance).subscription_id is None


def test_the_service_hook_is_created_and_the_last_page_says_what_works(registered_functions, ado, env) -> None:
    env.setenv("WEBHOOK_PUBLIC_URL", "https://app.example/api/vsts/issue-updated")
    _, instance, cookie, form_token = _connected(registered_functions, ado)
    ado.post(f"{ORG_URL}_apis/hooks/subscriptions", json={"id": "sub-1", "status": "enabled"})
    page = _post(registered_functions, "hook", {"form_token": form_token}, cookie)
    text = _text(page)
    assert page.status_code == 200, text
    assert "The service hook was created" in text and "Test it with a real work item" in text
    assert "Resolving or reopening a work item in fabrikam" in text
    saved = IntegrationStore().get(instance)
    assert saved.subscription_id == "sub-1" and saved.webhook_secret not in text and PAT not in text


def test_another_organizations_credential_is_never_used_nor_replaced_by_this_one(registered_functions, ado) -> None:
    """Issue 18, finding 1: proving access to an Azure DevOps organization that another tracker organization
    already syncs with installs it here, with the credential entered here, kept for this organization alone: the
    other's is neither used (its forms ask with this one's PAT) nor replaced."""
    instance = str(uuid.uuid4())
    make_integration(integration_id=instance, credentials={"type": "pat", "token": "theirs-0123456789"})
    TrackerStore().put_installation(Installation(instance, f"other-{new_id()[:8]}", sync_status_reverse=True))
    org_id = f"org-{new_id()[:8]}"
    cookie, form_token = _session(registered_functions, org_id)
    _connection_data(ado, instance=instance)
    _wiql(ado)
    projects = ado.get(f"{ORG_URL}_apis/projects", json={"count": 1, "value": [{"id": "p1", "name": "Web"}]})
    fields = {"form_token": form_token, "org_url": ORG_URL, "auth": "pat", "pat": PAT}
    page = _post(registered_functions, "connect", fields, cookie)
    assert page.status_code == 200 and "kept for this organization only" in _text(page), _text(page)
    assert IntegrationStore().get(instance).credentials == {"type": "pat", "token": "theirs-0123456789"}
    installation = TrackerStore().get_installation(instance, org_id)
    assert installation.credentials == {"type": "pat", "token": PAT} and not installation.credential_shared
    [listed] = [call for call in ado.calls if call.request.url.startswith(f"{ORG_URL}_apis/projects")]
    assert listed.request.headers["Authorization"] == pat_header(PAT)  # the sync page's projects: this one's PAT
    assert projects.call_count == 1


@pytest.mark.parametrize("why", ["refused", "disabled"])
def test_a_broken_or_disabled_integration_of_another_is_neither_replaced_nor_enabled(
    registered_functions, ado, why: str
) -> None:
    """The other branch of finding 1: the other organization's credential is refused (needs_reauth), or an
    operator disabled the integration. The credential entered here does not replace it, nor enable it."""
    instance = str(uuid.uuid4())
    make_integration(integration_id=instance, credentials={"type": "pat", "token": "theirs-0123456789"})
    IntegrationStore().update(
        instance,
        lambda cur: replace(cur, needs_reauth=True) if why == "refused" else replace(cur, status=DISABLED),
    )
    org_id = f"org-{new_id()[:8]}"
    cookie, form_token = _session(registered_functions, org_id)
    _connection_data(ado, instance=instance)
    _wiql(ado)
    fields = {"form_token": form_token, "org_url": ORG_URL, "auth": "pat", "pat": PAT}
    page = _post(registered_functions, "connect", fields, cookie)
    assert page.status_code == 200, _text(page)
    stored = IntegrationStore().get(instance)
    assert stored.credentials == {"type": "pat", "token": "theirs-0123456789"}
    assert (stored.active, stored.needs_reauth) == ((True, True) if why == "refused" else (False, False))
    assert TrackerStore().get_installation(instance, org_id).credentials == {"type": "pat", "token": PAT}
    if why == "disabled":
        assert "operator has disabled" in _text(page)


def test_credentials_an_organization_entered_itself_are_replaced_by_it(registered_functions, ado) -> None:
    org_id, instance = f"org-{new_id()[:8]}", str(uuid.uuid4())
    for pat in ("first-pat-0123456789", "second-pat-0123456789"):
        cookie, form_token = _session(registered_functions, org_id)
        _connection_data(ado, instance=instance)
        _wiql(ado)
        fields = {"form_token": form_token, "org_url": ORG_URL, "auth": "pat", "pat": pat}
        assert _post(registered_functions, "connect", fields, cookie).status_code == 200
        stored = IntegrationStore().get(instance)
        assert (stored.credentials, stored.credential_owner) == ({"type": "pat", "token": pat}, org_id)
        assert TrackerStore().get_installation(instance, org_id).credentials == {}
