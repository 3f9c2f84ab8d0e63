"""Senders that retry like a real client: same client_msg_id until acknowledged.

A send is *acknowledged* when the server answered 200 with the stored message. Until then
the sender does not know whether the message was stored (the server may have died after
the commit and before the answer), so it sends again with the same client_msg_id, which
the server turns into the message it already has.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx


@dataclass
class Ack:
    client_msg_id: str
    text: str
    message_id: int
    attempts: int


@dataclass
class RetryingSender:
    base_url: Callable[[], str]
    path: str
    headers: dict[str, str]
    cookies: dict[str, str] = field(default_factory=dict)
    acks: list[Ack] = field(default_factory=list)
    failures: int = 0  # attempts that got no answer (server away) or a 5xx
    statuses: list[int] = field(default_factory=list)
    # Set at the first failed attempt (a fault test can wait for the fault to be felt).
    failed: threading.Event = field(default_factory=threading.Event)

    async def send(self, body: dict[str, Any], deadline: float) -> Ack:
        loop = asyncio.get_running_loop()
        attempts = 0
        delay = 0.05
        while True:
            attempts += 1
            try:
                async with httpx.AsyncClient(
                    base_url=self.base_url(), headers=self.headers, cookies=self.cookies, timeout=15
                ) as http:
                    r = await http.post(self.path, json=body)
                self.statuses.append(r.status_code)
                if r.status_code == 200:
                    data = r.json()
                    msg = data["message"]
                    ack = Ack(body["client_msg_id"], body["message"], int(msg["id"]), attempts)
                    assert msg["client_msg_id"] == body["client_msg_id"], data
                    self.acks.append(ack)
                    return ack
                assert r.status_code >= 500 or r.status_code == 429, (r.status_code, r.text)
                self.failures += 1
                self.failed.set()
            except httpx.TransportError:
                self.failures += 1
                self.failed.set()
            if loop.time() > deadline:
                raise TimeoutError(f"{body['client_msg_id']} never acknowledged")
            await asyncio.sleep(delay)  # backoff before the retry, as the widget does
            delay = min(delay * 2, 1.0)
