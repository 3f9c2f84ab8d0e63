"""The Alembic migrations create exactly the models' schema, on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config

from tests.support.services import Postgres
from trustdesk.config import Settings
from trustdesk.store.db import MIGRATIONS, run_migrations


def _check(url: str) -> None:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["database_url"] = url
    command.check(cfg)  # raises if the models and the migrated schema differ


def test_sqlite_migrations_match_models(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    run_migrations(settings)
    run_migrations(settings)  # idempotent
    _check(settings.resolved_database_url)


def test_postgres_migrations_match_models(postgres: Postgres) -> None:
    url = postgres.create_database("migrations_check")
    run_migrations(Settings(database_url=url))
    _check(url)


@pytest.mark.parametrize("bad", ["postgres://u@h/db", "postgresql://u@h/db"])
def test_plain_postgres_urls_use_asyncpg(bad: str) -> None:
    assert Settings(database_url=bad).resolved_database_url.startswith("postgresql+asyncpg://")
