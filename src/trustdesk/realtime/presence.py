"""Ephemeral presence: who is online, with expiry. Never stored in the database.

A *kind* (``"operator"``, ``"visitor"``, ...) groups *idents*; an ident is online while at
least one of its connections (``conn_id``) is alive. A connection is alive until the
expiry its last :meth:`Presence.touch` gave it (``now + ttl``), or until
:meth:`Presence.leave`. A process that crashes never calls ``leave``: its connections
simply expire, and the next :meth:`Presence.expire` sweep (run periodically by any
process) reports those idents as gone offline, exactly once across processes.

Transitions are reported so the caller can publish presence events:

* ``touch`` returns True when the ident went from offline to online.
* ``leave`` returns True when the ident is now offline (no live connection anywhere).
  If the ident had already been reported offline by ``expire``, it may be reported
  offline a second time; presence events are idempotent, so that is harmless.
* ``expire`` returns the ``(kind, ident)`` pairs that went offline by expiry.

Info (a small JSON-able dict, e.g. a display name) is kept per ident: a ``touch`` with
``info`` replaces it, a ``touch`` without keeps it; it is dropped when the ident goes
offline.

:class:`RedisPresence` shares all this between processes. Expiry times come from the
injectable ``clock`` of each process (wall clock by default; hosts are assumed to be
NTP-synchronised). Every operation is robust to Redis being down: it logs, never raises,
and answers conservatively (``touch``/``leave``/``is_online`` False, ``online`` empty,
``expire`` nothing); heartbeats and the expiry sweep repair the state once Redis is back.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from redis.asyncio import Redis

logger = logging.getLogger(__name__)


def _why(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


Clock = Callable[[], float]
T = TypeVar("T")


def _check_kind(kind: str) -> None:
    if not kind or ":" in kind:
        raise ValueError(f"invalid presence kind {kind!r} (non-empty, no ':')")


class Presence(ABC):
    """Who is online; see the module docstring for the semantics."""

    @abstractmethod
    async def touch(
        self,
        kind: str,
        ident: str,
        conn_id: str,
        ttl: float,
        info: dict[str, Any] | None = None,
    ) -> bool:
        """Keep ``conn_id`` of ``(kind, ident)`` alive until now + ttl; True if it came online."""

    @abstractmethod
    async def leave(self, kind: str, ident: str, conn_id: str) -> bool:
        """Drop ``conn_id``; True if ``(kind, ident)`` now has no live connection anywhere."""

    @abstractmethod
    async def online(self, kind: str) -> dict[str, dict[str, Any]]:
        """ident -> info for every ident of ``kind`` with a live connection."""

    @abstractmethod
    async def online_among(self, kind: str, idents: list[str]) -> dict[str, dict[str, Any]]:
        """ident -> info for those of ``idents`` that have a live connection (the cost
        grows with ``idents``, not with everyone online)."""

    @abstractmethod
    async def is_online(self, kind: str, ident: str) -> bool: ...

    @abstractmethod
    async def expire(self) -> list[tuple[str, str]]:
        """Drop expired connections; the ``(kind, ident)`` pairs that went offline by it."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources (connections)."""


@dataclass
class _Entry:
    conns: dict[str, float] = field(default_factory=dict)  # conn_id -> expiry
    info: dict[str, Any] = field(default_factory=dict)

    def prune(self, now: float) -> None:
        for conn_id in [c for c, exp in self.conns.items() if exp <= now]:
            del self.conns[conn_id]

    def alive(self, now: float) -> bool:
        return any(exp > now for exp in self.conns.values())


