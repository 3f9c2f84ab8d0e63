"""Ticket lifecycle, exactly as the spec tells it, and the reads both sides make."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections import deque
from collections.abc import Iterable
from datetime import timedelta
from typing import Any, NamedTuple

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from trustdesk.actions import customers, labels, routing, teams, texts
from trustdesk.actions.errors import Invalid, NotFound, RateLimited
from trustdesk.actions.messages import (
    Duplicate,
    clean_text,
    find_by_client_id,
    iso,
    message_dict,
    message_json,
    move_cursor,
    post_message,
)
from trustdesk.actions.runtime import Runtime
from trustdesk.store import stream
from trustdesk.store.db import Tx
from trustdesk.store.models import (
    Operator,
    ReadCursor,
    SupportMessage,
    Ticket,
    Visitor,
    utcnow,
)
from trustdesk.store.raw import Raw, Row, Sql, as_loaded, opt_dt, to_dt

_B32 = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford: no I, L, O, U


def new_ticket_number() -> str:
    """The spec's TKT-<unix time>, plus a random suffix so that two in one second differ."""
    suffix = "".join(secrets.choice(_B32) for _ in range(4))
    return f"TKT-{int(time.time())}-{suffix}"


def clean_client_id(client_msg_id: str | None) -> str | None:
    if client_msg_id is None:
        return None
    if (
        not isinstance(client_msg_id, str)
        or not 1 <= len(client_msg_id) <= 64
        or "\x00" in client_msg_id
    ):
        raise Invalid("client_msg_id must have 1-64 characters", "invalid_client_msg_id")
    return client_msg_id


def operator_reader(operator_id: int) -> str:
    return f"op:{operator_id}"


# ---------------------------------------------------------------- reads


def _plausible_number(number: object) -> bool:
    # (PostgreSQL cannot even compare a string with NUL in it)
    return isinstance(number, str) and len(number) <= 40 and "\x00" not in number


async def ticket_by_number(session: AsyncSession, number: str) -> Ticket | None:
    if not _plausible_number(number):
        return None
    return await session.scalar(select(Ticket).where(Ticket.number == number))


# The statements below give a row of the same columns (_adopt_ticket), the last one more.
_TICKET_BY_NUMBER = Sql(
    "SELECT t.id, t.number, t.visitor_id, t.status, t.assignee_id, t.epoch, t.created_at,"
    " t.updated_at, t.last_message_id, t.closed_at, t.rating, t.rating_comment, t.rated_at,"
    " t.snoozed_until, t.channel FROM tickets t WHERE t.number = :n"
)
# The same, with the ticket row locked until commit on PostgreSQL (FOR NO KEY UPDATE, the
# lock the message statement takes anyway; see _PG_POST in actions/messages.py). The row
# then read is the newest committed one, even when the lock was waited for, and the
# ticket's writers queue on it: a message on a known ticket needs no scope lock (a round
# trip) first.
_TICKET_BY_NUMBER_LOCKED = Sql(_TICKET_BY_NUMBER.text, pg_suffix=" FOR NO KEY UPDATE")
# Locked too, with the epoch in which the operator :o last joined the ticket (None: never):
# a reply knows whether to post "Оператор … подключился" without a statement of its own.
_TICKET_AND_JOIN_LOCKED = Sql(
    "SELECT t.id, t.number, t.visitor_id, t.status, t.assignee_id, t.epoch, t.created_at,"
    " t.updated_at, t.last_message_id, t.closed_at, t.rating, t.rating_comment, t.rated_at,"
    " t.snoozed_until, t.channel, j.epoch FROM tickets t"
    " LEFT JOIN ticket_joins j ON j.ticket_id = t.id AND j.operator_id = :o"
    " WHERE t.number = :n",
    pg_suffix=" FOR NO KEY UPDATE OF t",
)


async def load_ticket(tx: Tx, number: str, *, lock: bool = False) -> Ticket | None:
    """The ticket, read on the driver and handed to the transaction's session as if the
    session had loaded it (changes to it are flushed like any other). `lock`: hold its row
    until commit (PostgreSQL; see _TICKET_BY_NUMBER_LOCKED)."""
    if not _plausible_number(number):
        return None
    sql = _TICKET_BY_NUMBER_LOCKED if lock else _TICKET_BY_NUMBER
    row = await (await tx.raw()).first(sql, {"n": number})
    return None if row is None else _adopt_ticket(tx, row)


async def _load_with_join(tx: Tx, number: str, op: Operator) -> tuple[Ticket, int | None]:
    """The ticket (as load_ticket, its row locked; 404 if there is none) and the epoch in
    which `op` last joined it (None: never), in one statement. On PostgreSQL the join row
    comes from the statement's snapshot, which may predate the lock wait: a join written
    meanwhile is found by _join_unless_joined's upsert instead."""
    row = None
    if _plausible_number(number):
        row = await (await tx.raw()).first(_TICKET_AND_JOIN_LOCKED, {"n": number, "o": op.id})
    if row is None:
        raise NotFound("no such ticket", "ticket_not_found")
    return _adopt_ticket(tx, row), row[15]


