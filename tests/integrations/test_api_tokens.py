"""API tokens: scoped, revocable, accepted as a bearer on the ticket endpoints, no CSRF."""

from __future__ import annotations

from typing import Any

import httpx

from tests.support.clients import OperatorClient, VisitorClient
from tests.support.server import ServerProcess


def _token(admin: OperatorClient, scopes: list[str], **kw: Any) -> dict[str, Any]:
    r = admin.post("/api/admin/tokens", json={"name": "ERP", "scopes": scopes, **kw})
    assert r.status_code == 201, r.text
    out: dict[str, Any] = r.json()
    assert out["secret"].startswith("td_") and out["token"]["scopes"] == sorted(scopes)
    return out


def _bearer(server: ServerProcess, secret: str) -> httpx.Client:
    """No cookie at all: only the token."""
    return httpx.Client(
        base_url=server.url, timeout=30, headers={"Authorization": f"Bearer {secret}"}
    )


def test_scopes_revocation_and_no_csrf(
    server: ServerProcess, admin: OperatorClient, agent: OperatorClient
) -> None:
    number = VisitorClient(server.url).send("Есть ли зарядка на 65 Вт?")["ticketId"]
    read = _token(admin, ["tickets:read"])
    write = _token(admin, ["tickets:read", "messages:write"])

    with _bearer(server, read["secret"]) as ro, _bearer(server, write["secret"]) as rw:
        r = ro.get("/api/admin/support/tickets", params={"status": "all"})
        assert r.status_code == 200, r.text
        assert number in [t["ticketId"] for t in r.json()["tickets"]]
        r = ro.get(f"/api/admin/support/ticket/{number}")
        assert r.status_code == 200
        assert "Есть ли зарядка на 65 Вт?" in [m["message"] for m in r.json()["messages"]]

        # A read-only token cannot reply.
        r = ro.post("/api/admin/support/reply", json={"ticketId": number, "message": "нет"})
        assert r.status_code == 403 and r.json()["error"]["code"] == "insufficient_scope"
        r = rw.post(f"/api/admin/support/close/{number}")
        assert r.status_code == 403 and r.json()["error"]["code"] == "insufficient_scope"

        # A write token replies without any CSRF header, as the operator it acts for.
        r = rw.post("/api/admin/support/reply", json={"ticketId": number, "message": "Есть!"})
        assert r.status_code == 200, r.text
        msg = r.json()["message"]
        assert msg["sender_type"] == "admin" and msg["operator_id"] == admin.operator["id"]

        # Tokens open nothing outside /api/admin/support/.
        for method, path in (
            ("GET", "/api/admin/tokens"),
            ("GET", "/api/admin/webhooks"),
            ("GET", "/api/admin/me"),
            ("POST", "/api/admin/operators"),
        ):
            r = rw.request(method, path, json={})
            assert r.status_code == 403, (path, r.text)

        # Listing shows no secret; revoking makes the token useless at once.
        listed = admin.http.get("/api/admin/tokens").json()["tokens"]
        assert all("secret" not in t for t in listed)
        assert read["secret"] not in str(listed)
        r = admin.http.delete(f"/api/admin/tokens/{read['token']['id']}")
        assert r.status_code == 200 and r.json()["token"]["revoked"] is True
        r = ro.get("/api/admin/support/tickets")
        assert r.status_code == 401 and r.json()["error"]["code"] == "bad_api_token"
        assert rw.get("/api/admin/support/tickets").status_code == 200
        listed = {t["id"]: t for t in admin.http.get("/api/admin/tokens").json()["tokens"]}
        assert listed[read["token"]["id"]]["revoked"] is True
        assert listed[write["token"]["id"]]["last_used_at"] is not None

    with _bearer(server, "td_" + "x" * 43) as forged:
        assert forged.get("/api/admin/support/tickets").status_code == 401

    # Only admins manage tokens; a session still needs its CSRF header.
    assert agent.http.get("/api/admin/tokens").status_code == 403
    r = agent.post("/api/admin/tokens", json={"name": "x", "scopes": ["tickets:read"]})
    assert r.status_code == 403
    r = admin.http.post(
        "/api/admin/tokens",
        json={"name": "x", "scopes": ["tickets:read"]},
        headers={"X-CSRF-Token": "wrong"},
    )
    assert r.status_code == 403
    r = admin.post("/api/admin/tokens", json={"name": "x", "scopes": ["admin:all"]})
    assert r.status_code == 422


def test_token_acts_as_chosen_operator_and_dies_with_them(
    server: ServerProcess, admin: OperatorClient, agent: OperatorClient
) -> None:
    bot = admin.post(
        "/api/admin/operators",
        json={
            "email": "erp@trust.store",
            "name": "ERP",
            "password": "erp-password-1",
            "role": "agent",
        },
    )
    assert bot.status_code == 201, bot.text
    bot_id = bot.json()["operator"]["id"]
    tok = _token(admin, ["messages:write"], operator_id=bot_id)
    assert tok["token"]["operator"] == {"id": bot_id, "name": "ERP"}
    number = VisitorClient(server.url).send("статус?")["ticketId"]
    with _bearer(server, tok["secret"]) as c:
        r = c.post("/api/admin/support/reply", json={"ticketId": number, "message": "Отгружен"})
        assert r.status_code == 200 and r.json()["message"]["sender_name"] == "ERP"
        assert admin.post(f"/api/admin/operators/{bot_id}/deactivate").status_code == 200
        r = c.post("/api/admin/support/reply", json={"ticketId": number, "message": "ещё"})
        assert r.status_code == 401


def test_openapi_documents_the_token(server: ServerProcess) -> None:
    spec = httpx.get(server.url + "/api/openapi.json", timeout=30).json()
    schemes = spec["components"]["securitySchemes"]
    assert schemes["apiToken"]["type"] == "http" and schemes["apiToken"]["scheme"] == "bearer"
    assert schemes["operatorSession"]["in"] == "cookie"
    reply = spec["paths"]["/api/admin/support/reply"]["post"]
    assert {"apiToken": ["messages:write"]} in reply["security"]
    tickets = spec["paths"]["/api/admin/support/tickets"]["get"]
    assert {"apiToken": ["tickets:read"]} in tickets["security"]
    for path in ("/api/admin/tokens", "/api/admin/webhooks", "/api/admin/visitors/{visitor_id}"):
        assert path in spec["paths"]
