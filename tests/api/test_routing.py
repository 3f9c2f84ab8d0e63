"""Assignment on the first reply (and its setting), priority and snooze, over real HTTP on
SQLite and PostgreSQL (the `server` fixture of tests/api/conftest.py)."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.support.clients import OperatorClient, VisitorClient
from tests.support.inspect_db import query
from tests.support.server import ADMIN_EMAIL, ADMIN_NAME, ADMIN_PASSWORD, ServerProcess
from tests.support.services import Postgres
from tests.support.wsclient import Socket, operator_socket

_db_counter = itertools.count()
_names = itertools.count()
# The offline-reassignment pass runs often here, so a test waits a second, not 15.
ROUTING_INTERVAL = "0.2"


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """tests/api/conftest.py's, with a quick routing pass."""
    url = None
    if request.param == "postgres":
        pg: Postgres = request.getfixturevalue("postgres")
        url = pg.create_database(f"routing_{next(_db_counter)}")
    srv = ServerProcess(
        tmp_path_factory.mktemp(f"routing-{request.param}"),
        database_url=url,
        extra_env={"TRUSTDESK_ROUTING_INTERVAL_SECONDS": ROUTING_INTERVAL},
    )
    srv.create_operator(ADMIN_EMAIL, ADMIN_NAME, ADMIN_PASSWORD, role="admin")
    srv.start()
    yield srv
    srv.stop()


def _ticket(op: OperatorClient, number: str, **params: str) -> dict[str, Any] | None:
    return next((t for t in op.tickets(**params) if t["ticketId"] == number), None)


def _routing(op: OperatorClient, body: dict[str, Any]) -> Any:
    return op.http.put("/api/admin/settings/routing", json=body)


def test_first_reply_assigns_unless_turned_off(
    server: ServerProcess, operator: OperatorClient
) -> None:
    assert operator.http.get("/api/admin/settings/routing").json() == {
        "settings": {
            "assign_on_first_reply": True,
            "auto_assign": True,
            "max_open_per_operator": 10,
            "reassign_offline": False,
            "offline_grace_seconds": 300,
            "escalate_after_minutes": 5,
        }
    }
    widget_before = operator.http.get("/api/admin/settings/widget").json()
    number = VisitorClient(server.url).send("Где мой заказ?")["ticketId"]
    assert _ticket(operator, number, filter="mine") is None
    operator.reply(number, "Сейчас посмотрю")
    mine = _ticket(operator, number, filter="mine")
    assert mine is not None and mine["assignee"]["name"]
    assert _ticket(operator, number, filter="unassigned") is None
    notes = [m for m in operator.open(number)["messages"] if m["kind"] == "note"]
    assert any(json.loads(json.dumps(m)).get("sender_type") == "system" for m in notes)

    # Off: a reply leaves the ticket unassigned; the widget settings keep their shape.
    r = _routing(operator, {"assign_on_first_reply": False})
    assert r.status_code == 200 and r.json()["settings"]["assign_on_first_reply"] is False
    assert operator.http.get("/api/admin/settings/widget").json() == widget_before
    other = VisitorClient(server.url).send("Второй вопрос")["ticketId"]
    operator.reply(other, "Ответ")
    assert _ticket(operator, other, filter="unassigned") is not None
    # Bad input names the field, nothing saved.
    for body, field in [
        ({"assign_on_first_reply": "yes"}, "assign_on_first_reply"),
        ({"nope": True}, "nope"),
    ]:
        r = _routing(operator, body)
        assert r.status_code == 422 and r.json()["error"].get("field") == field, r.text
    assert _routing(operator, {"assign_on_first_reply": True}).status_code == 200


def test_priority_set_and_filtered(server: ServerProcess, operator: OperatorClient) -> None:
    number = VisitorClient(server.url).send("Срочно!")["ticketId"]
    assert _ticket(operator, number)["priority"] == "normal"  # type: ignore[index]
    r = operator.post("/api/admin/support/priority", {"ticketId": number, "priority": "urgent"})
    assert r.status_code == 200 and r.json()["ticket"]["priority"] == "urgent", r.text
    assert _ticket(operator, number, priority="urgent") is not None
    assert _ticket(operator, number, priority="low") is None
    r = operator.post("/api/admin/support/priority", {"ticketId": number, "priority": "meh"})
    assert r.status_code == 422 and r.json()["error"].get("field") == "priority", r.text


