"""Login abuse: bursts of guesses, a stalled event loop, lockout by someone else, many processes.

The servers here run with the real default (TRUSTDESK_LOGIN_ATTEMPTS_PER_15MIN=10: 10 per
email per address, 50 per address, every 15 minutes). Clients pick their address from
127.0.0.0/8 (the whole block is loopback on Linux), so each address is a different
client to the limits; X-Forwarded-For is not needed. What was measured before the fix is
in each test's docstring; the server's count of password checks comes from /metrics
(`trustdesk_login_attempts_total`).
"""

from __future__ import annotations

import asyncio
import re
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis as redis_client

from tests.security.conftest import start_server
from tests.support.clients import OperatorClient
from tests.support.server import ADMIN_EMAIL, ADMIN_NAME, ADMIN_PASSWORD, ServerProcess
from tests.support.services import Redis, redis_available

LIMIT = 10  # the default TRUSTDESK_LOGIN_ATTEMPTS_PER_15MIN
PASSWORD = "the-operators-own-password"  # noqa: S105 - test fixture
DEFAULTS = {"TRUSTDESK_LOGIN_ATTEMPTS_PER_15MIN": str(LIMIT)}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    srv = start_server(tmp_path_factory, "login-abuse", extra_env=DEFAULTS)
    yield srv
    srv.stop()


def add_operator(server: ServerProcess, email: str) -> None:
    admin = OperatorClient(server.url, ADMIN_EMAIL, ADMIN_PASSWORD)
    r = admin.http.post(
        "/api/admin/operators",
        json={"email": email, "name": "Оператор", "password": PASSWORD, "role": "agent"},
    )
    assert r.status_code == 201, r.text


def checks_done(url: str) -> float:
    """Password checks the server has run (ok + failed), from its Prometheus text."""
    text = httpx.get(url + "/metrics", timeout=10).text
    found = re.findall(
        r'^trustdesk_login_attempts_total\{result="(?:ok|failed)"\} (\S+)$', text, re.M
    )
    assert found, "no trustdesk_login_attempts_total metric"
    return sum(float(v) for v in found)


async def login_from(url: str, ip: str, email: str, password: str) -> httpx.Response:
    transport = httpx.AsyncHTTPTransport(local_address=ip)
    async with httpx.AsyncClient(base_url=url, transport=transport, timeout=60) as http:
        return await http.post("/api/admin/login", json={"email": email, "password": password})


async def burst(url: str, ips: list[str], email: str) -> list[httpx.Response]:
    """One wrong password per entry of `ips`, all at once."""
    return await asyncio.gather(
        *(login_from(url, ip, email, f"wrong-guess-{i}") for i, ip in enumerate(ips))
    )


def assert_refused(r: httpx.Response) -> None:
    assert r.status_code == 429, (r.status_code, r.text)
    assert int(r.headers["Retry-After"]) >= 1
    assert r.json()["error"]["code"] == "rate_limited"


def test_a_burst_from_one_address_checks_at_most_the_limit(server: ServerProcess) -> None:
    """60 concurrent wrong passwords from one address. Before: all 60 were checked (60 ×
    401, no 429: the limiter only counted failures after their argon2 check, so every
    request of the burst passed the "blocked?" test before the first one failed). Now the
    attempt is reserved before the check: 10 × 401, 50 × 429, 10 checks on the metric."""
    email = "burst@trust.store"
    add_operator(server, email)
    before = checks_done(server.url)
    answers = asyncio.run(burst(server.url, ["127.0.2.1"] * 60, email))
    codes = [r.status_code for r in answers]
    assert set(codes) <= {401, 429}, codes
    assert codes.count(401) <= LIMIT, codes.count(401)
    assert checks_done(server.url) - before <= LIMIT
    for r in answers:
        if r.status_code == 429:
            assert_refused(r)
    # That address is locked out of that email, even with the right password.
    assert_refused(asyncio.run(login_from(server.url, "127.0.2.1", email, PASSWORD)))
    # The operator, from an address that has not failed, logs in at once.
    started = time.monotonic()
    r = asyncio.run(login_from(server.url, "127.0.2.2", email, PASSWORD))
    assert r.status_code == 200, r.text
    assert time.monotonic() - started < 2.0


def test_the_event_loop_stays_free_during_a_burst_of_checks(server: ServerProcess) -> None:
    """60 concurrent wrong passwords from 60 addresses (each one is checked: no address is
    over any limit). Before: argon2 ran on the event loop and /healthz took 1.7 s here
    (3.5 s in the issue's measurement). Now the checks run in a two-thread pool: /healthz
    stays under 1 s (a generous bound; measured 0.03-0.04 s on 2 cores)."""
    email = "loop@trust.store"
    add_operator(server, email)

    latencies: list[float] = []
    statuses: set[int] = set()
    done = threading.Event()

    def poll_health() -> None:
        # In its own thread and client: the burst's 60 clients start on the test's event
        # loop, and would delay a poller there by themselves.
        with httpx.Client(base_url=server.url, timeout=30) as http:
            while not done.is_set():
                started = time.monotonic()
                statuses.add(http.get("/healthz").status_code)
                latencies.append(time.monotonic() - started)

    poller = threading.Thread(target=poll_health)
    poller.start()
    try:
        answers = asyncio.run(burst(server.url, [f"127.0.3.{i}" for i in range(1, 61)], email))
    finally:
        done.set()
        poller.join(30)
    assert [r.status_code for r in answers] == [401] * 60  # all 60 checked
    assert latencies, "the burst ended before /healthz was asked"
    assert statuses == {200}
    assert max(latencies) < 1.0, f"/healthz took {max(latencies):.2f}s during the burst"


