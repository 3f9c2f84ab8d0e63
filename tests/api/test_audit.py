"""The admins' audit log (/api/admin/audit), over real HTTP on SQLite and PostgreSQL: each
kind of change writes its entry (who, what, from where), no secret ever lands in one, agents
are refused, and the log pages newest first."""

from __future__ import annotations

import hashlib
import itertools
import json
import secrets
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pyotp
import pytest

from tests.support.clients import OperatorClient, VisitorClient
from tests.support.inspect_db import query
from tests.support.server import ADMIN_EMAIL, ADMIN_NAME, ADMIN_PASSWORD, ServerProcess
from tests.support.services import Postgres

_n = itertools.count()
PASSWORD = "agent password one"
WRONG = "wrong-Pa55word-" + uuid.uuid4().hex[:8]  # searched for in every entry


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    url = None
    if request.param == "postgres":
        pg: Postgres = request.getfixturevalue("postgres")
        url = pg.create_database(f"audit_{next(_n)}")
    srv = ServerProcess(
        tmp_path_factory.mktemp(f"audit-{request.param}"),
        database_url=url,
        extra_env={"TRUSTDESK_WEBHOOK_HOSTS": "127.0.0.1", "TRUSTDESK_AUDIT_DAYS": "30"},
    )
    srv.create_operator(ADMIN_EMAIL, ADMIN_NAME, ADMIN_PASSWORD, role="admin")
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture
def admin(server: ServerProcess) -> OperatorClient:
    return OperatorClient(server.url, ADMIN_EMAIL, ADMIN_PASSWORD)


def _when(server: ServerProcess, text: str) -> Any:
    """A timestamp as each driver takes it (asyncpg: a datetime; sqlite3: the stored text)."""
    if server.env.get("TRUSTDESK_DATABASE_URL"):
        return datetime.fromisoformat(text).replace(tzinfo=UTC)
    return text + ".000000"


def _log(op: OperatorClient, **params: Any) -> dict[str, Any]:
    r = op.http.get("/api/admin/audit", params=params)
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


def _all(op: OperatorClient) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    before: int | None = None
    while True:
        page = _log(op, limit=200, **({"before": before} if before else {}))
        out += page["entries"]
        if page["next"] is None:
            return out
        before = page["next"]


def _latest(op: OperatorClient, action: str) -> dict[str, Any]:
    entries = _log(op, action=action, limit=1)["entries"]
    assert entries, f"no {action} entry"
    entry: dict[str, Any] = entries[0]
    return entry


def _agent(server: ServerProcess, admin: OperatorClient) -> tuple[str, int]:
    email = f"agent{next(_n)}-{uuid.uuid4().hex[:6]}@trust.store"
    r = admin.post(
        "/api/admin/operators",
        {"email": email, "name": "Агент Оля", "password": PASSWORD, "role": "agent"},
    )
    assert r.status_code == 201, r.text
    return email, int(r.json()["operator"]["id"])


def test_the_cli_and_logins_are_recorded_without_the_password(
    server: ServerProcess, admin: OperatorClient
) -> None:
    created = _log(admin, action="operator.created")["entries"][-1]  # the oldest: the CLI's
    assert created["actor_name"] == "CLI" and created["actor_id"] is None
    assert created["target"] == ADMIN_EMAIL and created["details"]["role"] == "admin"

    login = _latest(admin, "login")
    assert login["actor_id"] == admin.operator["id"] and login["actor_name"] == ADMIN_NAME
    assert login["target"] == ADMIN_EMAIL and login["address"] == "127.0.0.1"
    assert set(login) == {"id", "at", "actor_id", "actor_name", "action", "target"} | {
        "details",
        "address",
    }

    r = httpx.post(server.url + "/api/admin/login", json={"email": ADMIN_EMAIL, "password": WRONG})
    assert r.status_code == 401
    failed = _latest(admin, "login.failed")
    assert failed["target"] == ADMIN_EMAIL and failed["actor_id"] is None
    assert failed["actor_name"] == "anonymous" and failed["address"] == "127.0.0.1"
    # A password typed into the email field is not kept either.
    r = httpx.post(server.url + "/api/admin/login", json={"email": WRONG, "password": WRONG})
    assert r.status_code == 401
    assert _latest(admin, "login.failed")["target"] == "?"

    me = OperatorClient(server.url, ADMIN_EMAIL, ADMIN_PASSWORD)
    assert me.post("/api/admin/logout").status_code == 200
    out = _latest(admin, "logout")
    assert out["actor_id"] == admin.operator["id"] and out["id"] > failed["id"]

    # Nowhere in the log, nor in the table itself.
    assert WRONG not in json.dumps(_all(admin), ensure_ascii=False)
    assert ADMIN_PASSWORD not in json.dumps(_all(admin), ensure_ascii=False)
    rows = query(server, "SELECT target, details, actor_name FROM audit_log")
    assert rows and not any(WRONG in str(r) or ADMIN_PASSWORD in str(r) for r in rows)