def test_snooze_hides_and_the_pass_reopens_with_a_notice(
    server: ServerProcess, operator: OperatorClient
) -> None:
    number = VisitorClient(server.url).send("Напомните завтра")["ticketId"]
    until = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    r = operator.post("/api/admin/support/snooze", {"ticketId": number, "until": until})
    assert r.status_code == 200 and r.json()["ticket"]["snoozed_until"], r.text
    assert _ticket(operator, number) is None  # out of the open list
    assert _ticket(operator, number, status="snoozed") is not None
    for bad in ["завтра", "2020-01-01T00:00:00Z", "2026-12-07T09:00:00"]:
        r = operator.post("/api/admin/support/snooze", {"ticketId": number, "until": bad})
        assert r.status_code == 422 and r.json()["error"].get("field") == "until", (bad, r.text)

    # The time comes (set in the past), one pass wakes it with a note.
    past = datetime.now(UTC) - timedelta(minutes=1)
    value: object = past
    if not server.env.get("TRUSTDESK_DATABASE_URL"):
        value = past.replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")
    query(server, "UPDATE tickets SET snoozed_until = $1 WHERE number = $2", value, number)
    out = server.cli("wake-snoozed")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1])["woken"] >= 1
    t = _ticket(operator, number)
    assert t is not None and t["snoozed_until"] is None
    texts = [m["message"] for m in operator.open(number)["messages"]]
    assert any("снова в работе" in x for x in texts), texts
    # A second pass finds nothing to wake.
    out = server.cli("wake-snoozed")
    assert json.loads(out.stdout.strip().splitlines()[-1])["woken"] == 0


# ----------------------------------------------------------------- teams and routing rules


def _reset(op: OperatorClient) -> None:
    """No teams (their rules go with them), default routing settings."""
    for t in op.http.get("/api/admin/teams").json()["teams"]:
        assert op.http.delete(f"/api/admin/teams/{t['id']}").status_code == 200
    defaults = {
        "auto_assign": True,
        "max_open_per_operator": 10,
        "reassign_offline": False,
        "offline_grace_seconds": 300,
        "assign_on_first_reply": True,
    }
    assert _routing(op, defaults).status_code == 200


def _agent(server: ServerProcess, name: str) -> OperatorClient:
    email = f"agent{next(_names)}-{time.monotonic_ns()}@example.com"
    server.create_operator(email, name, "agent-password-123", role="agent")
    return OperatorClient(server.url, email, "agent-password-123")


def _team(op: OperatorClient, name: str, members: list[int] | None = None) -> dict[str, Any]:
    r = op.post("/api/admin/teams", {"name": name, "members": members or []})
    assert r.status_code == 201, r.text
    team: dict[str, Any] = r.json()["team"]
    return team


def _rule(op: OperatorClient, kind: str, pattern: str, team: dict[str, Any]) -> dict[str, Any]:
    r = op.post(
        "/api/admin/routing/rules", {"kind": kind, "pattern": pattern, "team_id": team["id"]}
    )
    assert r.status_code == 201, r.text
    rule: dict[str, Any] = r.json()["rule"]
    return rule


def _new_ticket(server: ServerProcess, text: str, **hints: str) -> str:
    number: str = VisitorClient(server.url).send(text, **hints)["ticketId"]
    return number


def _summary(op: OperatorClient, number: str) -> dict[str, Any]:
    t = _ticket(op, number, status="all")
    assert t is not None, number
    return t


def _team_of(op: OperatorClient, number: str) -> str | None:
    team = _summary(op, number)["team"]
    return None if team is None else str(team["name"])


