"""Operator accounts: forgot / reset / change password, two-factor login (TOTP), the
"require two-factor" rule. Real server, real SMTP capture (aiosmtpd), SQLite and PostgreSQL.

Before this work none of it existed: /api/admin/password/* and /api/admin/2fa/* were 404,
and the only way back into a forgotten account was an admin resetting it by hand.
"""

from __future__ import annotations

import itertools
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pyotp
import pytest
from alembic import command
from alembic.config import Config

from tests.support.clients import OperatorClient
from tests.support.inspect_db import query
from tests.support.server import ADMIN_EMAIL, ADMIN_NAME, ADMIN_PASSWORD, ServerProcess
from tests.support.services import Postgres
from tests.support.smtp import Mailbox
from trustdesk.config import Settings
from trustdesk.store.db import MIGRATIONS, run_migrations

_n = itertools.count()
PASSWORD = "agent password one"  # noqa: S105 - test fixture
LINK = re.compile(r"/admin#/reset/([A-Za-z0-9_-]+)")


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, mailbox: Mailbox
) -> Iterator[ServerProcess]:
    url = None
    if request.param == "postgres":
        pg: Postgres = request.getfixturevalue("postgres")
        url = pg.create_database(f"account_{next(_n)}")
    srv = ServerProcess(
        tmp_path_factory.mktemp(f"account-{request.param}"),
        database_url=url,
        extra_env={
            "TRUSTDESK_SMTP_HOST": "127.0.0.1",
            "TRUSTDESK_SMTP_PORT": str(mailbox.port),
            "TRUSTDESK_SMTP_STARTTLS": "false",
            "TRUSTDESK_SMTP_FROM": "TrustDesk <support@trust.store>",
        },
    )
    srv.create_operator(ADMIN_EMAIL, ADMIN_NAME, ADMIN_PASSWORD, role="admin")
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def server_no_smtp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    srv = ServerProcess(
        tmp_path_factory.mktemp("account-nosmtp"),
        extra_env={"TRUSTDESK_PASSWORD_RESETS_PER_HOUR_PER_IP": "3"},
    )
    srv.start()
    yield srv
    srv.stop()


def new_agent(server: ServerProcess, password: str = PASSWORD) -> str:
    email = f"agent{next(_n)}-{time.time_ns()}@trust.store"
    admin = OperatorClient(server.url, ADMIN_EMAIL, ADMIN_PASSWORD)
    r = admin.post(
        "/api/admin/operators",
        json={"email": email, "name": "Агент", "password": password, "role": "agent"},
    )
    assert r.status_code == 201, r.text
    return email


def login(server: ServerProcess, email: str, password: str) -> httpx.Response:
    return httpx.post(server.url + "/api/admin/login", json={"email": email, "password": password})


