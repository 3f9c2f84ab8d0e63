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
from dataclasses import asdict, dataclass, fields, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from trustdesk.actions.errors import Invalid, NotFound
from trustdesk.store.models import AppSetting, Operator, Ticket, utcnow

if TYPE_CHECKING:
    from trustdesk.actions.runtime import Runtime

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

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


FIELDS = tuple(f.name for f in fields(RoutingSettings))


def _bool(name: str) -> Any:
    def check(value: Any) -> bool:
        if not isinstance(value, bool):
            raise Invalid(f"{name}: must be true or false", field=name)
        return value

    return check


_CHECKS = {"assign_on_first_reply": _bool("assign_on_first_reply")}


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