def test_operators_passwords_and_two_factor(server: ServerProcess, admin: OperatorClient) -> None:
    email, agent_id = _agent(server, admin)
    created = _latest(admin, "operator.created")
    assert created["target"] == email and created["actor_id"] == admin.operator["id"]
    assert created["details"] == {"id": agent_id, "name": "Агент Оля", "role": "agent"}

    assert admin.post(f"/api/admin/operators/{agent_id}/deactivate").status_code == 200
    assert _latest(admin, "operator.deactivated")["target"] == email
    assert admin.post(f"/api/admin/operators/{agent_id}/activate").status_code == 200
    assert _latest(admin, "operator.activated")["target"] == email
    new_pw = "an admin set this one"
    r = admin.post(f"/api/admin/operators/{agent_id}/password", {"password": new_pw})
    assert r.status_code == 200, r.text
    assert _latest(admin, "password.set")["target"] == email

    agent = OperatorClient(server.url, email, new_pw)
    changed_pw = "the agent chose this"
    r = agent.post("/api/admin/password/change", {"current": new_pw, "password": changed_pw})
    assert r.status_code == 200, r.text
    changed = _latest(admin, "password.changed")
    assert changed["actor_id"] == agent_id and changed["target"] == email

    # A reset link (its token put straight into the database: mail is another test's).
    token = secrets.token_urlsafe(32)
    query(
        server,
        "INSERT INTO password_resets (token_hash, operator_id, created_at, expires_at)"
        " VALUES ($1, $2, $3, $4)",
        hashlib.sha256(token.encode()).hexdigest(),
        agent_id,
        _when(server, "2020-01-01 00:00:00"),
        _when(server, "2999-01-01 00:00:00"),
    )
    reset_pw = "reset by the link"
    r = httpx.post(
        server.url + "/api/admin/password/reset", json={"token": token, "password": reset_pw}
    )
    assert r.status_code == 200, r.text
    reset = _latest(admin, "password.reset")
    assert reset["actor_id"] == agent_id and reset["address"] == "127.0.0.1"

    agent = OperatorClient(server.url, email, reset_pw)
    setup = agent.post("/api/admin/2fa/setup").json()
    totp = pyotp.TOTP(setup["secret"])
    r = agent.post("/api/admin/2fa/enable", {"code": totp.now()})
    assert r.status_code == 200, r.text
    codes = r.json()["recovery_codes"]
    assert _latest(admin, "2fa.enabled")["actor_id"] == agent_id
    first = httpx.post(server.url + "/api/admin/login", json={"email": email, "password": reset_pw})
    pending = first.json()["pending"]
    r = httpx.post(
        server.url + "/api/admin/login/totp", json={"pending": pending, "code": "000000"}
    )
    assert r.status_code == 401
    assert _latest(admin, "login.2fa_failed")["actor_id"] == agent_id
    r = httpx.post(
        server.url + "/api/admin/login/totp", json={"pending": pending, "code": codes[0]}
    )
    assert r.status_code == 200, r.text
    assert _latest(admin, "login.2fa")["actor_id"] == agent_id
    r = agent.post("/api/admin/2fa/disable", {"password": reset_pw})
    assert r.status_code == 200, r.text
    assert _latest(admin, "2fa.disabled")["target"] == email

    text = json.dumps(_all(admin), ensure_ascii=False)
    for secret in (new_pw, changed_pw, reset_pw, token, setup["secret"], pending, *codes):
        assert secret not in text
    assert not any(secret in str(row) for row in query(server, "SELECT * FROM audit_log"))

    # The actor filter: only the agent's own doings.
    mine = _log(admin, actor=agent_id, limit=200)["entries"]
    assert mine and {e["actor_id"] for e in mine} == {agent_id}
    assert {"password.changed", "2fa.enabled", "2fa.disabled"} <= {e["action"] for e in mine}
    # The group filter: every kind of login, and nothing else.
    logins = {e["action"] for e in _log(admin, action="login.", limit=200)["entries"]}
    assert {"login", "login.failed", "login.2fa", "login.2fa_failed"} <= logins
    assert all(a.startswith("login") for a in logins)