def test_teams_crud_and_a_tickets_team(server: ServerProcess, operator: OperatorClient) -> None:
    _reset(operator)
    agent = _agent(server, "Мария")
    pay = _team(operator, "Оплата", [agent.operator["id"]])
    assert [m["name"] for m in pay["members"]] == ["Мария"] and pay["open_tickets"] == 0
    # Unique whatever the case; bounded; members must exist; only admins manage teams.
    r = operator.post("/api/admin/teams", {"name": "  оплата "})
    assert r.status_code == 409 and r.json()["error"]["code"] == "team_exists", r.text
    r = operator.post("/api/admin/teams", {"name": "x" * 41})
    assert r.status_code == 422 and r.json()["error"].get("field") == "name", r.text
    # Ids beyond any row id (the fuzzer found a 500 there): a 422 naming nothing stored.
    for bad in ([2**70], [-5], [0]):
        r = operator.post("/api/admin/teams", {"name": "Склад", "members": bad})
        assert r.status_code == 422, r.text
    r = operator.http.put("/api/admin/routing/rules/order", json={"ids": [2**70]})
    assert r.status_code == 422, r.text
    r = operator.post("/api/admin/teams", {"name": "Склад", "members": [999_999]})
    assert r.status_code == 404 and r.json()["error"].get("field") == "members", r.text
    assert agent.post("/api/admin/teams", {"name": "Свой отдел"}).status_code == 403
    # Rename and set members.
    r = operator.http.patch(f"/api/admin/teams/{pay['id']}", json={"name": "Оплата и счета"})
    assert r.status_code == 200 and r.json()["team"]["name"] == "Оплата и счета", r.text
    r = operator.http.put(
        f"/api/admin/teams/{pay['id']}/members",
        json={"members": [agent.operator["id"], operator.operator["id"]]},
    )
    assert r.status_code == 200, r.text
    assert {m["id"] for m in r.json()["team"]["members"]} == {
        agent.operator["id"],
        operator.operator["id"],
    }
    assert operator.http.patch(f"/api/admin/teams/{pay['id']}", json={}).status_code == 422
    other = _team(operator, "Доставка")
    listed = [t["name"] for t in agent.http.get("/api/admin/teams").json()["teams"]]
    assert listed == ["Доставка", "Оплата и счета"]  # any operator reads them, by name

    # A ticket's team: none at first; an operator moves it; the list filters by it.
    number = _new_ticket(server, "Где мой заказ?")
    assert _summary(operator, number)["team"] is None
    r = agent.post("/api/admin/support/team", {"ticketId": number, "team_id": other["id"]})
    assert r.status_code == 200 and r.json()["ticket"]["team"] == {
        "id": other["id"],
        "name": "Доставка",
    }, r.text
    assert _ticket(operator, number, team=str(other["id"])) is not None
    assert _ticket(operator, number, team=str(pay["id"])) is None
    notes = [m["message"] for m in operator.open(number)["messages"] if m["kind"] == "note"]
    assert any("Доставка" in n for n in notes), notes
    r = agent.post("/api/admin/support/team", {"ticketId": number, "team_id": 999_999})
    assert r.status_code == 404 and r.json()["error"].get("field") == "team_id", r.text
    r = agent.post("/api/admin/support/team", {"ticketId": "TKT-nope", "team_id": None})
    assert r.status_code == 404, r.text
    # Deleting the team leaves its tickets without one.
    assert operator.http.delete(f"/api/admin/teams/{other['id']}").status_code == 200
    assert _summary(operator, number)["team"] is None
    assert operator.http.delete(f"/api/admin/teams/{other['id']}").status_code == 404
    _reset(operator)


