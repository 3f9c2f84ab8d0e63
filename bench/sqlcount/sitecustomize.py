"""Counts the SQL statements a server process executes (bench diagnostics only).

`python -m bench.run` puts this directory on the server's PYTHONPATH when it measures the
cost of one message, with BENCH_SQLCOUNT_OUT set: every statement SQLAlchemy sends and
every statement `trustdesk.store.raw.Raw` runs on the driver (wrapped here) is counted by
its text, and the counts are written to that file twice a second. Nothing else in the
server changes; counting costs a dictionary increment per statement.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections import Counter
from typing import Any

_OUT = os.environ.get("BENCH_SQLCOUNT_OUT")

if _OUT:
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    _counts: Counter[str] = Counter()

    from trustdesk.store import raw as _raw

    @event.listens_for(Engine, "before_cursor_execute")
    def _count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        _counts[statement] += 1

    def _counted(method: Any) -> Any:
        async def wrapper(self: Any, sql: Any, params: Any = None) -> Any:
            _counts[sql.text] += 1
            return await method(self, sql, params)

        return wrapper

    _raw.Raw.all = _counted(_raw.Raw.all)  # type: ignore[method-assign]
    _raw.Raw.run = _counted(_raw.Raw.run)  # type: ignore[method-assign]

    def _dump(path: str) -> None:
        while True:
            time.sleep(0.5)
            merged: Counter[str] = Counter()
            for stmt, n in list(_counts.items()):
                merged[" ".join(stmt.split())[:160]] += n
            try:
                with open(path + ".tmp", "w") as f:
                    json.dump(merged, f)
                os.replace(path + ".tmp", path)
            except OSError:
                pass

    threading.Thread(target=_dump, args=(_OUT,), daemon=True, name="bench-sqlcount").start()
