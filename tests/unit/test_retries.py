"""A retried send (same client_msg_id) stores one message, on real SQLite and PostgreSQL:
the insert itself finds the retry (actions/messages.py, Duplicate), the action's
transaction rolls back, and the answer is the stored message."""

from __future__ import annotations

import asyncio

from sqlalchemy import func, select

from tests.support.runtime import runtime
from trustdesk.actions import operators, tickets, visitors
from trustdesk.config import Settings
from trustdesk.store.models import SupportMessage


def test_retries_store_one_message_and_leave_the_ticket_alone(settings: Settings) -> None:
    async def main() -> None:
        async with runtime(settings) as rt:
            op = await operators.create_operator(rt, "anna@x.io", "Anna", "pass-word-123", "admin")
            _, visitor = await visitors.create_visitor(rt)
            first = await tickets.send_customer_message(rt, visitor, "вопрос", None, "c1")
            number = first.ticket.number
            second = await tickets.send_customer_message(rt, visitor, "дальше", number, "c2")
            again = await tickets.send_customer_message(rt, visitor, "дальше", number, "c2")
            assert again.created is False and again.message == second.message
            assert again.prev_id == second.message["id"]
            reply = await tickets.reply(rt, op, number, "ответ", "r1")
            assert await tickets.reply(rt, op, number, "ответ", "r1") == reply
            async with rt.store.read() as s:
                texts = list(
                    (
                        await s.scalars(select(SupportMessage.message).order_by(SupportMessage.id))
                    ).all()
                )
                count = await s.scalar(select(func.count(SupportMessage.id)))
            # ("дальше", Anna joins, the first reply takes the ticket, "ответ")
            assert texts[-4:] == ["дальше", texts[-3], "Anna: тикет взят в работу", "ответ"]
            assert count == len(texts)
            assert texts.count("дальше") == 1 and texts.count("ответ") == 1
            summary = await tickets.ticket_summary(rt, op.id, first.ticket.id)
            assert summary["last_message"]["id"] == reply["id"]  # the ticket still points at it

    asyncio.run(main())