class MemoryPresence(Presence):
    """In-process presence, for a single process."""

    def __init__(self, *, clock: Clock = time.time) -> None:
        self._clock = clock
        self._kinds: dict[str, dict[str, _Entry]] = {}

    async def touch(
        self,
        kind: str,
        ident: str,
        conn_id: str,
        ttl: float,
        info: dict[str, Any] | None = None,
    ) -> bool:
        _check_kind(kind)
        now = self._clock()
        entry = self._kinds.setdefault(kind, {}).setdefault(ident, _Entry())
        was_online = entry.alive(now)
        entry.prune(now)
        entry.conns[conn_id] = now + ttl
        if info is not None:
            entry.info = dict(info)
        return not was_online

    async def leave(self, kind: str, ident: str, conn_id: str) -> bool:
        _check_kind(kind)
        now = self._clock()
        idents = self._kinds.get(kind, {})
        entry = idents.get(ident)
        if entry is None:
            return True
        entry.conns.pop(conn_id, None)
        entry.prune(now)
        if entry.conns:
            return False
        del idents[ident]
        return True

    async def online(self, kind: str) -> dict[str, dict[str, Any]]:
        _check_kind(kind)
        now = self._clock()
        return {
            ident: dict(entry.info)
            for ident, entry in self._kinds.get(kind, {}).items()
            if entry.alive(now)
        }

    async def online_among(self, kind: str, idents: list[str]) -> dict[str, dict[str, Any]]:
        _check_kind(kind)
        now = self._clock()
        entries = self._kinds.get(kind, {})
        out: dict[str, dict[str, Any]] = {}
        for ident in idents:
            entry = entries.get(ident)
            if entry is not None and entry.alive(now):
                out[ident] = dict(entry.info)
        return out

    async def is_online(self, kind: str, ident: str) -> bool:
        _check_kind(kind)
        entry = self._kinds.get(kind, {}).get(ident)
        return entry is not None and entry.alive(self._clock())

    async def expire(self) -> list[tuple[str, str]]:
        now = self._clock()
        gone: list[tuple[str, str]] = []
        for kind, idents in self._kinds.items():
            for ident, entry in list(idents.items()):
                entry.prune(now)
                if not entry.conns:
                    del idents[ident]
                    gone.append((kind, ident))
        return gone


# Keys, under the prefix P (kinds contain no ':', so these never collide):
#   P presence:kinds          SET   of kinds in use
#   P presence:<kind>         ZSET  ident -> latest expiry of its connections (the index)
#   P presence:<kind>:info    HASH  ident -> info JSON
#   P presence:<kind>:c:<id>  ZSET  conn_id -> expiry
# Each script keeps the index equal to the max expiry of the ident's live connections.
# Keys also get a Redis TTL (ttl + 60 s, only ever extended) so nothing outlives a
# whole cluster shutdown for long.

_KEEP = """
local function keep(key, ms)
  if redis.call('PTTL', key) < ms then redis.call('PEXPIRE', key, ms) end
end
"""

# KEYS: kinds, idx, info, conns   ARGV: kind, ident, conn_id, now, expiry, info|'', keep_ms
_TOUCH = (
    _KEEP
    + """
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', ARGV[4])
local was = redis.call('ZCARD', KEYS[4])
redis.call('ZADD', KEYS[4], ARGV[5], ARGV[3])
local top = redis.call('ZRANGE', KEYS[4], -1, -1, 'WITHSCORES')
redis.call('ZADD', KEYS[2], top[2], ARGV[2])
if ARGV[6] ~= '' then redis.call('HSET', KEYS[3], ARGV[2], ARGV[6]) end
redis.call('SADD', KEYS[1], ARGV[1])
local ms = tonumber(ARGV[7])
keep(KEYS[1], ms); keep(KEYS[2], ms); keep(KEYS[4], ms)
if redis.call('EXISTS', KEYS[3]) == 1 then keep(KEYS[3], ms) end
if was == 0 then return 1 end
return 0
"""
)

