"""A client that drops and reconnects at random ends with exactly the server's history.

A Hypothesis state machine drives a visitor (the widget) and an operator (the dashboard)
over real sockets against a real server: send, reply, drop the connection (cleanly or by
killing the TCP connection), reconnect, and kill -9 + restart the server. Sends carry a
client_msg_id and are re-sent after a reconnect until acknowledged, as the widget does.

Invariant after every step, for both clients: the messages the client holds are exactly
the first N stored messages (no gap, no duplicate, order kept — a repeated or lower id is
a failure at once); a connected client catches up to exactly the stored history; every
acknowledged send is stored once, with the acknowledged id.

The normal suite runs a short bounded version; `-m long` (make test-long) runs it longer.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from websockets.exceptions import ConnectionClosed

from tests.support.clients import OperatorClient, VisitorClient
from tests.support.inspect_db import query
from tests.support.resume import ResumingClient, operator_client, visitor_client
from tests.support.server import ADMIN_EMAIL, ADMIN_NAME, ADMIN_PASSWORD, ServerProcess

TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc")), min_size=0, max_size=30
).map(lambda t: f"msg {t}")


class World:
    """What outlives one example: the server and the event loop the sockets run on."""

    server: ServerProcess
    loop: asyncio.AbstractEventLoop
    max_restarts: int = 1

    @classmethod
    def run(cls, coro: Coroutine[Any, Any, Any], timeout: float = 120) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, cls.loop).result(timeout)


class ChatMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        srv = World.server
        self.v = VisitorClient(srv.url)
        self.ticket: str = self.v.send("начало")["ticketId"]
        self.op = OperatorClient(srv.url, ADMIN_EMAIL, ADMIN_PASSWORD)
        self.start_id = int(query(srv, "SELECT MAX(id) FROM support_messages")[0][0])
        self.visitor = visitor_client(lambda: srv.ws_url, self.v.token, self.ticket)
        self.visitor.last = 0
        cookie = self.op.http.cookies["td_session"]
        self.operator = operator_client(lambda: srv.ws_url, cookie, srv.url)
        self.operator.last = self.start_id
        self.pending: dict[str, str] = {}
        self.acked: dict[str, int] = {}
        self.sent = 0
        self.restarts = 0
        World.run(self.visitor.connect())
        World.run(self.operator.connect())

    # ------------------------------------------------------------------ helpers

    def side(self, name: str) -> ResumingClient:
        return self.visitor if name == "visitor" else self.operator

    async def flush(self) -> None:
        """Send every unacknowledged message (again) and wait for the acks."""
        c = self.visitor
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 60
        while any(cid not in c.acks for cid in self.pending):
            if loop.time() > deadline:
                raise TimeoutError(f"sends never acknowledged: {self.pending}")
            if c.sock is None:
                await c.connect()
            try:
                for cid, text in self.pending.items():
                    if cid not in c.acks:
                        await c.sock.send(  # type: ignore[union-attr]
                            {"type": "send", "message": text, "client_msg_id": cid}
                        )
            except ConnectionClosed:
                c.sock = None
                continue
            await c.pump_until(
                lambda: c.sock is None or all(cid in c.acks for cid in self.pending),
                timeout=max(1.0, deadline - loop.time()),
                reconnect=False,
            )
        for cid in list(self.pending):
            self.acked[cid] = c.acks[cid]
            del self.pending[cid]

    def stored(self) -> tuple[list[tuple[int, str]], list[tuple[int, str]]]:
        """(the visitor's view, the operator's view) of the database."""
        rows = query(
            World.server,
            "SELECT m.id, m.message, m.kind, t.number FROM support_messages m "
            "JOIN tickets t ON t.id = m.ticket_id WHERE m.id > $1 ORDER BY m.tx, m.id",
            0,
        )
        mine = [(int(r[0]), r[1]) for r in rows if r[3] == self.ticket and r[2] != "note"]
        ops = [(int(r[0]), r[1]) for r in rows if int(r[0]) > self.start_id]
        return mine, ops

    # ------------------------------------------------------------------ rules

    @rule(text=TEXT)
    def send(self, text: str) -> None:
        cid = f"c{self.sent}"
        self.sent += 1
        self.pending[cid] = text
        if self.visitor.sock is not None:
            World.run(self.flush())

    @rule(text=TEXT, note=st.booleans())
    def operator_writes(self, text: str, note: bool) -> None:
        path = "/api/admin/support/note" if note else "/api/admin/support/reply"
        r = self.op.post(path, json={"ticketId": self.ticket, "message": text})
        assert r.status_code == 200, r.text

    @rule(side=st.sampled_from(["visitor", "operator"]), abort=st.booleans())
    def drop(self, side: str, abort: bool) -> None:
        World.run(self.side(side).drop(abort=abort))

    @rule(side=st.sampled_from(["visitor", "operator"]))
    def reconnect(self, side: str) -> None:
        c = self.side(side)
        if c.sock is None:
            World.run(c.connect())
        if side == "visitor" and self.pending:
            World.run(self.flush())

    @precondition(lambda self: self.restarts < World.max_restarts)
    @rule()
    def restart_server(self) -> None:
        self.restarts += 1
        World.server.kill()
        World.server.start()

    # ------------------------------------------------------------------ the invariant

    @invariant()
    def client_logs_equal_the_database(self) -> None:
        mine, ops = self.stored()
        for c, truth in ((self.visitor, mine), (self.operator, ops)):
            if c.sock is not None and truth:
                try:
                    World.run(c.sync_to(truth[-1][0], timeout=60))
                except ConnectionClosed:
                    c.sock = None
            got = [(m["id"], m["message"]) for m in c.log]
            # No gap, no duplicate, order kept: the log is exactly a prefix of the truth ...
            assert got == truth[: len(got)], (got[-3:], truth[: len(got)][-3:])
            # ... and all of it once the client is connected and caught up.
            if c.sock is not None:
                assert got == truth
        ids = {m for m, _ in mine}
        for cid, mid in self.acked.items():
            assert mid in ids, (cid, mid)
        stored_cids = query(
            World.server,
            "SELECT m.client_msg_id, m.id FROM support_messages m JOIN tickets t "
            "ON t.id = m.ticket_id WHERE t.number = $1 AND m.client_msg_id IS NOT NULL",
            self.ticket,
        )
        assert len(stored_cids) == len({c for c, _ in stored_cids})
        assert {c: int(m) for c, m in stored_cids if c in self.acked} == self.acked

    def teardown(self) -> None:
        # In the end everything sent is stored once and both sides hold exactly the history.
        try:
            World.run(self.visitor.connect()) if self.visitor.sock is None else None
            World.run(self.flush())
            if self.operator.sock is None:
                World.run(self.operator.connect())
            self.client_logs_equal_the_database()
            assert len(self.acked) == self.sent
        finally:
            World.run(self.visitor.close())
            World.run(self.operator.close())


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[type[World]]:
    srv = ServerProcess(
        tmp_path_factory.mktemp("machine"),
        extra_env={
            "TRUSTDESK_VISITOR_RATE_BURST": "100000",
            "TRUSTDESK_VISITOR_RATE_PER_MINUTE": "100000",
        },
    )
    srv.create_operator(ADMIN_EMAIL, ADMIN_NAME, ADMIN_PASSWORD)
    srv.start()
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    World.server, World.loop = srv, loop
    try:
        yield World
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        srv.stop()


def _run(examples: int, steps: int, restarts: int) -> None:
    World.max_restarts = restarts
    test = ChatMachine.TestCase
    test.settings = settings(
        max_examples=examples,
        stateful_step_count=steps,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    test("runTest").runTest()


@pytest.mark.timeout(300)
def test_reconnecting_client_ends_with_exactly_the_history_short(world: type[World]) -> None:
    _run(examples=3, steps=12, restarts=1)


@pytest.mark.long
@pytest.mark.timeout(1200)
def test_reconnecting_client_ends_with_exactly_the_history_long(world: type[World]) -> None:
    _run(examples=25, steps=40, restarts=2)
