"""kill -9 the server in the middle of a stream of sends; nothing acknowledged is lost.

Visitors and an operator send over HTTP, retrying with the same client_msg_id until they
get an answer, as the widget and the dashboard do. Once a good part of the stream is
acknowledged the server is killed with SIGKILL (no shutdown, no flush) and started again
on the same data. Afterwards every message is stored exactly once, each acknowledgement
names the stored row, and both sides' sockets (which were open through the crash and
reconnect by themselves) end up with exactly the stored history: no gap, no duplicate,
in order.
"""

from __future__ import annotations

import asyncio
import threading

import pytest

from tests.faults.stream import check_exactly_once, stream_with_crash
from tests.support.inspect_db import integrity_problems
from tests.support.server import ADMIN_EMAIL, ADMIN_NAME, ADMIN_PASSWORD, ServerProcess

pytestmark = pytest.mark.timeout(300)


def test_kill_9_mid_stream_loses_and_duplicates_nothing(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    srv = ServerProcess(tmp_path_factory.mktemp("crash"))
    srv.create_operator(ADMIN_EMAIL, ADMIN_NAME, ADMIN_PASSWORD)
    srv.start()
    try:

        def crash(failed: threading.Event) -> None:
            srv.kill()
            srv.start()

        result = asyncio.run(asyncio.wait_for(stream_with_crash(srv, crash), 280))
        check_exactly_once(result)
        # The crash really happened in the middle: some sends had to be retried, and every
        # socket had to reconnect.
        assert result["failures"] > 0
        assert all(n >= 2 for n in result["reconnects"])
        assert 500 not in result["statuses"]
        assert integrity_problems(srv) == []
    finally:
        srv.stop()
