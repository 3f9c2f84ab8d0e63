"""Who works on a ticket and when: assignment on the first reply, priority and snooze.

The owner's routing settings (`RoutingSettings`, key "routing" of app_settings) live beside
the widget's in every process (actions/settings.py LiveSettings loads both and reloads on
the hub's "settings" topic); they are a separate object with their own endpoint
(GET/PUT /api/admin/settings/routing), so the widget settings' JSON keeps its shape.

Snooze: a snoozed ticket keeps status "open" but leaves the open list until
`snoozed_until`. Every server process runs `run_periodic`, which wakes the tickets whose
time has come (`wake_snoozed`); the rows are taken with FOR UPDATE SKIP LOCKED on
PostgreSQL and re-checked under the ticket's lock, so two processes never wake one ticket
twice, and a process that was down catches up on its next pass (the database is the truth).
A customer's message on a snoozed ticket wakes it at once (actions/tickets.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from dataclasses import asdict, dataclass, fields, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from trustdesk.actions import audit, teams
from trustdesk.actions.errors import Invalid, NotFound
from trustdesk.store.models import AppSetting, Operator, TeamMember, Ticket, Visitor, utcnow

if TYPE_CHECKING:
    from trustdesk.actions.runtime import Runtime
    from trustdesk.store.db import Tx

log = logging.getLogger(__name__)

KEY = "routing"
PRIORITIES = ("low", "normal", "high", "urgent")
MAX_SNOOZE = timedelta(days=365)
BATCH = 100


# ----------------------------------------------------------------- settings


@dataclass(frozen=True)
class RoutingSettings:
    # An operator's reply on an unassigned ticket assigns it to them (as "take" would).
    assign_on_first_reply: bool = True
    # A new ticket routed to a team goes to one of its online members, round-robin.
    auto_assign: bool = True
    # ... who has fewer open (not snoozed) tickets than this.
    max_open_per_operator: int = 10
    # An operator offline for offline_grace_seconds loses their open tickets to the next
    # available member of each ticket's team (or back to unassigned).
    reassign_offline: bool = False
    offline_grace_seconds: int = 300
    # A customer's message unanswered this many minutes escalates (actions/escalation.py):
    # push after N, email after 2N, Telegram after 3N, to whoever opted in. 0: off.
    escalate_after_minutes: int = 5

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


FIELDS = tuple(f.name for f in fields(RoutingSettings))


def _bool(name: str) -> Any:
    def check(value: Any) -> bool:
        if not isinstance(value, bool):
            raise Invalid(f"{name}: must be true or false", field=name)
        return value

    return check


def _int(name: str, low: int, high: int) -> Any:
    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise Invalid(f"{name}: a whole number from {low} to {high}", field=name)
        return int(value)

    return check


_CHECKS = {
    "assign_on_first_reply": _bool("assign_on_first_reply"),
    "auto_assign": _bool("auto_assign"),
    "max_open_per_operator": _int("max_open_per_operator", 1, 1000),
    "reassign_offline": _bool("reassign_offline"),
    "offline_grace_seconds": _int("offline_grace_seconds", 0, 86400),
    "escalate_after_minutes": _int("escalate_after_minutes", 0, 240),
}


def validate(current: RoutingSettings, patch: Any) -> RoutingSettings:
    """`current` with the keys of `patch` changed; any error → Invalid naming its field."""
    if not isinstance(patch, dict):
        raise Invalid("settings must be a JSON object")
    unknown = sorted(set(patch) - set(FIELDS))
    if unknown:
        name = str(unknown[0])[:40]
        raise Invalid(f"{name}: unknown setting", field=name)
    return replace(current, **{k: _CHECKS[k](v) for k, v in patch.items()})


def from_stored(raw: str | None) -> RoutingSettings:
    """The stored value over the defaults, key by key (a bad key keeps its default)."""
    out = RoutingSettings()
    try:
        stored = json.loads(raw) if raw is not None else {}
    except ValueError:
        return out
    for key, value in stored.items() if isinstance(stored, dict) else ():
        with contextlib.suppress(Invalid):
            out = validate(out, {key: value})
    return out


def current(rt: Runtime) -> RoutingSettings:
    return rt.live.routing


async def update(rt: Runtime, patch: Any) -> RoutingSettings:
    """Validate and store; apply here at once and, through the hub, in every process."""
    from trustdesk.actions.settings import TOPIC

    old = rt.live.routing
    new = validate(old, patch)
    async with rt.store.transaction() as tx:
        row = await tx.session.get(AppSetting, KEY)
        stored = json.loads(row.value) if row is not None else {}
        stored = stored if isinstance(stored, dict) else {}
        stored.update({k: new.as_json()[k] for k in patch})
        if row is None:
            tx.session.add(AppSetting(key=KEY, value=json.dumps(stored), updated_at=utcnow()))
        else:
            row.value = json.dumps(stored)
            row.updated_at = utcnow()
        audit.record(tx, "settings.routing", KEY, audit.changes(old.as_json(), new.as_json()))
        tx.emit(TOPIC, {"type": "settings_changed"})
        tx.emit("operators", {"type": "routing_settings_changed", "settings": new.as_json()})
    rt.live.routing = new
    return new


# ----------------------------------------------------------------- priority and snooze


def clean_priority(value: Any) -> str:
    if value not in PRIORITIES:
        raise Invalid("priority: must be one of " + ", ".join(PRIORITIES), field="priority")
    return str(value)


def clean_until(value: Any, now: datetime | None = None) -> datetime | None:
    """An ISO 8601 time with its offset, in the future and within a year; None: unsnooze."""
    if value is None:
        return None
    when = None
    if isinstance(value, str) and len(value) <= 40:
        with contextlib.suppress(ValueError):
            when = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    if when is None or when.tzinfo is None:
        raise Invalid("until: must be a time like 2026-12-07T09:00:00Z", field="until")
    now = now or utcnow()
    when = when.astimezone(UTC)
    if when <= now:
        raise Invalid("until: must be in the future", field="until")
    if when > now + MAX_SNOOZE:
        raise Invalid("until: at most a year ahead", field="until")
    return when


async def _locked_ticket(tx: Any, number: str) -> Ticket:
    from trustdesk.actions.tickets import ticket_by_number

    await tx.lock_scope(f"ticket:{number}")
    t = await ticket_by_number(tx.session, number)
    if t is None:
        raise NotFound("no such ticket", "ticket_not_found")
    return t


async def set_priority(rt: Runtime, actor: Operator, number: str, priority: Any) -> dict[str, Any]:
    """Set a ticket's priority; operators see a note; the lists update live."""
    from trustdesk.actions.tickets import _emit_ticket, post_system_note, ticket_summary

    priority = clean_priority(priority)
    async with rt.store.transaction() as tx:
        t = await _locked_ticket(tx, number)
        if t.priority != priority:
            t.priority = priority
            await post_system_note(
                tx,
                t,
                "priority_changed",
                actor.id,
                actor=actor.display_name,
                gender=actor.gender,
                priority=priority,
            )
            await _emit_ticket(tx, t)
        tid = t.id
    return await ticket_summary(rt, actor.id, tid)