def test_guesses_from_many_addresses_do_not_lock_the_operator_out(
    server: ServerProcess,
) -> None:
    """Someone guesses an operator's password from many addresses. Before: after 10
    failures for the email (from anywhere) the email was locked for everyone (the third
    round here got 5 x 429, and the real operator 429 from their own, clean address). Now
    the email's budget binds only addresses that have failed 3 times for it: they are
    refused, the operator is let in at once."""
    email = "target@trust.store"
    add_operator(server, email)
    attackers = [f"127.0.4.{i}" for i in range(1, 6)]
    for _ in range(3):  # 15 failures for the email, 3 from each address
        answers = asyncio.run(burst(server.url, attackers, email))
        assert [r.status_code for r in answers] == [401] * len(attackers)
    # The email is under attack now: the addresses that failed for it are refused.
    for ip in attackers:
        assert_refused(asyncio.run(login_from(server.url, ip, email, "yet-another-guess")))
    # The operator, from an address that has not failed, gets in.
    started = time.monotonic()
    r = asyncio.run(login_from(server.url, "127.0.4.100", email, PASSWORD))
    assert r.status_code == 200, r.text
    assert time.monotonic() - started < 2.0
    # Another operator is not touched by any of it.
    r = asyncio.run(login_from(server.url, attackers[0], ADMIN_EMAIL, ADMIN_PASSWORD))
    assert r.status_code == 200, r.text


@pytest.fixture(scope="module")
def redis() -> Iterator[Redis]:
    """This module's own Redis: the last test stops it."""
    if not redis_available():
        pytest.fail("redis-server is missing (apt-get install redis-server)")
    r = Redis(Path(tempfile.mkdtemp(prefix="trustdesk-login-redis-")))
    r.start()
    yield r
    r.stop()


@pytest.fixture(scope="module")
def redis_pair(
    tmp_path_factory: pytest.TempPathFactory, redis: Redis
) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    """Two processes (each its own SQLite, same operators) on one Redis."""
    servers = []
    for name in ("login-redis-a", "login-redis-b"):
        srv = ServerProcess(tmp_path_factory.mktemp(name), redis_url=redis.url, extra_env=DEFAULTS)
        srv.create_operator(ADMIN_EMAIL, ADMIN_NAME, ADMIN_PASSWORD, role="admin")
        srv.start()
        servers.append(srv)
    yield servers[0], servers[1]
    for srv in servers:
        srv.stop()


def test_two_processes_share_one_budget_through_redis(
    redis_pair: tuple[ServerProcess, ServerProcess], redis: Redis
) -> None:
    """30 concurrent wrong passwords from one address to each of two processes on one
    Redis. Before: the limits were per process (and not atomic): all 60 were checked
    (60 x 401). Now both reserve in Redis (one Lua script): at most 10 checked between
    them."""
    a, b = redis_pair
    for srv in (a, b):
        add_operator(srv, "shared@trust.store")
    before = checks_done(a.url) + checks_done(b.url)

    async def go() -> list[httpx.Response]:
        halves = await asyncio.gather(
            burst(a.url, ["127.0.5.1"] * 30, "shared@trust.store"),
            burst(b.url, ["127.0.5.1"] * 30, "shared@trust.store"),
        )
        return halves[0] + halves[1]

    codes = [r.status_code for r in asyncio.run(go())]
    assert set(codes) <= {401, 429}, codes
    assert codes.count(401) <= LIMIT, codes.count(401)
    assert checks_done(a.url) + checks_done(b.url) - before <= LIMIT
    # The counters are Redis keys under the prefix, with an expiry and no email in them.
    client = redis_client.Redis.from_url(redis.url, decode_responses=True)
    keys = client.keys("trustdesk:login:*")
    assert keys and all("@" not in k and client.ttl(k) > 0 for k in keys), keys
    client.close()
    # Locked on both processes; the operator from elsewhere gets in on either.
    for srv in (a, b):
        r = asyncio.run(login_from(srv.url, "127.0.5.1", "shared@trust.store", PASSWORD))
        assert_refused(r)
        r = asyncio.run(login_from(srv.url, "127.0.5.2", "shared@trust.store", PASSWORD))
        assert r.status_code == 200, r.text


def test_without_redis_each_process_still_limits_logins(
    redis_pair: tuple[ServerProcess, ServerProcess], redis: Redis
) -> None:
    """Redis goes away: logins still work and are still limited, per process (in memory),
    instead of failing with 500 or letting every guess through. (Written with the fix;
    before it, the same race let all 20 through, as in the tests above.)"""
    a, _ = redis_pair
    add_operator(a, "no-redis@trust.store")
    redis.stop()
    before = checks_done(a.url)
    answers = asyncio.run(burst(a.url, ["127.0.6.1"] * 20, "no-redis@trust.store"))
    codes = [r.status_code for r in answers]
    assert set(codes) <= {401, 429} and codes.count(401) <= LIMIT, codes
    assert checks_done(a.url) - before <= LIMIT
    r = asyncio.run(login_from(a.url, "127.0.6.2", "no-redis@trust.store", PASSWORD))
    assert r.status_code == 200, r.text
