"""Shared fixtures: real PostgreSQL and Redis servers, started once per test session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.services import Postgres, Redis, postgres_available, redis_available


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Postgres]:
    if not postgres_available():
        pytest.fail("PostgreSQL 15 binaries are missing (/usr/lib/postgresql/15/bin)")
    pg = Postgres(tmp_path_factory.mktemp("pg"))
    pg.start()
    yield pg
    pg.stop("immediate")


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Redis]:
    if not redis_available():
        pytest.fail("redis-server is missing (apt-get install redis-server)")
    r = Redis(tmp_path_factory.mktemp("redis"))
    r.start()
    yield r
    r.stop()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Browser tests are marked `browser` and run last: Playwright's sync API keeps an
    event loop running on the main thread for the rest of the session, which would make
    every later `asyncio.run` fail."""
    for item in items:
        if "/tests/browser/" in str(item.path):
            item.add_marker(pytest.mark.browser)
    items.sort(key=lambda item: "/tests/browser/" in str(item.path))  # stable: modules stay whole