def _adopt_ticket(tx: Tx, row: Row) -> Ticket:
    """The ticket of a _TICKET_BY_NUMBER row, adopted by the transaction (the one it has
    already, if it read this ticket before)."""
    known = tx.adopted(Ticket, row[0])
    if known is not None:
        return known
    t = as_loaded(
        Ticket,
        {
            "id": row[0],
            "number": row[1],
            "visitor_id": row[2],
            "status": row[3],
            "assignee_id": row[4],
            "epoch": row[5],
            "created_at": to_dt(row[6]),
            "updated_at": to_dt(row[7]),
            "last_message_id": row[8],
            "closed_at": opt_dt(row[9]),
            "rating": row[10],
            "rating_comment": row[11],
            "rated_at": opt_dt(row[12]),
            "snoozed_until": opt_dt(row[13]),
            "channel": row[14],  # (post_message: a channel's reply goes to its outbox)
        },
    )
    tx.adopt(t, t.id)
    return t


async def visitor_ticket(rt: Runtime, visitor: Visitor, number: str) -> Ticket:
    """A ticket the visitor owns; anything else is a 404, whatever its id."""
    async with rt.store.read() as session:
        t = await ticket_by_number(session, number)
        if t is None or not await customers.owns(session, visitor, t):
            raise NotFound("no such ticket", "ticket_not_found")
    return t


async def messages_after(
    session: AsyncSession, ticket_id: str, after: int, include_notes: bool, limit: int = 1000
) -> list[SupportMessage]:
    q = select(SupportMessage).where(
        SupportMessage.ticket_id == ticket_id, SupportMessage.id > after
    )
    if not include_notes:
        q = q.where(SupportMessage.kind != "note")
    return list((await session.scalars(q.order_by(SupportMessage.id).limit(limit))).all())


async def visitor_messages(
    rt: Runtime, visitor: Visitor, number: str, after: int
) -> tuple[Ticket, list[dict[str, Any]]]:
    t = await visitor_ticket(rt, visitor, number)
    async with rt.store.read() as session:
        rows = await messages_after(session, t.id, after, include_notes=False)
    return t, [message_json(m, t.number) for m in rows]


async def cursor(session: AsyncSession, ticket_id: str, reader: str) -> int:
    v = await session.scalar(
        select(ReadCursor.last_read_id).where(
            ReadCursor.ticket_id == ticket_id, ReadCursor.reader == reader
        )
    )
    return int(v or 0)


async def admin_read_id(session: AsyncSession, ticket_id: str) -> int:
    """How far any operator has read: what the customer's read receipts show."""
    v = await session.scalar(
        select(func.max(ReadCursor.last_read_id)).where(
            ReadCursor.ticket_id == ticket_id, ReadCursor.reader.like("op:%")
        )
    )
    return int(v or 0)


# The dashboard's ticket summaries run on the driver (store/raw.py): they are recomputed on
# every change of a ticket for every operator online. One row per ticket: the ticket, its
# customer, its assignee and its last public message (customer, operator or bot, not a note:
# the list's preview) with the message's attachment.
_SUMMARY_SELECT = (
    "SELECT t.id, t.number, t.status, t.created_at, t.updated_at, t.rating, t.rating_comment,"
    " v.id, v.name, v.email, v.external_id, v.page_url, v.user_agent,"
    " o.id, o.display_name,"
    " m.id, m.sender_type, m.sender_name, m.message, m.created_at, m.kind, m.client_msg_id,"
    " m.operator_id, a.id, a.name, a.mime, a.kind, a.size, a.width, a.height,"
    " t.priority, t.snoozed_until, tm.id, tm.name, t.channel, t.waiting_since"
    " FROM tickets t JOIN visitors v ON v.id = t.visitor_id"
    " LEFT JOIN operators o ON o.id = t.assignee_id"
    " LEFT JOIN teams tm ON tm.id = t.team_id"
    " LEFT JOIN support_messages m ON m.id = t.last_public_message_id"
    " LEFT JOIN attachments a ON a.message_id = m.id"
)
_SUMMARY_OF = Sql(_SUMMARY_SELECT + " WHERE t.id IN :ids[text]")
# The operator's list: each filter is one constant fragment (the variants are cached).
_LIST_FILTERS = {
    # (a snoozed ticket is open but out of the open list until its time: actions/routing.py)
    "open": " AND t.status = 'open' AND t.snoozed_until IS NULL",
    "snoozed": " AND t.status = 'open' AND t.snoozed_until IS NOT NULL",
    # Waiting for an operator's answer (actions/escalation.py), longest first.
    "waiting": (
        " AND t.waiting_since IS NOT NULL AND t.status = 'open' AND t.snoozed_until IS NULL"
    ),
    "closed": " AND t.status = 'closed'",
    "priority": " AND t.priority = :priority",
    "mine": " AND t.assignee_id = :op",
    "unassigned": " AND t.assignee_id IS NULL",
    "q": (
        " AND (lower(t.number) LIKE lower(:like) OR lower(v.name) LIKE lower(:like)"
        " OR EXISTS (SELECT 1 FROM support_messages s"
        " WHERE s.ticket_id = t.id AND lower(s.message) LIKE lower(:like))"
        # a label's name (name_key is lower-cased in Python: SQLite's lower() is ASCII only)
        " OR EXISTS (SELECT 1 FROM ticket_labels tl JOIN labels l ON l.id = tl.label_id"
        " WHERE tl.ticket_id = t.id AND l.name_key LIKE :label_like))"
    ),
    "label": labels.LIST_FILTER,
    "team": teams.LIST_FILTER,
}
_LIST_ORDER = " ORDER BY t.updated_at DESC, t.number DESC LIMIT :limit"
_WAITING_ORDER = " ORDER BY t.waiting_since, t.number LIMIT :limit"  # (ix_tickets_waiting)
_lists: dict[tuple[str, ...], Sql] = {}
# Each cursor with, for an operator's, the customer's messages after it (their unread).
_CURSORS = Sql(
    "SELECT c.ticket_id, c.reader, c.last_read_id,"
    " CASE WHEN c.reader = 'customer' THEN 0 ELSE"
    " (SELECT count(m.id) FROM support_messages m WHERE m.ticket_id = c.ticket_id"
    " AND m.id > c.last_read_id AND m.sender_type = 'customer') END"
    " FROM read_cursors c WHERE c.ticket_id IN :ids[text] AND c.reader IN :readers[text]"
)
# Unread for an operator without a cursor: all the customer's messages.
_CUSTOMER_TOTAL = Sql(
    "SELECT ticket_id, count(id) FROM support_messages"
    " WHERE ticket_id IN :ids[text] AND sender_type = 'customer' GROUP BY ticket_id"
)


