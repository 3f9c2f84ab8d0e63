"""The same hub tests against the in-process hub and the Redis hub (one parametrised fixture).

Redis tests use the real ``redis_server`` from tests/conftest.py and a unique channel
prefix per test. Nothing here sleeps to synchronise: every wait is on the real event,
with a timeout; "nothing arrives" is checked with a short timeout.
"""

from __future__ import annotations

import asyncio
import inspect
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import pytest
import redis.asyncio as aioredis

from tests.support.services import Redis, free_port
from trustdesk.realtime import RESYNC_EVENT, Hub, MemoryHub, Subscription, SubscriptionClosed
from trustdesk.realtime.hub import make_hub
from trustdesk.realtime.redis_hub import RedisHub

Body = Callable[[Hub], Awaitable[None]]


@dataclass
class Backend:
    """What the ``hub`` fixture gives: makes hubs of one kind inside the test's event loop."""

    kind: str
    server: Redis | None
    prefix: str

    def new(self, **kwargs: Any) -> Hub:
        if self.server is None:
            return MemoryHub(**kwargs)
        return RedisHub(self.server.url, prefix=self.prefix, **kwargs)

    def run(self, body: Body, **kwargs: Any) -> None:
        async def main() -> None:
            async with self.new(**kwargs) as hub:
                await body(hub)

        asyncio.run(asyncio.wait_for(main(), 60))

    def redis_only(self) -> Redis:
        if self.server is None:
            pytest.skip("Redis only")
        return self.server


@pytest.fixture(params=["memory", "redis"])
def hub(request: pytest.FixtureRequest) -> Backend:
    if request.param == "memory":
        return Backend("memory", None, "")
    server: Redis = request.getfixturevalue("redis_server")
    if server.proc is None:  # an earlier failure left it stopped
        server.start()
    return Backend("redis", server, f"t{uuid.uuid4().hex[:12]}:")


async def next_event(sub: Subscription, timeout: float = 5.0) -> dict[str, Any]:
    return await asyncio.wait_for(sub.get(), timeout)


async def next_non_resync(sub: Subscription, timeout: float = 10.0) -> dict[str, Any]:
    async def first() -> dict[str, Any]:
        while True:
            event = await sub.get()
            if event != RESYNC_EVENT:
                return event

    return await asyncio.wait_for(first(), timeout)


async def nothing(sub: Subscription, timeout: float = 0.2) -> None:
    with pytest.raises(TimeoutError):
        event = await asyncio.wait_for(sub.get(), timeout)
        pytest.fail(f"unexpected event {event!r}")


async def eventually(
    predicate: Callable[[], bool | Awaitable[bool]], what: str, timeout: float = 10.0
) -> None:
    """Wait for a condition we cannot await directly (polling, with a deadline)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = predicate()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


# --- both backends -----------------------------------------------------------------


def test_publish_subscribe_delivery(hub: Backend) -> None:
    async def body(h: Hub) -> None:
        assert h.healthy
        event = {"type": "message", "id": 7, "text": "Привет, 👋", "nested": {"a": [1, None]}}
        async with h.subscribe(["ticket:1"]) as sub:
            assert sub.topics == {"ticket:1"}
            await h.publish("ticket:2", {"type": "other"})  # not subscribed
            await h.publish("ticket:1", event)
            assert await next_event(sub) == event
            await nothing(sub)

    hub.run(body)


def test_ordering_per_topic(hub: Backend) -> None:
    async def body(h: Hub) -> None:
        async with h.subscribe(["t"]) as sub:
            for n in range(300):
                await h.publish("t", {"n": n})
            got = [(await next_event(sub))["n"] for _ in range(300)]
            assert got == list(range(300))

    hub.run(body)


def test_concurrent_publishers_batches_arrive_whole_and_in_order(hub: Backend) -> None:
    """Many transactions publish their events at once (the Redis hub sends whatever is
    waiting in one pipeline): every event arrives once, each publisher's in its order."""

    async def body(h: Hub) -> None:
        async with h.subscribe(["a", "b"]) as sub:

            async def publisher(p: int) -> None:
                for k in range(10):
                    await h.publish_many(
                        [("a", {"p": p, "k": k, "i": 0}), ("b", {"p": p, "k": k, "i": 1})]
                    )

            await asyncio.gather(*(publisher(p) for p in range(20)))
            got = [await next_event(sub) for _ in range(400)]
            for p in range(20):
                mine = [(e["k"], e["i"]) for e in got if e["p"] == p]
                assert mine == [(k, i) for k in range(10) for i in (0, 1)]
            with pytest.raises(TimeoutError):
                await next_event(sub, timeout=0.3)

    hub.run(body)


