"""A loopback fake of Sentry for a Sentry App (the integration platform), started beside the app in end-to-end
tests and the demo, built from Sentry's documented and coded behaviour (`reference/sentry-outbound-and-apps.md`
§3 and getsentry/sentry's integration platform code); where those are silent the fake says so in a comment.

The app reaches it through `settings_env()` (SENTRY_URL, SENTRY_CLIENT_ID, SENTRY_CLIENT_SECRET). Tests set it
up (`add_app`, `install` (with `scopes=` the organization grants), `uninstall`, `add_static_token`,
`add_member`, `add_issue`, `set_scopes`, `set_feature`), play people in Sentry's UI (`change_issue`,
`add_comment`, `edit_comment`, `delete_comment`, `link_issue`, `select_options`, `call_app`), move time (`clock=`,
`expire_token`), inject faults (`fail_next`, `set_delay`, `set_down`, `rate_limit_next`, `revoke_tokens`) and look
at what happened (`requests`, `count`, `webhooks`, `issue`, `external_issues`, `installation`, `tokens`).

Every API request is checked as Sentry's endpoints check it: the bearer token first (401: missing, unknown,
expired or revoked), then the scope the endpoint's permission class asks for of that method (403 with DRF's
"You do not have permission to perform this action.", before any lookup), then the object (404). A token carries
its installation's grant. `issue.unresolved` is sent only to organizations with the `webhooks-unresolved`
feature, and unassigning sends no webhook, as in Sentry.

Routes (all under `/api/0/`, trailing slash required):

- `POST sentry-app-installations/{uuid}/authorizations/`: grant code or refresh token -> token pair (201).
- `PUT sentry-app-installations/{uuid}/`: `{"status": "installed"}` verifies an install (the app's own token,
  any scopes).
- `POST sentry-app-installations/{uuid}/external-issues/` (any event scope), `DELETE …/external-issues/{id}/`
  (`event:admin` only).
- `GET|PUT organizations/{org}/issues/{id}/` (any event scope / `event:write` or `event:admin`).
- `GET organizations/{org}/members/?query=email:<email>` (any member scope).

Modules: `server.py` (routes, dispatch, down and rate limits), `data.py` (model, set-up), `apps.py`
(installations, tokens, external issues, the app's components), `issues.py` (issues, comments, members),
`webhooks.py` (signed deliveries), `protocol.py` (Sentry's HTTP conventions). The server, request log and
fault injection are `../http.py`'s, shared with the Azure DevOps fake.
"""

from devtools.fakes.sentry.server import FakeSentry
from devtools.fakes.sentry.webhooks import Webhook

__all__ = ["FakeSentry", "Webhook"]
