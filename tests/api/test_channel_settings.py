"""Settings → Каналы over real HTTP, on SQLite and PostgreSQL: the Telegram bot token, IMAP
and SMTP saved in the dashboard (actions/channel_settings.py), checked against real servers
(the Bot API stand-in, Dovecot, the aiosmtpd capture server) and applied live: a bot token
saved while the server runs starts the bot's consumer without a restart."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support.clients import OperatorClient
from tests.support.dovecot import Dovecot, dovecot_available
from tests.support.inspect_db import query
from tests.support.server import ADMIN_EMAIL, ADMIN_NAME, ADMIN_PASSWORD, ServerProcess
from tests.support.services import Postgres, Redis, free_port, wait_until
from tests.support.smtp import Mailbox
from tests.support.telegram_api import TOKEN, BotApi

IMAP_USER = "inbox@trust.store"  # the Dovecot mailbox (tests/conftest.py imap)

pytestmark = pytest.mark.skipif(not dovecot_available(), reason="dovecot-imapd not installed")

_n = itertools.count()
_chats = itertools.count(7_000_001)
URL = "/api/admin/settings/channels"
AGENT = ("agent@trust.store", "Агент", "agent-password-123")


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, bot_api: BotApi
) -> Iterator[ServerProcess]:
    url = None
    if request.param == "postgres":
        pg: Postgres = request.getfixturevalue("postgres")
        url = pg.create_database(f"chanset_{next(_n)}")
    srv = ServerProcess(
        tmp_path_factory.mktemp(f"chanset-{request.param}"),
        database_url=url,
        extra_env={
            # no channel configured in the environment: only where the Bot API is
            "TRUSTDESK_TELEGRAM_API_URL": bot_api.url,
            "TRUSTDESK_TELEGRAM_POLL_SECONDS": "1",
            "TRUSTDESK_SMTP_FROM": "Env Shop <env@trust.store>",
        },
    )
    srv.create_operator(ADMIN_EMAIL, ADMIN_NAME, ADMIN_PASSWORD, role="admin")
    srv.create_operator(*AGENT, role="agent")
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture
def admin(server: ServerProcess) -> OperatorClient:
    return OperatorClient(server.url, ADMIN_EMAIL, ADMIN_PASSWORD)


def put(op: OperatorClient, body: Any) -> httpx.Response:
    return op.http.put(URL, json=body)


def channels(op: OperatorClient) -> dict[str, Any]:
    r = op.http.get(URL)
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()["channels"]
    return out


def test_defaults_come_from_the_environment_and_only_admins_see_them(
    admin: OperatorClient, server: ServerProcess
) -> None:
    put(admin, {"telegram": None, "imap": None, "smtp": None})
    c = channels(admin)
    assert {k: c[k]["source"] for k in c} == {"telegram": "env", "imap": "env", "smtp": "env"}
    assert c["smtp"]["from"] == "Env Shop <env@trust.store>"
    assert c["telegram"]["enabled"] is False and c["imap"]["enabled"] is False
    assert c["imap"]["password"] == {"set": False, "last4": ""}
    agent = OperatorClient(server.url, AGENT[0], AGENT[2])
    assert agent.http.get(URL).status_code == 403
    assert put(agent, {"smtp": {"host": "evil.example"}}).status_code == 403
    assert httpx.get(server.url + URL).status_code == 401


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"imap": {"port": 0}}, "imap.port"),
        ({"imap": {"port": "993"}}, "imap.port"),
        ({"imap": {"tls": "starttls"}}, "imap.tls"),
        ({"imap": {"host": "bad host!"}}, "imap.host"),
        ({"imap": {"folder": ""}}, "imap.folder"),
        ({"imap": {"password": "x" * 513}}, "imap.password"),
        ({"imap": {"user": "a\r\nb"}}, "imap.user"),
        ({"smtp": {"from": "nobody"}}, "smtp.from"),
        ({"smtp": {"starttls": "yes"}}, "smtp.starttls"),
        ({"smtp": {"colour": "red"}}, "smtp.colour"),
        ({"telegram": {"bot_token": "not-a-token"}}, "telegram.bot_token"),
        ({"vk": {}}, "vk"),
        ({"smtp": "on"}, "smtp"),
    ],
)
def test_bad_input_is_a_422_naming_the_field_and_saves_nothing(
    admin: OperatorClient, body: dict[str, Any], field: str
) -> None:
    before = channels(admin)
    r = put(admin, body)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["field"] == field
    assert channels(admin) == before


def test_connecting_the_bot_checks_the_token_and_starts_it_live(
    admin: OperatorClient, server: ServerProcess, bot_api: BotApi
) -> None:
    wrong = "999:" + "A" * 30
    r = put(admin, {"telegram": {"bot_token": wrong}})
    assert r.status_code == 422 and r.json()["error"]["field"] == "telegram.bot_token"
    assert "Unauthorized" in r.json()["error"]["message"] or "Not Found" in r.text
    check = admin.post(URL + "/telegram/check", {"bot_token": TOKEN}).json()
    assert check["ok"] is True and check["username"]
    r = put(admin, {"telegram": {"bot_token": TOKEN, "webhook": False}})
    assert r.status_code == 200, r.text
    tg = r.json()["channels"]["telegram"]
    assert tg["source"] == "dashboard" and tg["enabled"] is True
    assert tg["bot_token"] == {"set": True, "last4": TOKEN[-4:]}
    assert tg["username"] == check["username"]
    assert TOKEN not in r.text and TOKEN not in admin.http.get(URL).text
    # at rest: encrypted, not in the table's text; and never in the audit log
    stored = query(server, "SELECT value FROM app_settings WHERE key = 'channels'")[0][0]
    assert TOKEN.split(":")[1] not in stored and '"enc:' in stored
    audit = query(server, "SELECT action, target, details FROM audit_log")
    assert ("settings.channels", "telegram") in [(a, t) for a, t, _ in audit]
    assert not any(TOKEN.split(":")[1] in str(row) for row in audit)
    # applied without a restart: a customer writing to the bot gets a ticket
    chat = next(_chats)
    name = f"Ольга {chat}"
    bot_api.customer_writes(chat, name, text="Бот подключили из панели?")

    def listed() -> bool:
        return any(t["customer_name"] == name for t in admin.tickets(status="all"))

    wait_until(listed, 30, "a ticket from the bot connected in the dashboard")
    # Отключить: the token is gone (over the environment's, were there one)
    r = put(admin, {"telegram": {"bot_token": ""}})
    tg = r.json()["channels"]["telegram"]
    assert tg["enabled"] is False and tg["bot_token"]["set"] is False and tg["username"] is None


def test_imap_check_really_logs_in_and_says_what_the_server_said(
    admin: OperatorClient, imap: Dovecot
) -> None:
    good = {
        "host": "127.0.0.1",
        "port": imap.port,
        "tls": "none",
        "user": imap.user,
        "password": imap.password,
        "folder": "INBOX",
    }
    r = admin.post(URL + "/imap/check", good)
    assert r.status_code == 200 and r.json()["ok"] is True, r.text
    bad = admin.post(URL + "/imap/check", {**good, "password": "wrong-password"}).json()
    assert bad["ok"] is False
    assert "AUTHENTICATIONFAILED" in bad["detail"] or "Authentication failed" in bad["detail"]
    closed = admin.post(URL + "/imap/check", {**good, "port": free_port()}).json()
    assert closed["ok"] is False and "refused" in closed["detail"].lower()
    # saved: the password shown as set with its last 4, never itself
    r = put(admin, {"imap": {**good, "host": ""}})  # saved, but off (no host)
    assert r.status_code == 200, r.text
    i = r.json()["channels"]["imap"]
    assert i["source"] == "dashboard" and i["enabled"] is False
    assert i["password"] == {"set": True, "last4": imap.password[-4:]}
    assert imap.password not in r.text
    # a password left out keeps the stored one: the check still logs in
    assert admin.post(URL + "/imap/check", {"host": "127.0.0.1"}).json()["ok"] is True
    put(admin, {"imap": None})
    assert channels(admin)["imap"]["source"] == "env"


def test_smtp_check_connects_and_a_saved_sender_is_used(
    admin: OperatorClient, mailbox: Mailbox
) -> None:
    body = {"host": "127.0.0.1", "port": mailbox.port, "starttls": False, "user": ""}
    ok = admin.post(URL + "/smtp/check", body).json()
    assert ok["ok"] is True, ok
    tls = admin.post(URL + "/smtp/check", {**body, "starttls": True}).json()
    assert tls["ok"] is False and "STARTTLS" in tls["detail"]
    r = put(admin, {"smtp": {**body, "from": "Trust Store <help@trust.store>"}})
    assert r.status_code == 200, r.text
    s = r.json()["channels"]["smtp"]
    assert s["source"] == "dashboard" and s["enabled"] is True
    assert s["from"] == "Trust Store <help@trust.store>"
    put(admin, {"smtp": None})
    assert channels(admin)["smtp"]["from"] == "Env Shop <env@trust.store>"


def test_missed_chat_alerts_use_the_channels_saved_in_the_dashboard(
    admin: OperatorClient, mailbox: Mailbox
) -> None:
    """The escalation ladder's email and Telegram steps follow Settings → Каналы."""

    def available() -> dict[str, bool]:
        r = admin.http.get("/api/admin/account/alerts")
        assert r.status_code == 200, r.text
        out: dict[str, bool] = r.json()["available"]
        return out

    put(admin, {"telegram": None, "smtp": None})
    assert available() == {"push": True, "email": False, "telegram": False}
    assert admin.post("/api/admin/account/alerts/telegram-link", {}).status_code == 409
    smtp = {"host": "127.0.0.1", "port": mailbox.port, "starttls": False, "user": ""}
    assert (
        put(admin, {"smtp": smtp, "telegram": {"bot_token": TOKEN, "webhook": False}}).status_code
        == 200
    )
    assert available() == {"push": True, "email": True, "telegram": True}
    link = admin.post("/api/admin/account/alerts/telegram-link", {})
    assert link.status_code == 200, link.text
    put(admin, {"telegram": None, "smtp": None})
    assert available() == {"push": True, "email": False, "telegram": False}


