"""Webhooks over real HTTP: signed bodies, the events of a ticket's life, retries with
backoff after a 500, the delivery log, and who may manage them."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from tests.integrations.receiver import Received, Receiver
from tests.support.clients import OperatorClient, VisitorClient
from tests.support.server import ServerProcess
from tests.support.services import wait_until


def _create(admin: OperatorClient, url: str, events: list[str], **kw: Any) -> dict[str, Any]:
    r = admin.post("/api/admin/webhooks", json={"url": url, "events": events, **kw})
    assert r.status_code == 201, r.text
    out: dict[str, Any] = r.json()
    assert out["secret"].startswith("whsec_")
    return out


def _delete(admin: OperatorClient, hook_id: int) -> None:
    r = admin.http.delete(f"/api/admin/webhooks/{hook_id}")
    assert r.status_code == 200, r.text


def _deliveries(admin: OperatorClient, hook_id: int, **params: Any) -> list[dict[str, Any]]:
    r = admin.http.get(f"/api/admin/webhooks/{hook_id}/deliveries", params=params)
    assert r.status_code == 200, r.text
    out: list[dict[str, Any]] = r.json()["deliveries"]
    return out


def _check_signed(req: Received, secret: str) -> dict[str, Any]:
    expected = "sha256=" + hmac.new(secret.encode(), req.body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(req.headers["x-trustdesk-signature"], expected)
    body = req.json
    assert req.headers["content-type"] == "application/json"
    assert req.headers["x-trustdesk-event"] == body["event"]
    assert req.headers["x-trustdesk-delivery"] == str(body["id"])
    assert req.headers["x-trustdesk-timestamp"] == str(body["timestamp"])
    return body


def test_ticket_life_arrives_signed_and_notes_stay_private(
    server: ServerProcess, admin: OperatorClient
) -> None:
    with Receiver() as rx:
        hook = _create(
            admin,
            rx.url,
            ["ticket.created", "ticket.closed", "ticket.reopened", "message.created"],
            description="CRM",
        )
        secret = hook["secret"]
        visitor = VisitorClient(server.url)
        number = visitor.send("Где мой заказ №1042?")["ticketId"]
        admin.open(number)
        admin.reply(number, "Уже в пути!")
        r = admin.post("/api/admin/support/note", json={"ticketId": number, "message": "СЕКРЕТ"})
        assert r.status_code == 200, r.text
        admin.close(number)
        admin.reopen(number)

        def done(got: list[Received]) -> bool:
            seen = [g.headers["x-trustdesk-event"] for g in got]
            # greeting, question, "operator joined", reply, closed and reopened notices
            return seen.count("message.created") >= 6 and {
                "ticket.created",
                "ticket.closed",
                "ticket.reopened",
            } <= set(seen)

        got = rx.wait_for(done)
        # Up to a few deliveries are in flight at once: order them by their ids.
        bodies = sorted((_check_signed(g, secret) for g in got), key=lambda b: b["id"])
        # A tampered body does not verify.
        bad = hmac.new(secret.encode(), got[0].body + b" ", hashlib.sha256).hexdigest()
        assert got[0].headers["x-trustdesk-signature"] != "sha256=" + bad

        events = [b["event"] for b in bodies]
        assert events.count("ticket.created") == 1
        assert events.index("ticket.created") < events.index("ticket.closed")
        assert events.index("ticket.closed") < events.index("ticket.reopened")
        created = next(b for b in bodies if b["event"] == "ticket.created")
        assert created["data"]["ticket"]["ticketId"] == number
        assert created["data"]["ticket"]["status"] == "open"
        assert created["data"]["ticket"]["channel"] == "web"  # channels: docs/channels.md
        closed = next(b for b in bodies if b["event"] == "ticket.closed")
        assert closed["data"]["ticket"]["status"] == "closed"
        texts = [b["data"]["message"]["message"] for b in bodies if b["event"] == "message.created"]
        assert "Где мой заказ №1042?" in texts and "Уже в пути!" in texts
        assert all("СЕКРЕТ" not in g.body.decode() for g in got), "a private note leaked"
        assert all(b["data"]["message"]["kind"] != "note" for b in bodies)
        # Delivery ids are unique: the receiver can deduplicate on them.
        ids = [b["id"] for b in bodies]
        assert len(ids) == len(set(ids))

        hook_id = hook["webhook"]["id"]
        # The receiver answered; the server records the outcome right after.
        wait_until(
            lambda: {d["status"] for d in _deliveries(admin, hook_id)} == {"ok"}, 15, "all ok"
        )
        log = _deliveries(admin, hook_id)
        assert len(log) == len(got) == 9
        assert all(d["attempts"] == 1 and d["last_status"] == 200 for d in log)
        listed = admin.http.get("/api/admin/webhooks").json()["webhooks"]
        mine = next(w for w in listed if w["id"] == hook["webhook"]["id"])
        assert mine["deliveries"]["ok"] == len(log) and "secret" not in mine
        _delete(admin, hook["webhook"]["id"])


def test_notes_only_when_configured(server: ServerProcess, admin: OperatorClient) -> None:
    with Receiver() as rx:
        hook = _create(admin, rx.url, ["message.created"], include_notes=True)
        number = VisitorClient(server.url).send("вопрос")["ticketId"]
        r = admin.post("/api/admin/support/note", json={"ticketId": number, "message": "для своих"})
        assert r.status_code == 200, r.text
        got = rx.wait_for(lambda g: any("для своих" in x.body.decode() for x in g))
        note = next(x.json for x in got if "для своих" in x.body.decode())
        assert note["data"]["message"]["kind"] == "note"
        _delete(admin, hook["webhook"]["id"])


def test_retried_with_backoff_after_500_then_failed_after_max_attempts(
    server: ServerProcess, admin: OperatorClient
) -> None:
    with Receiver(script=[500]) as flaky, Receiver(default=503) as down:
        h1 = _create(admin, flaky.url, ["message.created"])
        h2 = _create(admin, down.url, ["ticket.created"])
        VisitorClient(server.url).send("повтор")
        # flaky: greeting + customer message, the first attempt of the first one fails.
        got = flaky.wait_for(lambda g: sum(x.answered == 200 for x in g) >= 2)
        first = got[0]
        assert first.answered == 500
        again = [x for x in got if x.json["id"] == first.json["id"]]
        assert [x.answered for x in again] == [500, 200]
        assert int(again[1].headers["x-trustdesk-timestamp"]) >= int(
            again[0].headers["x-trustdesk-timestamp"]
        )
        _check_signed(again[1], h1["secret"])

        def settled() -> bool:
            log = _deliveries(admin, h1["webhook"]["id"])
            return len(log) == 2 and all(d["status"] == "ok" for d in log)

        wait_until(settled, 15, "flaky deliveries to settle")
        log = {d["id"]: d for d in _deliveries(admin, h1["webhook"]["id"])}
        retried = log[first.json["id"]]
        assert retried["attempts"] == 2 and retried["last_status"] == 200
        assert retried["delivered_at"] is not None and retried["last_error"] is None

        # down: always 503 -> three attempts (TRUSTDESK_WEBHOOK_MAX_ATTEMPTS), then failed.
        down.wait_for(lambda g: len(g) >= 3)

        def failed() -> bool:
            return [d["status"] for d in _deliveries(admin, h2["webhook"]["id"])] == ["failed"]

        wait_until(failed, 15, "the failing delivery to be given up")
        (d,) = _deliveries(admin, h2["webhook"]["id"], status="failed")
        assert d["attempts"] == 3 and d["last_status"] == 503 and d["last_error"] == "HTTP 503"
        assert len(down.received) == 3
        assert len({x.json["id"] for x in down.received}) == 1

        # Retry by hand: it is attempted again at once.
        r = admin.post(f"/api/admin/webhooks/{h2['webhook']['id']}/deliveries/{d['id']}/retry")
        assert r.status_code == 200, r.text
        down.wait_for(lambda g: len(g) >= 4)
        for h in (h1, h2):
            _delete(admin, h["webhook"]["id"])
        r = admin.http.get(f"/api/admin/webhooks/{h1['webhook']['id']}/deliveries")
        assert r.status_code == 404


def test_management_is_admin_only_and_hosts_are_allowed_explicitly(
    server: ServerProcess, admin: OperatorClient, agent: OperatorClient
) -> None:
    assert agent.http.get("/api/admin/webhooks").status_code == 403
    r = agent.post(
        "/api/admin/webhooks", json={"url": "http://127.0.0.1:9/x", "events": ["ticket.created"]}
    )
    assert r.status_code == 403 and r.json()["error"]["code"] == "admin_only"
    # Not in TRUSTDESK_WEBHOOK_HOSTS: refused, so the server cannot be made to probe the
    # network from the dashboard.
    for url in ("http://169.254.169.254/latest", "http://localhost:6379/", "ftp://127.0.0.1/x"):
        r = admin.post("/api/admin/webhooks", json={"url": url, "events": ["ticket.created"]})
        assert r.status_code == 422, (url, r.text)
    r = admin.post("/api/admin/webhooks", json={"url": "http://127.0.0.1:9/", "events": ["nope"]})
    assert r.status_code == 422
    # No CSRF header, no change.
    r = admin.http.post(
        "/api/admin/webhooks",
        json={"url": "http://127.0.0.1:9/", "events": ["ticket.created"]},
        headers={"X-CSRF-Token": ""},
    )
    assert r.status_code == 403
    assert admin.http.delete("/api/admin/webhooks/999999").status_code == 404
