"""SQLite's write-ahead log is copied back into the database file off the loop's thread
(store/sqlite_inline.Checkpointer), and the log still starts over instead of growing."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from pathlib import Path

from trustdesk.config import Settings
from trustdesk.store.db import Store, run_migrations
from trustdesk.store.raw import Sql
from trustdesk.store.sqlite_inline import Checkpointer

ROW = "x" * 2000  # about half a page per row: every commit adds log frames


def _writer(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA wal_autocheckpoint=0")  # as the store's write connection
    conn.execute("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, v TEXT)")
    return conn


def test_the_log_starts_over_while_writers_go_on(tmp_path: Path) -> None:
    """Writers never wait for a checkpoint here (only for the lock it takes at its end),
    yet the log file stays a fraction of what the same writes make without checkpoints."""

    async def main(path: Path, checkpoints: bool) -> int:
        conn, lock = _writer(path), asyncio.Lock()
        cp = Checkpointer(str(path), lock, every=50) if checkpoints else None
        try:
            for _ in range(600):
                async with lock:
                    conn.execute("BEGIN IMMEDIATE")
                    conn.execute("INSERT INTO t (v) VALUES (?)", (ROW,))
                    conn.commit()
                if cp is not None:
                    cp.committed()
                await asyncio.sleep(0)  # the loop's other work (the checkpoint's hand-offs)
            if cp is not None:
                await cp.wait()
            return Path(f"{path}-wal").stat().st_size
        finally:
            if cp is not None:
                await cp.close()
            conn.close()

    without = asyncio.run(main(tmp_path / "plain.db", checkpoints=False))
    with_cp = asyncio.run(main(tmp_path / "cp.db", checkpoints=True))
    assert without > 600 * 4096  # every commit appended a page at least, none copied
    assert with_cp < without / 3, (with_cp, without)  # the log started over, several times
    with contextlib.closing(sqlite3.connect(tmp_path / "cp.db")) as conn:
        assert conn.execute("SELECT count(*) FROM t").fetchone() == (600,)


def test_the_write_connection_never_checkpoints_in_a_commit(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, create_first_operator=False)
    run_migrations(settings)

    async def main() -> int:
        store = Store(settings)
        try:
            async with store.transaction() as tx:
                raw = await tx.raw()
                value = await raw.scalar(Sql("PRAGMA wal_autocheckpoint"))
            return int(value)
        finally:
            await store.dispose()

    assert asyncio.run(main()) == 0
