"""Upgrading an old SQLite database keeps its data and leaves a copy to roll back to."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

from alembic import command
from alembic.config import Config

from trustdesk.config import Settings
from trustdesk.store.backup import before_upgrade, current_revision
from trustdesk.store.db import MIGRATIONS


def _old_database(data_dir: Path) -> Path:
    """A database left at the first release's schema, with a canned response in it."""
    settings = Settings(data_dir=data_dir)
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["database_url"] = settings.resolved_database_url
    command.upgrade(cfg, "0001")
    db = data_dir / "trustdesk.db"
    with sqlite3.connect(db) as conn:
        conn.execute(
            "INSERT INTO canned_responses (name, text, created_at) "
            "VALUES ('оплата', 'Оплатить можно картой', '2026-01-01 00:00:00')"
        )
    return db


def _canned(db: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(db) as conn:
        return [tuple(r) for r in conn.execute("SELECT name, text FROM canned_responses")]


def test_migrate_upgrades_an_old_database_and_keeps_a_backup(tmp_path: Path) -> None:
    db = _old_database(tmp_path)
    assert current_revision(db) == "0001"
    env = {**os.environ, "TRUSTDESK_DATA_DIR": str(tmp_path)}
    env.pop("TRUSTDESK_DATABASE_URL", None)
    done = subprocess.run(
        [str(Path(sys.executable).with_name("trustdesk")), "migrate"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert current_revision(db) not in (None, "0001")
    assert _canned(db) == [("оплата", "Оплатить можно картой")]
    backups = list((tmp_path / "backups").glob("trustdesk-0001-*.db"))
    assert len(backups) == 1, done.stderr
    assert current_revision(backups[0]) == "0001"  # the copy is the database as it was
    assert _canned(backups[0]) == [("оплата", "Оплатить можно картой")]
    assert "to roll back" in done.stderr and backups[0].name in done.stderr


def test_no_backup_for_a_new_or_current_database(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    assert before_upgrade(settings, "0005") is None  # no file yet
    _old_database(tmp_path)
    assert before_upgrade(settings, "0001") is None  # already at head
    assert not (tmp_path / "backups").exists()


def test_only_the_newest_backups_are_kept(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, backup_keep=2)
    _old_database(tmp_path)
    folder = tmp_path / "backups"
    folder.mkdir()
    for age in (3, 2, 1):  # three copies from earlier upgrades, oldest first
        old = folder / f"trustdesk-0000-day{age}.db"
        old.write_bytes(b"")
        os.utime(old, (1_000_000 - age, 1_000_000 - age))
    assert before_upgrade(settings, "0002") is not None
    kept = sorted(f.name for f in folder.glob("trustdesk-*.db"))
    assert len(kept) == 2
    assert "trustdesk-0000-day1.db" in kept  # the newest earlier copy
    assert any(name.startswith("trustdesk-0001-") for name in kept)  # and today's
