"""The installation check (GET /api/admin/selftest, POST /api/admin/selftest/mail), on
SQLite and PostgreSQL, against a real server with a real Redis and a real SMTP server."""

from __future__ import annotations

import itertools
import socket
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support.clients import OperatorClient
from tests.support.inspect_db import query
from tests.support.server import ADMIN_EMAIL, ADMIN_NAME, ADMIN_PASSWORD, ServerProcess
from tests.support.services import Postgres, Redis, free_port
from tests.support.smtp import Mailbox

AGENT_EMAIL = "agent@trust.store"
AGENT_PASSWORD = "agent password for the selftest"  # noqa: S105 - test fixture
NAMES = ["database", "public_url", "smtp", "push", "redis", "disk", "descriptors", "clock"]
_n = itertools.count()


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def server(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    mailbox: Mailbox,
    redis_server: Redis,
) -> Iterator[ServerProcess]:
    url = None
    if request.param == "postgres":
        pg: Postgres = request.getfixturevalue("postgres")
        url = pg.create_database(f"selftest_{next(_n)}")
    srv = ServerProcess(
        tmp_path_factory.mktemp(f"selftest-{request.param}"),
        database_url=url,
        redis_url=redis_server.url,
        extra_env={
            "TRUSTDESK_SMTP_HOST": "127.0.0.1",
            "TRUSTDESK_SMTP_PORT": str(mailbox.port),
            "TRUSTDESK_SMTP_STARTTLS": "false",
            "TRUSTDESK_SMTP_FROM": "Trust Store <support@trust.store>",
        },
    )
    srv.create_operator(ADMIN_EMAIL, ADMIN_NAME, ADMIN_PASSWORD, role="admin")
    srv.create_operator(AGENT_EMAIL, "Агент", AGENT_PASSWORD, role="agent")
    srv.start()
    yield srv
    srv.stop()


def _checks(op: OperatorClient, **params: Any) -> dict[str, dict[str, Any]]:
    r = op.http.get("/api/admin/selftest", params=params)
    assert r.status_code == 200, r.text
    body = r.json()
    assert list(body) == ["checks"]
    for c in body["checks"]:
        assert set(c) == {"name", "ok", "detail"}, c
        assert isinstance(c["name"], str) and isinstance(c["detail"], str) and c["detail"]
        assert isinstance(c["ok"], bool)
    return {c["name"]: c for c in body["checks"]}


def test_shape_and_every_check_passes(server: ServerProcess) -> None:
    """The contract as written: `{"checks": [{"name", "ok", "detail"}]}` with the stable names;
    on this healthy installation (real Redis, real SMTP) all of them pass but possibly the
    descriptor limit and disk space, which belong to the machine the tests run on."""
    op = OperatorClient(server.url, ADMIN_EMAIL, ADMIN_PASSWORD)
    rows_before = query(server, "SELECT key, value FROM app_settings ORDER BY key")
    checks = _checks(op, client_time=int(time.time() * 1000), page_origin=server.url)
    assert list(checks) == NAMES
    for name in ("database", "public_url", "smtp", "push", "redis", "clock"):
        assert checks[name]["ok"], checks[name]
    assert f"127.0.0.1:{server.port}" in checks["public_url"]["detail"]
    assert "Redis 127.0.0.1" in checks["redis"]["detail"]
    # The database check writes and commits, and leaves no row behind.
    assert query(server, "SELECT key, value FROM app_settings ORDER BY key") == rows_before
    # GET needs no CSRF header (a safe method), like every other GET of the dashboard.
    del op.http.headers["X-CSRF-Token"]
    assert _checks(op, lang="en")["redis"]["detail"].startswith("Redis 127.0.0.1")


def test_the_clock_check_catches_a_skewed_browser(server: ServerProcess) -> None:
    op = OperatorClient(server.url, ADMIN_EMAIL, ADMIN_PASSWORD)
    skewed = int((time.time() - 300) * 1000)  # a browser five minutes behind
    clock = _checks(op, client_time=skewed, lang="en")["clock"]
    assert clock["ok"] is False
    assert "with the browser: +" in clock["detail"] and "NTP" in clock["detail"]
    r = op.http.get("/api/admin/selftest", params={"client_time": "soon"})
    assert r.status_code == 422, r.text


def test_public_url_mismatch_is_explained(server: ServerProcess) -> None:
    """An owner who opened the dashboard at https://support.shop.example while
    TRUSTDESK_PUBLIC_URL still says http://127.0.0.1:N is told what to set."""
    op = OperatorClient(server.url, ADMIN_EMAIL, ADMIN_PASSWORD)
    row = _checks(op, page_origin="https://support.shop.example", lang="en")["public_url"]
    assert row["ok"] is False
    assert "TRUSTDESK_PUBLIC_URL=https://support.shop.example" in row["detail"]
    assert "X-Forwarded-Proto" in row["detail"]  # the server itself saw http


