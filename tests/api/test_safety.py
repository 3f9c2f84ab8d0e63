"""Safe by default: ownership, auth, CSRF, bounds and idempotency over real HTTP."""

from __future__ import annotations

import httpx
import pytest

from tests.support.clients import OperatorClient, VisitorClient
from tests.support.server import ADMIN_EMAIL, ADMIN_PASSWORD, ServerProcess


def _err(r: httpx.Response, status: int) -> dict[str, str]:
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()["error"]
    assert isinstance(body["code"], str) and isinstance(body["message"], str)
    return dict(body)


def test_another_visitors_ticket_is_404(server: ServerProcess) -> None:
    alice, mallory = VisitorClient(server.url), VisitorClient(server.url)
    ticket = alice.send("секрет")["ticketId"]
    r = mallory.http.get(f"/api/support/messages/{ticket}")
    assert _err(r, 404)["code"] == "ticket_not_found"
    r = mallory.http.post("/api/support/send-message", json={"message": "x", "ticketId": ticket})
    _err(r, 404)
    # A guessed, non-existent id looks exactly the same.
    r = mallory.http.get("/api/support/messages/TKT-1730053200-AAAA")
    _err(r, 404)
    # And mallory's own send does not land in alice's ticket.
    assert mallory.send("мой вопрос")["ticketId"] != ticket
    assert "мой вопрос" not in alice.texts()


def test_visitor_calls_need_a_token(server: ServerProcess) -> None:
    http = httpx.Client(base_url=server.url)
    _err(http.post("/api/support/send-message", json={"message": "hi"}), 401)
    _err(http.get("/api/support/messages/TKT-1"), 401)
    bad = {"Authorization": "Bearer not-a-token"}
    _err(http.post("/api/support/send-message", json={"message": "hi"}, headers=bad), 401)


ADMIN_CALLS = [
    ("GET", "/api/admin/me", None),
    ("GET", "/api/admin/support/tickets", None),
    ("GET", "/api/admin/support/ticket/TKT-1", None),
    ("POST", "/api/admin/support/reply", {"ticketId": "TKT-1", "message": "x"}),
    ("POST", "/api/admin/support/system-message", {"ticketId": "TKT-1", "message": "x"}),
    ("POST", "/api/admin/support/close/TKT-1", None),
    ("POST", "/api/admin/support/open/TKT-1", None),
    ("POST", "/api/admin/logout", None),
]


@pytest.mark.parametrize(("method", "path", "body"), ADMIN_CALLS)
def test_admin_without_session_is_401(
    server: ServerProcess, method: str, path: str, body: object
) -> None:
    r = httpx.request(method, server.url + path, json=body)
    _err(r, 401)


def test_admin_state_change_without_csrf_is_403(server: ServerProcess) -> None:
    customer = VisitorClient(server.url)
    ticket = customer.send("Здравствуйте")["ticketId"]
    op = OperatorClient(server.url, ADMIN_EMAIL, ADMIN_PASSWORD)
    del op.http.headers["X-CSRF-Token"]
    r = op.http.post("/api/admin/support/reply", json={"ticketId": ticket, "message": "x"})
    assert _err(r, 403)["code"] == "csrf_failed"
    r = op.http.post(f"/api/admin/support/close/{ticket}", headers={"X-CSRF-Token": "wrong"})
    _err(r, 403)
    assert customer.messages()["status"] == "open"
    assert "x" not in customer.texts()


def test_login_wrong_password_and_session_rotation(server: ServerProcess) -> None:
    r = httpx.post(
        server.url + "/api/admin/login", json={"email": ADMIN_EMAIL, "password": "wrong password"}
    )
    _err(r, 401)
    a = OperatorClient(server.url, ADMIN_EMAIL, ADMIN_PASSWORD)
    b = OperatorClient(server.url, ADMIN_EMAIL, ADMIN_PASSWORD)
    assert a.http.cookies["td_session"] != b.http.cookies["td_session"]
    cookie = a.http.cookies["td_session"]
    set_cookie = (
        httpx.post(
            server.url + "/api/admin/login", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
        )
        .headers["set-cookie"]
        .lower()
    )
    assert "httponly" in set_cookie and "samesite=lax" in set_cookie
    assert a.post("/api/admin/logout").status_code == 200
    # The old session id is dead on the server, even if someone kept the cookie.
    r = httpx.get(server.url + "/api/admin/me", cookies={"td_session": cookie})
    _err(r, 401)
    assert b.http.get("/api/admin/me").status_code == 200