def test_add_and_remove_topics(hub: Backend) -> None:
    async def body(h: Hub) -> None:
        async with h.subscribe() as sub:
            await sub.add("a")
            await sub.add("b")
            await sub.add("a")  # idempotent
            assert sub.topics == {"a", "b"}
            await h.publish("a", {"on": "a"})
            await h.publish("b", {"on": "b"})
            assert await next_event(sub) == {"on": "a"}
            assert await next_event(sub) == {"on": "b"}

            await sub.remove("a")
            await sub.remove("a")  # idempotent
            assert sub.topics == {"b"}
            await h.publish("a", {"on": "a", "late": True})
            await h.publish("b", {"on": "b", "n": 2})
            # "a" was published first; the first thing to arrive is b's event.
            assert await next_event(sub) == {"on": "b", "n": 2}
            await nothing(sub)

            await sub.add("a")
            await h.publish("a", {"on": "a", "again": True})
            assert await next_event(sub) == {"on": "a", "again": True}

    hub.run(body)


def test_no_delivery_after_close(hub: Backend) -> None:
    async def body(h: Hub) -> None:
        keep = h.subscribe(["x"])
        gone = h.subscribe(["x"])
        await keep.add("y")
        await gone.add("y")
        waiter = asyncio.ensure_future(gone.get())
        await gone.close()
        assert gone.closed
        with pytest.raises(SubscriptionClosed):
            await asyncio.wait_for(waiter, 5)
        await h.publish("x", {"n": 1})
        assert await next_event(keep) == {"n": 1}
        with pytest.raises(SubscriptionClosed):
            await gone.get()
        assert [e async for e in gone] == []
        await gone.add("x")  # no-op once closed
        await h.publish("x", {"n": 2})
        assert await next_event(keep) == {"n": 2}
        assert gone.qsize() == 0
        await keep.close()

    hub.run(body)


def test_two_subscriptions_same_topic(hub: Backend) -> None:
    async def body(h: Hub) -> None:
        async with h.subscribe(["shared"]) as one, h.subscribe(["shared", "solo"]) as two:
            await h.publish("shared", {"n": 1})
            await h.publish("solo", {"n": 2})
            assert await next_event(one) == {"n": 1}
            assert await next_event(two) == {"n": 1}
            assert await next_event(two) == {"n": 2}
            await nothing(one)
            await one.close()
            await h.publish("shared", {"n": 3})
            assert await next_event(two) == {"n": 3}

    hub.run(body)


def test_async_iteration(hub: Backend) -> None:
    async def body(h: Hub) -> None:
        sub = h.subscribe(["it"])
        async with sub:
            for n in range(3):
                await h.publish("it", {"n": n})
            got = []
            async for event in sub:
                got.append(event["n"])
                if len(got) == 3:
                    break
            assert got == [0, 1, 2]

    hub.run(body)


def test_overflow_sends_one_resync(hub: Backend) -> None:
    async def body(h: Hub) -> None:
        async with h.subscribe(["busy"]) as slow, h.subscribe(["busy"]) as witness:
            for n in range(12):
                await h.publish("busy", {"n": n})
                # The witness keeps up; once it has event n, so has `slow`'s queue.
                assert await next_event(witness) == {"n": n}
            assert slow.overflowed
            assert slow.overflows == 1
            assert await next_event(slow) == RESYNC_EVENT
            assert not slow.overflowed
            await nothing(slow)  # the rest was dropped: reload from the database
            await h.publish("busy", {"n": "after"})
            assert await next_event(slow) == {"n": "after"}
            assert await next_event(witness) == {"n": "after"}

    hub.run(body, queue_size=5)


