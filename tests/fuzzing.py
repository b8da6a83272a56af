"""How many cases the property and fuzz tests run: a few hundred each in `make test`, many more in `make fuzz`
(FUZZ_SCALE multiplies them)."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

SCALE = max(1, int(os.environ.get("FUZZ_SCALE", "1")))


def fuzz_settings(examples: int) -> settings:
    return settings(
        max_examples=examples * SCALE,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
    )