async def snooze(rt: Runtime, actor: Operator, number: str, until: Any) -> dict[str, Any]:
    """Hide an open ticket from the open list until `until` (None: wake it now)."""
    from trustdesk.actions.tickets import _emit_ticket, post_system_note, ticket_summary, unsnooze

    when = clean_until(until)
    async with rt.store.transaction() as tx:
        t = await _locked_ticket(tx, number)
        if when is None:
            if t.snoozed_until is not None:
                await unsnooze(tx, t, actor.id, by="operator")
        else:
            if t.status != "open":
                raise Invalid("only an open ticket can be snoozed", "ticket_closed")
            t.snoozed_until = when
            await post_system_note(
                tx,
                t,
                "ticket_snoozed",
                actor.id,
                actor=actor.display_name,
                gender=actor.gender,
                until=when.isoformat(),
            )
            await _emit_ticket(tx, t)
        tid = t.id
    return await ticket_summary(rt, actor.id, tid)


async def wake_snoozed(rt: Runtime, now: datetime | None = None) -> int:
    """One pass: every ticket whose snooze has ended is back in the open list with a note.
    Safe to run in several processes at once. Returns how many this pass woke."""
    from trustdesk.actions.tickets import unsnooze

    now = now or utcnow()
    woken = 0
    while True:
        async with rt.store.transaction() as tx:
            ids = list(
                (
                    await tx.session.scalars(
                        select(Ticket.id)
                        .where(Ticket.snoozed_until.is_not(None), Ticket.snoozed_until <= now)
                        .order_by(Ticket.snoozed_until)
                        .limit(BATCH)
                        .with_for_update(skip_locked=True)
                    )
                ).all()
            )
            for tid in ids:
                t = await tx.session.get(Ticket, tid)
                # (re-checked: woken or re-snoozed by a commit this snapshot predates)
                if t is not None and t.snoozed_until is not None and t.snoozed_until <= now:
                    await unsnooze(tx, t, None)
                    woken += 1
        if len(ids) < BATCH:
            break
    if woken:
        log.info("snoozed tickets woken", extra={"woken": woken})
    return woken


