"""The scale-out set-up (two processes, PostgreSQL, Redis) through a restart of each service.

Visitors send to process A and the operator to process B; the visitors' sockets are on B
and the operator's on A, so every message crosses processes through Redis. In the middle
of the stream PostgreSQL (or Redis) is restarted. Every acknowledged message is stored
exactly once and reaches both sides, with no gap, no duplicate, in order; the processes
stay up; no request gets a bare 500.

These tests start their own PostgreSQL cluster and Redis server (not the session-wide
ones) because they restart them.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.faults.stream import check_exactly_once, stream_with_crash
from tests.support.inspect_db import integrity_problems
from tests.support.server import ADMIN_EMAIL, ADMIN_NAME, ADMIN_PASSWORD, ServerProcess
from tests.support.services import Postgres, Redis, postgres_available, redis_available

pytestmark = pytest.mark.timeout(400)


class Cluster:
    def __init__(self, root: Path) -> None:
        self.pg = Postgres(root / "pg")
        self.redis = Redis(root / "redis")
        self.a: ServerProcess
        self.b: ServerProcess

    def start(self, root: Path, name: str) -> None:
        self.pg.start()
        self.redis.start()
        url = self.pg.create_database(name)
        # Each visitor sends 25 messages as fast as the server answers: lift the per-visitor
        # limit so that every answer other than 200 is about the fault under test.
        env = {
            "TRUSTDESK_VISITOR_RATE_BURST": "100000",
            "TRUSTDESK_VISITOR_RATE_PER_MINUTE": "100000",
        }
        self.a = ServerProcess(
            root / f"{name}-A", database_url=url, redis_url=self.redis.url, extra_env=env
        )
        self.b = ServerProcess(
            root / f"{name}-B", database_url=url, redis_url=self.redis.url, extra_env=env
        )
        self.a.create_operator(ADMIN_EMAIL, ADMIN_NAME, ADMIN_PASSWORD)
        self.a.start()
        self.b.start()

    def stop(self) -> None:
        for srv in (getattr(self, "a", None), getattr(self, "b", None)):
            if srv is not None:
                srv.stop()
        self.redis.stop()
        self.pg.stop("immediate")

    def assert_servers_alive(self) -> None:
        for srv in (self.a, self.b):
            assert srv.proc is not None and srv.proc.poll() is None, srv.log_path.read_text()[
                -2000:
            ]
            assert srv.healthy()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    if not (postgres_available() and redis_available()):
        pytest.fail("PostgreSQL 15 and redis-server are needed (make system-deps)")
    root = tmp_path_factory.mktemp("cluster")
    c = Cluster(root)
    try:
        c.start(root, "faults")
        yield c
    finally:
        c.stop()


def test_postgres_restart_mid_stream_loses_nothing(cluster: Cluster) -> None:
    def crash(failed: threading.Event) -> None:
        cluster.pg.stop("fast")  # every connection of both processes is cut
        # Stay down until a send has felt it (an event, not a guess at how long is enough).
        assert failed.wait(60), "no send failed while PostgreSQL was down"
        cluster.pg.start()

    result = asyncio.run(asyncio.wait_for(stream_with_crash(cluster.a, crash, b=cluster.b), 300))
    check_exactly_once(result)
    assert result["failures"] > 0, "the restart did not hit the stream"
    # An outage is answered with 503 (retry later), never a bare 500.
    assert 500 not in result["statuses"], sorted(set(result["statuses"]))
    cluster.assert_servers_alive()
    assert integrity_problems(cluster.a) == []


def test_redis_restart_mid_stream_loses_nothing(cluster: Cluster) -> None:
    def crash(failed: threading.Event) -> None:
        cluster.redis.stop()
        cluster.redis.start()  # same port, empty: every subscription is gone

    result = asyncio.run(asyncio.wait_for(stream_with_crash(cluster.a, crash, b=cluster.b), 300))
    check_exactly_once(result)
    # Storage never depended on Redis: no send failed.
    assert set(result["statuses"]) == {200}, sorted(set(result["statuses"]))
    cluster.assert_servers_alive()
    assert integrity_problems(cluster.a) == []