# KEYS: idx, info, conns   ARGV: ident, conn_id, now
_LEAVE = """
redis.call('ZREM', KEYS[3], ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', ARGV[3])
local top = redis.call('ZRANGE', KEYS[3], -1, -1, 'WITHSCORES')
if #top == 0 then
  redis.call('DEL', KEYS[3])
  redis.call('ZREM', KEYS[1], ARGV[1])
  redis.call('HDEL', KEYS[2], ARGV[1])
  return 1
end
redis.call('ZADD', KEYS[1], top[2], ARGV[1])
return 0
"""

# KEYS: idx, info   ARGV: conns key prefix, now.  Returns the idents that went offline.
_EXPIRE = """
local stale = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[2])
local gone = {}
for _, ident in ipairs(stale) do
  local ck = ARGV[1] .. ident
  redis.call('ZREMRANGEBYSCORE', ck, '-inf', ARGV[2])
  local top = redis.call('ZRANGE', ck, -1, -1, 'WITHSCORES')
  if #top == 0 then
    redis.call('DEL', ck)
    redis.call('ZREM', KEYS[1], ident)
    redis.call('HDEL', KEYS[2], ident)
    gone[#gone + 1] = ident
  else
    redis.call('ZADD', KEYS[1], top[2], ident)
  end
end
return gone
"""

# KEYS: idx, info   ARGV: now.  Returns ident, info, ident, info, ...
_ONLINE = """
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. ARGV[1], '+inf')
local out = {}
for _, id in ipairs(ids) do
  out[#out + 1] = id
  out[#out + 1] = redis.call('HGET', KEYS[2], id) or ''
end
return out
"""

# KEYS: idx, info   ARGV: now, ident...  Returns ident, info, ... for the live ones.
_AMONG = """
local out = {}
for i = 2, #ARGV do
  local score = redis.call('ZSCORE', KEYS[1], ARGV[i])
  if score and tonumber(score) > tonumber(ARGV[1]) then
    out[#out + 1] = ARGV[i]
    out[#out + 1] = redis.call('HGET', KEYS[2], ARGV[i]) or ''
  end
end
return out
"""

# KEYS: idx   ARGV: ident
_SCORE = "return redis.call('ZSCORE', KEYS[1], ARGV[1])"


