"""Push on a customer message asks presence only when someone could get a push: with Redis,
presence is a round trip per customer message otherwise (docs/benchmarks.md)."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.support.runtime import runtime
from trustdesk.actions import operators, push
from trustdesk.config import Settings
from trustdesk.realtime.presence import MemoryPresence
from trustdesk.store.models import PushSubscription


class CountingPresence(MemoryPresence):
    def __init__(self) -> None:
        super().__init__()
        self.asked: list[str] = []

    async def online(self, kind: str) -> dict[str, dict[str, Any]]:
        self.asked.append("online")
        return await super().online(kind)

    async def online_among(self, kind: str, idents: list[str]) -> dict[str, dict[str, Any]]:
        self.asked.append(f"online_among {idents}")
        return await super().online_among(kind, idents)


def customer_message() -> dict[str, Any]:
    return {"sender_type": "customer", "sender_name": "Анна", "ticket_id": "T-1", "message": "hi"}


def test_no_subscription_no_presence_lookup(settings: Settings) -> None:
    async def main() -> None:
        async with runtime(settings) as rt:
            rt.presence = presence = CountingPresence()
            await push.notify_new_messages(rt, [customer_message()])
            assert presence.asked == []

            # An operator subscribed, dashboard open and visible: presence is asked about
            # that operator only, and nothing is pushed (the endpoint would refuse anyway).
            op = await operators.create_operator(rt, "a@x.io", "Anna", "pass-word-123", "admin")
            async with rt.store.transaction() as tx:
                tx.session.add(
                    PushSubscription(
                        operator_id=op.id, endpoint="https://127.0.0.1:9/x", p256dh="k", auth="a"
                    )
                )
            push._subscriptions.forget(rt)
            await presence.touch("operator", str(op.id), "c1", 30.0, {"visible": True})
            await push.notify_new_messages(rt, [customer_message()])
            assert presence.asked == [f"online_among ['{op.id}']"]

    asyncio.run(main())
