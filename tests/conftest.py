"""Shared fixtures: real PostgreSQL and Redis servers, started once per test session; an
SMTP capture, a Dovecot IMAP server and the Bot API stand-in, started once per module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.dovecot import Dovecot
from tests.support.services import Postgres, Redis, postgres_available, redis_available
from tests.support.smtp import Mailbox
from tests.support.telegram_api import BotApi


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


@pytest.fixture(scope="module")
def mailbox() -> Iterator[Mailbox]:
    """The SMTP server the module's server sends to (aiosmtpd), with what it received."""
    box = Mailbox()
    box.controller.start()
    yield box
    box.controller.stop()


@pytest.fixture(scope="module")
def imap(request: pytest.FixtureRequest) -> Iterator[Dovecot]:
    """A real Dovecot for the module; its mailbox is the module's IMAP_USER."""
    d = Dovecot(user=request.module.IMAP_USER).start()
    yield d
    d.cleanup()


@pytest.fixture(scope="module")
def bot_api() -> Iterator[BotApi]:
    """The local Bot API stand-in (tests/support/telegram_api.py)."""
    api = BotApi().start()
    yield api
    api.stop()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Browser tests are marked `browser` and run last: Playwright's sync API keeps an
    event loop running on the main thread for the rest of the session, which would make
    every later `asyncio.run` fail."""
    for item in items:
        if "/tests/browser/" in str(item.path):
            item.add_marker(pytest.mark.browser)
    items.sort(key=lambda item: "/tests/browser/" in str(item.path))  # stable: modules stay whole
