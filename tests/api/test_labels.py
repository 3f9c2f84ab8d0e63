"""Labels on tickets and merging two tickets of one customer, over real HTTP and sockets,
on SQLite and PostgreSQL (the `server` fixture of tests/api/conftest.py)."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from alembic import command
from alembic.config import Config

from tests.support.clients import OperatorClient, VisitorClient
from tests.support.inspect_db import query
from tests.support.server import ServerProcess
from tests.support.services import Postgres
from tests.support.wsclient import visitor_socket
from trustdesk.config import Settings
from trustdesk.store.db import MIGRATIONS, run_migrations

_n = itertools.count()


def _name(base: str) -> str:
    """Label names are unique per server (the module's server is shared by the tests)."""
    return f"{base} {next(_n)}"


def _label(op: OperatorClient, name: str, color: str = "#2f6bff") -> dict[str, Any]:
    r = op.post("/api/admin/labels", {"name": name, "color": color})
    assert r.status_code == 201, r.text
    out: dict[str, Any] = r.json()["label"]
    return out


def _put(op: OperatorClient, number: str, label_id: int) -> httpx.Response:
    return op.post(f"/api/admin/support/ticket/{number}/labels", {"label_id": label_id})


def _agent(server: ServerProcess, op: OperatorClient) -> OperatorClient:
    email = f"agent{next(_n)}-{uuid.uuid4().hex[:6]}@trust.store"
    body = {"email": email, "name": "Агент", "password": "agent password one", "role": "agent"}
    assert op.post("/api/admin/operators", body).status_code == 201
    return OperatorClient(server.url, email, "agent password one")


def _error(r: httpx.Response, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    err: dict[str, Any] = r.json()["error"]
    return err


def test_label_crud_and_bad_input(server: ServerProcess, operator: OperatorClient) -> None:
    name = _name("Доставка")
    label = _label(operator, f"  {name}  ", "#FFAA00")
    assert label["name"] == name and label["color"] == "#ffaa00" and label["tickets"] == 0
    # Unique whatever the case, Cyrillic included (SQLite's lower() would not fold it).
    assert _error(operator.post("/api/admin/labels", {"name": name.upper()}), 409)["code"] == (
        "label_exists"
    )
    for body, field in [
        ({"name": "x" * 41}, "name"),
        ({"name": "   "}, "name"),
        ({"name": "ok", "color": "red"}, "color"),
        ({"name": "ok", "color": "#12345g"}, "color"),
    ]:
        err = _error(operator.post("/api/admin/labels", body), 422)
        assert err.get("field") == field or field in err["message"], (body, err)
    assert "name" in _error(operator.post("/api/admin/labels", {}), 422)["message"]
    assert _error(operator.post("/api/admin/labels", {"name": "x" * 101}), 422)

    lid = label["id"]
    r = operator.http.patch(f"/api/admin/labels/{lid}", json={"name": name + " быстрая"})
    assert r.status_code == 200 and r.json()["label"]["name"] == name + " быстрая"
    r = operator.http.patch(f"/api/admin/labels/{lid}", json={"color": "#00aa00"})
    assert r.json()["label"]["color"] == "#00aa00"
    assert _error(operator.http.patch(f"/api/admin/labels/{lid}", json={}), 422)
    assert _error(operator.http.patch("/api/admin/labels/999999", json={"color": "#000000"}), 404)
    assert _error(operator.http.patch("/api/admin/labels/0", json={"color": "#000000"}), 422)
    other = _label(operator, _name("Возврат"))
    r = operator.http.patch(
        f"/api/admin/labels/{other['id']}", json={"name": name.lower() + " быстрая"}
    )
    assert _error(r, 409)["code"] == "label_exists"

    listed = operator.http.get("/api/admin/labels").json()["labels"]
    assert {x["id"] for x in listed} >= {lid, other["id"]}
    assert operator.http.delete(f"/api/admin/labels/{lid}").status_code == 200
    assert (
        _error(operator.http.delete(f"/api/admin/labels/{lid}"), 404)["code"] == "label_not_found"
    )
    assert lid not in {x["id"] for x in operator.http.get("/api/admin/labels").json()["labels"]}


def test_agents_apply_labels_only_admins_manage(
    server: ServerProcess, operator: OperatorClient
) -> None:
    agent = _agent(server, operator)
    label = _label(operator, _name("Оплата"))
    assert _error(agent.post("/api/admin/labels", {"name": _name("Агентская")}), 403)
    assert _error(
        agent.http.patch(f"/api/admin/labels/{label['id']}", json={"color": "#000000"}), 403
    )
    assert _error(agent.http.delete(f"/api/admin/labels/{label['id']}"), 403)
    assert any(x["id"] == label["id"] for x in agent.http.get("/api/admin/labels").json()["labels"])

    customer = VisitorClient(server.url)
    number = customer.send("Не проходит оплата картой")["ticketId"]
    r = _put(agent, number, label["id"])
    assert r.status_code == 200, r.text
    assert [x["name"] for x in r.json()["ticket"]["labels"]] == [label["name"]]
    assert _put(agent, number, label["id"]).status_code == 200  # again: no change, no error
    assert len(agent.open(number)["ticket"]["labels"]) == 1
    # Unknown ids are 404 naming what was not found; bad bodies 422.
    assert _error(_put(agent, number, 999_999), 404)["code"] == "label_not_found"
    assert _error(_put(agent, "TKT-0-NONE", label["id"]), 404)["code"] == "ticket_not_found"
    assert (
        "label_id"
        in _error(agent.post(f"/api/admin/support/ticket/{number}/labels", {}), 422)["message"]
    )
    assert _error(
        agent.post(f"/api/admin/support/ticket/{number}/labels", {"label_id": 2**63}), 422
    )
    assert _error(agent.post(f"/api/admin/support/ticket/{'x' * 41}/labels", {"label_id": 1}), 422)

    r = agent.http.delete(f"/api/admin/support/ticket/{number}/labels/{label['id']}")
    assert r.status_code == 200 and r.json()["ticket"]["labels"] == []
    # The session's CSRF token guards these like every other change.
    bare = httpx.Client(base_url=server.url, cookies=agent.http.cookies)
    r = bare.post(f"/api/admin/support/ticket/{number}/labels", json={"label_id": label["id"]})
    assert _error(r, 403)["code"] == "csrf_failed"


def test_filter_search_and_report_counts(server: ServerProcess, operator: OperatorClient) -> None:
    ship = _label(operator, _name("Доставка"), "#0ea5e9")
    back = _label(operator, _name("Возврат"), "#ef4444")
    a = VisitorClient(server.url).send("Где мой заказ?")["ticketId"]
    b = VisitorClient(server.url).send("Хочу вернуть товар")["ticketId"]
    c = VisitorClient(server.url).send("Просто вопрос")["ticketId"]
    assert _put(operator, a, ship["id"]).status_code == 200
    assert _put(operator, b, ship["id"]).status_code == 200
    assert _put(operator, b, back["id"]).status_code == 200

    def numbers(**params: str) -> set[str]:
        return {t["ticketId"] for t in operator.tickets(**params)}

    assert numbers(label=str(ship["id"])) == {a, b}
    assert numbers(label=str(back["id"])) == {b}
    assert c not in numbers(label=str(ship["id"]), status="all")
    # The search finds a label by name, whatever its case (Cyrillic on SQLite too).
    assert {a, b} <= numbers(q=ship["name"].lower())
    assert numbers(q=back["name"].upper()) == {b}
    assert numbers(q=back["name"], label=str(ship["id"])) == {b}
    assert _error(operator.http.get("/api/admin/support/tickets", params={"label": "x"}), 422)
    assert _error(operator.http.get("/api/admin/support/tickets", params={"label": "0"}), 422)
    assert numbers(label="999999") == set()

    row = next(t for t in operator.tickets(label=str(back["id"])) if t["ticketId"] == b)
    assert [x["name"] for x in row["labels"]] == sorted([ship["name"], back["name"]], key=str.lower)
    assert all(set(x) == {"id", "name", "color"} for x in row["labels"])

    report = operator.http.get("/api/admin/report", params={"days": 7}).json()
    counts = {x["id"]: x["tickets"] for x in report["labels"]}
    assert counts[ship["id"]] == 2 and counts[back["id"]] == 1

    # Deleting a label takes it off its tickets (and out of the report).
    assert operator.http.delete(f"/api/admin/labels/{back['id']}").status_code == 200
    assert [x["id"] for x in operator.open(b)["ticket"]["labels"]] == [ship["id"]]
    assert back["id"] not in {
        x["id"] for x in operator.http.get("/api/admin/report").json()["labels"]
    }


def _merge(op: OperatorClient, src: str, dst: str) -> httpx.Response:
    return op.post("/api/admin/support/merge", {"from": src, "into": dst})


def test_merge_moves_messages_in_order_with_notices(
    server: ServerProcess, operator: OperatorClient
) -> None:
    customer = VisitorClient(server.url)
    older = customer.send("Заказ 1042 не пришёл")["ticketId"]
    operator.reply(older, "Проверяем доставку")
    newer = customer.send("Пишу ещё раз про заказ 1042", new_ticket=True)["ticketId"]
    assert newer != older
    customer.send("Курьер так и не позвонил")
    operator.reply(newer, "Передали курьерской службе")
    label = _label(operator, _name("Доставка"))
    assert _put(operator, newer, label["id"]).status_code == 200

    before_new = operator.open(newer)["messages"]
    before_old = operator.open(older)["messages"]
    agent = _agent(server, operator)  # any operator may merge
    r = _merge(agent, newer, older)
    assert r.status_code == 200, r.text
    summary = r.json()["ticket"]
    assert summary["ticketId"] == older
    assert [x["id"] for x in summary["labels"]] == [label["id"]]

    merged = operator.open(older)["messages"]
    ids = [m["id"] for m in merged]
    assert ids == sorted(ids)  # in id order
    old_ids = {m["id"] for m in before_old + before_new}
    assert old_ids <= set(ids)  # every message kept, with its id
    notice = f"🔗 Тикет {newer} объединён с {older}"
    assert merged[-1]["message"] == notice and merged[-1]["sender_type"] == "system"
    assert all(m["ticket_id"] == older for m in merged)

    left = operator.open(newer)
    assert left["ticket"]["status"] == "closed" and left["ticket"]["labels"] == []
    assert [m["message"] for m in left["messages"]] == [notice]
    # The customer sees the whole conversation in the surviving ticket.
    texts = [m["message"] for m in customer.messages(ticket_id=older)["messages"]]
    assert "Курьер так и не позвонил" in texts and "Проверяем доставку" in texts
    assert texts[-1] == notice


def test_merge_refusals_change_nothing(server: ServerProcess, operator: OperatorClient) -> None:
    alice, bob = VisitorClient(server.url), VisitorClient(server.url)
    a = alice.send("Вопрос Алисы")["ticketId"]
    b = bob.send("Вопрос Боба")["ticketId"]
    before = (operator.open(a)["messages"], operator.open(b)["messages"])
    err = _error(_merge(operator, a, b), 409)
    assert err["code"] == "different_customers"
    assert _error(_merge(operator, a, a), 422)["field"] == "into"
    assert _error(_merge(operator, a, "TKT-0-NONE"), 404)["field"] == "into"
    assert _error(_merge(operator, "TKT-0-NONE", a), 404)["field"] == "from"
    assert "into" in _error(operator.post("/api/admin/support/merge", {"from": a}), 422)["message"]
    assert _error(operator.post("/api/admin/support/merge", {"from": "x" * 41, "into": b}), 422)
    assert _error(operator.post("/api/admin/support/merge", {"from": 5, "into": b}), 422)
    after = (operator.open(a)["messages"], operator.open(b)["messages"])
    assert [[m["id"] for m in x] for x in after] == [[m["id"] for m in x] for x in before]
    assert operator.open(a)["ticket"]["status"] == "open"


def test_visitor_socket_of_merged_ticket_follows_the_survivor(
    server: ServerProcess, operator: OperatorClient
) -> None:
    """A widget open on the merged ticket hears the notice, then a `ticket` frame naming
    the surviving ticket (chat.js's setTicket then reconnects to it with since=0)."""
    customer = VisitorClient(server.url)
    first = customer.send("Первый тикет")["ticketId"]
    second = customer.send("Второй тикет", new_ticket=True)["ticketId"]

    async def run() -> None:
        ws, ready = await visitor_socket(server.ws_url, customer.token, second)
        assert ready["ticketId"] == second
        await ws.until(lambda f: f.get("message", {}).get("message") == "Второй тикет")
        r = await asyncio.to_thread(_merge, operator, second, first)
        assert r.status_code == 200, r.text
        notice = await ws.until("message")
        assert notice["message"]["ticket_id"] == second
        assert "объединён" in notice["message"]["message"]
        frame = await ws.until("ticket")
        assert frame["ticket"]["ticketId"] == first and frame["ticket"]["status"] == "open"
        await ws.close()
        # As the widget then does: hello with the surviving ticket, since=0.
        ws2, ready2 = await visitor_socket(server.ws_url, customer.token, first)
        assert ready2["ticketId"] == first
        got: list[str] = []
        while not got or "объединён" not in got[-1]:
            m = (await ws2.until("message"))["message"]
            if m["sender_type"] != "bot":
                got.append(m["message"])
        assert got == ["Первый тикет", "Второй тикет", got[-1]]
        await ws2.close()

    asyncio.run(run())


def test_merge_keeps_client_ids_unique(server: ServerProcess, operator: OperatorClient) -> None:
    """Two tickets with the same client_msg_id (unique per ticket) merge without a 500."""
    customer = VisitorClient(server.url)
    a = customer.send("раз", client_msg_id="same-id")["ticketId"]
    b = customer.send("новый тикет", new_ticket=True)["ticketId"]
    assert a != b
    operator.reply(b, "два", client_msg_id="same-id")  # (unique per ticket: allowed here)
    assert _merge(operator, b, a).status_code == 200
    texts = [m["message"] for m in operator.open(a)["messages"]]
    assert "раз" in texts and "два" in texts
    n = query(server, "SELECT count(*) FROM support_messages WHERE client_msg_id = 'same-id'")
    assert n[0][0] == 1


def _alembic(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["database_url"] = url
    return cfg


@pytest.mark.parametrize("engine", ["sqlite", "postgres"])
def test_migration_0007_down_and_up(
    engine: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if engine == "postgres":
        pg: Postgres = request.getfixturevalue("postgres")
        settings = Settings(data_dir=tmp_path, database_url=pg.create_database("labels_mig"))
    else:
        settings = Settings(data_dir=tmp_path)
    run_migrations(settings)
    url = settings.resolved_database_url
    command.downgrade(_alembic(url), "0006")
    command.upgrade(_alembic(url), "head")
