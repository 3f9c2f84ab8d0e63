"""Fixtures of the security suite: a real server with an admin and an agent."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.clients import OperatorClient
from tests.support.server import ADMIN_EMAIL, ADMIN_NAME, ADMIN_PASSWORD, ServerProcess

AGENT_EMAIL = "olga@trust.store"
AGENT_PASSWORD = "olga-password-1"  # noqa: S105 - test fixture


def start_server(
    tmp_path_factory: pytest.TempPathFactory,
    name: str,
    database_url: str | None = None,
    extra_env: dict[str, str] | None = None,
) -> ServerProcess:
    srv = ServerProcess(
        tmp_path_factory.mktemp(name), database_url=database_url, extra_env=extra_env
    )
    srv.create_operator(ADMIN_EMAIL, ADMIN_NAME, ADMIN_PASSWORD, role="admin")
    srv.start()
    # The agent is added the way an admin does it (one CLI start less per module).
    admin = OperatorClient(srv.url, ADMIN_EMAIL, ADMIN_PASSWORD)
    r = admin.post(
        "/api/admin/operators",
        json={"email": AGENT_EMAIL, "name": "Ольга", "password": AGENT_PASSWORD, "role": "agent"},
    )
    assert r.status_code == 201, r.text
    return srv


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    srv = start_server(tmp_path_factory, "security")
    yield srv
    srv.stop()


@pytest.fixture
def admin(server: ServerProcess) -> OperatorClient:
    return OperatorClient(server.url, ADMIN_EMAIL, ADMIN_PASSWORD)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The XSS test drives Chromium with Playwright's sync API, which keeps an event loop on
    the main thread for the rest of the session: like tests/browser/, it runs last."""
    items.sort(key=lambda item: item.get_closest_marker("browser") is not None)
