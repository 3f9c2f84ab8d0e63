"""The store on both engines: `settings` runs a test on a fresh SQLite file and on a fresh
PostgreSQL database (the session's real server), migrated."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.services import Postgres
from trustdesk.config import Settings
from trustdesk.store.db import run_migrations


@pytest.fixture(params=["sqlite", "postgres"])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Settings]:
    url = None
    if request.param == "postgres":
        pg: Postgres = request.getfixturevalue("postgres")
        url = pg.create_database(f"unit_{int(time.time() * 1000)}")
    s = Settings(data_dir=tmp_path, database_url=url, create_first_operator=False)
    run_migrations(s)
    yield s
