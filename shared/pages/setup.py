"""The setup page (contract §14): `GET /api/setup` and its form posts,
`POST /api/setup/{connect,sync,rules,defaults,hook,code}`.

`GET /api/setup` is entered with a one-time link (`?link=`), which only shows a button: its `POST /api/setup/open`
uses the link (mail and chat scanners GET links too). Sentry's redirect (`?code=&installationId=&orgSlug=`) is
claimed by the GET; while the app has not yet applied the installation it names, the page waits and asks again.
Either opens the session cookie and answers 303 to the bare `/api/setup`, so no token stays in the address bar or
the history. With a session it shows a step (`?step=connect|sync|hook|done`). A form post is
refused (403, nothing saved) unless it comes from this origin with the session's anti-forgery token.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit

from shared.clock import SYSTEM, Clock
from shared.errors import ConcurrentUpdate, InvalidInput, StorageUnavailable
from shared.pages import setup_code, setup_defaults, setup_rules, setup_steps
from shared.pages.render import Page, render
from shared.pages.setup_entry import NotYet, Refused, Usable, check_link, open_link, open_sentry_redirect
from shared.pages.setup_form import CONNECT_FIELDS, FORM_TOKEN, RULE_FIELDS, SYNC_FIELDS, parse_form
from shared.pages.setup_session import (
    COOKIE_PATH,
    Session,
    cookie_header,
    form_allowed,
    read_session,
)
from shared.pages.tokens import from_this_origin, is_loopback
from shared.settings import SettingsError

log = logging.getLogger(__name__)

STEPS = ("connect", "sync", "hook", "code", "done")
FIELDS = {
    "connect": CONNECT_FIELDS,
    "sync": {FORM_TOKEN, *SYNC_FIELDS},
    "rules": RULE_FIELDS,
    "hook": {FORM_TOKEN},
    "code": setup_code.CODE_FIELDS,
    "defaults": setup_defaults.DEFAULTS_FIELDS,
}
SENTRY_PARAMS = ("code", "installationId", "orgSlug")
LINK = "link"
# Sentry's redirect before the app applied `installation.created`: the page asks again every few seconds (a meta
# refresh: the pages allow no script), for about two minutes, then says what to do.
WAIT_SECONDS = 3
WAIT_TRIES = 40
TRIES = "tries"
NO_SESSION = (
    "To connect Azure DevOps, open the setup page from Sentry right after installing the integration, or ask the "
    "app's operator for a one-time setup link (POST /api/setup/links with the function key)."
)
FORGED = "This form was not sent from this setup page, so nothing was saved. Open /api/setup and try again."


@dataclass(frozen=True)
class PageRequest:
    """What the setup page reads of an HTTP request (the adapter in functions/ builds it); header names are
    lower-cased."""

    method: str
    url: str
    headers: Mapping[str, str]
    params: Mapping[str, str]
    body: bytes = b""

    @property
    def host(self) -> str:
        return self.headers.get("host") or urlsplit(self.url).netloc

    @property
    def secure(self) -> bool:
        """Whether the cookie needs `Secure`: everywhere but loopback, where the local host serves plain HTTP."""
        return not is_loopback(self.host)


def message_page(status: int, heading: str, message: str, *, kind: str = "bad", hint: str = "") -> Page:
    return render(
        "setup_message.html", status=status, heading=heading, message=message, kind=kind, hint=hint, location=""
    )


def show(request: PageRequest, *, clock: Clock = SYSTEM) -> Page:
    now = clock.now()
    params = request.params
    try:
        if LINK in params:
            # A GET only shows a button: mail and chat scanners open links too, and must not use this one up.
            return _link_page(check_link(params[LINK], now=now), params[LINK])
        if any(name in params for name in SENTRY_PARAMS):
            code, installation_id, slug = (params.get(name, "") for name in SENTRY_PARAMS)
            entered = open_sentry_redirect(code, installation_id, slug, now=now)
            if isinstance(entered, NotYet):
                return _waiting(entered, code, installation_id, slug, params.get(TRIES, ""))
            return _entered(entered, request, now)
        session = read_session(request.headers.get("cookie"), now=now)
        if session is None:
            return message_page(
                200,
                "Set up Azure Boards sync",
                "There is no setup session in this browser.",
                kind="ok",
                hint=NO_SESSION,
            )
        return _step(params.get("step") or "", session, request)
    except (StorageUnavailable, ConcurrentUpdate, SettingsError) as exc:
        return _unavailable(exc)


def _step(step: str, session: Session, request: PageRequest) -> Page:
    if step == "sync":
        return setup_steps.sync_page(session)
    if step == "hook":
        return setup_steps.hook_page(session, request.host, request.secure)
    if step == "code":
        return setup_code.code_page(session)
    if step == "done":
        return setup_steps.done_page(session)
    if step in ("", "connect") or step not in STEPS:
        return setup_steps.connect_page(session)
    raise AssertionError("unreachable")


def _entered(result: Session | Refused, request: PageRequest, now: float) -> Page:
    if isinstance(result, Refused):
        return message_page(result.status, "This setup address cannot be used", result.message)
    log.info("A setup session was opened for %s", result.org_id)
    headers = {"Location": COOKIE_PATH, "Set-Cookie": cookie_header(result, now=now, secure=request.secure)}
    return render(
        "setup_message.html",
        status=303,
        headers=headers,
        heading="Setup session opened",
        message="The setup session is open.",
        kind="ok",
        hint="",
        location=COOKIE_PATH,
    )


def _link_page(result: Usable | Refused, token: str) -> Page:
    if isinstance(result, Refused):
        return message_page(result.status, "This setup address cannot be used", result.message)
    return render("setup_open.html", org_id=result.org_id, link=token)


def _waiting(not_yet: NotYet, code: str, installation_id: str, slug: str, tries_text: str) -> Page:
    tries = int(tries_text) if tries_text.isdigit() and len(tries_text) < 4 else 0
    if tries >= WAIT_TRIES:
        return message_page(
            409,
            "The installation has not arrived",
            "Sentry has not told the app about this installation yet, or the app could not save it.",
            hint="Open the integration's configuration in Sentry again in a few minutes; if this page comes back, "
            "tell the app's operator.",
        )
    again = "/api/setup?" + urlencode(
        {"code": code, "installationId": installation_id, "orgSlug": slug, TRIES: str(tries + 1)}
    )
    return render(
        "setup_wait.html",
        status=202,
        heading="A moment…",
        message=not_yet.message,
        again=again,
        seconds=WAIT_SECONDS,
    )


def open_with_link(request: PageRequest, *, clock: Clock = SYSTEM) -> Page:
    """`POST /api/setup/open`: the button of a setup link's page, which uses the link and opens the session."""
    now = clock.now()
    if not from_this_origin(request.headers, request.host):
        return message_page(403, "Refused", FORGED)
    try:
        form = parse_form(request.body, request.headers.get("content-type"), {LINK})
        return _entered(open_link(form.get(LINK, ""), now=now), request, now)
    except InvalidInput as exc:
        return message_page(400, "The form could not be read", f"{exc} Nothing was saved.")
    except (StorageUnavailable, ConcurrentUpdate, SettingsError) as exc:
        return _unavailable(exc)


