"""Loopback fakes of the external services the app talks to, for end-to-end tests."""

from tests.fakes.ado import Delivery, FakeAzureDevOps, RecordedRequest

__all__ = ["Delivery", "FakeAzureDevOps", "RecordedRequest"]
