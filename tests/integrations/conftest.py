"""One real server per engine for this package (SQLite and PostgreSQL): webhooks allowed
to 127.0.0.1, fast retries, retention on, JSON logs, an admin and an agent."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from tests.support.clients import OperatorClient
from tests.support.inspect_db import query
from tests.support.server import ADMIN_EMAIL, ADMIN_NAME, ADMIN_PASSWORD, ServerProcess
from tests.support.services import Postgres

AGENT_EMAIL = "olga@trust.store"
AGENT_PASSWORD = "olga-password-1"  # noqa: S105 - test fixture
RETENTION_DAYS = 30
_dbs = itertools.count()

ENV = {
    "TRUSTDESK_WEBHOOK_HOSTS": "127.0.0.1",
    "TRUSTDESK_WEBHOOK_BACKOFF_SECONDS": "0.2",
    "TRUSTDESK_WEBHOOK_BACKOFF_MAX_SECONDS": "0.5",
    "TRUSTDESK_WEBHOOK_MAX_ATTEMPTS": "3",
    "TRUSTDESK_WEBHOOK_TIMEOUT_SECONDS": "5",
    "TRUSTDESK_WEBHOOK_POLL_SECONDS": "1",
    "TRUSTDESK_RETENTION_DAYS": str(RETENTION_DAYS),
    "TRUSTDESK_RETENTION_INTERVAL_SECONDS": "1",
    "TRUSTDESK_LOG_FORMAT": "json",
}


@pytest.fixture(scope="package", params=["sqlite", "postgres"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    url = None
    if request.param == "postgres":
        pg: Postgres = request.getfixturevalue("postgres")
        url = pg.create_database(f"integrations_{next(_dbs)}")
    srv = ServerProcess(
        tmp_path_factory.mktemp(f"integrations-{request.param}"),
        database_url=url,
        extra_env=ENV,
    )
    srv.create_operator(ADMIN_EMAIL, ADMIN_NAME, ADMIN_PASSWORD, role="admin")
    srv.create_operator(AGENT_EMAIL, "Ольга", AGENT_PASSWORD, role="agent")
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture
def admin(server: ServerProcess) -> OperatorClient:
    return OperatorClient(server.url, ADMIN_EMAIL, ADMIN_PASSWORD)


@pytest.fixture
def agent(server: ServerProcess) -> OperatorClient:
    return OperatorClient(server.url, AGENT_EMAIL, AGENT_PASSWORD)


def backdate_ticket(server: ServerProcess, number: str, days: float) -> None:
    """Make a ticket look untouched for `days` days (its last activity)."""
    when = datetime.now(UTC) - timedelta(days=days)
    value: object = when
    if not server.env.get("TRUSTDESK_DATABASE_URL"):
        value = when.replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")  # as SQLite keeps it
    query(server, "UPDATE tickets SET updated_at = $1 WHERE number = $2", value, number)


def ticket_exists(server: ServerProcess, number: str) -> bool:
    return bool(query(server, "SELECT id FROM tickets WHERE number = $1", number))