def post(step: str, request: PageRequest, *, clock: Clock = SYSTEM) -> Page:
    """A form post of step `step`; the answer is the step's page with its result."""
    now = clock.now()
    if step == "open":
        return open_with_link(request, clock=clock)
    if step not in FIELDS:
        return message_page(404, "No such step", "The setup page has no such form.")
    session = read_session(request.headers.get("cookie"), now=now)
    if not from_this_origin(request.headers, request.host):
        return message_page(403, "Refused", FORGED)
    if session is None:
        hint = "Sessions last 30 minutes. " + NO_SESSION
        return message_page(
            401,
            "The setup session has ended",
            "Nothing was saved: this browser has no setup session, or it has ended.",
            hint=hint,
        )
    try:
        form = parse_form(request.body, request.headers.get("content-type"), FIELDS[step])
    except InvalidInput as exc:
        return message_page(400, "The form could not be read", f"{exc} Nothing was saved.")
    if not form_allowed(session, form.get(FORM_TOKEN), request.headers, request.host):
        return message_page(403, "Refused", FORGED)
    try:
        page, changed = _apply(step, session, form, request)
    except (StorageUnavailable, ConcurrentUpdate, SettingsError) as exc:
        return _unavailable(exc)
    except InvalidInput as exc:  # the admin code's own checks, which the form's parsing should have caught
        return message_page(400, "Not saved", f"{exc} Nothing was saved.")
    if changed != session:
        # Connecting changed the session: issue the cookie again (it keeps the end it was opened with).
        page = page.with_headers(**{"Set-Cookie": cookie_header(changed, now=now, secure=request.secure)})
    return page


def _apply(step: str, session: Session, form: dict[str, str], request: PageRequest) -> tuple[Page, Session]:
    if step == "connect":
        return setup_steps.connect(session, form)
    if step == "sync":
        return setup_steps.save_sync(session, form)
    if step == "rules":
        return setup_rules.rules(session, form)
    if step == "code":
        return setup_code.save_code(session, form)
    if step == "defaults":
        return setup_defaults.defaults(session, form)
    return setup_steps.create_hook(session, request.host, request.secure)


def _unavailable(exc: Exception) -> Page:
    if isinstance(exc, SettingsError):
        log.error("The setup page cannot work: %s", exc)
        return message_page(503, "Not available", f"The app is misconfigured ({exc}); tell its operator.")
    log.warning("The setup page answered 503: %s", exc)
    return message_page(503, "Not available", "Storage is unavailable or busy; nothing was changed, try again.")
