"""Dashboard ticket summaries (actions/tickets.py): each operator's unread count, on real
SQLite and PostgreSQL. Unread = the customer's messages after the operator's read cursor;
all of them for an operator who has never read the ticket."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.services import Postgres
from trustdesk.actions import operators, tickets, visitors
from trustdesk.actions.runtime import Runtime
from trustdesk.config import Settings
from trustdesk.realtime.hub import make_hub
from trustdesk.realtime.presence import make_presence
from trustdesk.store.db import Store, run_migrations


@pytest.fixture(params=["sqlite", "postgres"])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Settings]:
    url = None
    if request.param == "postgres":
        pg: Postgres = request.getfixturevalue("postgres")
        url = pg.create_database(f"summaries_{int(time.time() * 1000)}")
    s = Settings(data_dir=tmp_path, database_url=url, create_first_operator=False)
    run_migrations(s)
    yield s


def test_unread_counts_follow_each_operators_cursor(settings: Settings) -> None:
    async def main() -> None:
        hub = make_hub(None)
        rt = Runtime(settings, Store(settings, publish=hub.publish_many), hub, make_presence(None))
        try:
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
        finally:
            await hub.stop()
            await rt.store.dispose()

    asyncio.run(main())
