"""Login attempts, counted before the password is checked, across processes through Redis.

Three fixed-window counters (each runs `window` seconds from its first attempt), with
L = TRUSTDESK_LOGIN_ATTEMPTS_PER_15MIN:

* the address: 5 L attempts from one address, whatever the emails; then 429 there;
* the pair (email, address): L attempts for one email from one address; then 429;
* the email, from every address: once L have been made the email is *under attack*, and
  an address that has already failed `repeat` times for it may not try it again in its
  window. An address that has not (the operator at their own desk) still may: someone
  else's guesses slow the guessers down and never lock the operator out, while a botnet
  gets at most `repeat` guesses per address per window.

An attempt is reserved (counted) before argon2 runs, in one atomic step (a Lua script in
Redis, or one synchronous step in this process's memory), so N concurrent guesses get at
most the limit checked; before, only failures were counted, after their check, and 60
concurrent guesses were all checked. A success gives its attempt back and clears its pair.
With Redis configured every process shares the counters (keys under the Redis prefix);
while Redis is unreachable each process falls back to its own memory.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from trustdesk.actions import metrics
from trustdesk.actions.errors import RateLimited

if TYPE_CHECKING:  # (redis is imported where it is configured: realtime/presence.py)
    from redis.asyncio import Redis

logger = logging.getLogger(__name__)

REDIS_TIMEOUT = 1.0  # seconds; past it this attempt is counted in memory instead

Keys = tuple[str, str, str]  # address, pair, email


@dataclass(frozen=True)
class Budget:
    address: int
    pair: int
    email: int
    repeat: int
    window: float  # seconds

    @classmethod
    def from_attempts(cls, attempts: int, window: float = 15 * 60) -> Budget:
        return cls(attempts * 5, attempts, attempts, min(3, attempts), window)

    def wait(self, counts: tuple[int, int, int], left: tuple[float, float, float]) -> float:
        """0 if one more attempt may be made, else the seconds until one may.

        `counts` and `left` (seconds left in each window) are the address's, the pair's and
        the email's. _RESERVE below is the same rule in Lua: change both together.
        """
        address, pair, email = counts
        if address >= self.address:
            return left[0]
        if pair >= self.pair:
            return left[1]
        if email >= self.email and pair >= self.repeat:
            return min(left[1], left[2])
        return 0.0


# KEYS: address, pair, email   ARGV: address, pair, email, repeat (Budget), window in ms.
# Returns 0 (reserved: all three counted) or the milliseconds to wait.
_RESERVE = """
local n, left = {}, {}
for i = 1, 3 do
  n[i] = tonumber(redis.call('GET', KEYS[i]) or '0')
  left[i] = math.max(redis.call('PTTL', KEYS[i]), 1)
end
if n[1] >= tonumber(ARGV[1]) then return left[1] end
if n[2] >= tonumber(ARGV[2]) then return left[2] end
if n[3] >= tonumber(ARGV[3]) and n[2] >= tonumber(ARGV[4]) then
  return math.min(left[2], left[3])
end
for i = 1, 3 do
  if redis.call('INCR', KEYS[i]) == 1 then redis.call('PEXPIRE', KEYS[i], ARGV[5]) end
end
return 0
"""
# KEYS: address, pair, email. A success gives its attempt back and clears the pair.
_REFUND = """
redis.call('DEL', KEYS[2])
for _, key in ipairs({KEYS[1], KEYS[3]}) do
  if redis.call('DECR', key) <= 0 then redis.call('DEL', key) end
end
return 0
"""


class _Memory:
    """The same counters in this process: key -> (count, end of its window)."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._counts: dict[str, tuple[int, float]] = {}

    def _live(self, key: str, now: float) -> tuple[int, float]:
        count, end = self._counts.get(key, (0, now))
        return (count, end) if end > now else (0, now)

    def reserve(self, keys: Keys, budget: Budget) -> float:
        now = self._clock()
        live = [self._live(k, now) for k in keys]
        counts = (live[0][0], live[1][0], live[2][0])
        wait = budget.wait(counts, (live[0][1] - now, live[1][1] - now, live[2][1] - now))
        if wait > 0:
            return wait
        for key, (count, end) in zip(keys, live, strict=True):
            self._counts[key] = (count + 1, end if count else now + budget.window)
        if len(self._counts) > 100_000:
            self._counts = {k: v for k, v in self._counts.items() if v[1] > now}
        return 0.0

    def refund(self, keys: Keys) -> None:
        now = self._clock()
        address, pair, email = keys
        self._counts.pop(pair, None)
        for key in (address, email):
            count, end = self._live(key, now)
            if count > 1:
                self._counts[key] = (count - 1, end)
            else:
                self._counts.pop(key, None)


@dataclass(frozen=True)
class Attempt:
    keys: Keys
    in_redis: bool


class LoginGuard:
    """`reserve` before checking a password; then `succeeded` or `failed`."""

    def __init__(
        self,
        budget: Budget,
        *,
        redis: Redis | None = None,
        prefix: str = "trustdesk:",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.budget = budget
        self._prefix = prefix + "login:"
        self._memory = _Memory(clock)
        self._redis = redis
        self._failing = False
        if redis is not None:
            self._reserve = redis.register_script(_RESERVE)
            self._refund = redis.register_script(_REFUND)

    def _keys(self, ip: str, email: str) -> Keys:
        # Hashed: the key stays short and Redis holds no email addresses.
        e = hashlib.sha256(email.encode()).hexdigest()[:32]
        p = self._prefix
        return f"{p}a:{ip}", f"{p}p:{e}:{ip}", f"{p}e:{e}"

    async def reserve(self, ip: str, email: str) -> Attempt:
        """Count one attempt, or raise RateLimited (429 with Retry-After) without counting."""
        keys = self._keys(ip, email)
        wait_ms = await self._in_redis(self._reserve_in_redis, keys) if self._redis else None
        wait = self._memory.reserve(keys, self.budget) if wait_ms is None else wait_ms / 1000
        if wait > 0:
            metrics.LOGIN_ATTEMPTS.labels("refused").inc()
            raise RateLimited("too many failed logins, try again later", wait)
        return Attempt(keys, in_redis=wait_ms is not None)

    async def succeeded(self, attempt: Attempt) -> None:
        metrics.LOGIN_ATTEMPTS.labels("ok").inc()
        if not attempt.in_redis:
            self._memory.refund(attempt.keys)
        else:
            await self._in_redis(self._refund_in_redis, attempt.keys)

    def failed(self, attempt: Attempt) -> None:
        """The attempt stays counted; only the metric changes."""
        metrics.LOGIN_ATTEMPTS.labels("failed").inc()

    async def _reserve_in_redis(self, keys: Keys) -> int:
        b = self.budget
        args = [b.address, b.pair, b.email, b.repeat, int(b.window * 1000)]
        return int(await self._reserve(keys=list(keys), args=args))

    async def _refund_in_redis(self, keys: Keys) -> int:
        return int(await self._refund(keys=list(keys)))

    async def _in_redis(self, op: Callable[[Keys], Awaitable[int]], keys: Keys) -> int | None:
        """The script's answer, or None if Redis did not give one in time."""
        try:
            result = await asyncio.wait_for(op(keys), REDIS_TIMEOUT)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if not self._failing:
                self._failing = True
                logger.warning("login limits: Redis unavailable (%s), counting in memory", exc)
            return None
        if self._failing:
            self._failing = False
            logger.info("login limits: Redis works again")
        return result