def _list_statement(filters: tuple[str, ...]) -> Sql:
    stmt = _lists.get(filters)
    if stmt is None:
        where = "".join(_LIST_FILTERS[f] for f in filters)  # constant fragments only
        order = _WAITING_ORDER if "waiting" in filters else _LIST_ORDER
        stmt = _lists[filters] = Sql(_SUMMARY_SELECT + " WHERE 1 = 1" + where + order)
    return stmt


def _last_message(r: Row) -> dict[str, Any] | None:
    if r[15] is None:
        return None
    kind = r[20]
    attachment = None
    if r[23] is not None and kind in ("file", "voice"):
        attachment = {
            "id": r[23],
            "name": r[24],
            "mime": r[25],
            "kind": r[26],
            "size": r[27],
            "width": r[28],
            "height": r[29],
        }
    return message_dict(
        id=r[15],
        ticket_number=r[1],
        sender_type=r[16],
        sender_name=r[17],
        message=r[18],
        created_at=to_dt(r[19]),
        kind=kind,
        client_msg_id=r[21],
        operator_id=r[22],
        attachment=attachment,
    )


async def _summaries(
    rt: Runtime, raw: Raw, rows: list[Row], operator_ids: list[int]
) -> dict[int, list[dict[str, Any]]]:
    """Summaries of `rows` (in their order) for each operator: a few grouped queries for
    all of them, whatever the number of tickets and operators."""
    if not rows:
        return {op: [] for op in operator_ids}
    ids = [r[0] for r in rows]
    readers = {operator_reader(op): op for op in operator_ids}
    cursors: dict[tuple[str, str], int] = {}
    after: dict[tuple[str, str], int] = {}
    params = {"ids": ids, "readers": [*readers, "customer"]}
    for tid, reader, last, unread in await raw.all(_CURSORS, params):
        cursors[(tid, reader)] = int(last)
        after[(tid, reader)] = int(unread)
    # An operator who has never read the ticket: all the customer's messages are unread
    # (counted only for those tickets).
    no_cursor = sorted({tid for tid in ids for r in readers if (tid, r) not in cursors})
    total: dict[str, int] = {}
    if no_cursor:
        total = {tid: int(n) for tid, n in await raw.all(_CUSTOMER_TOTAL, {"ids": no_cursor})}
    online = await rt.presence.online_among("visitor", sorted({r[7] for r in rows}))
    on_ticket = await labels.of_tickets(raw, ids)
    # What every operator sees alike, once per ticket.
    common = [
        {
            "ticketId": r[1],
            "status": r[2],
            "created_at": iso(to_dt(r[3])),
            "updated_at": iso(to_dt(r[4])),
            "last_message": _last_message(r),
            "customer_name": customers.display_name(r[7], r[8], r[9], r[10]),
            "customer_own_name": r[8],
            "customer_email": r[9],
            "customer_id": r[10],
            "rating": {"score": r[5], "comment": r[6]} if r[5] else None,
            "assignee": {"id": r[13], "name": r[14]} if r[13] is not None else None,
            "visitor": {
                "online": r[7] in online,
                "page_url": (online.get(r[7]) or {}).get("page_url") or r[11],
                "user_agent": r[12],
            },
            "customer_last_read_id": cursors.get((r[0], "customer"), 0),
            "labels": on_ticket.get(r[0], []),
            "priority": r[30],
            "snoozed_until": iso(to_dt(r[31])) if r[31] is not None else None,
            "team": {"id": r[32], "name": r[33]} if r[32] is not None else None,
            "channel": r[34],
            "waiting_since": iso(to_dt(r[35])) if r[35] is not None else None,
        }
        for r in rows
    ]
    out: dict[int, list[dict[str, Any]]] = {}
    for reader, op_id in readers.items():
        out[op_id] = []
        for r, base in zip(rows, common, strict=True):
            mine = cursors.get((r[0], reader))
            unread = total.get(r[0], 0) if mine is None else after.get((r[0], reader), 0)
            out[op_id].append({**base, "unread": unread, "my_last_read_id": mine or 0})
    return out


