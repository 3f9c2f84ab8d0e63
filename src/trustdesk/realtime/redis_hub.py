"""Redis pub/sub hub, for several ``trustdesk run`` processes behind one load balancer.

Per process there is one connection for PUBLISH and ONE shared pub/sub connection; the
listener task reads it and fans events out locally to subscriptions by topic. Topics
map to channels ``<prefix><topic>`` (prefix ``trustdesk:`` by default). Local interest
is reference-counted: SUBSCRIBE goes out for the first local subscriber of a topic,
UNSUBSCRIBE after the last one leaves. ``Subscription.add`` returns once Redis has
confirmed the SUBSCRIBE (or after ``subscribe_timeout``, or at once while Redis is down).

Redis going away is survivable, because storage is the truth:

* ``publish`` never raises and never waits much more than ``publish_timeout``; after a
  failure it skips Redis for ``publish_cooldown`` seconds so a burst of publishes during
  an outage costs nothing.
* This process's own subscribers get its events directly, before the PUBLISH goes out,
  as with the in-process hub; every published payload starts with the hub's origin id,
  and the listener drops the ones that come back from Redis. So delivery within one
  process never waits for Redis (one round trip less on the way to a socket whose
  operator and visitor are on the same process), and a single-process deployment keeps
  working without Redis. All processes on one prefix must run this wire format.
* Topics whose events could not be sent to Redis are remembered (up to
  ``max_dropped_topics``); a background task retries with backoff and, once Redis takes
  publishes again, publishes a ``{"type": "resync"}`` event on each, so subscribers in
  *other* processes, who never heard of those events, reload from the database. If too
  many topics were dropped, a control message makes every hub on the prefix call its
  reconnect listeners instead.
* The listener reconnects with exponential backoff (capped at ``max_backoff``),
  re-subscribes every topic of interest, waits for Redis to confirm, and then calls the
  reconnect listeners so the WebSocket layer can tell its clients to resync. A
  connection that stops answering PINGs is treated as lost.

Not for Redis Cluster sharded pub/sub; a plain Redis (or Sentinel-fronted URL) is assumed.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from contextlib import suppress
from typing import Any, cast

from redis.asyncio.connection import AbstractConnection, ConnectionPool
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

from trustdesk.realtime.hub import (
    DEFAULT_QUEUE_SIZE,
    RESYNC_EVENT,
    Hub,
    Subscription,
    decode_event,
    encode_event,
)

logger = logging.getLogger(__name__)


def _why(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


CONTROL_TOPIC = "__hub__"
"""Reserved topic (under the prefix) for hub-to-hub control messages."""

RESYNC_ALL_TYPE = "resync-all"


class RedisHub(Hub):
    """Hub over Redis pub/sub; see the module docstring for the failure behaviour."""

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "trustdesk:",
        queue_size: int = DEFAULT_QUEUE_SIZE,
        publish_timeout: float = 0.5,
        publish_cooldown: float = 0.5,
        connect_timeout: float = 0.5,
        subscribe_timeout: float = 2.0,
        min_backoff: float = 0.05,
        max_backoff: float = 2.0,
        keepalive_interval: float = 5.0,
        keepalive_timeout: float = 3.0,
        max_dropped_topics: int = 1000,
    ) -> None:
        super().__init__(queue_size=queue_size)
        self._prefix = prefix
        self._prefix_b = prefix.encode()
        self._control = prefix + CONTROL_TOPIC
        self._control_b = self._control.encode()
        self._id = secrets.token_hex(8)
        # Every payload starts with "<origin id>:"; the listener skips its own.
        self._origin = self._id + ":"
        self._id_b = self._id.encode()
        self._publish_timeout = publish_timeout
        self._publish_cooldown = publish_cooldown
        self._connect_timeout = connect_timeout
        self._subscribe_timeout = subscribe_timeout
        self._min_backoff = min_backoff
        self._max_backoff = max_backoff
        self._keepalive_interval = keepalive_interval
        self._keepalive_timeout = keepalive_timeout
        self._max_dropped = max_dropped_topics
        # Parsing the URL here makes a bad TRUSTDESK_REDIS_URL fail at start-up.
        # No retries inside redis-py: we decide ourselves when to try again.
        self._pool = ConnectionPool.from_url(
            url,
            socket_connect_timeout=connect_timeout,
            socket_keepalive=True,
            retry=Retry(NoBackoff(), 0),
            health_check_interval=0,
        )
        self._running = False
        self._stopped = False
        # Publishing.
        self._pub_conn: AbstractConnection | None = None
        self._pub_lock = asyncio.Lock()
        # PUBLISHes waiting to be sent, with the future their publisher waits on (set to
        # None when sent, or to the error). Whoever holds the lock sends all that are
        # waiting in one round trip ("group commit"): under load, one pipeline per turn of
        # the connection instead of one round trip per event, each behind the one before.
        self._pub_queue: list[tuple[list[tuple[str, str]], asyncio.Future[Exception | None]]] = []
        self._pub_retry_at = 0.0
        self._pub_failing = False
        self._dropped: set[str] = set()
        self._dropped_all = False
        self._flush_task: asyncio.Task[None] | None = None
        # Listening.
        self._listener: asyncio.Task[None] | None = None
        self._conn: AbstractConnection | None = None
        self._healthy = False
        self._had_outage = False
        self._first_attempt = asyncio.Event()
        self._pending: Counter[str] = Counter()  # SUBSCRIBEs in flight, per channel
        self._ready: dict[str, asyncio.Future[None]] = {}  # channel -> confirmed

    # --- lifecycle -----------------------------------------------------------------

    @property
    def healthy(self) -> bool:
        return self._healthy

    async def start(self) -> None:
        if self._running:
            return
        self._running = True
        self._stopped = False
        self._first_attempt = asyncio.Event()
        self._listener = asyncio.get_running_loop().create_task(self._listen_forever())
        # Wait for the first connection attempt, so a healthy Redis is in use at once.
        with suppress(TimeoutError):
            await asyncio.wait_for(self._first_attempt.wait(), 4 * self._connect_timeout + 1)
        if not self._healthy:
            logger.warning(
                "Redis is unreachable; delivering events within this process only "
                "until it comes back"
            )

    async def stop(self) -> None:
        self._running = False
        self._stopped = True
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.cancel()
            await asyncio.gather(listener, return_exceptions=True)
        await self._close_subscriptions()
        await self._cancel_tasks()
        self._release_waiters()
        pub, self._pub_conn = self._pub_conn, None
        if pub is not None:
            with suppress(Exception):
                await pub.disconnect(nowait=True)
        with suppress(Exception):
            await self._pool.disconnect()

    # --- publishing ----------------------------------------------------------------

    def _check_topic(self, topic: str) -> None:
        super()._check_topic(topic)
        if topic == CONTROL_TOPIC:
            raise ValueError(f"the topic {CONTROL_TOPIC!r} is reserved")

    async def publish(self, topic: str, event: dict[str, Any]) -> None:
        await self.publish_many([(topic, event)])

    async def publish_many(self, items: Sequence[tuple[str, dict[str, Any]]]) -> None:
        for topic, _ in items:
            self._check_topic(topic)
        encoded = [(topic, self._origin + encode_event(event)) for topic, event in items]
        if self._stopped or not encoded:
            return
        # This process's subscribers first, at once; Redis carries it to the others.
        for topic, event in items:
            self._deliver(topic, event)
        loop = asyncio.get_running_loop()
        sent = False
        if loop.time() >= self._pub_retry_at:
            try:
                await asyncio.wait_for(
                    self._send_publish([(self._prefix + t, d) for t, d in encoded]),
                    2 * self._publish_timeout,
                )
                sent = True
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._pub_retry_at = loop.time() + self._publish_cooldown
                if not self._pub_failing:
                    self._pub_failing = True
                    logger.warning("publishing to Redis failed (%s); events are dropped", _why(exc))
                else:
                    logger.debug("publishing to Redis failed: %s", _why(exc))
        if sent:
            if self._pub_failing:
                self._pub_failing = False
                logger.info("publishing to Redis works again")
        else:
            for topic, _ in encoded:
                self._note_dropped(topic)
            self._schedule_flush()

    async def _send_publish(self, commands: list[tuple[str, str]]) -> None:
        done: asyncio.Future[Exception | None] = asyncio.get_running_loop().create_future()
        self._pub_queue.append((commands, done))
        async with self._pub_lock:
            if not done.done():  # nobody has sent it meanwhile: send it and all that wait
                batch, self._pub_queue = self._pub_queue, []
                try:
                    await self._send_batch([c for cmds, _ in batch for c in cmds])
                    error: Exception | None = None
                except asyncio.CancelledError:
                    # Unknown whether they went out: the others try again themselves (a
                    # duplicate is harmless, a loss is not).
                    self._pub_queue[:0] = [(c, f) for c, f in batch if f is not done]
                    raise
                except Exception as exc:
                    error = exc
                for _, f in batch:
                    if not f.done():
                        f.set_result(error)
        error = done.result()
        if error is not None:
            raise error

    async def _send_batch(self, commands: list[tuple[str, str]]) -> None:
        conn = self._pub_conn
        if conn is None:
            kwargs = {**self._pool.connection_kwargs, "socket_timeout": self._publish_timeout}
            conn = self._pub_conn = self._pool.connection_class(**kwargs)
        # A connection left over from before a Redis restart fails at first use:
        # then try once more on a fresh one (a duplicate is harmless, a loss is not).
        # Sending connects first if needed (socket_connect_timeout, one try).
        reused = conn.is_connected
        try:
            await self._pipeline(conn, commands)
        except RedisConnectionError:
            if not reused:
                raise
            await self._pipeline(conn, commands)

    @staticmethod
    async def _pipeline(conn: AbstractConnection, commands: list[tuple[str, str]]) -> None:
        try:
            packed = conn.pack_commands([("PUBLISH", ch, data) for ch, data in commands])
            await conn.send_packed_command(packed, check_health=False)
            for _ in commands:
                await conn.read_response()
        except BaseException:
            # Replies may be left unread: never reuse the connection in that state.
            with suppress(Exception):
                await conn.disconnect(nowait=True)
            raise

    def _note_dropped(self, topic: str) -> None:
        if self._dropped_all or topic in self._dropped:
            return
        if len(self._dropped) >= self._max_dropped:
            self._dropped.clear()
            self._dropped_all = True
        else:
            self._dropped.add(topic)

    def _schedule_flush(self) -> None:
        if self._running and (self._flush_task is None or self._flush_task.done()):
            self._flush_task = self._spawn(self._flush_dropped())

    async def _flush_dropped(self) -> None:
        """Tell other processes about topics whose events never reached Redis.

        Runs in the background from the first dropped publish until every dropped topic
        got its resync, retrying with backoff while Redis stays unreachable.
        """
        loop = asyncio.get_running_loop()
        resync = self._origin + encode_event(RESYNC_EVENT)
        delay = self._publish_cooldown
        while self._running and (self._dropped or self._dropped_all):
            wait = self._pub_retry_at - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
                continue
            topic: str | None
            if self._dropped_all:
                self._dropped_all = False
                self._dropped.clear()
                topic = None
                channel = self._control
                data = self._origin + encode_event({"type": RESYNC_ALL_TYPE})
            else:
                topic = self._dropped.pop()
                channel = self._prefix + topic
                data = resync
            try:
                await asyncio.wait_for(
                    self._send_publish([(channel, data)]), 2 * self._publish_timeout
                )
            except Exception as exc:
                logger.debug("could not publish a resync to Redis: %s", _why(exc))
                if topic is None:
                    self._dropped_all = True
                else:
                    self._note_dropped(topic)
                self._pub_retry_at = loop.time() + delay
                delay = min(delay * 2, self._max_backoff)
                continue
            delay = self._publish_cooldown

    # --- subscribing ---------------------------------------------------------------

    async def _attach(self, sub: Subscription, topic: str) -> None:
        channel = self._prefix + topic
        fut: asyncio.Future[None] | None
        if not self._register(sub, topic):
            fut = self._ready.get(channel)
        else:
            fut = None
            conn = self._conn
            if conn is not None and conn.is_connected:
                fut = asyncio.get_running_loop().create_future()
                self._ready[channel] = fut
                self._pending[channel] += 1
                try:
                    await conn.send_command("SUBSCRIBE", channel, check_health=False)
                except Exception as exc:
                    # The listener notices the broken connection and re-subscribes.
                    logger.debug("SUBSCRIBE %s failed: %s", channel, _why(exc))
            # Else Redis is down: the listener subscribes on reconnect.
        if fut is not None and not fut.done():
            try:
                await asyncio.wait_for(asyncio.shield(fut), self._subscribe_timeout)
            except TimeoutError:
                logger.warning("Redis did not confirm SUBSCRIBE %s in time", channel)

    async def _detach(self, sub: Subscription, topic: str) -> None:
        if not self._unregister(sub, topic):
            return
        channel = self._prefix + topic
        fut = self._ready.pop(channel, None)
        if fut is not None and not fut.done():
            fut.set_result(None)
        conn = self._conn
        if conn is not None and conn.is_connected:
            try:
                await conn.send_command("UNSUBSCRIBE", channel, check_health=False)
            except Exception as exc:
                logger.debug("UNSUBSCRIBE %s failed: %s", channel, _why(exc))

    # --- the listener --------------------------------------------------------------

    async def _listen_forever(self) -> None:
        backoff = self._min_backoff
        while self._running:
            conn = self._pool.connection_class(**self._pool.connection_kwargs)
            try:
                await self._session(conn)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self._healthy:
                    logger.warning("lost the Redis pub/sub connection: %s; reconnecting", _why(exc))
                elif not self._had_outage:
                    logger.warning("cannot reach Redis for pub/sub: %s; retrying", _why(exc))
                else:
                    logger.debug("Redis pub/sub still unavailable: %s", _why(exc))
            finally:
                if self._healthy:
                    backoff = self._min_backoff
                self._lost(conn)
                with suppress(Exception):
                    await conn.disconnect(nowait=True)
            self._had_outage = True
            self._first_attempt.set()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self._max_backoff)

    async def _session(self, conn: AbstractConnection) -> None:
        """One pub/sub connection's life; returns only by raising."""
        loop = asyncio.get_running_loop()
        connect = cast(Callable[[], Awaitable[None]], conn.connect)  # untyped in redis-py
        await asyncio.wait_for(connect(), 4 * self._connect_timeout)
        # From here to the SUBSCRIBE write nothing yields: topics added meanwhile by
        # other tasks are either in this snapshot or sent by _attach on this connection.
        self._conn = conn
        self._pending.clear()
        self._ready.clear()
        channels = [self._control]
        for topic in self._local:
            channel = self._prefix + topic
            channels.append(channel)
            self._ready[channel] = loop.create_future()
        for channel in channels:
            self._pending[channel] += 1
        await conn.send_command("SUBSCRIBE", *channels, check_health=False)
        # Redis answers in order: the PONG means every SUBSCRIBE above is in effect.
        await conn.send_command("PING", check_health=False)
        ping_sent: float | None = loop.time()
        last_rx = loop.time()
        while True:
            resp = await conn.read_response(timeout=1.0)
            now = loop.time()
            if resp is None:
                if ping_sent is not None:
                    if now - ping_sent > self._keepalive_timeout:
                        raise ConnectionError("Redis did not answer PING")
                elif now - last_rx > self._keepalive_interval:
                    await conn.send_command("PING", check_health=False)
                    ping_sent = now
                continue
            last_rx = now
            if not isinstance(resp, list) or not resp:
                continue
            kind = resp[0]
            if kind == b"message" and len(resp) >= 3:
                self._on_message(resp[1], resp[2])
            elif kind == b"subscribe" and len(resp) >= 2:
                self._on_subscribed(resp[1])
            elif kind == b"pong":
                ping_sent = None
                if not self._healthy:
                    self._on_healthy()

    def _on_healthy(self) -> None:
        self._healthy = True
        self._pub_retry_at = 0.0
        self._first_attempt.set()
        if self._had_outage:
            logger.info("Redis pub/sub connection restored; %d topics", len(self._local))
            self._fire_reconnect()

    def _on_subscribed(self, channel_b: bytes) -> None:
        channel = channel_b.decode("utf-8", "replace")
        left = self._pending[channel] - 1
        if left > 0:
            self._pending[channel] = left
            return
        self._pending.pop(channel, None)
        fut = self._ready.get(channel)
        if fut is not None and not fut.done():
            fut.set_result(None)

    def _on_message(self, channel_b: bytes, payload: bytes) -> None:
        origin, sep, data = payload.partition(b":")
        if origin == self._id_b or not sep:
            return  # ours (already delivered here), or not from a hub
        if channel_b == self._control_b:
            self._on_control(data)
            return
        if not channel_b.startswith(self._prefix_b):
            return
        topic = channel_b[len(self._prefix_b) :].decode("utf-8", "replace")
        if not self._local.get(topic):
            return
        try:
            event = decode_event(data)
        except ValueError:
            logger.warning("dropping a malformed event on %s", topic)
            return
        self._deliver(topic, event)

    def _on_control(self, data: bytes) -> None:
        try:
            msg = decode_event(data)
        except ValueError:
            return
        if msg.get("type") == RESYNC_ALL_TYPE:
            logger.info("another process lost events during a Redis outage; resyncing")
            self._fire_reconnect()

    def _lost(self, conn: AbstractConnection) -> None:
        if self._conn is conn:
            self._conn = None
        self._healthy = False
        self._pending.clear()
        self._release_waiters()

    def _release_waiters(self) -> None:
        # Whoever waits for a SUBSCRIBE confirmation is released; the reconnect
        # listeners cover whatever they miss.
        for fut in self._ready.values():
            if not fut.done():
                fut.set_result(None)
        self._ready.clear()
