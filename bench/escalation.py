"""Missed chats at a busy shop's scale on SQLite: one escalation pass, the waiting list and
the report's missed / answered-late counts, p50/p95 of each.

    python -m bench.escalation                      # 50,000 tickets, 500 waiting
    python -m bench.escalation --tickets 10000 --waiting 200

In one process, no HTTP: a fresh SQLite database (migrated) filled with plain INSERTs
(tickets with four messages each, most closed; `--waiting` open ones whose customer waits,
each already through the whole ladder, so a pass finds nothing to send: its cost is the
query every process runs every 15 s), then timed with perf_counter:
actions/escalation.escalate_due, actions/tickets.ticket_summaries(status="waiting"),
actions/escalation.report_counts over 30 days.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from trustdesk.actions import escalation, tickets
from trustdesk.actions.runtime import Runtime
from trustdesk.config import Settings
from trustdesk.realtime.hub import make_hub
from trustdesk.realtime.presence import make_presence
from trustdesk.store.db import Store, run_migrations


def stamp(dt: datetime) -> str:
    return dt.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


def fill(path: Path, n_tickets: int, n_waiting: int) -> None:
    now = datetime.now(UTC)
    con = sqlite3.connect(path)
    con.execute(
        "INSERT INTO operators (id, email, display_name, password_hash, role, active,"
        " created_at) VALUES (1, 'a@shop', 'A', 'x', 'admin', 1, ?)",
        (stamp(now),),
    )
    mid = 0
    for i in range(n_tickets):
        created = now - timedelta(minutes=(n_tickets - i) * 2)
        vid, tid = f"v{i}", f"t{i}"
        con.execute(
            "INSERT INTO visitors (id, token_hash, created_at, last_seen_at) VALUES (?,?,?,?)",
            (vid, f"h{i}", stamp(created), stamp(created)),
        )
        waiting = i >= n_tickets - n_waiting
        con.execute(
            "INSERT INTO tickets (id, number, visitor_id, status, epoch, created_at, updated_at,"
            " priority, channel) VALUES (?,?,?,?,0,?,?,'normal','web')",
            (tid, f"TKT-{i}", vid, "open" if waiting else "closed", stamp(created), stamp(created)),
        )
        senders = ("customer", "admin", "customer", "customer" if waiting else "admin")
        first_wait = None
        for k, sender in enumerate(senders):
            mid += 1
            at = created + timedelta(seconds=30 * k)
            con.execute(
                "INSERT INTO support_messages (id, ticket_id, sender_type, sender_name,"
                " message, kind, created_at) VALUES (?,?,?,?,?,'text',?)",
                (mid, tid, sender, sender, "Где мой заказ?", stamp(at)),
            )
            if waiting and k == 2:
                first_wait = (mid, at)
        con.execute(
            "UPDATE tickets SET last_message_id = ?, last_public_message_id = ? WHERE id = ?",
            (mid, mid, tid),
        )
        if waiting and first_wait is not None:
            con.execute(
                "UPDATE tickets SET waiting_since = ?, waiting_message_id = ? WHERE id = ?",
                (stamp(first_wait[1]), first_wait[0], tid),
            )
        if waiting or i % 10 == 0:  # every tenth old ticket once waited N or longer
            wait_mid = first_wait[0] if first_wait else mid - 1
            con.execute(
                "INSERT INTO ticket_waits (ticket_id, message_id, started_at, missed_at, level)"
                " VALUES (?,?,?,?,3)",
                (tid, wait_mid, stamp(created), stamp(created)),
            )
    con.commit()  # (no ANALYZE: a server's database has no statistics either)
    con.close()


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


async def timed(fn: Any, runs: int) -> tuple[float, float, Any]:
    out = None
    for _ in range(5):  # warm
        out = await fn()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        out = await fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), pct(times, 95), out


async def measure(data_dir: Path, runs: int) -> dict[str, Any]:
    settings = Settings(data_dir=data_dir)
    hub = make_hub(None)
    store = Store(settings, publish=hub.publish_many)
    rt = Runtime(settings=settings, store=store, hub=hub, presence=make_presence(None))
    since = datetime.now(UTC) - timedelta(days=30)
    out = {
        "pass": await timed(lambda: escalation.escalate_due(rt), runs),
        "list": await timed(lambda: tickets.ticket_summaries(rt, 1, status="waiting"), runs),
        "report": await timed(lambda: escalation.report_counts(rt, since), runs),
    }
    await store.dispose()
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tickets", type=int, default=50_000)
    p.add_argument("--waiting", type=int, default=500)
    p.add_argument("--runs", type=int, default=200)
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="escalation-bench-") as tmp:
        run_migrations(Settings(data_dir=Path(tmp)))
        fill(Path(tmp) / "trustdesk.db", args.tickets, args.waiting)
        r = asyncio.run(measure(Path(tmp), args.runs))
    print(f"{args.tickets} tickets, {args.waiting} waiting, SQLite, {args.runs} runs each:")
    p50, p95, sent = r["pass"]
    print(f"  escalation pass (nothing due): p50 {p50:.2f} ms, p95 {p95:.2f} ms, sent {sent}")
    p50, p95, rows = r["list"]
    print(f"  waiting list (200 rows max): p50 {p50:.2f} ms, p95 {p95:.2f} ms, {len(rows)} rows")
    p50, p95, counts = r["report"]
    print(f"  report counts, 30 days: p50 {p50:.2f} ms, p95 {p95:.2f} ms, {counts}")


if __name__ == "__main__":
    main()