def test_settings_record_what_changed(server: ServerProcess, admin: OperatorClient) -> None:
    before = admin.http.get("/api/admin/settings/widget").json()["settings"]
    r = admin.http.put(
        "/api/admin/settings/widget", json={"title": "Trust Store помощь", "color": "#112233"}
    )
    assert r.status_code == 200, r.text
    entry = _latest(admin, "settings.widget")
    assert sorted(entry["details"]["changed"]) == ["color", "title"]
    assert entry["details"]["old"] == {"title": before["title"], "color": before["color"]}
    assert entry["details"]["new"] == {"title": "Trust Store помощь", "color": "#112233"}

    # Requiring two-factor login takes an admin who has it on.
    email = f"admin{next(_n)}-{uuid.uuid4().hex[:6]}@trust.store"
    body = {"email": email, "name": "Второй админ", "password": PASSWORD, "role": "admin"}
    assert admin.post("/api/admin/operators", body).status_code == 201
    second = OperatorClient(server.url, email, PASSWORD)
    totp = pyotp.TOTP(second.post("/api/admin/2fa/setup").json()["secret"])
    assert second.post("/api/admin/2fa/enable", {"code": totp.now()}).status_code == 200
    r = second.http.put("/api/admin/security", json={"require_2fa": True})
    assert r.status_code == 200, r.text
    r = second.http.put("/api/admin/security", json={"require_2fa": False})
    assert r.status_code == 200, r.text
    sec = _latest(admin, "settings.security")["details"]
    assert sec == {"changed": ["require_2fa"], "old": {"require_2fa": True}} | {
        "new": {"require_2fa": False}
    }

    r = admin.http.request(
        "DELETE", "/api/admin/settings/blocked-origins", json={"origin": "https://evil.example"}
    )
    assert r.status_code == 200, r.text
    assert _latest(admin, "origin.dismissed")["target"] == "https://evil.example"


def test_deletions_exports_and_integrations(server: ServerProcess, admin: OperatorClient) -> None:
    r = admin.post("/api/admin/canned", {"name": f"privet-{next(_n)}", "text": "Здравствуйте!"})
    assert r.status_code == 201, r.text
    canned_id = r.json()["canned"]["id"]
    assert _latest(admin, "canned.created")["details"] == {"id": canned_id}
    assert admin.http.delete(f"/api/admin/canned/{canned_id}").status_code == 200
    assert _latest(admin, "canned.deleted")["target"] == f"#{canned_id}"

    r = admin.post("/api/admin/labels", {"name": f"Возврат {next(_n)}", "color": "#ff0000"})
    assert r.status_code == 201, r.text
    label = r.json()["label"]
    assert _latest(admin, "label.created")["target"] == label["name"]
    r = admin.http.patch(f"/api/admin/labels/{label['id']}", json={"color": "#00ff00"})
    assert r.status_code == 200, r.text
    changed = _latest(admin, "label.changed")["details"]
    assert changed == {"changed": ["color"], "old": {"color": "#ff0000"}} | {
        "new": {"color": "#00ff00"}
    }
    assert admin.http.delete(f"/api/admin/labels/{label['id']}").status_code == 200
    assert _latest(admin, "label.deleted")["details"] == {"id": label["id"]}

    hook_url = "http://127.0.0.1:9/hook?key=s3cr3t-in-query"
    r = admin.post("/api/admin/webhooks", {"url": hook_url, "events": ["ticket.created"]})
    assert r.status_code == 201, r.text
    hook = r.json()["webhook"]
    hook_secret = r.json()["secret"]
    made = _latest(admin, "webhook.created")
    assert made["target"] == "http://127.0.0.1:9/hook" and made["details"]["events"] == [
        "ticket.created"
    ]
    assert admin.http.delete(f"/api/admin/webhooks/{hook['id']}").status_code == 200
    assert _latest(admin, "webhook.deleted")["details"] == {"id": hook["id"]}

    r = admin.post("/api/admin/tokens", {"name": "1С обмен", "scopes": ["tickets:read"]})
    assert r.status_code == 201, r.text
    token_secret, token_id = r.json()["secret"], r.json()["token"]["id"]
    made = _latest(admin, "token.created")
    assert made["target"] == "1С обмен" and made["details"]["scopes"] == ["tickets:read"]
    assert admin.http.delete(f"/api/admin/tokens/{token_id}").status_code == 200
    assert _latest(admin, "token.revoked")["details"] == {"id": token_id}

    visitor = VisitorClient(server.url)
    number = visitor.send("Удалите мои данные")["ticketId"]
    r = admin.http.get(f"/api/admin/visitors/by-ticket/{number}/export")
    assert r.status_code == 200, r.text
    vid = r.json()["visitor"]["id"]
    exported = _latest(admin, "customer.exported")
    assert exported["target"] == vid and exported["details"] == {"tickets": 1}
    r = admin.http.delete(f"/api/admin/visitors/by-ticket/{number}")
    assert r.status_code == 200, r.text
    erased = _latest(admin, "customer.erased")
    assert erased["target"] == vid and erased["details"]["tickets"] == 1

    text = json.dumps(_all(admin), ensure_ascii=False)
    for secret in (hook_secret, token_secret, "s3cr3t-in-query", "Удалите мои данные"):
        assert secret not in text


