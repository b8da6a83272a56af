"""Which URLs are Azure DevOps, and may receive credentials (contract §8). Pure functions.

Credentials only ever go to an allowed origin: Azure DevOps Services (`https://dev.azure.com`, its
`almsearch`/`vssps` hosts, and `https://ORG.visualstudio.com` with its sub-hosts) or an origin listed in
`ADO_ALLOWED_ORIGINS` (an Azure DevOps Server, or a loopback test server, which may be `http`).
"""

from __future__ import annotations

import re
from collections.abc import Collection
from urllib.parse import quote, urlsplit

_ORG = r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}"
_DEV_AZURE_HOSTS = {"dev.azure.com", "almsearch.dev.azure.com", "vssps.dev.azure.com"}
# ORG.visualstudio.com and ORG.almsearch/vssps.visualstudio.com (and app.vssps.visualstudio.com).
_VISUALSTUDIO_HOST = re.compile(r"[a-z0-9][a-z0-9-]{0,62}(\.(almsearch|vssps))?\.visualstudio\.com")
_DEV_AZURE_PATH = re.compile(rf"/{_ORG}/")


def origin_of(url: str) -> str | None:
    """`scheme://host[:port]`, lower-cased; None for anything that is not a plain http(s) URL."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (raises ValueError for a bad port)
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.username or parts.password:
        return None
    return f"{parts.scheme}://{parts.netloc.lower()}"


def is_allowed_origin(url: str, extra_origins: Collection[str]) -> bool:
    """Whether a request to `url` may carry an integration's credentials."""
    origin = origin_of(url)
    if origin is None:
        return False
    if origin in extra_origins:
        return True
    parts = urlsplit(url)
    if parts.scheme != "https" or parts.port not in (None, 443):
        return False
    host = (parts.hostname or "").lower()
    return host in _DEV_AZURE_HOSTS or bool(_VISUALSTUDIO_HOST.fullmatch(host))


def is_well_formed(domain_name: str, extra_origins: Collection[str]) -> bool:
    """Contract §8: `^https://.+/$` on an allowed origin: `https://dev.azure.com/ORG/`,
    `https://ORG.visualstudio.com/`, or any path ending in `/` on an origin of `ADO_ALLOWED_ORIGINS`."""
    if not isinstance(domain_name, str) or not domain_name.endswith("/"):
        return False
    origin = origin_of(domain_name)
    if origin is None:
        return False
    parts = urlsplit(domain_name)
    if parts.query or parts.fragment or any(c.isspace() for c in domain_name):
        return False
    if origin in extra_origins:
        return True
    if parts.scheme != "https" or parts.port is not None:
        return False
    host = (parts.hostname or "").lower()
    if host == "dev.azure.com":
        return bool(_DEV_AZURE_PATH.fullmatch(parts.path))
    if _VISUALSTUDIO_HOST.fullmatch(host) and host.count(".") == 2:  # ORG.visualstudio.com, not a sub-host
        return parts.path in ("/", "/DefaultCollection/")
    return False


def normalize_location(location_url: object, extra_origins: Collection[str]) -> str | None:
    """The base URL an account lookup answered, with its trailing slash, or None if it is not acceptable."""
    if not isinstance(location_url, str) or not location_url or len(location_url) > 500:
        return None
    candidate = location_url if location_url.endswith("/") else location_url + "/"
    return candidate if is_well_formed(candidate, extra_origins) else None


def search_base_url(domain_name: str, organization: str, configured: str | None) -> str:
    """Where work item search lives (contract §4.2)."""
    if configured:
        base = configured.replace("{organization}", quote(organization, safe=""))
        return base if base.endswith("/") else base + "/"
    parts = urlsplit(domain_name)
    host = (parts.hostname or "").lower()
    if host == "dev.azure.com":
        return f"https://almsearch.dev.azure.com{parts.path}"
    if host.endswith(".visualstudio.com") and host.count(".") == 2:
        org = host.split(".", 1)[0]
        return f"https://{org}.almsearch.visualstudio.com{parts.path}"
    return domain_name  # Azure DevOps Server serves search under the collection URL
