"""A loopback fake of the Azure DevOps REST endpoints the app uses, started beside the app in end-to-end tests,
`make demo` and `make bench`.

The app reaches it only through settings (`settings_env()`), so it must behave like Azure DevOps at the HTTP
level: the same paths (matched case-insensitively, as Azure DevOps does), the mandatory api-version, the
203 sign-in page or 401 for a bad credential, Azure DevOps' error bodies and codes (TF401232, VS403474, ...),
rotating OAuth refresh tokens, and service hook deliveries with Azure DevOps' probation rules. Facts are from
the project's reference notes (`reference/azure-devops-platform.md`) and Microsoft's published REST specification
(`spec_table.json`, derived from it by `devtools/spec_table.py`); where those are silent the fake says so in a
comment.

Every request is checked against the specification (`spec.py`): the operation exists on this server at the
requested api-version, preview operations carry `-preview`, required parameters and enum values are the spec's,
JSON Patch is well-formed. What Azure DevOps would refuse is refused the same way and recorded in `violations`;
`tests/conftest.py` fails the test that caused one (a test that sends one on purpose takes it with
`take_violations`). `FakeAzureDevOps(server=...)` is Azure DevOps Services (`services`, 7.1, `/{org}/`) or Azure
DevOps Server 2022 (`server-2022`, 7.0) or 2022.1 (`server-2022.1`, 7.1), whose collections are at
`/tfs/{collection}/` and which have no account lookup.

Tests drive it with helpers (`add_org`, `add_project(..., process=)`, `add_identity`, `add_work_item`,
`update_work_item`, `add_area`, `add_iteration`, ...), inject faults
(`fail_next`, `set_delay`) and inspect what the app sent (`requests`, `count`, `max_concurrent`,
`deliveries`, `comments`, `updates`). Everything is guarded by one lock because the server is threaded.

Safety: deliveries go only to loopback hosts; any other URL is recorded as a failed delivery, never sent.

One module per concern; `FakeAzureDevOps` (server.py) combines the mixins of the others:

- `server.py`: routing and dispatch (the WSGI server, start/stop and the request log are `../http.py`'s).
- `data.py`: the model (organizations, projects, identities, work items, states), its lock, and the set-up methods.
- `auth.py`: credentials (PATs, OAuth and Entra tokens, each acting as an identity) and the anonymous account
  lookup and token endpoints.
- `workitems.py`: the work item, batch, search and states endpoints, and how work items are rendered.
- `patch.py`: writing work items with JSON Patch (update, create by type) and Azure DevOps' rule errors.
- `comments.py`: the work item Comments API (preview).
- `catalog.py`: projects, work item types and their categories, classification nodes (areas, iterations).
- `processes.py`: the Agile, Scrum, CMMI and Basic processes' types, states and state categories.
- `wiql.py`: WIQL parsing and evaluation.
- `hooks.py`: service hook subscriptions and their endpoints.
- `deliveries.py`: work item events (updated, created, commented), their payloads, POSTing them, probation.
- `faults.py`: fault injection (`fail_next`, `set_delay`, from `../http.py`).
- `protocol.py`: Azure DevOps' HTTP conventions shared by all: error bodies, query parameters, api-version.
- `spec.py`: the checks of every request against `spec_table.json`; `server.py` also answers `OPTIONS _apis/`.
"""

from devtools.fakes.ado.deliveries import Delivery
from devtools.fakes.ado.server import FakeAzureDevOps, RecordedRequest

__all__ = ["Delivery", "FakeAzureDevOps", "RecordedRequest"]
