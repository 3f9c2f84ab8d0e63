"""The operators' stream: every message of every ticket in commit order, without a lock that
every message waits for.

A reader that resumes "after what I have" must never skip a message committed later with a
smaller position, nor get one twice. On SQLite, one writer at a time: ids are drawn and
committed in the same order, so the position is the id. On PostgreSQL, writers run side by
side and an id drawn first may commit last. There the position is (tx, id), `tx` being the
id of the writing transaction (pg_current_xact_id, stored with the message), and a reader
only takes rows with `tx` below its snapshot's horizon, pg_snapshot_xmin: the oldest
transaction still running anywhere. Below the horizon every transaction has ended, and no
transaction can start there again (ids are handed out in increasing order), so the rows a
reader sees there are final: a later read finds the same ones, never one more. Rows at or
above the horizon are held back until the transactions before them end, then come in
order. The argument in full: docs/protocol.md, "Commit order without a lock".

Per ticket the order stays the id (the ticket's row lock is taken before the id is drawn
and held to commit, actions/messages.py): `prev_id` chains and the widget's `since` are
unchanged.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, func, literal_column, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from trustdesk.store.models import SupportMessage

Position = tuple[int, int]  # (tx, id); on SQLite tx is always 0

# The writing transaction's id (xid8 as bigint: 64 bits with the epoch, never wraps;
# written out in actions/messages.py _PG_HEAD too).
XACT_ID = "CAST(CAST(pg_current_xact_id() AS text) AS bigint)"
# Every transaction below this one has ended (as of the statement's snapshot).
HORIZON = "CAST(CAST(pg_snapshot_xmin(pg_current_snapshot()) AS text) AS bigint)"


def after(dialect: str, pos: Position) -> list[ColumnElement[bool]]:
    """The WHERE clauses of "the stream's rows after `pos`, final ones only"."""
    if dialect != "postgresql":
        return [SupportMessage.id > pos[1]]
    return [
        tuple_(SupportMessage.tx, SupportMessage.id) > tuple_(pos[0], pos[1]),
        SupportMessage.tx < literal_column(HORIZON),
    ]


def order(dialect: str) -> list[Any]:
    if dialect != "postgresql":
        return [SupportMessage.id]
    return [SupportMessage.tx, SupportMessage.id]


def of(dialect: str, m: SupportMessage) -> Position:
    return (m.tx if dialect == "postgresql" else 0, m.id)


async def horizon(session: AsyncSession) -> int:
    """PostgreSQL: every transaction below this one has ended."""
    return int((await session.execute(select(literal_column(HORIZON)))).scalar_one())


async def position(session: AsyncSession, dialect: str, since: int) -> Position:
    """The stream position of a client's `since` (the last message id it got from the
    stream). A message id that is not stored (erased, or past every id) resumes after the
    nearest message below it, or, past every id, at the horizon (what commits from now on)."""
    if dialect != "postgresql" or since <= 0:
        return (0, max(since, 0))
    tx = await session.scalar(select(SupportMessage.tx).where(SupportMessage.id == since))
    if tx is not None:
        return (int(tx), since)
    below = (
        await session.execute(
            select(SupportMessage.tx, SupportMessage.id)
            .where(SupportMessage.id < since)
            .order_by(SupportMessage.id.desc())
            .limit(1)
        )
    ).first()
    top = await session.scalar(select(func.max(SupportMessage.id)))
    if top is None or since > top:
        return (await horizon(session) - 1, 1 << 62)  # everything with tx >= the horizon
    return (0, 0) if below is None else (int(below[0]), int(below[1]))
