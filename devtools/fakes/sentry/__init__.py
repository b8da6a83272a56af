"""A loopback fake of Sentry for a Sentry App (the integration platform), started beside the app in end-to-end
tests and the demo, built from Sentry's documented and coded behaviour (`reference/sentry-outbound-and-apps.md`
§3 and getsentry/sentry's integration platform code); where those are silent the fake says so in a comment.

The app reaches it through `settings_env()` (SENTRY_URL, SENTRY_CLIENT_ID, SENTRY_CLIENT_SECRET). Tests set it
up (`add_app`, `install`, `uninstall`, `add_static_token`, `add_member`, `add_issue`), play people in Sentry's
UI (`change_issue`, `add_comment`, `edit_comment`, `delete_comment`, `link_issue`, `select_options`,
`call_app`), move time (`clock=`, `expire_token`), inject faults (`fail_next`, `set_delay`, `set_down`,
`rate_limit_next`) and look at what happened (`requests`, `count`, `webhooks`, `issue`, `external_issues`,
`installation`, `tokens`).

Routes (all under `/api/0/`, trailing slash required):

- `POST sentry-app-installations/{uuid}/authorizations/`: grant code or refresh token -> token pair (201).
- `PUT sentry-app-installations/{uuid}/`: `{"status": "installed"}` verifies an install.
- `POST sentry-app-installations/{uuid}/external-issues/`, `DELETE …/external-issues/{id}/`.
- `GET|PUT organizations/{org}/issues/{id}/` (event:read / event:write).
- `GET organizations/{org}/members/?query=email:<email>` (member:read).

Modules: `server.py` (routes, dispatch, down and rate limits), `data.py` (model, set-up), `apps.py`
(installations, tokens, external issues, the app's components), `issues.py` (issues, comments, members),
`webhooks.py` (signed deliveries), `protocol.py` (Sentry's HTTP conventions). The server, request log and
fault injection are `../http.py`'s, shared with the Azure DevOps fake.
"""

from devtools.fakes.sentry.server import FakeSentry
from devtools.fakes.sentry.webhooks import Webhook

__all__ = ["FakeSentry", "Webhook"]
