"""System notices: stored with a code and arguments (each client words them in its locale),
in the operator's grammatical gender, and never the ticket list's preview or order."""

from __future__ import annotations

import uuid
from typing import Any

from tests.support.clients import OperatorClient, VisitorClient
from tests.support.inspect_db import query
from tests.support.server import ADMIN_NAME, ServerProcess


def _agent(admin: OperatorClient, name: str, gender: str | None) -> tuple[dict[str, Any], str, str]:
    email, password = f"{uuid.uuid4().hex[:8]}@trust.store", "agent-password-1"
    body = {"email": email, "name": name, "password": password, "role": "agent", "gender": gender}
    r = admin.post("/api/admin/operators", json=body)
    assert r.status_code == 201, r.text
    return r.json()["operator"], email, password


def _summary(op: OperatorClient, ticket: str) -> dict[str, Any]:
    return next(t for t in op.tickets(status="all") if t["ticketId"] == ticket)


def test_join_notice_leaves_preview_and_order(
    server: ServerProcess, operator: OperatorClient
) -> None:
    first = VisitorClient(server.url)
    older = first.send("Где мой заказ?")["ticketId"]
    second = VisitorClient(server.url)
    newer = second.send("Можно ли оплатить картой?")["ticketId"]
    before = [t["ticketId"] for t in operator.tickets()]
    assert before.index(newer) < before.index(older)
    updated = _summary(operator, older)["updated_at"]
    # Opening the older ticket posts the join notice: it is the ticket's last message...
    opened = operator.open(older)
    assert opened["messages"][-1]["sender_type"] == "system"
    assert opened["messages"][-1]["notice"]["code"] == "operator_joined"
    # ...but not its preview, and the ticket keeps its place and its updated_at.
    s = _summary(operator, older)
    assert s["last_message"]["message"] == "Где мой заказ?"
    assert s["updated_at"] == updated
    after = [t["ticketId"] for t in operator.tickets()]
    assert after.index(newer) < after.index(older)
    # A private note neither: still the customer's question, still below.
    r = operator.post("/api/admin/support/note", json={"ticketId": older, "message": "VIP"})
    assert r.status_code == 200
    assert _summary(operator, older)["last_message"]["message"] == "Где мой заказ?"
    assert _summary(operator, older)["updated_at"] == updated
    # An operator's reply does move it up and becomes the preview.
    operator.reply(older, "Уже в пути")
    s = _summary(operator, older)
    assert s["last_message"]["message"] == "Уже в пути" and s["updated_at"] > updated
    now = [t["ticketId"] for t in operator.tickets()]
    assert now.index(older) < now.index(newer)
    # Closing posts a notice: the preview stays the reply; the widget's list agrees.
    operator.close(older)
    assert _summary(operator, older)["last_message"]["message"] == "Уже в пути"
    mine = first.http.get("/api/support/tickets")
    assert mine.status_code == 200, mine.text
    listed = next(t for t in mine.json()["tickets"] if t["ticketId"] == older)
    assert listed["last_message"]["message"] == "Уже в пути"
    # The message chain still ends at the notice (last_message_id feeds prev_id).
    rows = query(
        server,
        "SELECT t.last_message_id, t.last_public_message_id FROM tickets t WHERE t.number = $1",
        older,
    )
    last = first.messages()["messages"][-1]
    assert last["notice"] == {"code": "ticket_closed", "args": {}}
    assert rows[0][0] == last["id"] and rows[0][1] < last["id"]


def test_notice_code_and_args_in_message_json(
    server: ServerProcess, operator: OperatorClient
) -> None:
    customer = VisitorClient(server.url)
    ticket = customer.send("Здравствуйте")["ticketId"]
    operator.open(ticket)
    operator.close(ticket)
    operator.reopen(ticket)
    msgs = customer.messages()["messages"]
    assert msgs[0]["notice"] is None  # the customer's own message
    notices = [(m["message"], m["notice"]) for m in msgs if m["sender_type"] == "system"]
    assert notices == [
        (
            f"👨‍💼 Оператор {ADMIN_NAME} подключился к диалогу",
            {"code": "operator_joined", "args": {"name": ADMIN_NAME, "gender": "male"}},
        ),
        ("✅ Тикет закрыт. Спасибо за обращение!", {"code": "ticket_closed", "args": {}}),
        ("Тикет открыт повторно", {"code": "ticket_reopened", "args": {}}),
    ]
    # The operator's view carries the same field.
    opened = operator.open(ticket)
    assert [m["notice"] for m in opened["messages"]][-3:] == [
        {"code": "ticket_closed", "args": {}},
        {"code": "ticket_reopened", "args": {}},
        {"code": "operator_joined", "args": {"name": ADMIN_NAME, "gender": "male"}},
    ]


