"""Concurrent writers on one ticket, on real SQLite and PostgreSQL: every message event's
`prev_id` is the ticket's message just before it (a socket that has sent `prev_id` sends
the event straight away, so a wrong one would skip a message), and each sender's read
cursor ends on its own last message.

On PostgreSQL no scope lock orders a reply and a customer's message: the ticket's row lock
does (their first statement, and the message statement, actions/messages.py _PG_POST)."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import select

from tests.support.payloads import png
from tests.support.runtime import runtime
from trustdesk.actions import attachments, operators, texts, tickets, visitors
from trustdesk.actions.runtime import Runtime
from trustdesk.actions.tickets import operator_reader
from trustdesk.config import Settings
from trustdesk.store.models import Operator, ReadCursor, SupportMessage, Visitor

ROUNDS = 15


async def anna_and_a_ticket(rt: Runtime) -> tuple[Operator, Visitor, tickets.Sent]:
    """An operator, and a customer whose first message opened a ticket."""
    anna = await operators.create_operator(rt, "anna@x.io", "Anna", "pass-word-123", "admin")
    _, visitor = await visitors.create_visitor(rt)
    return anna, visitor, await tickets.send_customer_message(rt, visitor, "вопрос", None, "c0")


def test_concurrent_messages_form_one_chain_per_ticket(settings: Settings) -> None:
    async def main() -> None:
        async with runtime(settings) as rt:
            anna = await operators.create_operator(
                rt, "anna@x.io", "Anna", "pass-word-123", "admin"
            )
            boris = await operators.create_operator(rt, "b@x.io", "Boris", "pass-word-123", "admin")
            _, visitor = await visitors.create_visitor(rt)
            first = await tickets.send_customer_message(rt, visitor, "вопрос", None, "c0")
            t = first.ticket
            _, other_visitor = await visitors.create_visitor(rt)
            other = await tickets.send_customer_message(rt, other_visitor, "другой", None, "o0")
            events: list[dict[str, Any]] = []
            async with rt.hub.subscribe([f"ticket:{t.id}"]) as sub:

                async def customer() -> list[int]:
                    sent = []
                    for i in range(ROUNDS):
                        s = await tickets.send_customer_message(
                            rt, visitor, f"c{i}", t.number, f"c{i + 1}"
                        )
                        sent.append(s.message["id"])
                    return sent

                async def operator(op: Operator, tag: str) -> list[int]:
                    return [
                        (await tickets.reply(rt, op, t.number, f"{tag}{i}", f"{tag}{i}"))["id"]
                        for i in range(ROUNDS)
                    ]

                async def elsewhere() -> None:
                    for i in range(ROUNDS):
                        await tickets.reply(rt, anna, other.ticket.number, f"x{i}", f"x{i}")

                mine, annas, boris_ids, _ = await asyncio.gather(
                    customer(), operator(anna, "a"), operator(boris, "b"), elsewhere()
                )
                want = 3 * ROUNDS + 2  # (+ each operator's "joined" message)
                while len(events) < want:
                    ev = await asyncio.wait_for(sub.get(), 10)
                    if ev.get("type") == "message":
                        events.append(ev)
            ids = [ev["message"]["id"] for ev in events]
            assert len(set(ids)) == want
            # Each event's prev_id is the ticket's stored message just before it, notes
            # included (the first reply's "took the ticket" note is in the chain but, being
            # for operators only, not on the ticket's topic).
            async with rt.store.read() as s:
                stored = sorted(
                    (
                        await s.scalars(
                            select(SupportMessage.id).where(SupportMessage.ticket_id == t.id)
                        )
                    ).all()
                )
            before = dict(zip(stored[1:], stored[:-1], strict=True))
            chain = sorted(events, key=lambda ev: ev["message"]["id"])
            assert [ev["prev_id"] for ev in chain] == [before[ev["message"]["id"]] for ev in chain]
            async with rt.store.read() as s:
                rows = (
                    await s.scalars(select(ReadCursor).where(ReadCursor.ticket_id == t.id))
                ).all()
            cursors = {c.reader: c.last_read_id for c in rows}
            assert cursors["customer"] == mine[-1]
            assert cursors[operator_reader(anna.id)] == annas[-1]
            assert cursors[operator_reader(boris.id)] == boris_ids[-1]

    asyncio.run(asyncio.wait_for(main(), 120))


def test_status_changes_racing_messages_on_one_ticket_never_fail(settings: Settings) -> None:
    """Closing, reopening and assigning change the ticket row before their notice is
    posted; a message on the same ticket from the customer (who does not share the
    operator's ticket lock) posted at the same moment must not deadlock against it."""

    async def main() -> None:
        async with runtime(settings) as rt:
            anna, visitor, first = await anna_and_a_ticket(rt)
            number = first.ticket.number
            for i in range(ROUNDS):
                results = await asyncio.gather(
                    tickets.close_ticket(rt, anna, number),
                    tickets.send_customer_message(rt, visitor, f"c{i}", number, f"c{i + 1}"),
                    tickets.reply(rt, anna, number, f"a{i}", f"a{i}"),
                    tickets.assign(rt, anna, number, anna.id if i % 2 else None),
                    return_exceptions=True,
                )
                failed = [r for r in results if isinstance(r, BaseException)]
                assert not failed, [(repr(e), getattr(e, "detail", None)) for e in failed]

    asyncio.run(asyncio.wait_for(main(), 120))


def test_racing_first_replies_post_one_join_notice(settings: Settings) -> None:
    """One operator's first two replies and opening the ticket, at the same moment, on a
    ticket they never joined: one "подключился" notice, no error (the join row is written
    by whichever comes first; the others see it, even from an older snapshot)."""

    async def main() -> None:
        async with runtime(settings) as rt:
            anna = await operators.create_operator(
                rt, "anna@x.io", "Anna", "pass-word-123", "admin"
            )
            joined = texts.operator_joined(anna.display_name)
            for i in range(ROUNDS):
                _, visitor = await visitors.create_visitor(rt)
                first = await tickets.send_customer_message(rt, visitor, "вопрос", None, f"c{i}")
                number = first.ticket.number
                results = await asyncio.gather(
                    tickets.reply(rt, anna, number, "a", f"a{i}"),
                    tickets.reply(rt, anna, number, "b", f"b{i}"),
                    tickets.open_ticket(rt, anna, number),
                    return_exceptions=True,
                )
                failed = [r for r in results if isinstance(r, BaseException)]
                assert not failed, [(repr(e), getattr(e, "detail", None)) for e in failed]
                async with rt.store.read() as session:
                    rows = await tickets.messages_after(session, first.ticket.id, 0, True)
                assert [m.message for m in rows].count(joined) == 1, [m.message for m in rows]

    asyncio.run(asyncio.wait_for(main(), 120))


def test_an_operator_upload_waits_for_the_ticket_row_before_joining(
    settings: Settings,
) -> None:
    """Every writer takes a ticket's row before the operator's join row (a reply does, in
    its first statement). An upload that wrote its join row first and then waited for the
    ticket row would deadlock against a reply holding the row and waiting for that join
    row. Shown on PostgreSQL by holding the row from another connection: the upload must
    wait without having written its join row (that connection can then write the same one
    at once)."""
    if settings.is_sqlite:
        return  # (SQLite: one writer at a time, no row locks)

    async def main() -> None:
        import asyncpg  # type: ignore[import-untyped]

        async with runtime(settings) as rt:
            anna, visitor, first = await anna_and_a_ticket(rt)
            number, tid = first.ticket.number, first.ticket.id
            url = settings.resolved_database_url.replace("postgresql+asyncpg", "postgresql")
            holder = await asyncpg.connect(url)
            try:
                tx = holder.transaction()
                await tx.start()
                await holder.execute("SET LOCAL lock_timeout = '3s'")
                await holder.execute("SELECT 1 FROM tickets WHERE id = $1 FOR NO KEY UPDATE", tid)
                upload = asyncio.create_task(
                    attachments.operator_upload(
                        rt, anna, png(), name="a.png", number=number, client_msg_id="f1"
                    )
                )
                waiting = "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                deadline = asyncio.get_running_loop().time() + 10
                while not await holder.fetchval(waiting):
                    assert not upload.done(), upload
                    assert asyncio.get_running_loop().time() < deadline, "upload never waited"
                    await asyncio.sleep(0.01)  # polling the server's own view of the wait
                # The upload waits for the row; its join row is not written yet.
                await holder.execute(
                    "INSERT INTO ticket_joins (ticket_id, operator_id, epoch) VALUES ($1, $2, 0)",
                    tid,
                    anna.id,
                )
                await tx.rollback()
                msg = await asyncio.wait_for(upload, 10)
                assert msg["kind"] == "file"
            finally:
                await holder.close()

    asyncio.run(asyncio.wait_for(main(), 60))