async def ticket_summaries(
    rt: Runtime,
    operator_id: int,
    *,
    status: str = "open",
    filter_: str | None = None,
    q: str | None = None,
    limit: int = 200,
    label: int | None = None,
    priority: str | None = None,
    team: int | None = None,
) -> list[dict[str, Any]]:
    """The operator's list: each ticket with its unread count for that operator. `status`
    "open" leaves snoozed tickets out; "snoozed" lists only them; "waiting": the open ones
    waiting for an operator's answer, longest first (actions/escalation.py)."""
    filters: list[str] = []
    if status in ("open", "closed", "snoozed", "waiting"):
        filters.append(status)
    if filter_ in ("mine", "unassigned"):
        filters.append(filter_)
    params: dict[str, Any] = {"limit": limit}
    if filter_ == "mine":
        params["op"] = operator_id
    if q:
        filters.append("q")
        params["like"] = f"%{q.strip()[:100]}%"
        params["label_like"] = f"%{labels.name_key(q.strip()[:100])}%"
    if label is not None:
        filters.append("label")
        params["label"] = label
    if priority is not None:
        filters.append("priority")
        params["priority"] = priority
    if team is not None:
        filters.append("team")
        params["team"] = team
    async with rt.store.raw_read() as raw:
        rows = await raw.all(_list_statement(tuple(filters)), params)
        return (await _summaries(rt, raw, rows, [operator_id]))[operator_id]


async def summaries_for(
    rt: Runtime, wanted: Iterable[tuple[int, str]]
) -> dict[tuple[int, str], dict[str, Any]]:
    """(operator id, ticket id) -> that operator's summary of the ticket, for many at once
    (tickets that no longer exist are left out)."""
    pairs = set(wanted)
    ticket_ids = sorted({tid for _, tid in pairs})
    operator_ids = sorted({op for op, _ in pairs})
    async with rt.store.raw_read() as raw:
        rows = await raw.all(_SUMMARY_OF, {"ids": ticket_ids})
        by_op = await _summaries(rt, raw, rows, operator_ids)
    out: dict[tuple[int, str], dict[str, Any]] = {}
    for op_id, summaries in by_op.items():
        for r, summary in zip(rows, summaries, strict=True):
            if (op_id, r[0]) in pairs:
                out[(op_id, r[0])] = summary
    return out


class SummaryBatcher:
    """Dashboard sockets ask for ticket summaries after each `ticket_changed`; one query
    set answers every socket woken by the same events, and requests that arrive while a
    query runs wait for the next one (which starts after them, so it is never stale).

    (Spacing the query sets out, to make each cover more tickets, saved CPU but made the
    loop's work burstier: at 1,000 conversations a 3-10 ms spacing raised the message
    latency's median instead of lowering it. docs/benchmarks.md)
    """

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.pending: dict[tuple[int, str], list[asyncio.Future[dict[str, Any] | None]]] = {}
        self.task: asyncio.Task[None] | None = None

    async def get(self, operator_id: int, ticket_id: str) -> dict[str, Any] | None:
        fut: asyncio.Future[dict[str, Any] | None] = asyncio.get_running_loop().create_future()
        self.pending.setdefault((operator_id, ticket_id), []).append(fut)
        if self.task is None or self.task.done():
            self.task = asyncio.create_task(self._run())
        return await fut

    async def _run(self) -> None:
        await asyncio.sleep(0)  # the other sockets woken by the same publish ask too
        while self.pending:
            batch, self.pending = self.pending, {}
            try:
                found = await summaries_for(self.rt, batch)
            except Exception as exc:
                for futs in batch.values():
                    for f in futs:
                        if not f.done():
                            f.set_exception(exc)
                continue
            for key, futs in batch.items():
                for f in futs:
                    if not f.done():
                        f.set_result(found.get(key))


_batchers: dict[int, SummaryBatcher] = {}


def summary_batcher(rt: Runtime) -> SummaryBatcher:
    b = _batchers.get(id(rt))
    if b is None or b.rt is not rt:
        b = _batchers[id(rt)] = SummaryBatcher(rt)
    return b


async def ticket_summary(rt: Runtime, operator_id: int, ticket_id: str) -> dict[str, Any]:
    found = await summaries_for(rt, [(operator_id, ticket_id)])
    if (operator_id, ticket_id) not in found:
        raise NotFound("no such ticket", "ticket_not_found")
    return found[(operator_id, ticket_id)]


def visitor_ticket_json(t: Ticket, assignee_name: str | None) -> dict[str, Any]:
    return {
        "ticketId": t.number,
        "status": t.status,
        "assignee": {"name": assignee_name} if assignee_name is not None else None,
    }


_OPERATOR_NAME = Sql("SELECT display_name FROM operators WHERE id = :id")


async def _emit_ticket(tx: Tx, t: Ticket) -> None:
    name = None
    if t.assignee_id:
        name = await (await tx.raw()).scalar(_OPERATOR_NAME, {"id": t.assignee_id})
    tx.emit(f"ticket:{t.id}", {"type": "ticket", "ticket": visitor_ticket_json(t, name)})
    tx.emit("operators", {"type": "ticket_changed", "ticket_ref": t.id})


# ---------------------------------------------------------------- customer side


class Sent(NamedTuple):
    """What the customer's send did. `prev_id` is the ticket's message before this one, so
    a socket knows whether it can send this one straight away (see api/ws.py)."""

    ticket: Ticket
    message: dict[str, Any]
    created: bool
    prev_id: int