async def run_periodic(rt: Runtime) -> None:
    """Every snooze_interval_seconds, until cancelled."""
    while True:
        try:
            await wake_snoozed(rt)
        except Exception:
            log.exception("waking snoozed tickets failed")
        await asyncio.sleep(rt.settings.snooze_interval_seconds)


async def wake_once(settings: Any) -> int:
    """`trustdesk wake-snoozed`: one pass, outside the server."""
    from trustdesk.actions.runtime import Runtime
    from trustdesk.realtime.hub import make_hub
    from trustdesk.realtime.presence import make_presence
    from trustdesk.store.db import Store

    hub = make_hub(settings.redis_url, prefix=settings.redis_prefix)
    store = Store(settings, publish=hub.publish_many)
    rt = Runtime(settings=settings, store=store, hub=hub, presence=make_presence(None))
    await hub.start()
    try:
        return await wake_snoozed(rt)
    finally:
        await hub.stop()
        await rt.store.dispose()


# ----------------------------------------------------------------- teams: routing and assignment
#
# Lock order: a ticket's or visitor's scope lock, then the team's ("team:<id>", which
# serialises the round-robin on PostgreSQL; SQLite's writers are serialised anyway), then
# the ticket's row lock a notice takes. So a new ticket is routed before its first message.


@dataclass(frozen=True)
class Hints:
    """What the widget says about where a ticket starts: the page and its `data-team`."""

    page_url: str | None = None
    team: str | None = None


def clean_hints(page_url: Any, team: Any) -> Hints:
    """Bounded, or dropped (a hint is never worth refusing a customer's message)."""
    url = page_url if isinstance(page_url, str) and 0 < len(page_url) <= 2048 else None
    tag = team if isinstance(team, str) and 0 < len(team.strip()) <= 64 else None
    return Hints(page_url=url, team=tag.strip() if tag else None)


@dataclass
class Routed:
    """A new ticket's team and assignee, chosen before its first message (see the lock
    order above); the notes are posted after the greeting (post_routed_notes)."""

    team: str | None = None
    assignee: Operator | None = None


_OPEN_COUNTS = (
    select(Ticket.assignee_id, func.count(Ticket.id))
    .where(Ticket.status == "open", Ticket.snoozed_until.is_(None))
    .group_by(Ticket.assignee_id)
)