def test_bad_events_and_topics_are_rejected(hub: Backend) -> None:
    async def body(h: Hub) -> None:
        with pytest.raises(TypeError):
            await h.publish("t", {"when": object()})
        with pytest.raises(TypeError):
            await h.publish("t", ["not", "a", "dict"])  # type: ignore[arg-type]
        with pytest.raises(ValueError):
            await h.publish("", {"n": 1})
        async with h.subscribe(["t"]) as sub:
            await h.publish("t", {"n": 1})
            assert await next_event(sub) == {"n": 1}

    hub.run(body)


def test_stop_closes_subscriptions(hub: Backend) -> None:
    async def main() -> None:
        h = hub.new()
        await h.start()
        sub = h.subscribe(["t"])
        await sub.add("u")
        waiter = asyncio.ensure_future(sub.get())
        await h.stop()
        with pytest.raises(SubscriptionClosed):
            await asyncio.wait_for(waiter, 5)
        await h.stop()  # idempotent

    asyncio.run(main())


def test_make_hub(hub: Backend) -> None:
    url = hub.server.url if hub.server else None
    made = make_hub(url)
    assert isinstance(made, RedisHub if url else MemoryHub)


# --- Redis only ----------------------------------------------------------------------


@pytest.mark.parametrize("hub", ["redis"], indirect=True)
def test_two_processes_see_each_other(hub: Backend) -> None:
    server = hub.redis_only()

    async def body(a: Hub) -> None:
        async with hub.new() as b, a.subscribe(["room"]) as sa, b.subscribe(["room"]) as sb:
            await b.publish("room", {"from": "b"})
            assert await next_event(sa) == {"from": "b"}
            assert await next_event(sb) == {"from": "b"}
            await a.publish("room", {"from": "a"})
            assert await next_event(sa) == {"from": "a"}
            assert await next_event(sb) == {"from": "a"}
            await nothing(sa)  # exactly once, no local double delivery
            await nothing(sb)
        # A hub on another prefix is another installation: it hears nothing.
        other = RedisHub(server.url, prefix=hub.prefix + "other:")
        async with other, other.subscribe(["room"]) as so:
            await a.publish("room", {"from": "a"})
            await nothing(so)

    hub.run(body)


@pytest.mark.parametrize("hub", ["redis"], indirect=True)
def test_one_pubsub_connection_reference_counted(hub: Backend) -> None:
    server = hub.redis_only()

    async def body(h: Hub) -> None:
        r = aioredis.Redis.from_url(server.url)

        async def numsub(topic: str) -> int:
            [(_, n)] = await r.pubsub_numsub(hub.prefix + topic)
            return int(n)

        async def pubsub_clients() -> int:
            clients = await r.client_list(_type="pubsub")
            return len(clients)

        try:
            subs = [h.subscribe(["t1", "t2"]) for _ in range(5)]
            for sub in subs:
                await sub.add("t3")
            assert await numsub("t1") == 1
            assert await numsub("t3") == 1
            await eventually(lambda: _eq(pubsub_clients(), 1), "a single pub/sub connection")
            for sub in subs[:-1]:
                await sub.close()
            assert await numsub("t1") == 1  # one local subscriber left
            await subs[-1].remove("t1")
            await eventually(lambda: _eq(numsub("t1"), 0), "UNSUBSCRIBE after the last")
            assert await numsub("t2") == 1
            await subs[-1].close()
            await eventually(lambda: _eq(numsub("t2"), 0), "UNSUBSCRIBE on close")
        finally:
            await r.aclose()

    hub.run(body, publish_timeout=3.0)  # (a's PUBLISH outlasts the pause: not dropped)


async def _eq(value: Awaitable[int], expected: int) -> bool:
    return await value == expected