def test_agents_are_refused_and_pages_are_newest_first(
    server: ServerProcess, admin: OperatorClient
) -> None:
    email, _ = _agent(server, admin)
    agent = OperatorClient(server.url, email, PASSWORD)
    r = agent.http.get("/api/admin/audit")
    assert r.status_code == 403 and r.json()["error"]["code"] == "admin_only"
    assert httpx.get(server.url + "/api/admin/audit").status_code == 401

    every = _all(admin)
    ids = [e["id"] for e in every]
    assert len(ids) > 10 and ids == sorted(ids, reverse=True) and len(set(ids)) == len(ids)
    paged: list[int] = []
    before: int | None = None
    while True:
        page = _log(admin, limit=3, **({"before": before} if before else {}))
        assert len(page["entries"]) <= 3
        paged += [e["id"] for e in page["entries"]]
        before = page["next"]
        if before is None:
            break
        assert before == paged[-1]
    assert paged == ids  # reading the log writes nothing to it

    for params in ({"limit": 0}, {"limit": 201}, {"action": "nope"}, {"before": "x"}):
        r = admin.http.get("/api/admin/audit", params=params)
        assert r.status_code in (400, 422), (params, r.status_code)
        assert "error" in r.json()


def test_old_entries_go_with_the_retention_task(
    server: ServerProcess, admin: OperatorClient
) -> None:
    query(
        server,
        "INSERT INTO audit_log (at, actor_id, actor_name, action, target, details, address)"
        " VALUES ($1, NULL, 'system', 'logout', 'old-one', '{}', '')",
        _when(server, "2001-01-01 00:00:00"),
    )
    assert query(server, "SELECT COUNT(*) FROM audit_log WHERE target = 'old-one'")[0][0] == 1
    out = server.cli("purge")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1])["audit"] == 1
    assert query(server, "SELECT COUNT(*) FROM audit_log WHERE target = 'old-one'")[0][0] == 0
    assert _log(admin, limit=1)["entries"]  # the recent ones stay


def test_role_changes_are_recorded_and_the_last_admin_stays(
    server: ServerProcess, admin: OperatorClient
) -> None:
    email, agent_id = _agent(server, admin)
    r = admin.post(f"/api/admin/operators/{agent_id}/role", {"role": "admin"})
    assert r.status_code == 200, r.text
    assert r.json()["operator"]["role"] == "admin"
    entry = _latest(admin, "operator.role")
    assert entry["target"] == email and entry["actor_id"] == admin.operator["id"]
    assert entry["details"] == {
        "changed": ["role"],
        "old": {"role": "agent"},
        "new": {"role": "admin"},
    }
    # She can now do what admins do; back to agent, she cannot.
    agent = OperatorClient(server.url, email, PASSWORD)
    assert agent.http.get("/api/admin/audit").status_code == 200
    r = admin.post(f"/api/admin/operators/{agent_id}/role", {"role": "agent"})
    assert r.status_code == 200, r.text
    assert agent.http.get("/api/admin/audit").status_code == 403
    # The last active admin cannot become an agent; a bad role is a 422, nothing changes.
    for o in admin.http.get("/api/admin/operators").json()["operators"]:
        if o["role"] == "admin" and o["active"] and o["id"] != admin.operator["id"]:
            assert admin.post(f"/api/admin/operators/{o['id']}/role", {"role": "agent"}).is_success
    r = admin.post(f"/api/admin/operators/{admin.operator['id']}/role", {"role": "agent"})
    assert r.status_code == 409 and r.json()["error"]["code"] == "last_admin", r.text
    r = admin.post(f"/api/admin/operators/{agent_id}/role", {"role": "owner"})
    assert r.status_code == 422 and "error" in r.json()
    assert admin.http.get("/api/admin/me").json()["operator"]["role"] == "admin"
    # Agents cannot change roles.
    r = agent.post(f"/api/admin/operators/{agent_id}/role", {"role": "admin"})
    assert r.status_code == 403