class RedisPresence(Presence):
    """Presence shared by every process using the same Redis and prefix."""

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "trustdesk:",
        clock: Clock = time.time,
        timeout: float = 0.5,
        keep_seconds: float = 60.0,
    ) -> None:
        self._clock = clock
        self._timeout = timeout
        self._keep = keep_seconds
        self._p = prefix + "presence:"
        # (imported here: 53 modules, ~11 MB, that a one-process installation never needs)
        from redis.asyncio import Redis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        self._redis = Redis.from_url(
            url,
            decode_responses=True,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0),
            health_check_interval=0,
        )
        self._touch = self._redis.register_script(_TOUCH)
        self._leave = self._redis.register_script(_LEAVE)
        self._expire = self._redis.register_script(_EXPIRE)
        self._online = self._redis.register_script(_ONLINE)
        self._among = self._redis.register_script(_AMONG)
        self._score = self._redis.register_script(_SCORE)
        self._failing = False

    @property
    def client(self) -> Redis:
        """This process's Redis client for keys (not pub/sub); the login guard counts on it."""
        return self._redis

    def _idx(self, kind: str) -> str:
        return f"{self._p}{kind}"

    def _info(self, kind: str) -> str:
        return f"{self._p}{kind}:info"

    def _conns(self, kind: str, ident: str = "") -> str:
        return f"{self._p}{kind}:c:{ident}"

    async def _guard(self, what: str, default: T, op: Callable[[], Awaitable[T]]) -> T:
        try:
            result = await asyncio.wait_for(op(), 2 * self._timeout)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if not self._failing:
                self._failing = True
                logger.warning("presence %s failed, Redis unavailable? (%s)", what, _why(exc))
            else:
                logger.debug("presence %s failed: %s", what, _why(exc))
            return default
        if self._failing:
            self._failing = False
            logger.info("presence: Redis works again")
        return result

    async def touch(
        self,
        kind: str,
        ident: str,
        conn_id: str,
        ttl: float,
        info: dict[str, Any] | None = None,
    ) -> bool:
        _check_kind(kind)
        now = self._clock()
        info_json = "" if info is None else json.dumps(info, ensure_ascii=False)
        keep_ms = int((max(ttl, 0.0) + self._keep) * 1000)

        async def op() -> bool:
            result = await self._touch(
                keys=[
                    f"{self._p}kinds",
                    self._idx(kind),
                    self._info(kind),
                    self._conns(kind, ident),
                ],
                args=[kind, ident, conn_id, repr(now), repr(now + ttl), info_json, keep_ms],
            )
            return bool(int(result))

        return await self._guard("touch", False, op)

    async def leave(self, kind: str, ident: str, conn_id: str) -> bool:
        _check_kind(kind)
        now = self._clock()

        async def op() -> bool:
            result = await self._leave(
                keys=[self._idx(kind), self._info(kind), self._conns(kind, ident)],
                args=[ident, conn_id, repr(now)],
            )
            return bool(int(result))

        return await self._guard("leave", False, op)

    async def online(self, kind: str) -> dict[str, dict[str, Any]]:
        _check_kind(kind)
        now = self._clock()

        async def op() -> dict[str, dict[str, Any]]:
            flat: list[str] = await self._online(
                keys=[self._idx(kind), self._info(kind)], args=[repr(now)]
            )
            out: dict[str, dict[str, Any]] = {}
            for ident, raw in zip(flat[::2], flat[1::2], strict=True):
                out[ident] = _load_info(raw)
            return out

        return await self._guard("online", {}, op)

    async def online_among(self, kind: str, idents: list[str]) -> dict[str, dict[str, Any]]:
        _check_kind(kind)
        if not idents:
            return {}
        now = self._clock()

        async def op() -> dict[str, dict[str, Any]]:
            flat: list[str] = await self._among(
                keys=[self._idx(kind), self._info(kind)], args=[repr(now), *idents]
            )
            return {
                ident: _load_info(raw) for ident, raw in zip(flat[::2], flat[1::2], strict=True)
            }

        return await self._guard("online_among", {}, op)

    async def is_online(self, kind: str, ident: str) -> bool:
        _check_kind(kind)
        now = self._clock()

        async def op() -> bool:
            score = await self._score(keys=[self._idx(kind)], args=[ident])
            return score is not None and float(score) > now

        return await self._guard("is_online", False, op)

    async def expire(self) -> list[tuple[str, str]]:
        now = self._clock()

        async def op() -> list[tuple[str, str]]:
            kinds: set[str] = await self._redis.smembers(f"{self._p}kinds")  # type: ignore[misc]
            gone: list[tuple[str, str]] = []
            for kind in sorted(kinds):
                idents: list[str] = await self._expire(
                    keys=[self._idx(kind), self._info(kind)],
                    args=[self._conns(kind), repr(now)],
                )
                gone.extend((kind, ident) for ident in idents)
            return gone

        return await self._guard("expire", [], op)

    async def close(self) -> None:
        try:
            await self._redis.aclose()
        except Exception as exc:
            logger.debug("closing the presence Redis client: %s", _why(exc))


def _load_info(raw: str) -> dict[str, Any]:
    if not raw:
        return {}
    try:
        info = json.loads(raw)
    except ValueError:
        return {}
    return info if isinstance(info, dict) else {}


def make_presence(
    redis_url: str | None,
    *,
    prefix: str = "trustdesk:",
    clock: Clock = time.time,
) -> Presence:
    """A :class:`MemoryPresence` if ``redis_url`` is empty, else a :class:`RedisPresence`."""
    if not redis_url:
        return MemoryPresence(clock=clock)
    return RedisPresence(redis_url, prefix=prefix, clock=clock)
