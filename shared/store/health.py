"""Whether the app's Table Storage answers, and when it refuses the app, why (contract §19): `/api/health` and the
status page say so in a sentence that names what to check (the token's audience and lifetime, the identity's
roles, or the account key), never a secret."""

from __future__ import annotations

import logging
import re

from azure.core.exceptions import AzureError, ClientAuthenticationError

from shared.errors import StorageUnavailable
from shared.settings import SettingsError, StorageConnection, get_settings
from shared.store.base import table_service
from shared.store.connect import STORAGE_SCOPE, credential_for

log = logging.getLogger(__name__)

# What storage answers when it refuses the caller: a token it does not accept (audience, issuer, expiry), or an
# identity without the data-plane role for the operation.
REFUSED_CODES = {
    "AuthenticationFailed",
    "AuthorizationFailure",
    "AuthorizationPermissionMismatch",
    "InvalidAuthenticationInfo",
}


def storage_problem() -> str | None:
    """None when one cheap request (list at most one table) succeeds; otherwise a sentence that says why not,
    naming the setting to fix when storage refused the app's credential (never a secret)."""
    try:
        connection = get_settings().table_storage
        if connection.uses_identity:  # a token first (cached: no request while it is valid), to say which failed
            problem = _token_problem(connection)
            if problem is not None:
                return problem
        pages = table_service("health").list_tables(results_per_page=1).by_page()
        next(pages, None)
    except SettingsError as exc:
        return str(exc)
    except (AzureError, OSError, ValueError) as exc:
        log.warning("Table Storage is unreachable: %s", type(exc).__name__)
        return storage_refusal(exc) or "Table Storage did not answer."
    return None


def _token_problem(connection: StorageConnection) -> str | None:
    try:
        credential_for(connection).get_token(STORAGE_SCOPE)
    except (AzureError, OSError, ValueError) as exc:
        log.warning("No token for storage: %s", type(exc).__name__)
        return (
            f"The app could not get a token for storage with its identity ({connection.setting}__credential, "
            f"__clientId): {type(exc).__name__}: {_first_line(getattr(exc, 'message', exc))}"
        )
    return None


def storage_refusal(exc: BaseException | None) -> str | None:
    """When a storage call failed because storage refused the app's credential (or no token could be had), a
    sentence that says so and what to check; None for any other failure."""
    if isinstance(exc, StorageUnavailable):
        exc = exc.__cause__
    if exc is None:
        return None
    connection = get_settings().table_storage
    if isinstance(exc, ClientAuthenticationError) and getattr(exc, "response", None) is None:
        # The credential could not get a token at all (no identity endpoint, an unknown client id, ...).
        return (
            f"The app could not get a token for storage with its identity ({connection.setting}__credential, "
            f"__clientId): {_first_line(exc.message)}"
        )
    code = getattr(exc, "error_code", None)
    code = str(getattr(code, "value", code) or getattr(exc, "status_code", ""))
    if code not in REFUSED_CODES and getattr(exc, "status_code", None) not in (401, 403):
        return None
    detail = _authentication_detail(exc)
    reason = f"{code}: {detail}" if detail else code
    if connection.uses_identity:
        return (
            f"Storage refused the app's identity ({reason}). Check that its token is for storage (audience "
            "https://storage.azure.com) and not expired, and that the identity has the Storage Table Data "
            "Contributor and Storage Queue Data Contributor roles."
        )
    return f"Storage refused the app's connection string ({reason}); check the account key in {connection.setting}."


def _authentication_detail(exc: BaseException) -> str:
    """Storage's own reason for refusing a request (its AuthenticationErrorDetail), when it gave one."""
    response = getattr(exc, "response", None)
    try:
        text = response.text() if response is not None else ""
    except Exception:  # an unreadable body: no detail
        text = ""
    match = _DETAIL.search(text or "")
    return match.group(1).strip()[:200] if match else ""


_DETAIL = re.compile(r'AuthenticationErrorDetail"?\s*[:>]\s*"?([^"<\n]+)')


def _first_line(text: object) -> str:
    return str(text).strip().splitlines()[0][:300] if str(text).strip() else "no reason given"