@pytest.mark.parametrize("hub", ["redis"], indirect=True)
def test_redis_outage_and_recovery(hub: Backend) -> None:
    server = hub.redis_only()

    async def body(a: Hub) -> None:
        loop = asyncio.get_running_loop()
        b = hub.new()
        await b.start()
        a_back, b_back = asyncio.Event(), asyncio.Event()

        async def on_b_reconnect() -> None:
            b_back.set()

        a.add_reconnect_listener(a_back.set)  # sync listener
        b.add_reconnect_listener(on_b_reconnect)  # async listener
        try:
            async with a.subscribe(["room"]) as sa, b.subscribe(["room"]) as sb:
                await b.publish("room", {"n": 0})
                assert await next_event(sa) == {"n": 0}
                assert await next_event(sb) == {"n": 0}

                await asyncio.to_thread(server.stop)
                await eventually(lambda: not a.healthy and not b.healthy, "hubs to notice")

                started = loop.time()
                await a.publish("room", {"n": 1})
                assert loop.time() - started < 1.0
                # Single-process fallback: a's own subscribers still get it...
                assert await next_event(sa) == {"n": 1}
                # ...the other process cannot.
                await nothing(sb)

                started = loop.time()
                for n in range(20):
                    await a.publish("room", {"burst": n})
                assert loop.time() - started < 2.0
                assert [(await next_event(sa))["burst"] for _ in range(20)] == list(range(20))

                # Subscribing while Redis is down returns promptly too.
                started = loop.time()
                late = a.subscribe(["late"])
                await late.add("later")
                assert loop.time() - started < 1.0

                await asyncio.to_thread(server.start)  # same port
                await asyncio.wait_for(a_back.wait(), 15)
                await asyncio.wait_for(b_back.wait(), 15)
                assert a.healthy and b.healthy

                # Fan-out works again, both ways, including topics added during the outage.
                await b.publish("room", {"n": 2})
                assert await next_non_resync(sa) == {"n": 2}
                assert await next_non_resync(sb) == {"n": 2}
                await b.publish("later", {"n": 3})
                assert await next_non_resync(late) == {"n": 3}
                await late.close()
        finally:
            await b.stop()
            if server.proc is None:
                server.start()

    hub.run(body)


@asynccontextmanager
async def publish_refused(
    server: Redis,
) -> AsyncIterator[tuple[str, Callable[[], Awaitable[None]]]]:
    """A Redis user that may subscribe but not publish; yields (url, allow_publish)."""
    user = f"u{uuid.uuid4().hex[:10]}"
    r = aioredis.Redis.from_url(server.url)
    acl = ["on", ">pw", "~*", "&*", "+@all", "-publish"]
    await r.execute_command("ACL", "SETUSER", user, *acl)

    async def allow() -> None:
        await r.execute_command("ACL", "SETUSER", user, "+publish")

    try:
        yield f"redis://{user}:pw@127.0.0.1:{server.port}/0", allow
    finally:
        await r.execute_command("ACL", "DELUSER", user)
        await r.aclose()


@pytest.mark.parametrize("hub", ["redis"], indirect=True)
def test_dropped_publish_makes_other_processes_resync(hub: Backend) -> None:
    """Process a cannot publish (Redis refuses, by ACL) while b's subscription is fine."""
    server = hub.redis_only()

    async def main() -> None:
        async with publish_refused(server) as (url, allow):
            a = RedisHub(url, prefix=hub.prefix)
            b = hub.new()
            async with a, b, a.subscribe(["room"]) as sa, b.subscribe(["room"]) as sb:
                assert a.healthy
                await a.publish("room", {"n": 1})  # refused: NOPERM
                assert await next_event(sa) == {"n": 1}  # a's own subscribers: directly
                await nothing(sb)
                await allow()
                # b never got n=1; a tells it to reload once Redis takes publishes again.
                assert await next_event(sb, timeout=10) == RESYNC_EVENT
                await a.publish("room", {"n": 2})  # (a lost nothing: no resync of its own)
                assert await next_event(sb) == {"n": 2}
                assert await next_event(sa) == {"n": 2}
                await nothing(sa)

    asyncio.run(asyncio.wait_for(main(), 60))


