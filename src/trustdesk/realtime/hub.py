"""The hub: moves JSON-able event dicts between string topics.

The hub knows nothing of tickets. Publishers call ``await hub.publish(topic, event)``;
consumers open a :class:`Subscription` on some topics and read events from it::

    async with hub.subscribe(["ticket:42", "operators"]) as sub:
        async for event in sub:
            ...

Guarantees and non-guarantees (storage is the truth, the hub is only a wake-up call):

* Once ``async with hub.subscribe(...)`` has entered, or ``await sub.add(topic)`` has
  returned, every event published afterwards on that topic (from any process sharing
  the backend, while the backend is healthy) is delivered to the subscription.
  Subscribe first, then replay from the database, then stream.
* Events published on one topic by one publisher arrive in publication order.
* Each subscription has a bounded queue (``queue_size``, default 1000). A consumer that
  falls that far behind does not slow the publisher down: its queue is discarded, the
  subscription is marked overflowed, and it receives a single ``{"type": "resync"}``
  event (``RESYNC_EVENT``). Events published while that resync event is still unread
  are dropped too. The consumer must then reload its state from the database; it will
  see everything the dropped events referred to, since they were published after commit.
* ``publish`` never raises because of a backend failure; it logs and drops instead (see
  :mod:`trustdesk.realtime.redis_hub` for the Redis fallbacks). It does raise
  ``TypeError``/``ValueError`` for an event that is not JSON-serialisable: that is a bug.
* Events are delivered as published. The memory hub checks that an event encodes as
  JSON (as Redis needs) and hands the published dict itself to its subscribers, not a
  decoded copy; from Redis each process gets its own decoded copy. Either way the dict a
  subscriber receives may be shared with other subscribers and with the publisher: treat
  it as read-only, publisher included (the hub relies on that).
* After the backend comes back from an outage the reconnect listeners are called; the
  WebSocket layer then tells its clients to resync from the database.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Sequence
from contextlib import suppress
from types import TracebackType
from typing import Any, Protocol, Self, TypeAlias

logger = logging.getLogger(__name__)

DEFAULT_QUEUE_SIZE = 1000
RESYNC_TYPE = "resync"
RESYNC_EVENT: dict[str, Any] = {"type": RESYNC_TYPE}

ReconnectListener: TypeAlias = Callable[[], Awaitable[None]] | Callable[[], None]


def encode_event(event: dict[str, Any]) -> str:
    """The wire form of an event: compact JSON, UTF-8 kept as is."""
    if not isinstance(event, dict):
        raise TypeError(f"an event must be a dict, not {type(event).__name__}")
    return json.dumps(event, ensure_ascii=False, separators=(",", ":"))


def decode_event(data: str | bytes) -> dict[str, Any]:
    """Inverse of :func:`encode_event`; raises ``ValueError`` if it is not a JSON object."""
    event = json.loads(data)
    if not isinstance(event, dict):
        raise ValueError("an event must be a JSON object")
    return event


class SubscriptionClosed(Exception):
    """Raised by :meth:`Subscription.get` once the subscription (or its hub) is closed."""


class _Resync:
    """Queue marker for the overflow resync event."""


_RESYNC_MARK = _Resync()


class Consumer(Protocol):
    """What Subscription.consumer is: a consumer that can take an event without waiting."""

    def take_now(self, event: dict[str, Any]) -> bool: ...


class Subscription:
    """A consumer's view of some topics: a bounded queue of events.

    Created by :meth:`Hub.subscribe`. The initial topics are subscribed when the
    ``async with`` block is entered (or on the first ``get``/``add``).
    """

    def __init__(self, hub: Hub, topics: Iterable[str], queue_size: int) -> None:
        if queue_size < 1:
            raise ValueError("queue_size must be at least 1")
        self._hub = hub
        self._initial: list[str] = list(dict.fromkeys(topics))
        self._opened = False
        self._closed = False
        self._topics: set[str] = set()
        # Made when an event arrives and dropped once read (an empty deque is 760 bytes,
        # and most subscriptions, one per idle widget, hold nothing most of the time).
        self._queue: deque[dict[str, Any] | _Resync] | None = None
        self._queue_size = queue_size
        # The waiting `get`, if any (one consumer per subscription: a socket's pump).
        self._waiter: asyncio.Future[None] | None = None
        self._overflowed = False
        self.overflows = 0
        """How many times this subscription overflowed (for metrics and tests)."""
        self.consumer: Consumer | None = None
        """Optional: takes an event straight away, in the publisher's step, when the
        consumer is parked in `get` with nothing queued (so nothing queued is overtaken);
        its `take_now` returns False to have the event queued as usual. A socket sets it to
        write the frame at once instead of waking its pump: that wake waits for the loop's
        next turn, behind every other ready task (about 0.4 ms at 1,000 conversations on
        the benchmark machine)."""

    # --- consumer side -------------------------------------------------------------

    @property
    def topics(self) -> frozenset[str]:
        return frozenset(self._topics)

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def overflowed(self) -> bool:
        """True from an overflow until the consumer has read the resync event."""
        return self._overflowed

    async def add(self, topic: str) -> None:
        """Start receiving ``topic``; returns once delivery is in effect. No-op if closed."""
        await self._open()
        await self._add(topic)

    async def remove(self, topic: str) -> None:
        """Stop receiving ``topic`` (events of it already queued stay queued)."""
        await self._open()
        if self._closed or topic not in self._topics:
            return
        self._topics.discard(topic)
        await self._hub._detach(self, topic)

    async def get(self) -> dict[str, Any]:
        """The next event, waiting for one. Raises :class:`SubscriptionClosed` once closed."""
        await self._open()
        while True:
            if self._closed:
                raise SubscriptionClosed
            item = self.get_nowait()
            if item is not None:
                return item
            waiter = asyncio.get_running_loop().create_future()
            self._waiter = waiter
            try:
                await waiter
            finally:
                if self._waiter is waiter:
                    self._waiter = None

    def get_nowait(self) -> dict[str, Any] | None:
        """The next queued event, or None if there is none (or the subscription is closed)."""
        if self._closed or not self._queue:
            return None
        item = self._queue.popleft()
        if not self._queue:
            self._queue = None
        if isinstance(item, _Resync):
            self._overflowed = False
            return dict(RESYNC_EVENT)
        return item

    def qsize(self) -> int:
        return len(self._queue) if self._queue is not None else 0

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def close(self) -> None:
        """Unsubscribe from everything and wake any waiting ``get`` (which then raises)."""
        if self._closed:
            return
        self._closed = True
        self._queue = None
        self._wake()
        topics = list(self._topics)
        self._topics.clear()
        self._hub._forget(self)
        for topic in topics:
            await self._hub._detach(self, topic)

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> dict[str, Any]:
        try:
            return await self.get()
        except SubscriptionClosed:
            raise StopAsyncIteration from None

    async def __aenter__(self) -> Self:
        await self._open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # --- hub side ------------------------------------------------------------------

    async def _open(self) -> None:
        if self._opened:
            return
        self._opened = True
        for topic in self._initial:
            await self._add(topic)

    async def _add(self, topic: str) -> None:
        self._hub._check_topic(topic)
        if self._closed or topic in self._topics:
            return
        self._topics.add(topic)
        await self._hub._attach(self, topic)

    def _put(self, event: dict[str, Any]) -> None:
        """Queue an event without ever blocking; on overflow switch to a single resync."""
        if self._closed or self._overflowed:
            return
        waiter = self._waiter
        if (
            self.consumer is not None
            and not self._queue
            and waiter is not None
            and not waiter.done()
            and self.consumer.take_now(event)
        ):
            return
        if self._queue is None:
            self._queue = deque()
        if len(self._queue) >= self._queue_size:
            self._queue.clear()
            self._queue.append(_RESYNC_MARK)
            self._overflowed = True
            self.overflows += 1
            logger.warning(
                "subscription %s overflowed (%d events queued); sending resync",
                sorted(self._topics),
                self._queue_size,
            )
        else:
            self._queue.append(event)
        self._wake()


class Hub(ABC):
    """Publish/subscribe between topics. Subclasses provide the transport.

    The base class holds the local fan-out: which subscriptions of this process are
    interested in which topic, and the reconnect listeners.
    """

    def __init__(self, *, queue_size: int = DEFAULT_QUEUE_SIZE) -> None:
        if queue_size < 1:
            raise ValueError("queue_size must be at least 1")
        self._queue_size = queue_size
        self._local: dict[str, set[Subscription]] = {}
        self._subscriptions: set[Subscription] = set()
        self._reconnect_listeners: list[ReconnectListener] = []
        self._tasks: set[asyncio.Task[None]] = set()

    @abstractmethod
    async def start(self) -> None: ...

    @abstractmethod
    async def stop(self) -> None: ...

    @abstractmethod
    async def publish(self, topic: str, event: dict[str, Any]) -> None:
        """Send ``event`` to every subscription of ``topic``. Never raises on backend failure."""

    async def publish_many(self, items: Sequence[tuple[str, dict[str, Any]]]) -> None:
        """Publish several events, in order (a backend may send them in one round trip)."""
        for topic, event in items:
            await self.publish(topic, event)

    @property
    @abstractmethod
    def healthy(self) -> bool:
        """False while the backend is unreachable."""

    def subscribe(self, topics: Iterable[str] = ()) -> Subscription:
        sub = Subscription(self, topics, self._queue_size)
        self._subscriptions.add(sub)
        return sub

    def add_reconnect_listener(self, cb: ReconnectListener) -> None:
        """Call ``cb`` (sync or async) each time the backend comes back from an outage."""
        self._reconnect_listeners.append(cb)

    def remove_reconnect_listener(self, cb: ReconnectListener) -> None:
        with suppress(ValueError):
            self._reconnect_listeners.remove(cb)

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # --- for subclasses and Subscription -------------------------------------------

    def _check_topic(self, topic: str) -> None:
        if not isinstance(topic, str) or not topic:
            raise ValueError("a topic must be a non-empty string")

    def _deliver(self, topic: str, event: dict[str, Any]) -> int:
        """Hand ``event`` to this process's subscriptions of ``topic``; never blocks."""
        subs = self._local.get(topic)
        if not subs:
            return 0
        for sub in tuple(subs):
            sub._put(event)
        return len(subs)

    def _register(self, sub: Subscription, topic: str) -> bool:
        """Record local interest; True if ``sub`` is the first local subscriber of ``topic``."""
        subs = self._local.get(topic)
        if subs is None:
            self._local[topic] = {sub}
            return True
        subs.add(sub)
        return False

    def _unregister(self, sub: Subscription, topic: str) -> bool:
        """Drop local interest; True if ``sub`` was the last local subscriber of ``topic``."""
        subs = self._local.get(topic)
        if subs is None or sub not in subs:
            return False
        subs.discard(sub)
        if subs:
            return False
        del self._local[topic]
        return True

    async def _attach(self, sub: Subscription, topic: str) -> None:
        self._register(sub, topic)

    async def _detach(self, sub: Subscription, topic: str) -> None:
        self._unregister(sub, topic)

    def _forget(self, sub: Subscription) -> None:
        self._subscriptions.discard(sub)

    async def _close_subscriptions(self) -> None:
        for sub in list(self._subscriptions):
            await sub.close()
        self._subscriptions.clear()
        self._local.clear()

    def _spawn(self, coro: Awaitable[None]) -> asyncio.Task[None]:
        async def wrapper() -> None:
            await coro

        task = asyncio.get_running_loop().create_task(wrapper())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _cancel_tasks(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    def _fire_reconnect(self) -> None:
        """Run the reconnect listeners in the background (a slow one must not stall us)."""
        listeners = list(self._reconnect_listeners)
        if listeners:
            self._spawn(self._run_reconnect_listeners(listeners))

    @staticmethod
    async def _run_reconnect_listeners(listeners: list[ReconnectListener]) -> None:
        for cb in listeners:
            try:
                result = cb()
                if inspect.isawaitable(result):
                    await result
            except Exception:
                logger.exception("reconnect listener %r failed", cb)


class MemoryHub(Hub):
    """In-process hub: the default for a single ``trustdesk run`` process."""

    def __init__(self, *, queue_size: int = DEFAULT_QUEUE_SIZE) -> None:
        super().__init__(queue_size=queue_size)
        self._running = True

    async def start(self) -> None:
        self._running = True

    async def stop(self) -> None:
        self._running = False
        await self._close_subscriptions()
        await self._cancel_tasks()

    @property
    def healthy(self) -> bool:
        return True

    async def publish(self, topic: str, event: dict[str, Any]) -> None:
        self._check_topic(topic)
        encode_event(event)  # what Redis would refuse is refused here too
        if self._local.get(topic):
            self._deliver(topic, event)


def make_hub(
    redis_url: str | None,
    *,
    prefix: str = "trustdesk:",
    queue_size: int = DEFAULT_QUEUE_SIZE,
) -> Hub:
    """A :class:`MemoryHub` if ``redis_url`` is empty, else a Redis-backed hub."""
    if not redis_url:
        return MemoryHub(queue_size=queue_size)
    from trustdesk.realtime.redis_hub import RedisHub

    return RedisHub(redis_url, prefix=prefix, queue_size=queue_size)
