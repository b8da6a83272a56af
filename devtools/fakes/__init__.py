"""Loopback fakes of the external services the app talks to, for end-to-end tests, `make demo` and `make bench`.

One package per service, each reached by the app only through its settings:

- `ado/`: Azure DevOps (organizations, credentials, work items, states, WIQL, search, service hooks).
- `sentry/`: Sentry for a Sentry App (installations, tokens, issues, comments, members, external issues, webhooks).
- `entra.py`: Microsoft Entra ID's token endpoint for service principals, on https (`AZURE_AUTHORITY_HOST`).
"""

from devtools.fakes.ado import Delivery, FakeAzureDevOps, RecordedRequest
from devtools.fakes.sentry import FakeSentry

__all__ = ["Delivery", "FakeAzureDevOps", "FakeSentry", "RecordedRequest"]