def test_bad_bodies_get_json_4xx(server: ServerProcess) -> None:
    v = VisitorClient(server.url)
    post = v.http.post
    assert _err(
        post(
            "/api/support/send-message",
            content=b"{not json",
            headers={"content-type": "application/json"},
        ),
        400,
    )["code"] == ("malformed_json")
    _err(post("/api/support/send-message", json={"message": 42}), 422)
    _err(post("/api/support/send-message", json={"message": ["a"]}), 422)
    _err(post("/api/support/send-message", json={}), 422)
    _err(post("/api/support/send-message", json=[1, 2]), 422)
    assert _err(post("/api/support/send-message", json={"message": "   \n\t "}), 422)["code"] == (
        "empty_message"
    )
    assert (
        _err(post("/api/support/send-message", json={"message": "я" * 4001}), 422)["code"]
        == "message_too_long"
    )
    ok = post("/api/support/send-message", json={"message": "я" * 4000})
    assert ok.status_code == 200 and len(ok.json()["message"]["message"]) == 4000
    v.ticket_id = ok.json()["ticketId"]
    big = b'{"message": "' + b"a" * 70_000 + b'"}'
    _err(
        post(
            "/api/support/send-message", content=big, headers={"content-type": "application/json"}
        ),
        413,
    )
    _err(v.http.get("/api/support/messages/TKT-1?after=-1"), 422)
    _err(v.http.get("/api/support/messages/TKT-1?after=abc"), 422)
    # A JSON integer means an integer: not a boolean, a string or a fraction (found by the
    # fuzzer: `"last_read_id": false` was read as 0 and answered 200).
    for bad in (False, True, "5", 5.5):
        _err(post("/api/support/read", json={"ticketId": v.ticket_id, "last_read_id": bad}), 422)
    for bad_flag in (1, "yes"):
        _err(post("/api/support/send-message", json={"message": "x", "new_ticket": bad_flag}), 422)
    # Nothing of that was stored; what was stored is intact.
    assert v.texts()[-1] == "я" * 4000


def test_retried_client_msg_id_stores_one_message(
    server: ServerProcess, operator: OperatorClient
) -> None:
    v = VisitorClient(server.url)
    first = v.send("один раз", client_msg_id="retry-1")
    again = v.send("один раз", client_msg_id="retry-1")
    assert first["message"]["id"] == again["message"]["id"]
    # Even the very first message, sent before the client knew its ticket id.
    w = VisitorClient(server.url)
    a = w.http.post(
        "/api/support/send-message", json={"message": "start", "client_msg_id": "first"}
    ).json()
    b = w.http.post(
        "/api/support/send-message", json={"message": "start", "client_msg_id": "first"}
    ).json()
    assert a["message"]["id"] == b["message"]["id"] and a["ticketId"] == b["ticketId"]
    w.ticket_id = a["ticketId"]
    assert w.texts().count("start") == 1
    t = v.ticket_id
    assert t is not None
    r1 = operator.reply(t, "ответ", client_msg_id="op-1")
    r2 = operator.reply(t, "ответ", client_msg_id="op-1")
    assert r1["id"] == r2["id"]
    assert v.texts().count("один раз") == 1 and v.texts().count("ответ") == 1


def test_a_retry_changes_nothing_else(server: ServerProcess, operator: OperatorClient) -> None:
    """A retried send is answered with the stored message and has no other effect: the
    customer's retry does not reopen a ticket closed since, the operator's retry does not
    post another "joined" notice after a reopen."""
    v = VisitorClient(server.url)
    first = v.send("вопрос", client_msg_id="c-1")
    t = first["ticketId"]
    reply = operator.reply(t, "ответ", client_msg_id="o-1")
    operator.close(t)
    again = v.send("вопрос", client_msg_id="c-1")
    assert again["message"]["id"] == first["message"]["id"]
    assert [x for x in operator.tickets(status="closed") if x["ticketId"] == t]
    texts = v.texts()
    assert texts.count("вопрос") == 1 and texts[-1].startswith("✅ Тикет закрыт")
    operator.reopen(t)
    before = v.texts()
    assert operator.reply(t, "ответ", client_msg_id="o-1")["id"] == reply["id"]
    assert v.texts() == before  # no second "joined", no second answer


def test_visitor_send_is_rate_limited(tmp_path_factory: pytest.TempPathFactory) -> None:
    srv = ServerProcess(
        tmp_path_factory.mktemp("ratelimit"),
        extra_env={"TRUSTDESK_VISITOR_RATE_BURST": "5", "TRUSTDESK_VISITOR_RATE_PER_MINUTE": "6"},
    )
    srv.start()
    try:
        flooder, other = VisitorClient(srv.url), VisitorClient(srv.url)
        codes = [
            flooder.http.post("/api/support/send-message", json={"message": f"m{i}"}).status_code
            for i in range(8)
        ]
        assert codes[:5] == [200] * 5 and codes[5:] == [429] * 3
        r = flooder.http.post("/api/support/send-message", json={"message": "again"})
        assert int(r.headers["Retry-After"]) >= 1
        _err(r, 429)
        # Another visitor is not slowed down.
        assert (
            other.http.post("/api/support/send-message", json={"message": "hi"}).status_code == 200
        )
    finally:
        srv.stop()


def test_pages_and_health(server: ServerProcess) -> None:
    for path in ("/", "/admin", "/widget.js", "/healthz", "/api/openapi.json"):
        r = httpx.get(server.url + path)
        assert r.status_code == 200, path
        assert r.headers["x-content-type-options"] == "nosniff"
    r = httpx.get(server.url + "/admin.html", follow_redirects=False)
    assert r.status_code in (301, 302, 307, 308) and r.headers["location"] == "/admin"
    assert (
        "frame-ancestors 'none'"
        in httpx.get(server.url + "/admin").headers["content-security-policy"]
    )
    _err(httpx.get(server.url + "/api/nope"), 404)
