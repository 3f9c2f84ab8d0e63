"""Look straight into a running server's database (SQLite file or PostgreSQL), for tests.

Security and fault tests check the stored truth, not only what the API says: these are
plain SQL reads (and, for expiring a session, one write) on the server's own database.
"""

from __future__ import annotations

import asyncio
import sqlite3
from typing import Any

from tests.support.server import ServerProcess


def _pg_url(server: ServerProcess) -> str | None:
    url = server.env.get("TRUSTDESK_DATABASE_URL")
    if not url:
        return None
    return "postgresql://" + url.split("://", 1)[1]


def query(server: ServerProcess, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    """Run one statement; `$1`-style placeholders on both engines. Returns the rows."""
    pg = _pg_url(server)
    if pg is None:
        path = server.data_dir / "trustdesk.db"
        con = sqlite3.connect(path, timeout=30)
        try:
            con.execute("PRAGMA busy_timeout=30000")
            sqlite_sql = sql
            for i in range(len(args), 0, -1):
                sqlite_sql = sqlite_sql.replace(f"${i}", f"?{i}")
            cur = con.execute(sqlite_sql, args)
            rows = [tuple(r) for r in cur.fetchall()]
            con.commit()
            return rows
        finally:
            con.close()

    async def go() -> list[tuple[Any, ...]]:
        import asyncpg

        conn = await asyncpg.connect(pg)
        try:
            return [tuple(r) for r in await conn.fetch(sql, *args)]
        finally:
            await conn.close()

    return asyncio.run(go())


def messages_of(server: ServerProcess, ticket_number: str) -> list[tuple[int, str, str, str]]:
    """(id, sender_type, kind, message) of every stored message of a ticket, in id order."""
    return [
        (int(r[0]), r[1], r[2], r[3])
        for r in query(
            server,
            "SELECT m.id, m.sender_type, m.kind, m.message FROM support_messages m "
            "JOIN tickets t ON t.id = m.ticket_id WHERE t.number = $1 ORDER BY m.id",
            ticket_number,
        )
    ]


def integrity_problems(server: ServerProcess, max_chars: int = 4000) -> list[str]:
    """Invariants of the stored data that no request, however odd, may break."""
    problems: list[str] = []
    if _pg_url(server) is None:
        (ok,) = query(server, "PRAGMA integrity_check")[0]
        if ok != "ok":
            problems.append(f"sqlite integrity_check: {ok}")
    orphans = query(
        server,
        "SELECT m.id FROM support_messages m LEFT JOIN tickets t ON t.id = m.ticket_id "
        "WHERE t.id IS NULL",
    )
    if orphans:
        problems.append(f"messages without a ticket: {orphans[:5]}")
    for mid, text in query(server, "SELECT id, message FROM support_messages"):
        if not isinstance(text, str) or not text.strip():
            problems.append(f"message {mid} is empty")
        elif len(text) > max_chars:
            problems.append(f"message {mid} has {len(text)} characters")
        elif "\x00" in text:
            problems.append(f"message {mid} contains NUL")
    dup = query(
        server,
        "SELECT ticket_id, client_msg_id, COUNT(*) FROM support_messages "
        "WHERE client_msg_id IS NOT NULL GROUP BY ticket_id, client_msg_id HAVING COUNT(*) > 1",
    )
    if dup:
        problems.append(f"duplicate client_msg_id: {dup[:5]}")
    bad_last = query(
        server,
        "SELECT t.number FROM tickets t WHERE t.last_message_id IS NOT NULL AND "
        "t.last_message_id <> (SELECT MAX(m.id) FROM support_messages m WHERE m.ticket_id = t.id)",
    )
    if bad_last:
        problems.append(f"tickets whose last_message_id is stale: {bad_last[:5]}")
    return problems
