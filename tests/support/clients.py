"""Small HTTP clients for the two sides of a conversation, over real HTTP."""

from __future__ import annotations

import uuid
from typing import Any

import httpx


class VisitorClient:
    def __init__(self, base_url: str) -> None:
        self.http = httpx.Client(base_url=base_url, timeout=30)
        r = self.http.post("/api/support/session")
        assert r.status_code == 201, r.text
        body = r.json()
        self.token: str = body["token"]
        self.visitor_id: str = body["visitor_id"]
        self.http.headers["Authorization"] = f"Bearer {self.token}"
        self.ticket_id: str | None = None

    def send(self, text: str, client_msg_id: str | None = None, **kw: Any) -> dict[str, Any]:
        body: dict[str, Any] = {
            "message": text,
            "client_msg_id": client_msg_id or str(uuid.uuid4()),
        }
        if self.ticket_id:
            body["ticketId"] = self.ticket_id
        body.update(kw)
        r = self.http.post("/api/support/send-message", json=body)
        assert r.status_code == 200, r.text
        out: dict[str, Any] = r.json()
        self.ticket_id = out["ticketId"]
        return out

    def messages(self, after: int = 0, ticket_id: str | None = None) -> dict[str, Any]:
        r = self.http.get(
            f"/api/support/messages/{ticket_id or self.ticket_id}", params={"after": after}
        )
        assert r.status_code == 200, r.text
        out: dict[str, Any] = r.json()
        return out

    def texts(self) -> list[str]:
        return [m["message"] for m in self.messages()["messages"]]


class OperatorClient:
    def __init__(self, base_url: str, email: str, password: str) -> None:
        self.http = httpx.Client(base_url=base_url, timeout=30)
        r = self.http.post("/api/admin/login", json={"email": email, "password": password})
        assert r.status_code == 200, r.text
        self.operator: dict[str, Any] = r.json()["operator"]
        self.csrf: str = r.json()["csrf_token"]
        self.http.headers["X-CSRF-Token"] = self.csrf

    def tickets(self, **params: str) -> list[dict[str, Any]]:
        r = self.http.get("/api/admin/support/tickets", params=params)
        assert r.status_code == 200, r.text
        out: list[dict[str, Any]] = r.json()["tickets"]
        return out

    def open(self, ticket_id: str) -> dict[str, Any]:
        r = self.http.get(f"/api/admin/support/ticket/{ticket_id}")
        assert r.status_code == 200, r.text
        out: dict[str, Any] = r.json()
        return out

    def reply(self, ticket_id: str, text: str, **kw: Any) -> dict[str, Any]:
        r = self.http.post(
            "/api/admin/support/reply", json={"ticketId": ticket_id, "message": text, **kw}
        )
        assert r.status_code == 200, r.text
        out: dict[str, Any] = r.json()["message"]
        return out

    def post(self, path: str, json: Any = None) -> httpx.Response:
        return self.http.post(path, json=json)

    def close(self, ticket_id: str) -> dict[str, Any]:
        r = self.http.post(f"/api/admin/support/close/{ticket_id}")
        assert r.status_code == 200, r.text
        out: dict[str, Any] = r.json()
        return out

    def reopen(self, ticket_id: str) -> dict[str, Any]:
        r = self.http.post(f"/api/admin/support/open/{ticket_id}")
        assert r.status_code == 200, r.text
        out: dict[str, Any] = r.json()
        return out