def test_rules_by_url_data_team_and_keywords(
    server: ServerProcess, operator: OperatorClient
) -> None:
    _reset(operator)
    checkout, payments, returns = (
        _team(operator, "Оформление"),
        _team(operator, "Платежи"),
        _team(operator, "Возвраты"),
    )
    _rule(operator, "url", "*/checkout*", checkout)  # a glob
    _rule(operator, "widget", "payments", payments)
    kw = _rule(operator, "keywords", "возврат, refund,  вернуть деньги ", returns)
    assert kw["pattern"] == "возврат, refund, вернуть деньги" and kw["position"] == 3
    _rule(operator, "url", "/delivery", checkout)  # a substring

    assert (
        _team_of(
            operator,
            _new_ticket(server, "Здравствуйте", page_url="https://shop.example/checkout/step-2"),
        )
        == "Оформление"
    )
    assert (
        _team_of(
            operator,
            _new_ticket(server, "Добрый день", page_url="https://shop.example/Delivery/info"),
        )
        == "Оформление"
    )
    assert _team_of(operator, _new_ticket(server, "Привет", team="Payments")) == "Платежи"
    assert _team_of(operator, _new_ticket(server, "Хочу оформить ВОЗВРАТ заказа")) == "Возвраты"
    assert _team_of(operator, _new_ticket(server, "I want a refund")) == "Возвраты"
    assert _team_of(operator, _new_ticket(server, "Как вернуть   деньги?")) == "Возвраты"
    none = _new_ticket(server, "Когда доставка?", page_url="https://shop.example/catalog")
    assert _team_of(operator, none) is None
    # Only the first message routes: a later "возврат" in the same ticket changes nothing.
    v = VisitorClient(server.url)
    v.send("Вопрос про товар")
    v.send("и про возврат")
    assert _team_of(operator, str(v.ticket_id)) is None
    # The visitor's page as the widget told it at the session, when the message has none.
    v = VisitorClient(server.url)
    r = v.http.post("/api/support/session", json={"page_url": "https://shop.example/checkout"})
    v.http.headers["Authorization"] = f"Bearer {r.json()['token']}"
    assert _team_of(operator, v.send("Помогите")["ticketId"]) == "Оформление"

    # First match wins, in the rules' order; reordering changes the winner.
    both = {"page_url": "https://shop.example/checkout"}
    assert _team_of(operator, _new_ticket(server, "возврат", **both)) == "Оформление"
    rules = operator.http.get("/api/admin/routing/rules").json()["rules"]
    ids = [r["id"] for r in rules]
    r = operator.http.put(
        "/api/admin/routing/rules/order", json={"ids": [ids[2], *ids[:2], ids[3]]}
    )
    assert r.status_code == 200 and r.json()["rules"][0]["kind"] == "keywords", r.text
    assert _team_of(operator, _new_ticket(server, "возврат", **both)) == "Возвраты"
    # Edit and delete a rule.
    r = operator.http.patch(f"/api/admin/routing/rules/{ids[1]}", json={"pattern": "pay"})
    assert r.status_code == 200 and r.json()["rule"]["pattern"] == "pay", r.text
    assert _team_of(operator, _new_ticket(server, "Привет", team="payments")) is None
    assert operator.http.delete(f"/api/admin/routing/rules/{ids[1]}").status_code == 200
    positions = [
        r["position"] for r in operator.http.get("/api/admin/routing/rules").json()["rules"]
    ]
    assert positions == [1, 2, 3]

    # Bad input names its field; agents cannot change the rules.
    for body, field, status in [
        ({"kind": "regex", "pattern": "x", "team_id": returns["id"]}, "kind", 422),
        ({"kind": "keywords", "pattern": " , ", "team_id": returns["id"]}, "pattern", 422),
        ({"kind": "widget", "pattern": "x" * 65, "team_id": returns["id"]}, "pattern", 422),
        ({"kind": "url", "pattern": "/x", "team_id": 999_999}, "team_id", 404),
    ]:
        r = operator.post("/api/admin/routing/rules", body)
        assert r.status_code == status and r.json()["error"].get("field") == field, (body, r.text)
    r = operator.http.put("/api/admin/routing/rules/order", json={"ids": ids[:1]})
    assert r.status_code == 422 and r.json()["error"].get("field") == "ids", r.text
    agent = _agent(server, "Олег")
    assert (
        agent.post(
            "/api/admin/routing/rules", {"kind": "url", "pattern": "/a", "team_id": returns["id"]}
        ).status_code
        == 403
    )
    _reset(operator)


async def _online(server: ServerProcess, *ops: OperatorClient) -> list[Socket]:
    """Each operator's dashboard socket: they are online while it is open."""
    out = []
    for op in ops:
        cookie = op.http.cookies.get("td_session")
        assert cookie
        s, _ = await operator_socket(server.ws_url, cookie, f"http://localhost:{server.port}")
        out.append(s)
    return out


def _assignee(op: OperatorClient, number: str) -> int | None:
    a = _summary(op, number)["assignee"]
    return None if a is None else int(a["id"])


