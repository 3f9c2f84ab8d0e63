"""The same presence tests against in-process and Redis presence, with a fake clock."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import pytest

from tests.support.services import Redis, free_port
from trustdesk.realtime.presence import (
    MemoryPresence,
    Presence,
    RedisPresence,
    make_presence,
)


class FakeClock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Backend:
    kind: str
    server: Redis | None
    prefix: str

    def new(self, clock: FakeClock) -> Presence:
        if self.server is None:
            return MemoryPresence(clock=clock)
        return RedisPresence(self.server.url, prefix=self.prefix, clock=clock)

    def run(self, body: Callable[[Presence, FakeClock], Awaitable[None]]) -> None:
        async def main() -> None:
            clock = FakeClock()
            p = self.new(clock)
            try:
                await body(p, clock)
            finally:
                await p.close()

        asyncio.run(asyncio.wait_for(main(), 60))


@pytest.fixture(params=["memory", "redis"])
def presence(request: pytest.FixtureRequest) -> Backend:
    if request.param == "memory":
        return Backend("memory", None, "")
    server: Redis = request.getfixturevalue("redis_server")
    if server.proc is None:
        server.start()
    return Backend("redis", server, f"p{uuid.uuid4().hex[:12]}:")


def test_touch_and_leave(presence: Backend) -> None:
    async def body(p: Presence, clock: FakeClock) -> None:
        assert not await p.is_online("visitor", "v1")
        assert await p.touch("visitor", "v1", "c1", 30) is True  # came online
        assert await p.touch("visitor", "v1", "c1", 30) is False  # heartbeat
        assert await p.is_online("visitor", "v1")
        assert await p.online("visitor") == {"v1": {}}
        assert await p.leave("visitor", "v1", "c1") is True  # gone offline
        assert not await p.is_online("visitor", "v1")
        assert await p.online("visitor") == {}
        assert await p.leave("visitor", "v1", "c1") is True  # still offline
        assert await p.touch("visitor", "v1", "c2", 30) is True  # back again

    presence.run(body)


def test_several_connections_per_ident(presence: Backend) -> None:
    async def body(p: Presence, clock: FakeClock) -> None:
        assert await p.touch("operator", "op1", "tab-a", 30) is True
        assert await p.touch("operator", "op1", "tab-b", 30) is False
        assert await p.touch("operator", "op2", "tab-c", 30) is True
        assert await p.leave("operator", "op1", "tab-a") is False  # tab-b still open
        assert await p.is_online("operator", "op1")
        assert await p.leave("operator", "op1", "tab-unknown") is False
        assert await p.leave("operator", "op1", "tab-b") is True
        assert await p.online("operator") == {"op2": {}}

    presence.run(body)


def test_kinds_are_separate(presence: Backend) -> None:
    async def body(p: Presence, clock: FakeClock) -> None:
        await p.touch("visitor", "same", "c1", 30, {"kind": "visitor"})
        assert not await p.is_online("operator", "same")
        assert await p.online("operator") == {}
        assert await p.touch("operator", "same", "c1", 30, {"kind": "operator"}) is True
        assert await p.online("visitor") == {"same": {"kind": "visitor"}}
        assert await p.leave("operator", "same", "c1") is True
        assert await p.is_online("visitor", "same")
        with pytest.raises(ValueError):
            await p.touch("bad:kind", "x", "c", 30)

    presence.run(body)


def test_online_info(presence: Backend) -> None:
    async def body(p: Presence, clock: FakeClock) -> None:
        await p.touch("operator", "op1", "c1", 30, {"name": "Анна", "avatar": None})
        await p.touch("operator", "op2", "c2", 30)
        assert await p.online("operator") == {
            "op1": {"name": "Анна", "avatar": None},
            "op2": {},
        }
        await p.touch("operator", "op1", "c1", 30)  # no info: kept
        assert (await p.online("operator"))["op1"] == {"name": "Анна", "avatar": None}
        await p.touch("operator", "op1", "c3", 30, {"name": "Anna"})  # replaced
        assert (await p.online("operator"))["op1"] == {"name": "Anna"}
        await p.leave("operator", "op1", "c1")
        await p.leave("operator", "op1", "c3")
        await p.touch("operator", "op1", "c4", 30)  # info went with the offline
        assert (await p.online("operator"))["op1"] == {}

    presence.run(body)


def test_online_among(presence: Backend) -> None:
    async def body(p: Presence, clock: FakeClock) -> None:
        assert await p.online_among("visitor", []) == {}
        await p.touch("visitor", "v1", "c1", 10, {"page_url": "https://shop/a"})
        await p.touch("visitor", "v2", "c1", 20)
        await p.touch("visitor", "v3", "c1", 30)
        await p.touch("operator", "v4", "c1", 30)  # another kind
        got = await p.online_among("visitor", ["v1", "v2", "v4", "nobody"])
        assert got == {"v1": {"page_url": "https://shop/a"}, "v2": {}}
        clock.advance(15)  # v1 expired, not swept yet: already offline
        assert await p.online_among("visitor", ["v1", "v2"]) == {"v2": {}}
        await p.leave("visitor", "v2", "c1")
        assert await p.online_among("visitor", ["v1", "v2", "v3"]) == {"v3": {}}

    presence.run(body)


def test_expiry(presence: Backend) -> None:
    async def body(p: Presence, clock: FakeClock) -> None:
        await p.touch("visitor", "v1", "c1", 10, {"n": 1})
        await p.touch("visitor", "v2", "c1", 10)
        clock.advance(5)
        await p.touch("visitor", "v2", "c1", 10)  # v2 heartbeats, v1's process crashed
        assert await p.expire() == []
        clock.advance(6)  # v1 expired at +10, v2 lives until +15
        assert not await p.is_online("visitor", "v1")
        assert await p.online("visitor") == {"v2": {}}
        assert await p.expire() == [("visitor", "v1")]
        assert await p.expire() == []  # reported once
        clock.advance(5)
        assert await p.online("visitor") == {}
        assert await p.expire() == [("visitor", "v2")]
        # An expired ident coming back is a fresh online transition, without old info.
        assert await p.touch("visitor", "v1", "c9", 10) is True
        assert await p.online("visitor") == {"v1": {}}

    presence.run(body)


def test_partial_expiry_keeps_ident_online(presence: Backend) -> None:
    async def body(p: Presence, clock: FakeClock) -> None:
        await p.touch("operator", "op", "short", 10)
        await p.touch("operator", "op", "long", 30)
        clock.advance(15)
        assert await p.expire() == []
        assert await p.is_online("operator", "op")
        # The short-lived connection is gone: leaving with the long one goes offline.
        assert await p.leave("operator", "op", "long") is True
        assert await p.expire() == []

    presence.run(body)


def test_expired_ident_touched_before_the_sweep(presence: Backend) -> None:
    async def body(p: Presence, clock: FakeClock) -> None:
        await p.touch("visitor", "v", "c1", 10)
        clock.advance(11)
        assert await p.touch("visitor", "v", "c2", 10) is True
        assert await p.expire() == []
        assert await p.leave("visitor", "v", "c1") is False  # c2 alive
        assert await p.leave("visitor", "v", "c2") is True

    presence.run(body)


@pytest.mark.parametrize("presence", ["redis"], indirect=True)
def test_shared_between_processes(presence: Backend) -> None:
    if presence.server is None:
        pytest.skip("Redis only")

    async def main() -> None:
        clock = FakeClock()
        one, two = presence.new(clock), presence.new(clock)
        try:
            assert await one.touch("visitor", "v", "proc1-conn", 10, {"name": "V"}) is True
            assert await two.is_online("visitor", "v")
            assert await two.online("visitor") == {"v": {"name": "V"}}
            assert await two.touch("visitor", "v", "proc2-conn", 30) is False
            assert await one.leave("visitor", "v", "proc1-conn") is False
            clock.advance(31)  # process two crashed
            expired = [await one.expire(), await two.expire()]
            assert sorted(expired) == [[], [("visitor", "v")]]  # reported exactly once
        finally:
            await one.close()
            await two.close()

    asyncio.run(main())


def test_redis_down_answers_conservatively() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        p = RedisPresence(f"redis://127.0.0.1:{free_port()}/0", clock=FakeClock())
        started = loop.time()
        try:
            assert await p.touch("visitor", "v", "c", 10) is False
            assert await p.leave("visitor", "v", "c") is False
            assert await p.online("visitor") == {}
            assert await p.is_online("visitor", "v") is False
            assert await p.expire() == []
        finally:
            await p.close()
        assert loop.time() - started < 5.0

    asyncio.run(main())


def test_make_presence(presence: Backend) -> None:
    url = presence.server.url if presence.server else None
    made = make_presence(url)
    assert isinstance(made, RedisPresence if url else MemoryPresence)
    asyncio.run(made.close())
