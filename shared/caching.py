"""One object per key, made once per process however many threads ask at the same time.

The storage clients, the queue clients, the Fernet instances and the Entra credentials are all kept this way,
so warm invocations reuse them (and their connections).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

T = TypeVar("T")


class PerKey(Generic[T]):
    def __init__(self) -> None:
        self._values: dict[Hashable, T] = {}
        self._lock = threading.Lock()

    def get(self, key: Hashable, make: Callable[[], T]) -> T:
        value = self._values.get(key)
        if value is None:
            with self._lock:
                value = self._values.get(key)
                if value is None:
                    value = make()
                    self._values[key] = value
        return value
