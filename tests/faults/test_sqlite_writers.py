"""SQLite under concurrent writers: several server processes on one database file.

Three `trustdesk run` processes share one data directory. Visitors and operators write
through all of them at once (each visitor's messages go round-robin to the three). No
user ever sees "database is locked" (no 5xx at all, and the phrase is not in any log);
every message is stored exactly once, and each ticket's ids are in the order sent.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.support.clients import OperatorClient, VisitorClient
from tests.support.inspect_db import integrity_problems, query
from tests.support.server import ADMIN_EMAIL, ADMIN_NAME, ADMIN_PASSWORD, ServerProcess

pytestmark = pytest.mark.timeout(300)

PROCESSES = 3
VISITORS = 6
PER_VISITOR = 15


@pytest.fixture(scope="module")
def trio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[ServerProcess]]:
    data = tmp_path_factory.mktemp("sqlite-shared")
    servers = [ServerProcess(data) for _ in range(PROCESSES)]
    servers[0].create_operator(ADMIN_EMAIL, ADMIN_NAME, ADMIN_PASSWORD)
    errors: list[BaseException] = []

    def start(s: ServerProcess) -> None:
        try:
            s.start()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    # All three start (and migrate) at the same time, as a process manager would do.
    threads = [threading.Thread(target=start, args=(s,)) for s in servers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert not errors, errors
        yield servers
    finally:
        for s in servers:
            s.stop()


def test_concurrent_writers_on_one_sqlite_file(trio: list[ServerProcess]) -> None:
    run = uuid.uuid4().hex[:6]
    visitors = [VisitorClient(trio[i % PROCESSES].url) for i in range(VISITORS)]
    tickets = [v.send(f"{run} начало {i}")["ticketId"] for i, v in enumerate(visitors)]
    ops = [OperatorClient(s.url, ADMIN_EMAIL, ADMIN_PASSWORD) for s in trio]
    statuses: list[int] = []

    async def visitor(i: int) -> None:
        v = visitors[i]
        headers = {"Authorization": f"Bearer {v.token}"}
        clients = [httpx.AsyncClient(base_url=s.url, headers=headers, timeout=60) for s in trio]
        try:
            for n in range(PER_VISITOR):
                http = clients[n % PROCESSES]
                r = await http.post(
                    "/api/support/send-message",
                    json={
                        "message": f"{run} v{i} #{n}",
                        "ticketId": tickets[i],
                        "client_msg_id": f"{run}-v{i}-{n}",
                    },
                )
                statuses.append(r.status_code)
                assert r.status_code == 200, r.text
        finally:
            for c in clients:
                await c.aclose()

    async def operator(k: int) -> None:
        op = ops[k]
        async with httpx.AsyncClient(
            base_url=trio[k].url,
            headers={"X-CSRF-Token": op.csrf},
            cookies={"td_session": op.http.cookies["td_session"]},
            timeout=60,
        ) as http:
            for n in range(PER_VISITOR):
                t = tickets[(n + k) % VISITORS]
                r = await http.post(
                    "/api/admin/support/reply",
                    json={"ticketId": t, "message": f"{run} op{k} #{n}"},
                )
                statuses.append(r.status_code)
                assert r.status_code == 200, r.text
                # Reads (the dashboard's list) interleave with the writes.
                r = await http.get("/api/admin/support/tickets", params={"status": "all"})
                statuses.append(r.status_code)
                assert r.status_code == 200, r.text

    async def go() -> None:
        await asyncio.gather(
            *(visitor(i) for i in range(VISITORS)), *(operator(k) for k in range(PROCESSES))
        )

    asyncio.run(asyncio.wait_for(go(), 240))

    assert set(statuses) == {200}
    for s in trio:
        log = s.log_path.read_text(errors="replace")
        assert "database is locked" not in log
        assert "Traceback" not in log
    # Exactly once, and in the order each writer sent.
    rows = query(
        trio[0],
        "SELECT m.message, m.id FROM support_messages m WHERE m.message LIKE $1 ORDER BY m.id",
        f"{run} %",
    )
    texts = [r[0] for r in rows]
    assert len(texts) == len(set(texts))
    for i in range(VISITORS):
        mine = [t for t in texts if t.startswith(f"{run} v{i} #")]
        assert mine == [f"{run} v{i} #{n}" for n in range(PER_VISITOR)]
    for k in range(PROCESSES):
        mine = [t for t in texts if t.startswith(f"{run} op{k} #")]
        assert mine == [f"{run} op{k} #{n}" for n in range(PER_VISITOR)]
    # Each process serves what the others wrote.
    for i, v in enumerate(visitors):
        for s in trio:
            r = httpx.get(
                f"{s.url}/api/support/messages/{tickets[i]}",
                headers={"Authorization": f"Bearer {v.token}"},
            )
            assert r.status_code == 200
            got = [m["message"] for m in r.json()["messages"]]
            assert [t for t in got if t.startswith(f"{run} v{i} #")] == [
                f"{run} v{i} #{n}" for n in range(PER_VISITOR)
            ]
    assert integrity_problems(trio[0]) == []
