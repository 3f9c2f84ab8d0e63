"""Two server processes (uvicorn --workers 2) on one PostgreSQL, each running the webhook
worker: every event is queued once and every delivery is made once."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import pytest

from tests.integrations.conftest import ENV
from tests.integrations.receiver import Receiver
from tests.support.clients import OperatorClient, VisitorClient
from tests.support.server import ADMIN_EMAIL, ADMIN_NAME, ADMIN_PASSWORD, ServerProcess
from tests.support.services import Postgres, Redis, wait_until


@pytest.fixture(scope="module")
def two_workers(
    postgres: Postgres, redis_server: Redis, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    srv = ServerProcess(
        tmp_path_factory.mktemp("webhooks-2p"),
        database_url=postgres.create_database("webhooks_two_processes"),
        redis_url=redis_server.url,
        extra_env=ENV,
    )
    srv.create_operator(ADMIN_EMAIL, ADMIN_NAME, ADMIN_PASSWORD)
    srv.start(workers=2)
    yield srv
    srv.stop()


def test_each_event_delivered_exactly_once(two_workers: ServerProcess) -> None:
    srv = two_workers
    admin = OperatorClient(srv.url, ADMIN_EMAIL, ADMIN_PASSWORD)
    with Receiver(script=[500, 500]) as rx:
        r = admin.post("/api/admin/webhooks", json={"url": rx.url, "events": ["message.created"]})
        assert r.status_code == 201, r.text
        hook_id = r.json()["webhook"]["id"]
        visitors = [VisitorClient(srv.url) for _ in range(4)]
        sent = []
        for i in range(3):
            for n, v in enumerate(visitors):
                text = f"посетитель {n}, сообщение {i}"
                v.send(text)
                sent.append(text)
        # Each visitor's first send also stores the bot greeting.
        expected = len(sent) + len(visitors)

        def all_ok(got: list[object]) -> bool:
            return sum(1 for g in rx.received if g.answered == 200) >= expected

        rx.wait_for(all_ok, timeout=60)
        ok = [g for g in rx.received if g.answered == 200]
        ids = Counter(g.json["id"] for g in ok)
        assert len(ids) == expected and set(ids.values()) == {1}, ids.most_common(3)
        texts = [g.json["data"]["message"]["message"] for g in ok]
        assert sorted(t for t in texts if t.startswith("посетитель")) == sorted(sent)

        def settled() -> bool:
            r = admin.http.get(f"/api/admin/webhooks/{hook_id}/deliveries", params={"limit": 500})
            return [d["status"] for d in r.json()["deliveries"]].count("ok") == expected

        wait_until(settled, 30, "every delivery recorded ok")
        r = admin.http.get(f"/api/admin/webhooks/{hook_id}/deliveries", params={"limit": 500})
        log = r.json()["deliveries"]
        assert len(log) == expected
        # Two attempts failed (500), and were retried: attempts add up, once each.
        assert sum(d["attempts"] for d in log) == expected + 2
