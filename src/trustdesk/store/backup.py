"""A copy of the SQLite database before its schema is upgraded, so an upgrade can be undone.

`trustdesk migrate` and `trustdesk run` call `before_upgrade` when the database is behind
the code's newest migration: it copies the file with SQLite's online backup (consistent even
while another process writes), into `<data dir>/backups/`, keeps the newest
TRUSTDESK_BACKUP_KEEP copies and says how to roll back. PostgreSQL is not copied here (a
dump of a large database is an operator's decision): the advice names `pg_dump`.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from trustdesk.config import Settings


def _sqlite_file(settings: Settings) -> Path:
    return Path(settings.resolved_database_url.split(":///", 1)[1])


def current_revision(db: Path) -> str | None:
    """The schema revision stored in the file; None for a new or empty database."""
    if not db.exists():
        return None
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        try:
            row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        except sqlite3.OperationalError:  # no table: nothing was ever migrated
            return None
    return str(row[0]) if row else None


def before_upgrade(settings: Settings, head: str) -> str | None:
    """Back up an SQLite database that is behind `head`; the message to print, or None."""
    db = _sqlite_file(settings)
    rev = current_revision(db)
    if rev is None or rev == head:
        return None
    folder = settings.data_dir / "backups"
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"trustdesk-{rev}-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}.db"
    with sqlite3.connect(db) as src, sqlite3.connect(target) as dst:
        src.backup(dst)
    copies = sorted(folder.glob("trustdesk-*.db"), key=lambda p: p.stat().st_mtime)
    for old in copies[: max(0, len(copies) - settings.backup_keep)]:
        old.unlink(missing_ok=True)
    return (
        f"database backed up before the upgrade (schema {rev} -> {head}): {target}\n"
        f"  to roll back: stop TrustDesk, copy {target.name} over {db}, start the previous "
        "version"
    )