@pytest.mark.parametrize("hub", ["redis"], indirect=True)
def test_too_many_dropped_topics_resync_everyone(hub: Backend) -> None:
    server = hub.redis_only()

    async def main() -> None:
        async with publish_refused(server) as (url, allow):
            a = RedisHub(url, prefix=hub.prefix, max_dropped_topics=2)
            b = hub.new()
            told = asyncio.Event()
            b.add_reconnect_listener(told.set)
            a_told = asyncio.Event()
            a.add_reconnect_listener(a_told.set)
            async with a, b, b.subscribe(["t0"]) as sb:
                for n in range(3):
                    await a.publish(f"t{n}", {"n": n})
                await allow()
                await asyncio.wait_for(told.wait(), 10)
                await nothing(sb)  # no per-topic resync: the listeners cover everything
                assert not a_told.is_set()  # a lost nothing itself

    asyncio.run(asyncio.wait_for(main(), 60))


def test_redis_unreachable_from_the_start() -> None:
    """No Redis at all: start, publish and subscribe work within the process, quickly."""

    async def main() -> None:
        loop = asyncio.get_running_loop()
        h = RedisHub(f"redis://127.0.0.1:{free_port()}/0", prefix="nowhere:")
        started = loop.time()
        await h.start()
        try:
            assert not h.healthy
            async with h.subscribe(["t"]) as sub:
                await h.publish("t", {"n": 1})
                assert await next_event(sub) == {"n": 1}
            assert loop.time() - started < 5.0
        finally:
            await h.stop()

    asyncio.run(main())


def test_a_consumer_gets_events_only_while_it_waits_with_nothing_queued(
    hub: Backend,
) -> None:
    """Subscription.consumer (a socket writing a frame in the publisher's step) never lets
    an event overtake one queued before it, and an event it refuses is queued as usual."""

    async def body(h: Hub) -> None:
        async with h.subscribe(["t"]) as sub:

            class Taker:
                def __init__(self) -> None:
                    self.taken: list[int] = []
                    self.took = asyncio.Event()
                    self.accept = True

                def take_now(self, ev: dict[str, Any]) -> bool:
                    if not self.accept:
                        return False
                    self.taken.append(ev["n"])
                    self.took.set()
                    return True

            taker = Taker()
            sub.consumer = taker
            getter = asyncio.ensure_future(sub.get())
            await asyncio.sleep(0)  # (no time passes: the get runs until it waits)
            await h.publish("t", {"n": 1})
            await asyncio.wait_for(taker.took.wait(), 5)
            assert taker.taken == [1] and not getter.done()
            taker.accept = False
            await h.publish("t", {"n": 2})
            assert await asyncio.wait_for(getter, 5) == {"n": 2}  # refused: queued
            # Both hubs deliver to this process's subscribers within publish: nobody waits.
            taker.accept = True
            await h.publish("t", {"n": 3})
            await h.publish("t", {"n": 4})
            assert taker.taken == [1]  # nobody was waiting: queued, in order
            assert [(await next_event(sub))["n"] for _ in range(2)] == [3, 4]

    hub.run(body)


@pytest.mark.parametrize("hub", ["redis"], indirect=True)
def test_own_subscribers_do_not_wait_for_redis(hub: Backend) -> None:
    """An event reaches this process's subscribers while Redis itself is stalled (CLIENT
    PAUSE), and exactly once: the copy that comes back from Redis is dropped. Another
    process gets it through Redis once the pause ends."""
    server = hub.redis_only()

    async def body(a: Hub) -> None:
        r = aioredis.Redis.from_url(server.url)
        try:
            async with hub.new() as b, a.subscribe(["room"]) as sa, b.subscribe(["room"]) as sb:
                await r.execute_command("CLIENT", "PAUSE", 1000, "ALL")
                publishing = asyncio.ensure_future(a.publish("room", {"n": 1}))
                assert await next_event(sa, timeout=0.5) == {"n": 1}
                assert not publishing.done()  # the PUBLISH itself is still held by Redis
                assert await next_event(sb) == {"n": 1}
                await publishing
                await nothing(sa)
                await nothing(sb)
        finally:
            await r.aclose()

    hub.run(body, publish_timeout=3.0)  # (a's PUBLISH outlasts the pause: not dropped)