def test_agents_and_strangers_are_refused(server: ServerProcess) -> None:
    anon = httpx.get(server.url + "/api/admin/selftest", timeout=10)
    assert anon.status_code == 401, anon.text
    assert anon.json()["error"]["code"] == "login_required"
    agent = OperatorClient(server.url, AGENT_EMAIL, AGENT_PASSWORD)
    r = agent.http.get("/api/admin/selftest")
    assert r.status_code == 403, r.text
    assert r.json()["error"]["code"] == "admin_only"
    r = agent.post("/api/admin/selftest/mail", json={})
    assert r.status_code == 403, r.text
    r = httpx.post(server.url + "/api/admin/selftest/mail", json={}, timeout=10)
    assert r.status_code == 401, r.text


def test_test_mail_arrives(server: ServerProcess, mailbox: Mailbox) -> None:
    op = OperatorClient(server.url, ADMIN_EMAIL, ADMIN_PASSWORD)
    before = len(mailbox.messages)
    r = op.post("/api/admin/selftest/mail", json={})
    assert r.status_code == 200, r.text
    assert r.json() == {"sent": True, "to": ADMIN_EMAIL}
    got = mailbox.wait_for(before + 1)[-1]
    assert got["To"] == ADMIN_EMAIL
    assert "TrustDesk" in str(got["Subject"])
    r = op.post("/api/admin/selftest/mail", json={"to": "not an address"})
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "bad_email"
    # A state change: the CSRF header is required.
    del op.http.headers["X-CSRF-Token"]
    r = op.post("/api/admin/selftest/mail", json={})
    assert r.status_code == 403 and r.json()["error"]["code"] == "csrf_failed", r.text


# ---------------------------------------------------------------- a broken installation


@pytest.fixture(scope="module")
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never says a word (a firewall that swallows
    packets, a hung server): a check on it must end by its timeout, not hang the page."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    yield int(listener.getsockname()[1])
    listener.close()


@pytest.fixture(scope="module", params=["refused", "silent"])
def broken(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, silent_port: int
) -> Iterator[ServerProcess]:
    """SQLite only (nothing here depends on the database): SMTP on a port where nothing
    listens, or on one that never answers."""
    port = free_port() if request.param == "refused" else silent_port
    srv = ServerProcess(
        tmp_path_factory.mktemp(f"selftest-{request.param}"),
        extra_env={
            "TRUSTDESK_SMTP_HOST": "127.0.0.1",
            "TRUSTDESK_SMTP_PORT": str(port),
            "TRUSTDESK_SMTP_STARTTLS": "false",
        },
    )
    srv.create_operator(ADMIN_EMAIL, ADMIN_NAME, ADMIN_PASSWORD, role="admin")
    srv.start()
    yield srv
    srv.stop()


def test_a_broken_smtp_server_fails_clearly_and_quickly(
    broken: ServerProcess, silent_port: int
) -> None:
    """Wrong port: the row names the server and the settings to check. A server that never
    answers: the row says so after CHECK_SECONDS (3 s), and the whole answer, all checks
    included, comes within about that (measured: see the assertion), not smtplib's or the
    OS's own minutes-long waits. Unconfigured Redis is ok and says it is not configured."""
    op = OperatorClient(broken.url, ADMIN_EMAIL, ADMIN_PASSWORD)
    start = time.monotonic()
    checks = _checks(op, lang="en")
    took = time.monotonic() - start
    assert took < 6, took
    smtp = checks["smtp"]
    assert smtp["ok"] is False, smtp
    silent = broken.env["TRUSTDESK_SMTP_PORT"] == str(silent_port)
    if silent:
        assert smtp["detail"] == "No answer within 3 s.", smtp
        assert took >= 2.5, took  # it did wait for the silent server, then gave up
    else:
        assert smtp["detail"].startswith("Cannot connect to 127.0.0.1:"), smtp
        assert "refused" in smtp["detail"] and "TRUSTDESK_SMTP_PORT" in smtp["detail"], smtp
    assert checks["database"]["ok"] and checks["push"]["ok"], checks
    assert checks["redis"] == {
        "name": "redis",
        "ok": True,
        "detail": "Not configured (TRUSTDESK_REDIS_URL is empty): needed only for several "
        "processes.",
    }
    if not silent:  # (the silent one would take smtplib's 10 s to fail the same way)
        r = op.post("/api/admin/selftest/mail", json={})
        assert r.status_code == 502, r.text
        assert r.json()["error"]["code"] == "smtp_failed"
