"""Operator management, assignment, notes and canned responses over the API."""

from __future__ import annotations

import uuid

import httpx

from tests.support.clients import OperatorClient, VisitorClient
from tests.support.server import ServerProcess


def _new_agent(
    admin: OperatorClient, name: str = "Ольга", gender: str | None = None
) -> tuple[dict[str, object], str, str]:
    email, password = f"{uuid.uuid4().hex[:8]}@trust.store", "agent-password-1"
    r = admin.post(
        "/api/admin/operators",
        json={
            "email": email,
            "name": name,
            "password": password,
            "role": "agent",
            "gender": gender,
        },
    )
    assert r.status_code == 201, r.text
    return r.json()["operator"], email, password


def test_admin_manages_operators_agent_cannot(
    server: ServerProcess, operator: OperatorClient
) -> None:
    agent, email, password = _new_agent(operator)
    olga = OperatorClient(server.url, email, password)
    assert olga.operator["role"] == "agent"
    for path, body in (
        ("/api/admin/operators", {"email": "x@y.z", "name": "X", "password": "12345678"}),
        (f"/api/admin/operators/{operator.operator['id']}/deactivate", None),
        (f"/api/admin/operators/{operator.operator['id']}/password", {"password": "new-pass-1"}),
    ):
        r = olga.post(path, json=body)
        assert r.status_code == 403 and r.json()["error"]["code"] == "admin_only"
    # Deactivating ends the operator's sessions at once; they cannot log in again.
    assert olga.http.get("/api/admin/me").status_code == 200
    r = operator.post(f"/api/admin/operators/{agent['id']}/deactivate")
    assert r.status_code == 200 and r.json()["operator"]["active"] is False
    assert olga.http.get("/api/admin/me").status_code == 401
    r = httpx.post(server.url + "/api/admin/login", json={"email": email, "password": password})
    assert r.status_code == 401
    # A password reset by the admin works and ends old sessions too.
    operator.post(f"/api/admin/operators/{agent['id']}/activate")
    r = operator.post(
        f"/api/admin/operators/{agent['id']}/password", json={"password": "brand-new-pass"}
    )
    assert r.status_code == 200
    assert OperatorClient(server.url, email, "brand-new-pass").operator["id"] == agent["id"]
    dup = operator.post(
        "/api/admin/operators", json={"email": email, "name": "Dup", "password": "12345678"}
    )
    assert dup.status_code == 409


def test_assignment_and_private_notes(server: ServerProcess, operator: OperatorClient) -> None:
    agent, email, password = _new_agent(operator, "Мария", "female")
    maria = OperatorClient(server.url, email, password)
    customer = VisitorClient(server.url)
    ticket = customer.send("Нужна помощь")["ticketId"]
    r = operator.post(
        "/api/admin/support/assign", json={"ticketId": ticket, "operator_id": agent["id"]}
    )
    assert r.status_code == 200 and r.json()["ticket"]["assignee"]["name"] == "Мария"
    assert [t["ticketId"] for t in maria.tickets(filter="mine")] == [ticket]
    assert ticket not in [t["ticketId"] for t in operator.tickets(filter="unassigned")]
    # The customer sees only "Оператор Мария подключилась", not who assigned whom.
    texts = customer.texts()
    assert "👨‍💼 Оператор Мария подключилась к диалогу" in texts
    assert not any("назнач" in t for t in texts)
    note = operator.post(
        "/api/admin/support/note", json={"ticketId": ticket, "message": "VIP, вернуть деньги"}
    )
    assert note.status_code == 200 and note.json()["message"]["kind"] == "note"
    assert "VIP, вернуть деньги" not in customer.texts()
    history = maria.open(ticket)["messages"]
    assert any(m["kind"] == "note" and m["message"] == "VIP, вернуть деньги" for m in history)
    r = operator.post("/api/admin/support/assign", json={"ticketId": ticket, "operator_id": None})
    assert r.json()["ticket"]["assignee"] is None
    # Search over ticket id and message text.
    assert [t["ticketId"] for t in operator.tickets(q="Нужна помощь")] == [ticket]
    assert [t["ticketId"] for t in operator.tickets(q=ticket)] == [ticket]


def test_canned_responses(operator: OperatorClient) -> None:
    name = f"pay{uuid.uuid4().hex[:6]}"
    r = operator.post(
        "/api/admin/canned", json={"name": name, "text": "Оплатить можно через ЮMoney."}
    )
    assert r.status_code == 201
    cid = r.json()["canned"]["id"]
    assert name in [c["name"] for c in operator.http.get("/api/admin/canned").json()["canned"]]
    assert operator.post("/api/admin/canned", json={"name": name, "text": "x"}).status_code == 409
    assert (
        operator.post("/api/admin/canned", json={"name": "bad name!", "text": "x"}).status_code
        == 422
    )
    assert operator.http.delete(f"/api/admin/canned/{cid}").status_code == 200
    assert operator.http.delete(f"/api/admin/canned/{cid}").status_code == 404
