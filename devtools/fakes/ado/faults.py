"""Fault injection: canned answers for the next matching requests (`fail_next`) and delayed responses
(`set_delay`), both applied before authentication, until used up or `clear_faults` (shared with the other
fakes: `devtools/fakes/http.py`)."""

from __future__ import annotations

from devtools.fakes.ado.data import Store
from devtools.fakes.http import FaultInjection


class Faults(FaultInjection, Store):
    """Mixin of FakeAzureDevOps: fault injection, over the model's lock."""
