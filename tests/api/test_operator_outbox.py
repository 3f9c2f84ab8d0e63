"""The dashboard's outbox re-sends a reply, note, system notice or file with the same
client_msg_id until it has an answer (issue 21.1): each is stored once and every re-send is
answered with the stored message. Over real HTTP and the operator socket, on SQLite and
PostgreSQL (the `server` fixture of tests/api/conftest.py)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from tests.api.test_files import png_bytes
from tests.support.clients import OperatorClient, VisitorClient
from tests.support.server import ServerProcess
from tests.support.wsclient import operator_socket


def _ticket(server: ServerProcess) -> VisitorClient:
    v = VisitorClient(server.url)
    v.send("Здравствуйте, где мой заказ?")
    return v


def _post(op: OperatorClient, path: str, number: str, text: str, cmid: str) -> dict[str, Any]:
    r = op.post(path, {"ticketId": number, "message": text, "client_msg_id": cmid})
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()["message"]
    return out


def _all(op: OperatorClient, number: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = op.open(number)["messages"]
    return out


def test_resent_reply_is_stored_once(server: ServerProcess, operator: OperatorClient) -> None:
    v = _ticket(server)
    assert v.ticket_id is not None
    cmid = str(uuid.uuid4())
    first = _post(operator, "/api/admin/support/reply", v.ticket_id, "Заказ в пути", cmid)
    again = _post(operator, "/api/admin/support/reply", v.ticket_id, "Заказ в пути", cmid)
    assert again["id"] == first["id"] and again["client_msg_id"] == cmid
    assert again["message"] == "Заказ в пути" and again["sender_type"] == "admin"
    # The customer sees it once; a different id is a different message.
    assert v.texts().count("Заказ в пути") == 1
    other = _post(operator, "/api/admin/support/reply", v.ticket_id, "Заказ в пути", "other")
    assert other["id"] != first["id"]
    assert v.texts().count("Заказ в пути") == 2


def test_resent_note_is_stored_once_and_stays_private(
    server: ServerProcess, operator: OperatorClient
) -> None:
    v = _ticket(server)
    assert v.ticket_id is not None
    cmid = str(uuid.uuid4())
    first = _post(operator, "/api/admin/support/note", v.ticket_id, "Проверить склад", cmid)
    again = _post(operator, "/api/admin/support/note", v.ticket_id, "Проверить склад", cmid)
    assert again["id"] == first["id"] and again["kind"] == "note"
    notes = [m for m in _all(operator, v.ticket_id) if m["message"] == "Проверить склад"]
    assert [m["id"] for m in notes] == [first["id"]]
    assert "Проверить склад" not in v.texts()


def test_resent_system_notice_is_stored_once(
    server: ServerProcess, operator: OperatorClient
) -> None:
    v = _ticket(server)
    assert v.ticket_id is not None
    cmid = str(uuid.uuid4())
    path = "/api/admin/support/system-message"
    first = _post(operator, path, v.ticket_id, "Заказ передан в доставку", cmid)
    again = _post(operator, path, v.ticket_id, "Заказ передан в доставку", cmid)
    assert again["id"] == first["id"] and again["sender_type"] == "system"
    assert v.texts().count("Заказ передан в доставку") == 1
    bad = operator.post(path, {"ticketId": v.ticket_id, "message": "x", "client_msg_id": ""})
    assert bad.status_code in (400, 422) and "error" in bad.json()


def test_resent_upload_is_stored_once(server: ServerProcess, operator: OperatorClient) -> None:
    v = _ticket(server)
    cmid = str(uuid.uuid4())
    params = {"ticketId": v.ticket_id, "name": "чек.png", "client_msg_id": cmid}
    answers = []
    for _ in range(2):
        r = operator.http.post("/api/admin/support/upload", content=png_bytes(), params=params)
        assert r.status_code == 200, r.text
        answers.append(r.json()["message"])
    assert answers[0]["id"] == answers[1]["id"]
    assert answers[0]["attachment"]["id"] == answers[1]["attachment"]["id"]
    files = [m for m in v.messages()["messages"] if m.get("attachment")]
    assert [m["id"] for m in files] == [answers[0]["id"]]


def test_reply_over_socket_then_http_retry_is_stored_once(
    server: ServerProcess, operator: OperatorClient
) -> None:
    """The dashboard sends over its socket first and, with no answer, again over HTTP with
    the same client_msg_id: one message, and the HTTP answer is the socket's message."""
    v = _ticket(server)
    assert v.ticket_id is not None
    number = v.ticket_id
    cmid = str(uuid.uuid4())
    cookie = operator.http.cookies.get("td_session")
    assert cookie

    async def over_socket() -> dict[str, Any]:
        s, _ = await operator_socket(server.ws_url, cookie, f"http://localhost:{server.port}")
        try:
            await s.send(
                {
                    "type": "send",
                    "ticketId": number,
                    "message": "Уже отправили",
                    "client_msg_id": cmid,
                }
            )
            ack = await s.until(lambda f: f["type"] == "ack" and f.get("client_msg_id") == cmid)
            again_frame = {"type": "send", "ticketId": number, "message": "Уже отправили"}
            await s.send({**again_frame, "client_msg_id": cmid})
            again = await s.until(lambda f: f["type"] == "ack" and f.get("client_msg_id") == cmid)
            assert again["message"]["id"] == ack["message"]["id"]
            out: dict[str, Any] = ack["message"]
            return out
        finally:
            await s.close()

    via_ws = asyncio.run(over_socket())
    via_http = _post(operator, "/api/admin/support/reply", number, "Уже отправили", cmid)
    assert via_http["id"] == via_ws["id"]
    assert v.texts().count("Уже отправили") == 1