def test_round_robin_among_online_operators_under_the_limit(
    server: ServerProcess, operator: OperatorClient
) -> None:
    _reset(operator)
    assert _routing(operator, {"max_open_per_operator": 2}).status_code == 200
    a1, a2, a3 = _agent(server, "Анна"), _agent(server, "Борис"), _agent(server, "Вера")
    ids = [a.operator["id"] for a in (a1, a2, a3)]
    team = _team(operator, "Возвраты", ids)
    _rule(operator, "keywords", "возврат", team)

    async def scenario() -> None:
        sockets = await _online(server, a1, a2)  # Вера stays offline
        try:
            numbers = [_new_ticket(server, f"Возврат заказа №{i}") for i in range(5)]
            got = [_assignee(operator, n) for n in numbers]
            # In turn among the online members; at the limit (2 open each) nobody is left.
            assert got == [ids[0], ids[1], ids[0], ids[1], None], got
            assert _team_of(operator, numbers[4]) == "Возвраты"  # unassigned, in the team
            in_team = operator.tickets(team=str(team["id"]))
            assert {t["ticketId"] for t in in_team} >= set(numbers)
            waiting = operator.tickets(team=str(team["id"]), filter="unassigned")
            assert [t["ticketId"] for t in waiting] == [numbers[4]]
            notes = [m["message"] for m in operator.open(numbers[0])["messages"]]
            assert any("назначен автоматически: Анна" in n for n in notes), notes
            # The customer is not told an operator joined before one opens the ticket.
            assert not any("Анна" in n and "диалог" in n for n in notes), notes
            # A closed ticket frees a place: Анна gets the next one.
            operator.close(numbers[0])
            assert _assignee(operator, _new_ticket(server, "Ещё возврат")) == ids[0]
            # Off: routed to the team, nobody assigned.
            assert _routing(operator, {"auto_assign": False}).status_code == 200
            n = _new_ticket(server, "Возврат, снова")
            assert _team_of(operator, n) == "Возвраты" and _assignee(operator, n) is None
        finally:
            for s in sockets:
                await s.close()

    asyncio.run(scenario())
    _reset(operator)


def test_offline_operator_tickets_reassigned_after_the_grace(
    server: ServerProcess, operator: OperatorClient
) -> None:
    _reset(operator)
    b1, b2 = _agent(server, "Глеб"), _agent(server, "Дина")
    team = _team(operator, "Платежи", [b1.operator["id"], b2.operator["id"]])
    _rule(operator, "widget", "payments", team)
    grace = 1
    assert _routing(operator, {"offline_grace_seconds": grace}).status_code == 200

    def moved_to_dina(number: str) -> Any:
        return lambda f: (
            f.get("type") == "ticket"
            and f["ticket"]["ticketId"] == number
            and (f["ticket"]["assignee"] or {}).get("id") == b2.operator["id"]
        )

    async def scenario() -> None:
        s1, s2 = await _online(server, b1, b2)
        number = _new_ticket(server, "Не проходит оплата", team="payments")
        assert _assignee(operator, number) == b1.operator["id"]
        await s1.close()  # Глеб goes offline
        try:
            # The setting is off by default: several passes after the grace, no change.
            frames = await s2.quiet(grace + 1.0)
            assert not [f for f in frames if moved_to_dina(number)(f)], frames
            assert _assignee(operator, number) == b1.operator["id"]
            # On: the ticket goes to Дина once Глеб has been offline for the grace.
            started = time.monotonic()
            assert _routing(operator, {"reassign_offline": True}).status_code == 200
            await s2.until(moved_to_dina(number), timeout=15)
            assert time.monotonic() - started >= grace
            notes = [m["message"] for m in operator.open(number)["messages"]]
            assert any("Глеб не в сети: тикет передан оператору Дина" in n for n in notes), notes
            # Back online before the grace: nothing moves.
            s1b = (await _online(server, b1))[0]
            try:
                other = _new_ticket(server, "Ещё вопрос про оплату", team="payments")
                owner = _assignee(operator, other)
                assert owner in (b1.operator["id"], b2.operator["id"])
                frames = await s2.quiet(grace + 1.0)
                assert _assignee(operator, other) == owner
            finally:
                await s1b.close()
        finally:
            await s2.close()

    asyncio.run(scenario())
    _reset(operator)
