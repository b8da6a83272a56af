"""`GET /api/status` and its redrive form (contract §14): the status page, rendered from `status_data.gather`.

The page is behind the function key (Azure checks it: the `code` query parameter a person opens it with). A
browser's form cannot add the `x-functions-key` header, and putting the key in the form's action would render
a secret into the page, so the redrive form posts to an anonymous route instead, protected by what the keyed
page handed out: a signed, short-lived session cookie (`HttpOnly`, `SameSite=Strict`, `Secure` outside
loopback, path `/api/status`) and the anti-forgery token bound to it in each form, with the browser's
`Sec-Fetch-Site` (or `Origin`) checked as well. A post without all of them is refused with 403 and moves
nothing. The answer to a redrive is the page itself, read again, with what was moved.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

from shared.errors import InvalidInput, NotFound, StorageUnavailable
from shared.pages import tokens
from shared.pages.render import Page, render
from shared.pages.status_data import EVERYTHING, View, gather
from shared.settings import SettingsError
from shared.store.base import is_valid_key

log = logging.getLogger(__name__)

COOKIE = "status_session"
SESSION_PURPOSE = "status-session"
SESSION_SECONDS = 3600.0
COOKIE_PATH = "/api/status"
REDRIVE_ACTION = "/api/status/redrive"
ACTION = "/api/status/action"
VIEW = "/api/status/view"  # another page of the lists, or one organization's rows: the session cookie opens it
MAX_FORM_BYTES = 2048
FORM_TYPE = "application/x-www-form-urlencoded"
MAX_PAGES = 100  # of MAX_LISTED rows each: a later page reads every row before it


def status_page(url: str, cookie_header: str | None, *, now: float | None = None) -> Page:
    """The status page; opens a session (cookie) for its forms unless the browser holds a valid one."""
    try:
        return _status_page(url, cookie_header, time.time() if now is None else now)
    except SettingsError as exc:  # SECRETS_KEY missing: the forms cannot be signed
        return _misconfigured(exc)


def _status_page(url: str, cookie_header: str | None, now: float) -> Page:
    nonce, cookie = _session(cookie_header, now), None
    if nonce is None:
        token = tokens.sign(SESSION_PURPOSE, {}, now=now, lifetime=SESSION_SECONDS)
        nonce = _nonce(tokens.verify(token, SESSION_PURPOSE, now=now))
        secure = not tokens.is_loopback(urlsplit(url).netloc)
        cookie = tokens.session_cookie(COOKIE, token, path=COOKIE_PATH, max_age=int(SESSION_SECONDS), secure=secure)
    view = _view(url)
    page = view if isinstance(view, Page) else _render(nonce, now, message=None, view=view)
    return page.with_headers(**{"Set-Cookie": cookie}) if cookie else page


def status_view(url: str, cookie_header: str | None, *, now: float | None = None) -> Page:
    """`GET /api/status/view?org=&page=`: the page for one organization, or another page of its lists. Anonymous
    at the Functions level (a link cannot carry the function key without rendering it), so it needs the session
    cookie the keyed page set; the cookie is `SameSite=Strict`, so no other site can open it for a person."""
    try:
        now = time.time() if now is None else now
        nonce = _session(cookie_header, now)
        if nonce is None:
            return _refused(403, "Open the status page with its function key first (the session has expired).")
        view = _view(url)
        return view if isinstance(view, Page) else _render(nonce, now, message=None, view=view)
    except SettingsError as exc:
        return _misconfigured(exc)


def _view(url: str) -> View | Page:
    """The `org` and `page` (1, 2, ...) query parameters, or the refusal naming the bad one."""
    query = parse_qs(urlsplit(url).query)
    org = (query.get("org") or [""])[0].strip() or None
    raw_page = (query.get("page") or ["1"])[0].strip() or "1"
    if org is not None and not is_valid_key(org):
        return _refused(400, "The organization must be an organization id, as the page lists them.")
    if not raw_page.isdigit() or not 1 <= int(raw_page) <= MAX_PAGES:
        return _refused(400, f"The page must be a number from 1 to {MAX_PAGES}.")
    return View(org=org, page=int(raw_page) - 1)


def redrive_from_form(body: bytes, headers: Mapping[str, str], url: str, *, now: float | None = None) -> Page:
    """The redrive form's post: checked, then `shared.admin.queues.redrive`, then the page read again."""
    try:
        return _redrive(body, headers, url, time.time() if now is None else now)
    except SettingsError as exc:
        return _misconfigured(exc)


def _redrive(body: bytes, headers: Mapping[str, str], url: str, now: float) -> Page:
    from shared.admin.queues import redrive  # only a post needs it

    checked = _checked_form(body, headers, url, now, {"queue", "token"})
    if isinstance(checked, Page):
        return checked
    form, nonce = checked
    try:
        result = redrive(form["queue"])
    except (InvalidInput, NotFound) as exc:
        return _refused(400 if isinstance(exc, InvalidInput) else 404, str(exc))
    except StorageUnavailable as exc:
        log.warning("Status: redrive failed: %s", exc)
        return _refused(503, "Storage is unavailable, so nothing was moved; try again in a moment.")
    poison = result.queue + "-poison"
    message = f"Moved {result.moved} message(s) from {poison} back to {result.queue}."
    if result.more:
        message += " More remain: redrive again."
    return _render(nonce, now, message=message)