async def pick_operator(
    rt: Runtime, tx: Tx, team_id: int, exclude: int | None = None
) -> Operator | None:
    """The team's next operator: online, active, under the open-ticket limit, the one given
    a ticket longest ago (never: first; then by id). None: nobody is available. Marks
    the choice (the round-robin's turn) in the same transaction."""
    await tx.lock_scope(f"team:{team_id}")
    members: list[tuple[TeamMember, Operator]] = [
        (m, o)
        for m, o in (
            await tx.session.execute(
                select(TeamMember, Operator)
                .join(Operator, Operator.id == TeamMember.operator_id)
                .where(TeamMember.team_id == team_id, Operator.active.is_(True))
            )
        ).all()
    ]
    if exclude is not None:
        members = [(m, o) for m, o in members if o.id != exclude]
    if not members:
        return None
    online = await rt.presence.online_among("operator", [str(o.id) for _, o in members])
    members = [(m, o) for m, o in members if str(o.id) in online]
    if not members:
        return None
    ids = [o.id for _, o in members]
    counts = dict((await tx.session.execute(_OPEN_COUNTS.where(Ticket.assignee_id.in_(ids)))).all())
    limit = rt.live.routing.max_open_per_operator
    free = [(m, o) for m, o in members if int(counts.get(o.id, 0)) < limit]
    if not free:
        return None
    epoch = datetime.min.replace(tzinfo=UTC)
    member, op = min(free, key=lambda mo: (mo[0].last_assigned_at or epoch, mo[1].id))
    member.last_assigned_at = utcnow()
    return op


async def route_new_ticket(
    rt: Runtime, tx: Tx, t: Ticket, visitor: Visitor, text: str | None, hints: Hints | None
) -> Routed:
    """A new ticket's team by the first matching rule (actions/teams.py) and, with
    auto_assign, its operator inside the team. Called by tickets.start_ticket only."""
    out = Routed()
    rules = await teams.ordered_rules(tx)
    if not rules:
        return out
    hints = hints or Hints()
    rule = teams.choose(rules, hints.page_url or visitor.page_url, hints.team, text or "")
    if rule is None:
        return out
    t.team_id = rule.team_id
    out.team = await teams.team_name(tx, rule.team_id)
    if rt.live.routing.auto_assign:
        out.assignee = await pick_operator(rt, tx, rule.team_id)
        if out.assignee is not None:
            t.assignee_id = out.assignee.id
    return out


async def post_routed_notes(tx: Tx, t: Ticket, routed: Routed) -> None:
    """The operators' notes of route_new_ticket's choice. No "Оператор … подключился" for
    the customer: the operator joins when they open or answer the ticket."""
    from trustdesk.actions.tickets import post_system_note

    if routed.team is not None:
        await post_system_note(tx, t, "team_routed", None, team=routed.team)
    if routed.assignee is not None:
        op = routed.assignee
        await post_system_note(tx, t, "ticket_auto_assigned", None, target=op.display_name)


async def set_team(
    rt: Runtime, actor: Operator, number: str, team_id: int | None
) -> dict[str, Any]:
    """Move a ticket to a team (None: no team). With auto_assign, a ticket that is
    unassigned or whose assignee is not in the new team goes to the team's next available
    operator (or is left unassigned in it)."""
    from trustdesk.actions.tickets import _emit_ticket, post_system_note, ticket_summary

    async with rt.store.transaction() as tx:
        t = await _locked_ticket(tx, number)
        name = None
        if team_id is not None:
            name = await teams.team_name(tx, team_id)
            if name is None:
                raise NotFound("no such team", "team_not_found", field="team_id")
        if t.team_id != team_id:
            t.team_id = team_id
            picked = None
            moved = False
            if team_id is not None and rt.live.routing.auto_assign and t.status == "open":
                members = await teams.member_ids(tx, team_id)
                if t.assignee_id is None or t.assignee_id not in members:
                    picked = await pick_operator(rt, tx, team_id)
                    moved = picked is not None or t.assignee_id is not None
                    t.assignee_id = picked.id if picked else None
            who = {"actor": actor.display_name, "gender": actor.gender}
            if name is None:
                await post_system_note(tx, t, "team_cleared", actor.id, **who)
            else:
                await post_system_note(tx, t, "team_changed", actor.id, **who, team=name)
            if picked is not None:
                await post_system_note(
                    tx, t, "ticket_auto_assigned", None, target=picked.display_name
                )
            elif moved:
                await post_system_note(tx, t, "ticket_unassigned", actor.id, **who)
            await _emit_ticket(tx, t)
        tid = t.id
    return await ticket_summary(rt, actor.id, tid)