@pytest.fixture(scope="module")
def two_servers(
    postgres: Postgres, redis_server: Redis, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    """Two server processes on one PostgreSQL and one Redis (and, as any such deployment,
    one TRUSTDESK_SECRET_KEY: the secrets at rest are encrypted with a key derived from it)."""
    url = postgres.create_database(f"chanset_two_{next(_n)}")
    env = {"TRUSTDESK_SECRET_KEY": "two-processes-share-this-secret-key-0123456789"}
    servers = []
    for name in ("a", "b"):
        srv = ServerProcess(
            tmp_path_factory.mktemp(f"chanset-two-{name}"),
            database_url=url,
            redis_url=redis_server.url,
            extra_env=env,
        )
        if name == "a":
            srv.create_operator(ADMIN_EMAIL, ADMIN_NAME, ADMIN_PASSWORD, role="admin")
        servers.append(srv.start())
    yield servers[0], servers[1]
    for srv in servers:
        srv.stop()


def test_a_save_in_one_process_applies_in_the_other_without_restart(
    two_servers: tuple[ServerProcess, ServerProcess], mailbox: Mailbox
) -> None:
    a, b = two_servers
    admin_a = OperatorClient(a.url, ADMIN_EMAIL, ADMIN_PASSWORD)
    admin_b = OperatorClient(b.url, ADMIN_EMAIL, ADMIN_PASSWORD)

    def smtp_row_on_b() -> dict[str, Any]:
        r = admin_b.http.get("/api/admin/selftest", params={"lang": "ru"})
        assert r.status_code == 200, r.text
        row: dict[str, Any] = next(c for c in r.json()["checks"] if c["name"] == "smtp")
        return row

    assert "Не настроено" in smtp_row_on_b()["detail"]
    body = {
        "host": "127.0.0.1",
        "port": mailbox.port,
        "starttls": False,
        "password": "smtp-secret-across",
    }
    assert put(admin_a, {"smtp": body}).status_code == 200
    # B's own settings (what its installation check and its senders use) follow at once
    wait_until(
        lambda: f"127.0.0.1:{mailbox.port}" in smtp_row_on_b()["detail"],
        15,
        "process B to apply the SMTP settings saved in A",
    )
    assert smtp_row_on_b()["ok"] is True
    assert channels(admin_b)["smtp"]["password"] == {"set": True, "last4": "ross"}
    assert put(admin_a, {"smtp": None}).status_code == 200
    wait_until(lambda: "Не настроено" in smtp_row_on_b()["detail"], 15, "B back to env")
