"""The operators' stream without a shared lock (store/stream.py), on real SQLite and
PostgreSQL: many writers on many tickets commit after random delays (some roll back, one
transaction holds an id without writing a message), while a reader resumes again and again
from the last message it got, as a reconnecting dashboard does with `since`. What it reads
must be every committed message exactly once: a message committed after a later id was
read is not skipped, and nothing is read twice."""

from __future__ import annotations

import asyncio
import random

from sqlalchemy import func, select, text

from tests.support.runtime import runtime
from trustdesk.actions import tickets, visitors
from trustdesk.actions.messages import post_message
from trustdesk.actions.runtime import Runtime
from trustdesk.config import Settings
from trustdesk.store.models import SupportMessage, Ticket

WRITERS = 12
ROUNDS = 12
TICKETS = 6


class Rollback(Exception):
    """A writer that gives up after its insert: its id is drawn and never committed."""


async def write(rt: Runtime, rng: random.Random, ticket_ids: list[str], tag: str) -> list[int]:
    committed: list[int] = []
    for i in range(ROUNDS):
        tid = rng.choice(ticket_ids)
        delay = rng.random() * 0.02
        give_up = rng.random() < 0.15
        try:
            async with rt.store.transaction() as tx:
                t = await tx.session.get(Ticket, tid)
                assert t is not None
                m = await post_message(
                    tx, t, sender_type="system", sender_name="bot", text=f"{tag}-{i}"
                )
                await asyncio.sleep(delay)  # the commit comes late: others overtake it
                if give_up:
                    raise Rollback
            committed.append(m["id"])
        except Rollback:
            pass
    return committed


async def hold_an_id(rt: Runtime, until: asyncio.Event) -> None:
    """A transaction that is not a message's keeps the horizon back while it runs
    (PostgreSQL; on SQLite it would keep the one writer's lock from every writer)."""
    if rt.store.dialect != "postgresql":
        return
    async with rt.store.transaction() as tx:
        await tx.session.execute(text("SELECT pg_current_xact_id()"))
        await until.wait()


def test_a_resuming_reader_gets_every_committed_message_once(settings: Settings) -> None:
    async def main() -> None:
        async with runtime(settings) as rt:
            ticket_ids = []
            for i in range(TICKETS):
                _, v = await visitors.create_visitor(rt)
                sent = await tickets.send_customer_message(rt, v, f"q{i}", None, f"q{i}")
                ticket_ids.append(sent.ticket.id)
            async with rt.store.read() as s:
                top = await s.scalar(select(func.max(SupportMessage.id)))
            start = await tickets.stream_position(rt, int(top or 0))
            got: list[int] = []
            done = asyncio.Event()
            held = asyncio.Event()

            async def reader() -> None:
                since = start[1]
                while True:
                    finished = done.is_set()
                    pos = await tickets.stream_position(rt, since)  # a reconnect
                    batch = await tickets.operator_messages_after(rt, pos, 7)
                    got.extend(m["id"] for _, m in batch)
                    if batch:
                        since = batch[-1][1]["id"]
                    elif finished:
                        return
                    else:
                        await asyncio.sleep(0.001)  # (a dashboard waits for the next event)

            rng = random.Random(24)
            read = asyncio.create_task(reader())
            holder = asyncio.create_task(hold_an_id(rt, held))
            writers = [
                write(rt, random.Random(rng.random()), ticket_ids, f"w{n}") for n in range(WRITERS)
            ]
            results = await asyncio.gather(*writers)
            held.set()
            await holder
            done.set()
            await asyncio.wait_for(read, 30)
            committed = sorted(i for r in results for i in r)
            async with rt.store.read() as s:
                stored = list(
                    (
                        await s.scalars(
                            select(SupportMessage.id).where(SupportMessage.id > start[1])
                        )
                    ).all()
                )
            assert sorted(stored) == committed  # (the rolled-back ones are not stored)
            assert len(got) == len(set(got)), "a message was read twice"
            assert sorted(got) == committed, "a committed message was skipped"
            assert len(committed) > WRITERS * ROUNDS // 2

    asyncio.run(main())
