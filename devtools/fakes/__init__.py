"""Loopback fakes of the external services the app talks to, for end-to-end tests, `make demo` and `make bench`.

One package per service, each reached by the app only through its settings:

- `ado/`: Azure DevOps (organizations, credentials, work items, states, WIQL, search, service hooks).
- `sentry/`: room for a fake of Sentry when a test or the demo needs one; none exists yet.
"""

from devtools.fakes.ado import Delivery, FakeAzureDevOps, RecordedRequest

__all__ = ["Delivery", "FakeAzureDevOps", "RecordedRequest"]
