"""Zulip's verify_action, over real sockets: for every action, the state a client had
before it plus the events it received must equal the state fetched after it.

This catches fan-out bugs mechanically: a missing event, a stale unread count, a note that
leaks to the widget, a status change nobody hears of.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.support.clients import OperatorClient, VisitorClient
from tests.support.server import ADMIN_EMAIL, ADMIN_NAME, ADMIN_PASSWORD, ServerProcess
from tests.support.wsclient import Socket, operator_socket, visitor_socket


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    srv = ServerProcess(tmp_path_factory.mktemp("verify"))
    srv.create_operator(ADMIN_EMAIL, ADMIN_NAME, ADMIN_PASSWORD)
    srv.create_operator("olga@trust.store", "Ольга", "olga-password-1", role="agent")
    srv.start()
    yield srv
    srv.stop()


VOLATILE = ("visitor",)  # presence is checked by its own tests


class OperatorModel:
    def __init__(self, op: OperatorClient) -> None:
        self.op = op
        self.tickets: dict[str, dict[str, Any]] = {}
        self.messages: dict[int, dict[str, Any]] = {}

    def apply(self, frame: dict[str, Any]) -> None:
        if frame["type"] == "ticket":
            self.tickets[frame["ticket"]["ticketId"]] = _strip(frame["ticket"])
        elif frame["type"] == "message":
            self.messages[frame["message"]["id"]] = frame["message"]


def _strip(t: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in t.items() if k not in VOLATILE}


class VisitorModel:
    def __init__(self, v: VisitorClient) -> None:
        self.v = v
        self.status: str | None = None
        self.messages: dict[int, dict[str, Any]] = {}

    def fetch(self) -> tuple[str, dict[int, dict[str, Any]]]:
        body = self.v.messages()
        return body["status"], {m["id"]: m for m in body["messages"]}

    def apply(self, frame: dict[str, Any]) -> None:
        if frame["type"] == "ticket":
            self.status = frame["ticket"]["status"]
        elif frame["type"] == "message":
            assert frame["message"]["id"] not in self.messages, "a message was sent twice"
            self.messages[frame["message"]["id"]] = frame["message"]


async def _converge(
    sock: Socket,
    apply: Callable[[dict[str, Any]], None],
    done: Callable[[], bool],
    timeout: float = 5,
) -> None:
    """Apply frames until the model equals the fetched state (waits on real frames)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not done():
        left = deadline - loop.time()
        if left <= 0:
            break
        try:
            apply(await sock.recv(left))
        except TimeoutError:
            break


def test_every_action_is_reflected_by_its_events(server: ServerProcess) -> None:
    async def go() -> None:
        admin = OperatorClient(server.url, ADMIN_EMAIL, ADMIN_PASSWORD)
        olga = OperatorClient(server.url, "olga@trust.store", "olga-password-1")
        customer = VisitorClient(server.url)
        ticket = customer.send("Здравствуйте")["ticketId"]

        # Olga watches the dashboard; the customer watches the widget.
        om = OperatorModel(olga)
        om.tickets = {t["ticketId"]: _strip(t) for t in olga.tickets(status="all")}
        osock, _ = await operator_socket(
            server.ws_url, olga.http.cookies["td_session"], server.url, since=10**9
        )
        vm = VisitorModel(customer)
        vm.status, vm.messages = vm.fetch()
        last = max(vm.messages)
        vsock, _ = await visitor_socket(server.ws_url, customer.token, ticket, last)

        actions: list[tuple[str, Callable[[], Any]]] = [
            ("customer writes", lambda: customer.send("Где заказ?")),
            ("admin opens", lambda: admin.open(ticket)),
            ("admin replies", lambda: admin.reply(ticket, "Уже едет")),
            (
                "admin note",
                lambda: admin.post(
                    "/api/admin/support/note", json={"ticketId": ticket, "message": "тихо"}
                ),
            ),
            (
                "system message",
                lambda: admin.post(
                    "/api/admin/support/system-message",
                    json={"ticketId": ticket, "message": "Переведено в доставку"},
                ),
            ),
            (
                "assign to olga",
                lambda: admin.post(
                    "/api/admin/support/assign",
                    json={"ticketId": ticket, "operator_id": olga.operator["id"]},
                ),
            ),
            ("close", lambda: admin.close(ticket)),
            ("close again", lambda: admin.close(ticket)),
            ("customer reopens by writing", lambda: customer.send("Ещё вопрос")),
            ("olga opens", lambda: olga.open(ticket)),
            ("reopen open ticket", lambda: admin.reopen(ticket)),
            (
                "unassign",
                lambda: admin.post(
                    "/api/admin/support/assign", json={"ticketId": ticket, "operator_id": None}
                ),
            ),
        ]
        for name, action in actions:
            await asyncio.to_thread(action)
            after_v = await asyncio.to_thread(vm.fetch)
            after_o = {
                t["ticketId"]: _strip(t)
                for t in await asyncio.to_thread(olga.tickets, status="all")
            }

            def v_done(after_v: Any = after_v) -> bool:
                return (vm.status, vm.messages) == after_v

            def o_done(after_o: Any = after_o) -> bool:
                return om.tickets == after_o

            await _converge(vsock, vm.apply, v_done)
            await _converge(osock, om.apply, o_done)
            assert (vm.status, vm.messages) == after_v, f"widget diverged after: {name}"
            assert om.tickets == after_o, f"dashboard diverged after: {name}"
            assert all(m["kind"] != "note" for m in vm.messages.values()), name
        # Every message the operator socket saw is exactly the stored history (notes too).
        stored = await asyncio.to_thread(olga.open, ticket)
        stored_ids = {m["id"] for m in stored["messages"]}
        assert set(om.messages) <= stored_ids
        await vsock.close()
        await osock.close()

    asyncio.run(asyncio.wait_for(go(), 120))
