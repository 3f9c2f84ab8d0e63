"""TRUSTDESK_REDIS_PREFIX: every Redis key and channel a server uses starts with it, so two
installations can share one Redis (pub/sub channels are not separated by database number)."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import redis

from tests.support.clients import VisitorClient
from tests.support.server import ServerProcess
from tests.support.services import Redis
from tests.support.wsclient import visitor_socket


def test_keys_and_channels_carry_the_configured_prefix(tmp_path: Path) -> None:
    server_redis = Redis(tmp_path / "redis")
    server_redis.start()
    server = ServerProcess(
        tmp_path / "data",
        redis_url=server_redis.url,
        extra_env={"TRUSTDESK_REDIS_PREFIX": "shop-b:"},
    )
    watcher = redis.Redis.from_url(server_redis.url, decode_responses=True)
    pubsub = watcher.pubsub()
    pubsub.psubscribe("*")
    assert pubsub.get_message(timeout=5)["type"] == "psubscribe"  # type: ignore[index]
    channels: list[str] = []
    seen_message = threading.Event()

    def listen() -> None:
        while not seen_message.is_set():
            m = pubsub.get_message(timeout=0.5)
            if m and m["type"] == "pmessage":
                channels.append(m["channel"])
                if '"type":"message"' in m["data"] and "ещё" in m["data"]:
                    seen_message.set()  # the socket's message: its presence came before it

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    try:
        server.start()
        visitor = VisitorClient(server.url)
        ticket = visitor.send("Здравствуйте")["ticketId"]

        async def online_and_write() -> None:  # a live widget: presence keys, then events
            ws, _ = await visitor_socket(server.ws_url, visitor.token, ticket, 0)
            await ws.send({"type": "send", "message": "ещё", "client_msg_id": "m2"})
            assert await asyncio.to_thread(seen_message.wait, 15), "no message event in Redis"
            keys.extend(watcher.scan_iter("*"))  # (while the widget is online: presence)
            await ws.conn.close()

        keys: list[str] = []
        asyncio.run(asyncio.wait_for(online_and_write(), 30))
        assert keys, "the server kept no presence in Redis"
        assert all(k.startswith("shop-b:") for k in keys), keys
        assert channels and all(c.startswith("shop-b:") for c in channels), channels
    finally:
        seen_message.set()
        listener.join(5)
        pubsub.close()
        watcher.close()
        server.stop()
        server_redis.stop()