def test_notices_agree_with_the_operators_gender(
    server: ServerProcess, operator: OperatorClient
) -> None:
    maria, m_email, m_pw = _agent(operator, "Мария", "female")
    assert maria["gender"] == "female"
    sasha, s_email, s_pw = _agent(operator, "Саша", None)
    assert sasha["gender"] is None
    customer = VisitorClient(server.url)
    ticket = customer.send("Нужна помощь")["ticketId"]
    OperatorClient(server.url, m_email, m_pw).open(ticket)
    OperatorClient(server.url, s_email, s_pw).open(ticket)
    texts = customer.texts()
    assert "👨‍💼 Оператор Мария подключилась к диалогу" in texts
    # Unset: the spec's own wording, the masculine (Russian's default).
    assert "👨‍💼 Оператор Саша подключился к диалогу" in texts
    assert not any("подключилась" in t for t in texts if "Саша" in t)
    # Assignment notes (operators only) agree with the actor.
    mclient = OperatorClient(server.url, m_email, m_pw)
    r = mclient.post(
        "/api/admin/support/assign", json={"ticketId": ticket, "operator_id": maria["id"]}
    )
    assert r.status_code == 200, r.text
    r = mclient.post(
        "/api/admin/support/assign", json={"ticketId": ticket, "operator_id": sasha["id"]}
    )
    assert r.status_code == 200, r.text
    sclient = OperatorClient(server.url, s_email, s_pw)
    r = sclient.post("/api/admin/support/assign", json={"ticketId": ticket, "operator_id": None})
    assert r.status_code == 200, r.text
    notes = [m for m in operator.open(ticket)["messages"] if m["kind"] == "note"]
    assert [(m["message"], m["notice"]["code"]) for m in notes] == [
        ("Мария взяла тикет", "ticket_taken"),
        ("Мария назначила тикет: Саша", "ticket_assigned"),
        ("Саша снял назначение", "ticket_unassigned"),
    ]
    assert notes[1]["notice"]["args"] == {"actor": "Мария", "gender": "female", "target": "Саша"}
    # The operator sets their own gender in their profile; an admin sets anyone's.
    r = sclient.post("/api/admin/account/gender", json={"gender": "male"})
    assert r.status_code == 200 and r.json()["operator"]["gender"] == "male"
    assert sclient.http.get("/api/admin/account").json()["operator"]["gender"] == "male"
    r = sclient.post(f"/api/admin/operators/{maria['id']}/gender", json={"gender": None})
    assert r.status_code == 403  # an agent cannot change another operator
    r = operator.post(f"/api/admin/operators/{maria['id']}/gender", json={"gender": None})
    assert r.status_code == 200 and r.json()["operator"]["gender"] is None
    listed = {o["id"]: o for o in operator.http.get("/api/admin/operators").json()["operators"]}
    assert listed[maria["id"]]["gender"] is None and listed[sasha["id"]]["gender"] == "male"
    # Bad input: a 422 JSON error, nothing stored.
    for bad in ({"gender": "other"}, {"gender": 1}, {}):
        r = sclient.post("/api/admin/account/gender", json=bad)
        assert r.status_code == 422 and "error" in r.json()
    assert listed[sasha["id"]]["gender"] == "male"
    r = operator.post("/api/admin/operators/999999999/gender", json={"gender": "male"})
    assert r.status_code == 404
    # After a reopen the join notice follows the new gender (Саша now male).
    operator.close(ticket)
    operator.reopen(ticket)
    sclient.open(ticket)
    assert customer.texts()[-1] == "👨‍💼 Оператор Саша подключился к диалогу"


def test_old_rows_without_a_code_render_as_stored(
    server: ServerProcess, operator: OperatorClient
) -> None:
    customer = VisitorClient(server.url)
    ticket = customer.send("Старый вопрос")["ticketId"]
    operator.open(ticket)
    # As a row stored before codes existed (and one with a broken column) looks.
    joined = customer.messages()["messages"][-1]
    query(server, "UPDATE support_messages SET notice = NULL WHERE id = $1", joined["id"])
    r = operator.post(
        "/api/admin/support/system-message",
        json={"ticketId": ticket, "message": "Своё уведомление"},
    )
    assert r.status_code == 200, r.text
    custom = r.json()["message"]
    assert custom["notice"] is None  # an operator's own notice has no code
    query(server, "UPDATE support_messages SET notice = 'not json' WHERE id = $1", custom["id"])
    msgs = customer.messages()["messages"]
    assert [(m["message"], m["notice"]) for m in msgs[-2:]] == [
        (joined["message"], None),
        ("Своё уведомление", None),
    ]
    assert [m["notice"] for m in operator.open(ticket)["messages"]][-2:] == [None, None]
