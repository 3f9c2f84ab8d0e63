"""Assignment on the first reply (and its setting), priority and snooze, over real HTTP on
SQLite and PostgreSQL (the `server` fixture of tests/api/conftest.py)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.support.clients import OperatorClient, VisitorClient
from tests.support.inspect_db import query
from tests.support.server import ServerProcess


def _ticket(op: OperatorClient, number: str, **params: str) -> dict[str, Any] | None:
    return next((t for t in op.tickets(**params) if t["ticketId"] == number), None)


def _routing(op: OperatorClient, body: dict[str, Any]) -> Any:
    return op.http.put("/api/admin/settings/routing", json=body)


def test_first_reply_assigns_unless_turned_off(
    server: ServerProcess, operator: OperatorClient
) -> None:
    assert operator.http.get("/api/admin/settings/routing").json() == {
        "settings": {"assign_on_first_reply": True}
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