async def send_customer_message(
    rt: Runtime,
    visitor: Visitor,
    text: str,
    number: str | None = None,
    client_msg_id: str | None = None,
    new_ticket: bool = False,
    address: str | None = None,
    hints: routing.Hints | None = None,
) -> Sent:
    """The customer writes. Idempotent on client_msg_id.

    No ticket given: the visitor's open ticket, or a new one that starts with the bot's
    greeting. A message on a closed ticket reopens it. `address`: the client's, for the
    cap on new tickets per address (start_ticket).
    """
    try:
        return await _send_customer_message(
            rt, visitor, text, number, client_msg_id, new_ticket, address, hints
        )
    except Duplicate as dup:
        async with rt.store.transaction(write=False) as tx:
            existing = await find_by_client_id(tx, dup.ticket_id, dup.client_msg_id)
            t = await tx.session.get(Ticket, dup.ticket_id)
        assert t is not None and existing is not None
        return _resent(t, existing)


class _HourlyCount:
    """Events per key in the last hour, in this process's memory (few per key: a deque of
    times each). `take` counts one or raises RateLimited with the seconds until one leaves."""

    def __init__(self) -> None:
        self.times: dict[str, deque[float]] = {}

    def take(self, key: str, cap: int, message: str) -> None:
        now = time.monotonic()
        q = self.times.setdefault(key, deque())
        while q and q[0] <= now - 3600:
            q.popleft()
        if len(q) >= cap:
            raise RateLimited(message, q[-cap] + 3600 - now)
        q.append(now)
        if len(self.times) > 100_000:  # forget the keys whose hour has passed
            self.times = {k: v for k, v in self.times.items() if v and v[-1] > now - 3600}


_tickets_by_address = _HourlyCount()


async def _check_ticket_caps(rt: Runtime, tx: Tx, visitor: Visitor, address: str | None) -> None:
    """At most `tickets_per_visitor_per_hour` new tickets per visitor (counted from the
    table, under the visitor's scope lock every caller holds, so shared by every process)
    and `tickets_per_ip_per_hour` per address (memory, per process). Before, only the send
    rate bounded them: 105 tickets in a second from one visitor."""
    cap = rt.settings.tickets_per_visitor_per_hour
    hour_ago = utcnow() - timedelta(hours=1)
    recent = (
        await tx.session.scalars(
            select(Ticket.created_at)
            .where(Ticket.visitor_id == visitor.id, Ticket.created_at > hour_ago)
            .order_by(Ticket.created_at.desc())
            .limit(cap)
        )
    ).all()
    if len(recent) >= cap:
        wait = (to_dt(recent[-1]) - hour_ago).total_seconds()
        raise RateLimited("too many new tickets, write in an open one", wait)
    if address is not None:
        _tickets_by_address.take(
            address, rt.settings.tickets_per_ip_per_hour, "too many new tickets from this address"
        )


async def start_ticket(
    rt: Runtime,
    tx: Tx,
    visitor: Visitor,
    address: str | None = None,
    *,
    first_text: str | None = None,
    hints: routing.Hints | None = None,
    channel: str = "web",
) -> Ticket:
    """A new ticket of the visitor's, starting with the shop's greeting (the bot's) when
    one is set. The one place a customer's ticket is created (a message or a file), so the
    caps on new tickets are checked here (RateLimited: 429 / an error frame), and its team
    and operator chosen (actions/routing.py route_new_ticket: by the page, the widget's
    data-team and `first_text`, the customer's first message). `channel`: where the
    customer writes from (channels/); only the widget's tickets get the greeting."""
    await _check_ticket_caps(rt, tx, visitor, address)
    now = utcnow()
    t = Ticket(
        id=secrets.token_hex(16),
        number=new_ticket_number(),
        visitor_id=visitor.id,
        status="open",
        created_at=now,
        updated_at=now,
        channel=channel,
    )
    tx.session.add(t)
    await tx.session.flush()
    routed = await routing.route_new_ticket(rt, tx, t, visitor, first_text, hints)
    greeting = rt.live.current.greeting
    if greeting and channel == "web":
        await post_message(tx, t, sender_type="bot", sender_name=texts.BOT_NAME, text=greeting)
    await routing.post_routed_notes(tx, t, routed)
    return t


def _resent(t: Ticket, existing: SupportMessage) -> Sent:
    # prev_id = its own id: a socket that has not sent it yet replays up to it.
    return Sent(t, message_json(existing, t.number), False, existing.id)


