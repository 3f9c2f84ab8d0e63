"""Rarely changed rows that every message would otherwise read again (are there webhooks?
push subscriptions?), kept for a moment in this process.

A change made by this process calls ``forget`` and is seen at once; one made by another
process is seen within ``ttl`` seconds. Use it only where that delay is harmless (each
use says why).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Recent(Generic[T]):
    def __init__(self, ttl: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self.clock = clock
        self._values: dict[int, tuple[float, T]] = {}  # id(runtime) -> (read at, value)

    async def get(self, owner: object, load: Callable[[], Awaitable[T]]) -> T:
        now = self.clock()
        hit = self._values.get(id(owner))
        if hit is not None and now - hit[0] < self.ttl:
            return hit[1]
        value = await load()
        self._values[id(owner)] = (now, value)
        return value

    def forget(self, owner: object) -> None:
        self._values.pop(id(owner), None)