def error(r: httpx.Response, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    body: dict[str, Any] = r.json()["error"]
    return body


def reset_token(mailbox: Mailbox, before: int, email: str) -> str:
    msgs = mailbox.wait_for(before + 1)[before:]
    assert [m["To"] for m in msgs] == [email]  # nothing went to anyone else
    body = msgs[0].get_payload(decode=True).decode()
    match = LINK.search(body)
    assert match, body
    return match.group(1)


def test_forgot_mails_a_single_use_link_that_ends_every_session(
    server: ServerProcess, mailbox: Mailbox
) -> None:
    email = new_agent(server)
    desk, phone = (
        OperatorClient(server.url, email, PASSWORD),
        OperatorClient(server.url, email, PASSWORD),
    )
    before = len(mailbox.messages)
    # An unknown address gets exactly the same answer (no account enumeration).
    for who in ("nobody@trust.store", email.upper()):
        r = httpx.post(server.url + "/api/admin/password/forgot", json={"email": who})
        assert r.status_code == 202 and r.json() == {"sent": True, "smtp": True}, r.text
    token = reset_token(mailbox, before, email)
    assert (
        f"{server.url}/admin#/reset/{token}"
        in mailbox.messages[before].get_payload(decode=True).decode()
    )
    # A too-short password: 422 naming the field and stating the rule; the link still works.
    e = error(
        httpx.post(
            server.url + "/api/admin/password/reset", json={"token": token, "password": "short"}
        ),
        422,
    )
    assert e["field"] == "password" and "8" in e["message"] and e["code"] == "weak_password"
    r = httpx.post(
        server.url + "/api/admin/password/reset",
        json={"token": token, "password": "a brand new password"},
    )
    assert r.status_code == 200, r.text
    for old in (desk, phone):
        assert old.http.get("/api/admin/me").status_code == 401
    assert login(server, email, PASSWORD).status_code == 401
    assert login(server, email, "a brand new password").status_code == 200
    # Single use.
    again = httpx.post(
        server.url + "/api/admin/password/reset",
        json={"token": token, "password": "yet another password"},
    )
    assert error(again, 422)["field"] == "token"
    assert login(server, email, "a brand new password").status_code == 200


def test_reset_link_expires(server: ServerProcess, mailbox: Mailbox) -> None:
    email = new_agent(server)
    before = len(mailbox.messages)
    httpx.post(server.url + "/api/admin/password/forgot", json={"email": email})
    token = reset_token(mailbox, before, email)
    query(server, "UPDATE password_resets SET expires_at = created_at WHERE used_at IS NULL")
    r = httpx.post(
        server.url + "/api/admin/password/reset",
        json={"token": token, "password": "a brand new password"},
    )
    assert error(r, 422)["code"] == "reset_link_invalid"
    assert login(server, email, PASSWORD).status_code == 200  # nothing changed


def test_cli_reset_password_ends_sessions(server: ServerProcess) -> None:
    email = new_agent(server)
    op = OperatorClient(server.url, email, PASSWORD)
    out = server.cli("reset-password", "--email", email, "--password-stdin", stdin="short\n")
    assert out.returncode != 0 and "8" in out.stderr
    out = server.cli(
        "reset-password", "--email", "nobody@trust.store", "--password-stdin", stdin="x" * 9
    )
    assert out.returncode != 0 and "no operator" in out.stderr
    out = server.cli(
        "reset-password", "--email", email, "--password-stdin", stdin="set by the owner\n"
    )
    assert out.returncode == 0, out.stderr
    assert op.http.get("/api/admin/me").status_code == 401
    assert login(server, email, "set by the owner").status_code == 200


def test_change_password_needs_the_current_one(server: ServerProcess) -> None:
    email = new_agent(server)
    me, other = (
        OperatorClient(server.url, email, PASSWORD),
        OperatorClient(server.url, email, PASSWORD),
    )
    url = "/api/admin/password/change"
    wrong = me.post(url, json={"current": "not my password", "password": "long enough pw"})
    assert error(wrong, 422)["field"] == "current"
    short = me.post(url, json={"current": PASSWORD, "password": "short"})
    e = error(short, 422)
    assert e["field"] == "password" and "8" in e["message"]
    long = me.post(url, json={"current": PASSWORD, "password": "x" * 300})
    assert error(long, 422)["field"] == "password" and "256" in error(long, 422)["message"]
    no_csrf = httpx.post(
        server.url + url,
        json={"current": PASSWORD, "password": "long enough pw"},
        cookies=me.http.cookies,
    )
    assert error(no_csrf, 403)["code"] == "csrf_failed"
    assert login(server, email, PASSWORD).status_code == 200  # nothing was lost so far
    ok = me.post(url, json={"current": PASSWORD, "password": "my new password"})
    assert ok.status_code == 200, ok.text
    assert me.http.get("/api/admin/me").status_code == 200  # this session stays
    assert other.http.get("/api/admin/me").status_code == 401  # the others end
    assert login(server, email, "my new password").status_code == 200


def totp_login(server: ServerProcess, email: str, password: str, code: str) -> httpx.Response:
    first = login(server, email, password)
    assert first.status_code == 200, first.text
    assert first.json()["totp_required"] is True and "td_session" not in first.cookies
    return httpx.post(
        server.url + "/api/admin/login/totp",
        json={"pending": first.json()["pending"], "code": code},
    )


def test_totp_setup_enable_login_recovery_disable(server: ServerProcess) -> None:
    email = new_agent(server)
    me = OperatorClient(server.url, email, PASSWORD)
    setup = me.post("/api/admin/2fa/setup").json()
    assert setup["otpauth_uri"].startswith("otpauth://totp/TrustDesk:")
    assert setup["qr_svg"].startswith("data:image/svg+xml")
    totp = pyotp.TOTP(setup["secret"])
    # The secret is not stored as it is.
    stored = query(server, "SELECT totp_secret FROM operators WHERE email = $1", email)[0][0]
    assert setup["secret"] not in stored
    assert error(me.post("/api/admin/2fa/enable", json={"code": "000000"}), 422)["field"] == "code"
    assert login(server, email, PASSWORD).json().get("totp_required") is None  # not on yet
    codes = me.post("/api/admin/2fa/enable", json={"code": totp.now()}).json()["recovery_codes"]
    assert len(codes) == 10 and len(set(codes)) == 10
    # The password alone gives no session now; a wrong code neither.
    assert error(totp_login(server, email, PASSWORD, "123456"), 401)["code"] == "bad_code"
    assert login(server, email, "wrong password").status_code == 401
    code = totp.at(time.time() + 30)  # the enabling code's step is spent: the next one
    ok = totp_login(server, email, PASSWORD, code)
    assert ok.status_code == 200, ok.text
    assert httpx.get(server.url + "/api/admin/me", cookies=ok.cookies).status_code == 200
    # The same code never works twice; a forged or stale pending ticket opens nothing.
    assert error(totp_login(server, email, PASSWORD, code), 401)["code"] == "bad_code"
    forged = httpx.post(
        server.url + "/api/admin/login/totp", json={"pending": "1.9999999999.abc", "code": code}
    )
    assert error(forged, 401)["code"] == "login_expired"
    # A recovery code works once.
    assert totp_login(server, email, PASSWORD, codes[0].upper()).status_code == 200
    assert error(totp_login(server, email, PASSWORD, codes[0]), 401)["code"] == "bad_code"
    assert me.http.get("/api/admin/account").json()["recovery_codes_left"] == 9
    stored_codes = query(
        server,
        "SELECT code_hash FROM recovery_codes r JOIN operators o ON o.id = r.operator_id"
        " WHERE o.email = $1",
        email,
    )
    assert all(c.replace("-", "") not in str(stored_codes) for c in codes)
    # Turning it off needs the password.
    assert (
        error(me.post("/api/admin/2fa/disable", json={"password": "nope"}), 422)["field"]
        == "password"
    )
    assert me.post("/api/admin/2fa/disable", json={"password": PASSWORD}).status_code == 200
    assert login(server, email, PASSWORD).json()["csrf_token"]


def _second_admin(server: ServerProcess) -> tuple[OperatorClient, pyotp.TOTP]:
    """An admin with TOTP on (the only kind who may require it), logged in."""
    email = f"admin{next(_n)}-{time.time_ns()}@trust.store"
    owner = OperatorClient(server.url, ADMIN_EMAIL, ADMIN_PASSWORD)
    r = owner.post(
        "/api/admin/operators",
        json={"email": email, "name": "Админ", "password": PASSWORD, "role": "admin"},
    )
    assert r.status_code == 201, r.text
    admin = OperatorClient(server.url, email, PASSWORD)
    totp = pyotp.TOTP(admin.post("/api/admin/2fa/setup").json()["secret"])
    assert admin.post("/api/admin/2fa/enable", json={"code": totp.now()}).status_code == 200
    return admin, totp


def test_require_2fa_is_admins_only(server: ServerProcess) -> None:
    email = new_agent(server)
    agent = OperatorClient(server.url, email, PASSWORD)
    owner = OperatorClient(server.url, ADMIN_EMAIL, ADMIN_PASSWORD)  # no second factor
    r = agent.http.put("/api/admin/security", json={"require_2fa": True})
    assert error(r, 403)["code"] == "admin_only"
    assert agent.http.get("/api/admin/account").json()["require_2fa"] is False
    assert owner.http.put("/api/admin/security", json={"require_2fa": "maybe"}).status_code == 422
    # An admin without it would lock themselves out by requiring it: refused.
    r = owner.http.put("/api/admin/security", json={"require_2fa": True})
    assert error(r, 409)["code"] == "totp_setup_first"
    admin, _ = _second_admin(server)
    try:
        r = admin.http.put("/api/admin/security", json={"require_2fa": True})
        assert r.status_code == 200 and r.json() == {"require_2fa": True}
        acc = agent.http.get("/api/admin/account").json()
        assert acc["require_2fa"] is True and acc["totp_enabled"] is False  # → sent to setup
        # Until they set it up, the session reaches nothing else, whatever the client.
        refused = agent.http.get("/api/admin/support/tickets")
        assert error(refused, 403)["code"] == "totp_setup_required"
        assert error(owner.http.get("/api/admin/operators"), 403)["code"] == "totp_setup_required"
        assert admin.http.get("/api/admin/operators").status_code == 200
        secret = agent.post("/api/admin/2fa/setup").json()["secret"]
        code = pyotp.TOTP(secret).now()
        assert agent.post("/api/admin/2fa/enable", json={"code": code}).status_code == 200
        assert agent.http.get("/api/admin/support/tickets").status_code == 200
        off = agent.post("/api/admin/2fa/disable", json={"password": PASSWORD})
        assert error(off, 409)["code"] == "totp_required"
    finally:
        r = admin.http.put("/api/admin/security", json={"require_2fa": False})
        assert r.status_code == 200, r.text
    assert owner.http.get("/api/admin/operators").status_code == 200


def test_bad_input_gets_422(server: ServerProcess) -> None:
    url = server.url + "/api/admin/password"
    rules = httpx.get(url + "/rules").json()
    assert rules == {"min_length": 8, "max_length": 256, "reset_minutes": 30, "smtp": True}
    assert httpx.post(url + "/forgot", json={}).status_code == 422
    assert httpx.post(url + "/forgot", json={"email": "x" * 300}).status_code == 422
    assert httpx.post(url + "/reset", json={"password": "long enough"}).status_code == 422
    bad = httpx.post(url + "/reset", json={"token": "made-up", "password": "long enough"})
    assert error(bad, 422)["field"] == "token"
    totp = server.url + "/api/admin/login/totp"
    assert httpx.post(totp, json={"pending": "x", "code": "1" * 33}).status_code == 422
    assert httpx.post(url + "/change", json={}).status_code == 401  # no session


def test_forgot_without_smtp_points_to_the_cli(server_no_smtp: ServerProcess) -> None:
    url = server_no_smtp.url + "/api/admin/password"
    assert httpx.get(url + "/rules").json()["smtp"] is False
    r = httpx.post(url + "/forgot", json={"email": "someone@trust.store"})
    assert r.status_code == 202 and r.json() == {"sent": False, "smtp": False}
    # Rate-limited per address (3 an hour here).
    codes = [
        httpx.post(url + "/forgot", json={"email": "someone@trust.store"}).status_code
        for _ in range(3)
    ]
    assert codes[-1] == 429 and codes[:2] == [202, 202]


def _alembic(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["database_url"] = url
    return cfg


def test_migration_0006_down_and_up_keeps_sessions(tmp_path: Path, postgres: Postgres) -> None:
    """Downgrading 0006 must not rebuild `operators` (on SQLite with foreign keys on, a
    rebuild deletes every session and ticket assignment with it)."""
    for settings in (
        Settings(data_dir=tmp_path),
        Settings(data_dir=tmp_path, database_url=postgres.create_database("account_mig")),
    ):
        run_migrations(settings)
        url = settings.resolved_database_url
        srv = ServerProcess(tmp_path, database_url=settings.database_url)
        query(
            srv,
            "INSERT INTO operators (email, display_name, password_hash, role, active,"
            " created_at) VALUES ('m@t.s', 'M', 'x', 'admin', true, CURRENT_TIMESTAMP)",
        )
        query(
            srv,
            "INSERT INTO sessions (id_hash, operator_id, csrf_token, created_at, expires_at,"
            " revoked) SELECT 'h', id, 'c', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, false"
            " FROM operators",
        )
        command.downgrade(_alembic(url), "0005")
        assert query(srv, "SELECT COUNT(*) FROM sessions")[0][0] == 1
        command.upgrade(_alembic(url), "head")
        assert query(srv, "SELECT COUNT(*) FROM operators WHERE totp_secret IS NULL")[0][0] == 1