def action_from_form(body: bytes, headers: Mapping[str, str], url: str, *, now: float | None = None) -> Page:
    """A problem's action button (`shared.pages.status_actions`): checked as the redrive is, then done, then the
    page read again with a sentence saying what was done."""
    try:
        return _action(body, headers, url, time.time() if now is None else now)
    except SettingsError as exc:
        return _misconfigured(exc)


def _action(body: bytes, headers: Mapping[str, str], url: str, now: float) -> Page:
    from shared.pages.status_actions import ActionFailed, run_action  # only a post needs it

    checked = _checked_form(body, headers, url, now, {"action", "target", "token"})
    if isinstance(checked, Page):
        return checked
    form, nonce = checked
    parts = urlsplit(url)
    try:
        done = run_action(form["action"], form["target"], base_url=f"{parts.scheme}://{parts.netloc}", now=now)
    except (InvalidInput, NotFound) as exc:
        return _refused(400 if isinstance(exc, InvalidInput) else 404, str(exc))
    except ActionFailed as exc:
        return _refused(502, str(exc))
    except StorageUnavailable as exc:
        log.warning("Status: %s failed: %s", form["action"], exc)
        return _refused(503, "Storage is unavailable, so nothing was done; try again in a moment.")
    log.info("Status: %s %s: %s", form["action"], form["target"], done.sentence)
    return _render(nonce, now, message=done.sentence, link=done.link)


def _checked_form(
    body: bytes, headers: Mapping[str, str], url: str, now: float, names: set[str]
) -> tuple[dict[str, str], str] | Page:
    """The form and the session's nonce, when the post carries this page's protection; otherwise the refusal."""
    lowered = {key.lower(): value for key, value in headers.items()}
    if not tokens.from_this_origin(lowered, urlsplit(url).netloc):
        return _refused(403, "The request did not come from this app's status page, so nothing was done.")
    if lowered.get("content-type", "").split(";")[0].strip().lower() != FORM_TYPE:
        return _refused(415, f"The form must be sent as {FORM_TYPE}.")
    if len(body) > MAX_FORM_BYTES:
        return _refused(413, f"The form is larger than {MAX_FORM_BYTES} bytes.")
    form = _parse_form(body, names)
    if form is None:
        return _refused(400, f"The form must hold exactly one each of: {', '.join(sorted(names))}.")
    nonce = _session(lowered.get("cookie"), now)
    if nonce is None or not tokens.form_token_matches(nonce, form["token"]):
        return _refused(
            403, "The form has expired or did not come from the status page; open the status page again and retry."
        )
    return form, nonce


def _render(nonce: str, now: float, *, message: str | None, link: str | None = None, view: View = EVERYTHING) -> Page:
    return render(
        "status.html",
        report=gather(now, view),
        view=view,
        view_action=VIEW,
        message=message,
        link=link,
        form_token=tokens.form_token(nonce),
        redrive_action=REDRIVE_ACTION,
        action=ACTION,
        when=lambda at: _when(at, now),
    )


def _misconfigured(exc: SettingsError) -> Page:
    log.error("Status: the app is misconfigured: %s", exc)
    return _refused(503, f"The app is misconfigured: {exc}")


def _refused(status: int, sentence: str) -> Page:
    return render("status_refused.html", status=status, sentence=sentence)


def _session(cookie_header: str | None, now: float) -> str | None:
    """The nonce of a valid session cookie in `cookie_header`, or None."""
    value = tokens.cookie_value(cookie_header or "", COOKIE)
    return _nonce(tokens.verify(value, SESSION_PURPOSE, now=now)) if value else None


def _nonce(claims: dict | None) -> str | None:
    nonce = claims.get("_nonce") if claims else None
    return nonce if isinstance(nonce, str) and nonce else None


def _parse_form(body: bytes, names: set[str]) -> dict[str, str] | None:
    try:
        fields = parse_qs(body.decode("ascii"), strict_parsing=True, keep_blank_values=True, max_num_fields=4)
    except (UnicodeDecodeError, ValueError):
        return None
    if set(fields) != names or any(len(values) != 1 for values in fields.values()):
        return None
    return {name: values[0] for name, values in fields.items()}


def _when(at: float | None, now: float) -> str:
    """A time as people read it: UTC, and how long ago."""
    if at is None:
        return "never"
    shown = datetime.fromtimestamp(at, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")
    ago = max(0.0, now - at)
    for unit, seconds in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if ago >= seconds:
            count = int(ago // seconds)
            return f"{shown} ({count} {unit}{'s' if count > 1 else ''} ago)"
    return f"{shown} (just now)"
