"""Rendering a page: Jinja2 templates from `templates/`, autoescaped, and the headers every page carries.

The style sheet is inlined in every page and allowed by its hash, so the Content-Security-Policy can refuse
every script, every inline style attribute and every asset from anywhere (`default-src 'none'`). Jinja2 is
imported on first use: a cold start that serves no page never pays for it.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TEMPLATES = Path(__file__).resolve().parent / "templates"
STYLE = (TEMPLATES / "style.css").read_text(encoding="utf-8")
STYLE_HASH = base64.b64encode(hashlib.sha256(STYLE.encode("utf-8")).digest()).decode("ascii")
CONTENT_SECURITY_POLICY = (
    f"default-src 'none'; style-src 'sha256-{STYLE_HASH}'; img-src 'self' data:; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",  # a setup link's token never leaks through a Referer
    "Cache-Control": "no-store",
}

_environment: Any = None


@dataclass(frozen=True)
class Page:
    """A rendered page: its HTML, its status and the headers to send (cookies included)."""

    html: str
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)

    def with_headers(self, **headers: str) -> Page:
        return Page(self.html, self.status, {**self.headers, **headers})


def _env() -> Any:
    global _environment
    if _environment is None:
        import jinja2

        _environment = jinja2.Environment(
            loader=jinja2.FileSystemLoader(str(TEMPLATES)),
            autoescape=True,  # every value is escaped unless a template says otherwise, and none does
            undefined=jinja2.StrictUndefined,  # a missing value is a bug, never an empty string on a page
            trim_blocks=True,
            lstrip_blocks=True,
        )
        _environment.globals["style"] = _markup(STYLE)
    return _environment


def _markup(text: str) -> Any:
    from markupsafe import Markup

    return Markup(text)  # the style sheet is ours, not input: inlined as it is, allowed by its hash


def render(template: str, *, status: int = 200, headers: dict[str, str] | None = None, **context: Any) -> Page:
    """The page `template` (a file in templates/) with `context`; PAGE_HEADERS plus `headers`."""
    html = _env().get_template(template).render(**context)
    return Page(html, status, {**PAGE_HEADERS, **(headers or {})})
