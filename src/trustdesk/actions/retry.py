"""What the database outboxes share (webhook deliveries, actions/webhooks.py; channel
replies, channels/outbox.py): rows with `status` "pending", `attempts` and
`next_attempt_at`, claimed one at a time by a guarded UPDATE (whoever changes the row first
owns the attempt, across every process) and retried after a doubling backoff."""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, update

from trustdesk.store.db import Tx


def backoff(base: float, cap: float, attempt: int) -> float:
    """Seconds before the next try after `attempt` failed tries: base, 2·base, 4·base, …,
    at most `cap`."""
    return float(min(base * (2 ** min(max(attempt - 1, 0), 30)), cap))


async def claim(
    tx: Tx, table: Any, row_id: int, attempts: int, now: datetime, until: datetime
) -> bool:
    """Take one due pending row for an attempt: attempts + 1, and not due again before
    `until` (a process that dies mid-attempt leaves it to be retried then). False if
    another process took it first or it is no longer due."""
    res = cast(
        CursorResult[Any],
        await tx.session.execute(
            update(table)
            .where(
                table.id == row_id,
                table.status == "pending",
                table.attempts == attempts,
                table.next_attempt_at <= now,
            )
            .values(attempts=attempts + 1, next_attempt_at=until, updated_at=now)
        ),
    )
    return res.rowcount == 1
