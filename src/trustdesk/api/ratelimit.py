"""Token buckets in memory, per key (visitor, IP). Logins: api/login_guard.py."""

from __future__ import annotations

import time
from collections.abc import Callable

from trustdesk.actions.errors import RateLimited


class TokenBucket:
    """`burst` requests at once, refilled at `per_minute` per minute, per key."""

    def __init__(
        self, per_minute: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = per_minute / 60.0
        self.burst = float(burst)
        self.clock = clock
        self.buckets: dict[str, tuple[float, float]] = {}

    def _level(self, key: str, now: float) -> float:
        tokens, at = self.buckets.get(key, (self.burst, now))
        return min(self.burst, tokens + (now - at) * self.rate)

    def check(self, key: str, message: str = "too many requests") -> None:
        """Take one token or raise RateLimited with the seconds until the next one."""
        now = self.clock()
        tokens = self._level(key, now)
        if tokens < 1.0:
            self.buckets[key] = (tokens, now)
            raise RateLimited(message, (1.0 - tokens) / self.rate if self.rate else 60)
        self.buckets[key] = (tokens - 1.0, now)
        if len(self.buckets) > 100_000:
            self._prune(now)

    def peek_blocked(self, key: str) -> float:
        """Seconds until a token is available (0 if one is)."""
        now = self.clock()
        tokens = self._level(key, now)
        return 0.0 if tokens >= 1.0 else (1.0 - tokens) / self.rate

    def _prune(self, now: float) -> None:
        full = [k for k in self.buckets if self._level(k, now) >= self.burst]
        for k in full:
            del self.buckets[k]