# ----------------------------------------------------------------- offline reassignment
#
# Presence is ephemeral (realtime/presence.py), so "offline since" is what this process's
# passes saw: an operator with open tickets first seen offline at a pass is due once
# offline_grace_seconds have passed on this process's clock (a restart starts the grace
# again: a restarted server never hands tickets over before the dashboards reconnect).
# Every process may run the pass; each ticket is re-checked under its lock.

_offline_since: dict[int, float] = {}


async def reassign_offline(rt: Runtime, clock: Any = time.monotonic) -> int:
    """One pass; returns how many tickets changed hands (or were unassigned)."""
    s = rt.live.routing
    if not s.reassign_offline:
        _offline_since.clear()
        return 0
    async with rt.store.read() as session:
        assignees = [
            int(a or 0)
            for a in (
                await session.scalars(
                    select(Ticket.assignee_id)
                    .where(
                        Ticket.status == "open",
                        Ticket.snoozed_until.is_(None),
                        Ticket.assignee_id.is_not(None),
                    )
                    .distinct()
                    .limit(1000)
                )
            ).all()
        ]
    online = await rt.presence.online("operator")
    now = clock()
    for gone in set(_offline_since) - set(assignees):
        del _offline_since[gone]
    due = []
    for a in assignees:
        if str(a) in online:
            _offline_since.pop(a, None)
        elif now - _offline_since.setdefault(a, now) >= s.offline_grace_seconds:
            due.append(a)
    # Nobody online at all: nobody to hand over to (and presence itself may be away).
    if not due or not online:
        return 0
    moved = 0
    for a in due:
        async with rt.store.read() as session:
            numbers = (
                await session.scalars(
                    select(Ticket.number)
                    .where(
                        Ticket.assignee_id == a,
                        Ticket.status == "open",
                        Ticket.snoozed_until.is_(None),
                    )
                    .order_by(Ticket.updated_at)
                    .limit(BATCH)
                )
            ).all()
        for number in numbers:
            if await rt.presence.is_online("operator", str(a)):
                break  # back meanwhile
            moved += await _reassign_one(rt, number, a)
    if moved:
        log.info("tickets of offline operators reassigned", extra={"moved": moved})
    return moved


async def _reassign_one(rt: Runtime, number: str, from_id: int) -> int:
    from trustdesk.actions.tickets import _emit_ticket, post_system_note

    async with rt.store.transaction() as tx:
        t = await _locked_ticket(tx, number)
        if t.assignee_id != from_id or t.status != "open" or t.snoozed_until is not None:
            return 0
        before = await tx.session.get(Operator, from_id)
        picked = None
        if t.team_id is not None and rt.live.routing.auto_assign:
            picked = await pick_operator(rt, tx, t.team_id, exclude=from_id)
        t.assignee_id = picked.id if picked else None
        previous = before.display_name if before else ""
        if picked is None:
            await post_system_note(tx, t, "ticket_released", None, previous=previous)
        else:
            await post_system_note(
                tx, t, "ticket_reassigned", None, previous=previous, target=picked.display_name
            )
        await _emit_ticket(tx, t)
        return 1


async def run_routing_periodic(rt: Runtime) -> None:
    """Every routing_interval_seconds, until cancelled."""
    while True:
        await asyncio.sleep(rt.settings.routing_interval_seconds)
        try:
            await reassign_offline(rt)
        except Exception:
            log.exception("reassigning offline operators' tickets failed")
