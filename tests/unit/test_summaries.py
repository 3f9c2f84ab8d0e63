"""Dashboard ticket summaries (actions/tickets.py): each operator's unread count, on real
SQLite and PostgreSQL. Unread = the customer's messages after the operator's read cursor;
all of them for an operator who has never read the ticket."""

from __future__ import annotations

import asyncio
import uuid

from tests.support.runtime import runtime
from trustdesk.actions import operators, tickets, visitors
from trustdesk.config import Settings


def test_unread_counts_follow_each_operators_cursor(settings: Settings) -> None:
    async def main() -> None:
        async with runtime(settings) as rt:
            anna = await operators.create_operator(
                rt, "anna@x.io", "Anna", "pass-word-123", "admin"
            )
            boris = await operators.create_operator(rt, "boris@x.io", "Boris", "pass-word-123")
            _, visitor = await visitors.create_visitor(rt)

            async def customer(text: str) -> int:
                sent = await tickets.send_customer_message(rt, visitor, text, number)
                return int(sent.message["id"])

            first = await tickets.send_customer_message(rt, visitor, "1", None, uuid.uuid4().hex)
            number, ticket_id = first.ticket.number, first.ticket.id
            await customer("2")
            reply = await tickets.reply(rt, anna, number, "hello", uuid.uuid4().hex)
            await customer("3")
            fourth = await customer("4")
            await customer("5")

            async def unread() -> dict[str, int]:
                found = await tickets.summaries_for(
                    rt, [(anna.id, ticket_id), (boris.id, ticket_id)]
                )
                return {
                    "anna": found[(anna.id, ticket_id)]["unread"],
                    "boris": found[(boris.id, ticket_id)]["unread"],
                }

            assert await unread() == {"anna": 3, "boris": 5}  # Boris has never read it
            await tickets.mark_read_by_operator(rt, boris, number, reply["id"])
            assert await unread() == {"anna": 3, "boris": 3}
            await tickets.mark_read_by_operator(rt, boris, number, fourth)  # a customer's
            assert await unread() == {"anna": 3, "boris": 1}
            mine = await tickets.ticket_summaries(rt, anna.id)
            assert [(s["ticketId"], s["unread"], s["my_last_read_id"]) for s in mine] == [
                (number, 3, reply["id"])
            ]

    asyncio.run(main())
