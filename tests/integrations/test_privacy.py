"""A customer's data: exported as JSON (theirs only), deleted for good by an admin, and
old closed tickets deleted by the retention policy (periodic task and `trustdesk purge`)."""

from __future__ import annotations

import json

from tests.integrations.conftest import RETENTION_DAYS, backdate_ticket, ticket_exists
from tests.support.clients import OperatorClient, VisitorClient
from tests.support.server import ServerProcess
from tests.support.services import wait_until


def test_export_has_the_customer_and_nobody_else(
    server: ServerProcess, admin: OperatorClient, agent: OperatorClient
) -> None:
    alice, bob = VisitorClient(server.url), VisitorClient(server.url)
    a1 = alice.send("Алиса: вернуть наушники")["ticketId"]
    admin.reply(a1, "Алиса, оформим возврат")
    admin.close(a1)
    alice.ticket_id = None
    a2 = alice.send("Алиса: и ещё вопрос", new_ticket=True)["ticketId"]
    b1 = bob.send("Боб: секрет Боба")["ticketId"]
    admin.reply(b1, "Боб, ответ")

    # Any operator may export; by visitor id or by one of the customer's tickets.
    r = agent.http.get(f"/api/admin/visitors/{alice.visitor_id}/export")
    assert r.status_code == 200, r.text
    by_id = r.json()
    r = agent.http.get(f"/api/admin/visitors/by-ticket/{a2}/export")
    assert r.status_code == 200
    by_ticket = r.json()
    assert by_id["visitor"] == by_ticket["visitor"]
    assert by_id["visitor"]["id"] == alice.visitor_id
    assert {t["ticketId"] for t in by_id["tickets"]} == {a1, a2}
    texts = [m["message"] for t in by_id["tickets"] for m in t["messages"]]
    assert "Алиса: вернуть наушники" in texts and "Алиса, оформим возврат" in texts
    assert "Алиса: и ещё вопрос" in texts
    dump = json.dumps(by_id, ensure_ascii=False)
    assert "Боб" not in dump and b1 not in dump and bob.visitor_id not in dump
    assert agent.http.get("/api/admin/visitors/nobody/export").status_code == 404


def test_delete_for_good_admin_only(
    server: ServerProcess, admin: OperatorClient, agent: OperatorClient
) -> None:
    carol, dave = VisitorClient(server.url), VisitorClient(server.url)
    c1 = carol.send("Кэрол: удалите мои данные")["ticketId"]
    d1 = dave.send("Дэйв: остаюсь")["ticketId"]

    r = agent.http.delete(f"/api/admin/visitors/{carol.visitor_id}")
    assert r.status_code == 403
    r = admin.http.delete(f"/api/admin/visitors/{carol.visitor_id}", headers={"X-CSRF-Token": ""})
    assert r.status_code == 403 and r.json()["error"]["code"] == "csrf_failed"

    r = admin.http.delete(f"/api/admin/visitors/by-ticket/{c1}")
    assert r.status_code == 200, r.text
    deleted = r.json()["deleted"]
    assert deleted["visitor_id"] == carol.visitor_id
    assert deleted["tickets"] == 1 and deleted["messages"] >= 2

    assert admin.http.get(f"/api/admin/visitors/{carol.visitor_id}/export").status_code == 404
    assert admin.http.get(f"/api/admin/visitors/by-ticket/{c1}/export").status_code == 404
    assert admin.http.get(f"/api/admin/support/ticket/{c1}").status_code == 404
    assert admin.http.delete(f"/api/admin/visitors/{carol.visitor_id}").status_code == 404
    assert not ticket_exists(server, c1)
    # Her token is gone with her; the widget starts afresh.
    assert carol.http.get(f"/api/support/messages/{c1}").status_code == 401
    # Dave is untouched.
    assert dave.texts()[-1] == "Дэйв: остаюсь"
    assert ticket_exists(server, d1)


def test_retention_deletes_old_closed_tickets_and_keeps_open_ones(
    server: ServerProcess, admin: OperatorClient
) -> None:
    old_closed, old_open, new_closed = (VisitorClient(server.url) for _ in range(3))
    n_old_closed = old_closed.send("старый закрытый")["ticketId"]
    n_old_open = old_open.send("старый открытый")["ticketId"]
    n_new_closed = new_closed.send("свежий закрытый")["ticketId"]
    admin.close(n_old_closed)
    admin.close(n_new_closed)
    backdate_ticket(server, n_old_closed, RETENTION_DAYS + 1)
    backdate_ticket(server, n_old_open, RETENTION_DAYS + 100)
    backdate_ticket(server, n_new_closed, RETENTION_DAYS - 1)

    # The server's periodic task (TRUSTDESK_RETENTION_INTERVAL_SECONDS=1 here) deletes it.
    wait_until(lambda: not ticket_exists(server, n_old_closed), 20, "the periodic purge")
    assert ticket_exists(server, n_old_open) and ticket_exists(server, n_new_closed)
    assert old_open.texts()[-1] == "старый открытый"

    # `trustdesk purge` does the same once, from the command line.
    admin.close(n_old_open)
    backdate_ticket(server, n_old_open, RETENTION_DAYS + 100)
    out = server.cli("purge", "--days", str(RETENTION_DAYS))
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert set(report) == {"tickets", "messages", "visitors", "deliveries", "audit"}
    wait_until(lambda: not ticket_exists(server, n_old_open), 20, "the purge")
    assert ticket_exists(server, n_new_closed)