async def _send_customer_message(
    rt: Runtime,
    visitor: Visitor,
    text: str,
    number: str | None,
    client_msg_id: str | None,
    new_ticket: bool,
    address: str | None = None,
    hints: routing.Hints | None = None,
) -> Sent:
    text = clean_text(text, rt.settings.max_message_chars)
    client_msg_id = clean_client_id(client_msg_id)
    async with rt.store.transaction() as tx:
        if number is not None and not new_ticket:
            # A known ticket: its row lock (until commit) orders this message with the
            # ticket's other writers; the visitor's scope lock is for finding or opening one.
            t = await load_ticket(tx, number, lock=True)
            # (the session only for a ticket of the same shop customer on another device)
            if t is None or not (
                t.visitor_id == visitor.id or await customers.owns(tx.session, visitor, t)
            ):
                raise NotFound("no such ticket", "ticket_not_found")
        else:
            await tx.lock_scope(f"visitor:{visitor.id}")
            s = tx.session
            t = None
            mine = await customers.owner_ids(s, visitor)
            if client_msg_id:
                prev = await s.scalar(
                    select(Ticket)
                    .join(SupportMessage, SupportMessage.ticket_id == Ticket.id)
                    .where(
                        Ticket.visitor_id.in_(mine),
                        SupportMessage.client_msg_id == client_msg_id,
                    )
                )
                t = prev
            if t is None and not new_ticket:
                t = await s.scalar(
                    select(Ticket)
                    .where(Ticket.visitor_id.in_(mine), Ticket.status == "open")
                    .order_by(Ticket.updated_at.desc())
                    .limit(1)
                )
        if t is not None and client_msg_id and (number is None or new_ticket):
            # (a ticket given by number: post_message finds a retry, raising Duplicate)
            existing = await find_by_client_id(tx, t.id, client_msg_id)
            if existing is not None:
                return _resent(t, existing)
        if t is None:
            t = await start_ticket(rt, tx, visitor, address, first_text=text, hints=hints)
        elif t.status == "closed":
            await _reopen(tx, t)
        msg = await post_message(
            tx,
            t,
            sender_type="customer",
            sender_name=customers.visitor_name(visitor),
            text=text,
            client_msg_id=client_msg_id,
            read_by="customer",
        )
        if t.snoozed_until is not None:  # the customer wrote: back in the open list
            await unsnooze(tx, t, None, by="customer")
        # No `ticket` event: the message changed neither status nor assignee (a reopen
        # announced itself; the dashboards' ticket_changed came with the message).
        return Sent(t, msg, True, tx.prev_ids[msg["id"]])


# Read cursors and joins are small rows written on most messages: plain statements on the
# driver (store/raw.py). No code keeps them as ORM objects.
_JOIN_EPOCH = Sql("SELECT epoch FROM ticket_joins WHERE ticket_id = :t AND operator_id = :o")
# Records that the operator joined in epoch :e; changes a row (returns 1) only if they had
# not joined in it yet. The conflict is decided on the newest committed row (and waits for
# one being written), so of two transactions joining at once exactly one changes it.
_JOIN = Sql(
    "INSERT INTO ticket_joins (ticket_id, operator_id, epoch) VALUES (:t, :o, :e)"
    " ON CONFLICT (ticket_id, operator_id) DO UPDATE SET epoch = excluded.epoch"
    " WHERE ticket_joins.epoch < excluded.epoch"
)


async def mark_read_by_visitor(rt: Runtime, visitor: Visitor, number: str, last_id: int) -> None:
    async with rt.store.transaction() as tx:
        t = await ticket_by_number(tx.session, number)
        if t is None or not await customers.owns(tx.session, visitor, t):
            raise NotFound("no such ticket", "ticket_not_found")
        last_id = min(int(last_id), t.last_message_id or 0)
        if await move_cursor(tx, t.id, "customer", last_id):
            ev = {
                "type": "read",
                "ticketId": t.number,
                "reader": "customer",
                "last_read_id": last_id,
            }
            tx.emit("operators", ev)


# ---------------------------------------------------------------- operator side


async def _load_for_operator(tx: Tx, number: str) -> Ticket:
    t = await load_ticket(tx, number)
    if t is None:
        raise NotFound("no such ticket", "ticket_not_found")
    return t


async def _join(tx: Tx, t: Ticket, op: Operator) -> bool:
    """Post "Оператор … подключился" once per operator per epoch (again after a reopen)."""
    epoch = await (await tx.raw()).scalar(_JOIN_EPOCH, {"t": t.id, "o": op.id})
    return await _join_unless_joined(tx, t, op, epoch)


async def _join_unless_joined(tx: Tx, t: Ticket, op: Operator, epoch: int | None) -> bool:
    """_join, given the epoch in which `op` last joined `t` (None: never)."""
    if epoch is not None and epoch >= t.epoch:
        return False
    if not await (await tx.raw()).run(_JOIN, {"t": t.id, "o": op.id, "e": t.epoch}):
        return False  # joined meanwhile (`epoch` was read from an older snapshot)
    text, notice = texts.notice("operator_joined", name=op.display_name, gender=op.gender)
    await post_message(
        tx,
        t,
        sender_type="system",
        sender_name=texts.SYSTEM_NAME,
        text=text,
        operator_id=op.id,
        notice=notice,
    )
    return True


async def _mark_read_by_operator(
    tx: Tx, t: Ticket, op: Operator, last_id: int, *, just_posted: bool = False
) -> None:
    """`just_posted`: last_id is a message this transaction created with `read_by` this
    operator, so the cursor has moved already, past every other cursor, and the
    customer's receipt moves (no need to read how far others had read). The dashboards
    then get no `read` frame: the message and the ticket's new summary (unread 0 for
    this operator) say it already, and a reply made one per dashboard."""
    before = 0 if just_posted else await admin_read_id(tx.session, t.id)
    if just_posted or await move_cursor(tx, t.id, operator_reader(op.id), last_id):
        tx.emit("operators", {"type": "ticket_changed", "ticket_ref": t.id, "only": op.id})
        if last_id > before:
            tx.emit(
                f"ticket:{t.id}",
                {"type": "read", "ticketId": t.number, "reader": "admin", "last_read_id": last_id},
            )
        if last_id > before and not just_posted:
            tx.emit(
                "operators",
                {
                    "type": "read",
                    "ticketId": t.number,
                    "reader": "admin",
                    "last_read_id": last_id,
                    "operator_id": op.id,
                },
            )


async def open_ticket(
    rt: Runtime, op: Operator, number: str
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """An operator opens a ticket: joins it (once) and reads it."""
    async with rt.store.transaction() as tx:
        await tx.lock_scope(f"ticket:{number}")
        t, joined = await _load_with_join(tx, number, op)
        if t.status == "open":
            await _join_unless_joined(tx, t, op, joined)
        await tx.flush()
        await _mark_read_by_operator(tx, t, op, t.last_message_id or 0)
        rows = await messages_after(tx.session, t.id, 0, include_notes=True, limit=100_000)
        messages = [message_json(m, t.number) for m in rows]
        tid = t.id
    return await ticket_summary(rt, op.id, tid), messages


async def operator_messages_after(
    rt: Runtime, after: stream.Position, limit: int
) -> list[tuple[stream.Position, dict[str, Any]]]:
    """Every message (notes too) after a stream position, in commit order, each with its
    position: the operator socket's replay (store/stream.py)."""
    dialect = rt.store.dialect
    async with rt.store.read() as session:
        rows = (
            await session.execute(
                select(SupportMessage, Ticket.number)
                .join(Ticket, Ticket.id == SupportMessage.ticket_id)
                .where(*stream.after(dialect, after))
                .order_by(*stream.order(dialect))
                .limit(limit)
            )
        ).all()
    return [(stream.of(dialect, m), message_json(m, number)) for m, number in rows]


async def stream_horizon(rt: Runtime) -> int | None:
    """PostgreSQL: every transaction below this one has ended (store/stream.py)."""
    if rt.store.dialect != "postgresql":
        return None
    async with rt.store.read() as session:
        return await stream.horizon(session)


async def stream_position(rt: Runtime, since: int) -> stream.Position:
    """Where the operator socket resumes for a client's `since` (store/stream.py)."""
    async with rt.store.read() as session:
        return await stream.position(session, rt.store.dialect, since)


async def reply(
    rt: Runtime,
    op: Operator,
    number: str,
    text: str,
    client_msg_id: str | None = None,
    kind: str = "text",
) -> dict[str, Any]:
    text = clean_text(text, rt.settings.max_message_chars)
    client_msg_id = clean_client_id(client_msg_id)
    try:
        return await _reply(rt, op, number, text, client_msg_id, kind)
    except Duplicate as dup:  # a retry: what the first send stored
        async with rt.store.transaction(write=False) as tx:
            existing = await find_by_client_id(tx, dup.ticket_id, dup.client_msg_id)
        assert existing is not None
        return message_json(existing, number)


async def _reply(
    rt: Runtime, op: Operator, number: str, text: str, client_msg_id: str | None, kind: str
) -> dict[str, Any]:
    async with rt.store.transaction() as tx:
        # (no scope lock: the ticket's row lock, taken by the first statement, orders this
        # reply with the ticket's other writers, as the scope lock would)
        t, joined = await _load_with_join(tx, number, op)
        if kind != "note" and t.status == "open":
            await _join_unless_joined(tx, t, op, joined)
        # The first reply on an unassigned ticket takes it (actions/routing.py settings),
        # with the note and events of a manual take.
        took = kind != "note" and t.assignee_id is None and rt.live.routing.assign_on_first_reply
        if took:
            t.assignee_id = op.id
            who = {"actor": op.display_name, "gender": op.gender}
            await post_system_note(tx, t, "ticket_taken", op.id, **who)
        msg = await post_message(
            tx,
            t,
            sender_type="admin",
            sender_name=op.display_name,
            text=text,
            kind=kind,
            operator_id=op.id,
            client_msg_id=client_msg_id,
            read_by=operator_reader(op.id),
        )
        await _mark_read_by_operator(tx, t, op, msg["id"], just_posted=True)
        if took:
            await _emit_ticket(tx, t)
        return msg


async def system_message(
    rt: Runtime, op: Operator, number: str, text: str, client_msg_id: str | None = None
) -> dict[str, Any]:
    """A system notice typed by an operator. Idempotent on client_msg_id, as reply()."""
    text = clean_text(text, rt.settings.max_message_chars)
    client_msg_id = clean_client_id(client_msg_id)
    try:
        async with rt.store.transaction() as tx:
            await tx.lock_scope(f"ticket:{number}")
            t = await _load_for_operator(tx, number)
            msg = await post_message(
                tx,
                t,
                sender_type="system",
                sender_name=texts.SYSTEM_NAME,
                text=text,
                operator_id=op.id,
                client_msg_id=client_msg_id,
            )
            return msg
    except Duplicate as dup:  # a retry: what the first send stored
        async with rt.store.transaction(write=False) as tx:
            existing = await find_by_client_id(tx, dup.ticket_id, dup.client_msg_id)
        assert existing is not None
        return message_json(existing, number)


async def close_ticket(
    rt: Runtime, op: Operator, number: str
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """Close, posting the spec's notice; closing a closed ticket posts nothing."""
    async with rt.store.transaction() as tx:
        await tx.lock_scope(f"ticket:{number}")
        t = await _load_for_operator(tx, number)
        out = None
        if t.status != "closed":
            t.status = "closed"
            t.closed_at = utcnow()
            t.snoozed_until = None
            t.waiting_since = t.waiting_message_id = None  # (actions/escalation.py)
            text, notice = texts.notice("ticket_closed")
            msg = await post_message(
                tx,
                t,
                sender_type="system",
                sender_name=texts.SYSTEM_NAME,
                text=text,
                operator_id=op.id,
                notice=notice,
            )
            out = msg
            await _emit_ticket(tx, t)
        tid = t.id
    return await ticket_summary(rt, op.id, tid), out


async def post_system_note(
    tx: Tx, t: Ticket, code: str, operator_id: int | None, **args: Any
) -> dict[str, Any]:
    """A notice for operators only (kind note), worded from its code (actions/texts.py)."""
    text, notice = texts.notice(code, **args)
    return await post_message(
        tx,
        t,
        sender_type="system",
        sender_name=texts.SYSTEM_NAME,
        text=text,
        kind="note",
        operator_id=operator_id,
        notice=notice,
    )


async def unsnooze(tx: Tx, t: Ticket, operator_id: int | None, by: str = "time") -> None:
    """End a ticket's snooze (actions/routing.py): back at the top of the open list, with a
    note. `by`: "time" (the periodic pass), "customer" (they wrote) or "operator"."""
    t.snoozed_until = None
    t.updated_at = utcnow()
    await post_system_note(tx, t, "snooze_ended", operator_id, by=by)
    await _emit_ticket(tx, t)


async def _reopen(tx: Tx, t: Ticket, operator_id: int | None = None) -> dict[str, Any]:
    t.status = "open"
    t.epoch += 1
    text, notice = texts.notice("ticket_reopened")
    msg = await post_message(
        tx,
        t,
        sender_type="system",
        sender_name=texts.SYSTEM_NAME,
        text=text,
        operator_id=operator_id,
        notice=notice,
    )
    await _emit_ticket(tx, t)
    return msg


async def reopen_ticket(
    rt: Runtime, op: Operator, number: str
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    async with rt.store.transaction() as tx:
        await tx.lock_scope(f"ticket:{number}")
        t = await _load_for_operator(tx, number)
        out = None
        if t.status != "open":
            out = await _reopen(tx, t, op.id)
        tid = t.id
    return await ticket_summary(rt, op.id, tid), out


async def assign(
    rt: Runtime, actor: Operator, number: str, operator_id: int | None
) -> dict[str, Any]:
    """Take, give to another operator, or unassign. Operators see a note; the customer sees
    only "Оператор … подключился" (once, as when that operator opens the ticket)."""
    async with rt.store.transaction() as tx:
        await tx.lock_scope(f"ticket:{number}")
        t = await _load_for_operator(tx, number)
        target = None
        if operator_id is not None:
            target = await tx.session.get(Operator, operator_id)
            if target is None or not target.active:
                raise NotFound("no such operator", "operator_not_found")
        if t.assignee_id != (target.id if target else None):
            t.assignee_id = target.id if target else None
            who = {"actor": actor.display_name, "gender": actor.gender}
            if target is None:
                note, notice = texts.notice("ticket_unassigned", **who)
            elif target.id == actor.id:
                note, notice = texts.notice("ticket_taken", **who)
            else:
                note, notice = texts.notice("ticket_assigned", **who, target=target.display_name)
            await post_message(
                tx,
                t,
                sender_type="system",
                sender_name=texts.SYSTEM_NAME,
                text=note,
                kind="note",
                operator_id=actor.id,
                notice=notice,
            )
            if target is not None and t.status == "open":
                await _join(tx, t, target)
            await _emit_ticket(tx, t)
        tid = t.id
    return await ticket_summary(rt, actor.id, tid)


async def mark_read_by_operator(rt: Runtime, op: Operator, number: str, last_id: int) -> None:
    async with rt.store.transaction() as tx:
        t = await _load_for_operator(tx, number)
        last_id = max(0, min(int(last_id), t.last_message_id or 0))
        await _mark_read_by_operator(tx, t, op, last_id)


async def related_tickets(rt: Runtime, number: str) -> list[dict[str, Any]]:
    """The same customer's other tickets, across channels (customers.linked_visitors: the
    same browser or signed-in user, or the same email address in the widget and by email),
    the most recent first, each with its channel, why it is theirs and its last public
    message. For operators only."""
    async with rt.store.read() as session:
        t = await ticket_by_number(session, number)
        if t is None:
            raise NotFound("no such ticket", "ticket_not_found")
        v = await session.get(Visitor, t.visitor_id)
        assert v is not None
        linked = await customers.linked_visitors(session, v)
        rows = (
            await session.scalars(
                select(Ticket)
                .where(Ticket.visitor_id.in_(list(linked)), Ticket.id != t.id)
                .order_by(Ticket.updated_at.desc())
                .limit(50)
            )
        ).all()
        last_ids = [r.last_public_message_id for r in rows if r.last_public_message_id]
        lasts = {
            m.id: m
            for m in (
                await session.scalars(select(SupportMessage).where(SupportMessage.id.in_(last_ids)))
            ).all()
        }
    out = []
    for r in rows:
        last = lasts.get(r.last_public_message_id or -1)
        out.append(
            {
                "ticketId": r.number,
                "status": r.status,
                "created_at": iso(r.created_at),
                "updated_at": iso(r.updated_at),
                "channel": r.channel,
                "match": linked.get(r.visitor_id, "customer"),
                "last_message": None
                if last is None or last.kind == "note"
                else {
                    "sender_type": last.sender_type,
                    "kind": last.kind,
                    "message": last.message[:200],
                    "created_at": iso(last.created_at),
                },
            }
        )
    return out
