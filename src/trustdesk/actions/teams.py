"""Teams ("Отдел": "Оплата", "Доставка") and the rules that choose a new ticket's team.

Admins manage teams (name, members) and an ordered list of routing rules; any operator
moves a ticket to another team. A rule is one of:

- `url`: the page the widget was on when the ticket started. A pattern with `*` or `?` is
  a glob over the whole URL (`*/checkout*`); without them, a substring (`/checkout`).
  Case-insensitive.
- `widget`: the embed tag's `data-team` attribute (`<script ... data-team="payments">`),
  equal to the pattern, case-insensitively.
- `keywords`: comma-separated words; matches when any of them occurs in the customer's
  first message (case-insensitive, "ё" read as "е"; "возврат" also finds "возврата").

Rules are tried by position, the first match wins; no match leaves the ticket without a
team. Choosing an operator inside the team is actions/routing.py's (round-robin).
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable
from typing import Any

from sqlalchemy import delete, func, select, update

from trustdesk.actions import audit
from trustdesk.actions.errors import Conflict, Invalid, NotFound
from trustdesk.actions.runtime import Runtime
from trustdesk.store.db import Tx
from trustdesk.store.models import Operator, RoutingRule, Team, TeamMember, Ticket

MAX_NAME = 40
MAX_TEAMS = 50
MAX_RULES = 200
MAX_PATTERN = 500
MAX_WIDGET_VALUE = 64
MAX_KEYWORDS = 50
MAX_KEYWORD = 60
# Deleting or renaming a team re-announces at most this many tickets (newest first).
ANNOUNCE_AT_MOST = 500
RULE_KINDS = ("url", "widget", "keywords")
_SPACE_RE = re.compile(r"\s+")

# The ticket list's fragment (tickets._list_statement).
LIST_FILTER = " AND t.team_id = :team"


def clean_name(name: object) -> str:
    if not isinstance(name, str):
        raise Invalid("name must be a string", "invalid_team_name", field="name")
    name = _SPACE_RE.sub(" ", "".join(c for c in name if c.isprintable() or c == " ")).strip()
    if not 1 <= len(name) <= MAX_NAME:
        raise Invalid(f"name must have 1-{MAX_NAME} characters", "invalid_team_name", field="name")
    return name


def _key(name: str) -> str:
    return name.lower()


def fold(text: str) -> str:
    """Text compared by the rules: case-folded, "ё" as "е", spaces collapsed."""
    return _SPACE_RE.sub(" ", text.casefold().replace("ё", "е")).strip()


def keywords_of(pattern: str) -> list[str]:
    return [k for k in (fold(p) for p in pattern.split(",")) if k]


def clean_rule(kind: object, pattern: object) -> tuple[str, str]:
    if kind not in RULE_KINDS:
        raise Invalid("kind: must be url, widget or keywords", "invalid_rule", field="kind")
    if not isinstance(pattern, str):
        raise Invalid("pattern must be a string", "invalid_rule", field="pattern")
    pattern = "".join(c for c in pattern if c.isprintable()).strip()
    if not 1 <= len(pattern) <= MAX_PATTERN:
        raise Invalid(
            f"pattern must have 1-{MAX_PATTERN} characters", "invalid_rule", field="pattern"
        )
    if kind == "widget" and len(pattern) > MAX_WIDGET_VALUE:
        raise Invalid(
            f"data-team has at most {MAX_WIDGET_VALUE} characters", "invalid_rule", field="pattern"
        )
    if kind == "keywords":
        words = keywords_of(pattern)
        if not words or len(words) > MAX_KEYWORDS or any(len(w) > MAX_KEYWORD for w in words):
            raise Invalid(
                f"keywords: 1-{MAX_KEYWORDS} words separated by commas, each at most "
                f"{MAX_KEYWORD} characters",
                "invalid_rule",
                field="pattern",
            )
        pattern = ", ".join(p.strip() for p in pattern.split(",") if p.strip())
    return str(kind), pattern


def rule_matches(
    kind: str, pattern: str, page_url: str | None, team: str | None, text: str
) -> bool:
    """Does one rule match a new ticket's page URL, widget `data-team` and first message?"""
    if kind == "url":
        if not page_url:
            return False
        url, pat = page_url.lower(), pattern.lower()
        if "*" in pat or "?" in pat:
            return fnmatch.fnmatchcase(url, pat)
        return pat in url
    if kind == "widget":
        return team is not None and fold(team) == fold(pattern)
    if kind == "keywords":
        folded = fold(text)
        return bool(folded) and any(k in folded for k in keywords_of(pattern))
    return False


def choose(
    rules: Iterable[RoutingRule], page_url: str | None, team: str | None, text: str
) -> RoutingRule | None:
    """The first rule (in the given order) that matches."""
    for r in rules:
        if rule_matches(r.kind, r.pattern, page_url, team, text):
            return r
    return None


# ---------------------------------------------------------------- reads


async def _members(session: Any, team_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    out: dict[int, list[dict[str, Any]]] = {tid: [] for tid in team_ids}
    if not team_ids:
        return out
    rows = (
        await session.execute(
            select(TeamMember.team_id, Operator.id, Operator.display_name)
            .join(Operator, Operator.id == TeamMember.operator_id)
            .where(TeamMember.team_id.in_(team_ids))
            .order_by(Operator.display_name, Operator.id)
        )
    ).all()
    for tid, oid, name in rows:
        out[tid].append({"id": oid, "name": name})
    return out


def team_json(team: Team, members: list[dict[str, Any]], open_tickets: int = 0) -> dict[str, Any]:
    return {"id": team.id, "name": team.name, "members": members, "open_tickets": open_tickets}


async def list_teams(rt: Runtime) -> list[dict[str, Any]]:
    """Every team by name, with its members and its number of open tickets."""
    async with rt.store.read() as session:
        teams = list((await session.scalars(select(Team).order_by(Team.name_key))).all())
        members = await _members(session, [t.id for t in teams])
        counts = dict(
            (
                await session.execute(
                    select(Ticket.team_id, func.count(Ticket.id))
                    .where(Ticket.team_id.is_not(None), Ticket.status == "open")
                    .group_by(Ticket.team_id)
                )
            ).all()
        )
    return [team_json(t, members[t.id], int(counts.get(t.id, 0))) for t in teams]


async def _one(tx: Tx, team_id: int) -> dict[str, Any]:
    team = await tx.session.get(Team, team_id)
    assert team is not None
    open_n = await tx.session.scalar(
        select(func.count(Ticket.id)).where(Ticket.team_id == team_id, Ticket.status == "open")
    )
    return team_json(team, (await _members(tx.session, [team_id]))[team_id], int(open_n or 0))


# ---------------------------------------------------------------- teams (admins)


async def _check_free(tx: Tx, key: str, but: int | None = None) -> None:
    q = select(Team.id).where(Team.name_key == key)
    if but is not None:
        q = q.where(Team.id != but)
    if await tx.session.scalar(q) is not None:
        raise Conflict("a team with this name exists", "team_exists", field="name")


async def _team(tx: Tx, team_id: int, field: str | None = None) -> Team:
    team = await tx.session.get(Team, team_id)
    if team is None:
        raise NotFound("no such team", "team_not_found", field=field)
    return team


async def _clean_members(tx: Tx, operator_ids: object) -> list[int]:
    if not isinstance(operator_ids, list) or len(operator_ids) > 1000:
        raise Invalid("members: a list of operator ids", "invalid_members", field="members")
    ids = sorted({i for i in operator_ids if isinstance(i, int) and not isinstance(i, bool)})
    if len(ids) != len(set(operator_ids)):
        raise Invalid("members: a list of operator ids", "invalid_members", field="members")
    if ids:
        found = set(
            (
                await tx.session.scalars(
                    select(Operator.id).where(Operator.id.in_(ids), Operator.active.is_(True))
                )
            ).all()
        )
        if found != set(ids):
            raise NotFound("no such operator", "operator_not_found", field="members")
    return ids


async def _announce(tx: Tx, team_id: int) -> None:
    ids = (
        await tx.session.scalars(
            select(Ticket.id)
            .where(Ticket.team_id == team_id)
            .order_by(Ticket.updated_at.desc())
            .limit(ANNOUNCE_AT_MOST)
        )
    ).all()
    for tid in ids:
        tx.emit("operators", {"type": "ticket_changed", "ticket_ref": tid})


async def create_team(rt: Runtime, name: object, members: object = None) -> dict[str, Any]:
    name = clean_name(name)
    async with rt.store.transaction() as tx:
        await tx.lock_scope("teams")
        await _check_free(tx, _key(name))
        if (await tx.session.scalar(select(func.count(Team.id))) or 0) >= MAX_TEAMS:
            raise Conflict(f"at most {MAX_TEAMS} teams", "too_many_teams")
        ids = await _clean_members(tx, members if members is not None else [])
        team = Team(name=name, name_key=_key(name))
        tx.session.add(team)
        await tx.session.flush()
        for oid in ids:
            tx.session.add(TeamMember(team_id=team.id, operator_id=oid))
        await tx.session.flush()
        audit.record(tx, "team.created", name, {"id": team.id, "members": ids})
        return await _one(tx, team.id)


async def update_team(
    rt: Runtime, team_id: int, name: object = None, members: object = None
) -> dict[str, Any]:
    """Rename and/or set the members (the whole list)."""
    new_name = None if name is None else clean_name(name)
    async with rt.store.transaction() as tx:
        await tx.lock_scope("teams")
        team = await _team(tx, team_id)
        details: dict[str, Any] = {"id": team.id}
        if new_name is not None and new_name != team.name:
            await _check_free(tx, _key(new_name), but=team.id)
            details["name"] = {"from": team.name, "to": new_name}
            team.name, team.name_key = new_name, _key(new_name)
            await _announce(tx, team.id)
        if members is not None:
            ids = await _clean_members(tx, members)
            had = set(
                (
                    await tx.session.scalars(
                        select(TeamMember.operator_id).where(TeamMember.team_id == team.id)
                    )
                ).all()
            )
            gone = had - set(ids)
            if gone:
                await tx.session.execute(
                    delete(TeamMember).where(
                        TeamMember.team_id == team.id, TeamMember.operator_id.in_(gone)
                    )
                )
            for oid in sorted(set(ids) - had):
                tx.session.add(TeamMember(team_id=team.id, operator_id=oid))
            details["members"] = ids
        await tx.session.flush()
        audit.record(tx, "team.changed", team.name, details)
        return await _one(tx, team.id)


async def delete_team(rt: Runtime, team_id: int) -> None:
    """Delete a team: its rules go with it, its tickets are left without a team."""
    async with rt.store.transaction() as tx:
        await tx.lock_scope("teams")
        team = await _team(tx, team_id)
        audit.record(tx, "team.deleted", team.name, {"id": team.id})
        await _announce(tx, team.id)
        await tx.session.execute(
            update(Ticket).where(Ticket.team_id == team.id).values(team_id=None)
        )
        await tx.session.execute(delete(RoutingRule).where(RoutingRule.team_id == team.id))
        await tx.session.execute(delete(TeamMember).where(TeamMember.team_id == team.id))
        await tx.session.delete(team)


# ---------------------------------------------------------------- rules (admins)


def rule_json(r: RoutingRule, team_name: str) -> dict[str, Any]:
    return {
        "id": r.id,
        "position": r.position,
        "kind": r.kind,
        "pattern": r.pattern,
        "team": {"id": r.team_id, "name": team_name},
    }


async def _rules(session: Any) -> list[dict[str, Any]]:
    rows = (
        await session.execute(
            select(RoutingRule, Team.name)
            .join(Team, Team.id == RoutingRule.team_id)
            .order_by(RoutingRule.position, RoutingRule.id)
        )
    ).all()
    return [rule_json(r, name) for r, name in rows]


async def list_rules(rt: Runtime) -> list[dict[str, Any]]:
    async with rt.store.read() as session:
        return await _rules(session)


async def ordered_rules(tx: Tx) -> list[RoutingRule]:
    """The rules in the order they are tried (routing a new ticket)."""
    return list(
        (
            await tx.session.scalars(
                select(RoutingRule).order_by(RoutingRule.position, RoutingRule.id).limit(MAX_RULES)
            )
        ).all()
    )


async def _renumber(tx: Tx, ids: list[int]) -> None:
    for pos, rid in enumerate(ids, start=1):
        await tx.session.execute(
            update(RoutingRule).where(RoutingRule.id == rid).values(position=pos)
        )


async def _rule_ids(tx: Tx) -> list[int]:
    return list(
        (
            await tx.session.scalars(
                select(RoutingRule.id).order_by(RoutingRule.position, RoutingRule.id)
            )
        ).all()
    )


async def create_rule(
    rt: Runtime, kind: object, pattern: object, team_id: int, position: int | None = None
) -> dict[str, Any]:
    """A new rule, last (or at `position`, 1 = tried first)."""
    kind, pattern = clean_rule(kind, pattern)
    async with rt.store.transaction() as tx:
        await tx.lock_scope("teams")
        team = await _team(tx, team_id, field="team_id")
        ids = await _rule_ids(tx)
        if len(ids) >= MAX_RULES:
            raise Conflict(f"at most {MAX_RULES} rules", "too_many_rules")
        rule = RoutingRule(kind=kind, pattern=pattern, team_id=team.id, position=len(ids) + 1)
        tx.session.add(rule)
        await tx.session.flush()
        if position is not None:
            at = max(0, min(len(ids), position - 1))
            await _renumber(tx, [*ids[:at], rule.id, *ids[at:]])
            await tx.session.refresh(rule)
        audit.record(tx, "routing_rule.created", pattern, {"kind": kind, "team": team.name})
        return rule_json(rule, team.name)


async def update_rule(
    rt: Runtime,
    rule_id: int,
    kind: object = None,
    pattern: object = None,
    team_id: int | None = None,
) -> dict[str, Any]:
    async with rt.store.transaction() as tx:
        await tx.lock_scope("teams")
        rule = await tx.session.get(RoutingRule, rule_id)
        if rule is None:
            raise NotFound("no such rule", "rule_not_found")
        new_kind, new_pattern = clean_rule(
            rule.kind if kind is None else kind, rule.pattern if pattern is None else pattern
        )
        if team_id is not None:
            rule.team_id = (await _team(tx, team_id, field="team_id")).id
        rule.kind, rule.pattern = new_kind, new_pattern
        await tx.session.flush()
        team = await _team(tx, rule.team_id)
        audit.record(tx, "routing_rule.changed", new_pattern, {"kind": new_kind, "team": team.name})
        return rule_json(rule, team.name)


async def delete_rule(rt: Runtime, rule_id: int) -> None:
    async with rt.store.transaction() as tx:
        await tx.lock_scope("teams")
        rule = await tx.session.get(RoutingRule, rule_id)
        if rule is None:
            raise NotFound("no such rule", "rule_not_found")
        audit.record(tx, "routing_rule.deleted", rule.pattern, {"kind": rule.kind})
        await tx.session.delete(rule)
        await tx.session.flush()
        await _renumber(tx, await _rule_ids(tx))


async def order_rules(rt: Runtime, ids: object) -> list[dict[str, Any]]:
    """Set the order: `ids` must be every rule's id, once, first tried first."""
    async with rt.store.transaction() as tx:
        await tx.lock_scope("teams")
        have = await _rule_ids(tx)
        if not isinstance(ids, list) or sorted(ids) != sorted(have) or len(set(ids)) != len(ids):
            raise Invalid("ids: every rule's id, once each", "invalid_order", field="ids")
        await _renumber(tx, ids)
        await tx.session.flush()
        tx.session.expire_all()
        return await _rules(tx.session)


# ---------------------------------------------------------------- membership reads


async def member_ids(tx: Tx, team_id: int) -> set[int]:
    return set(
        (
            await tx.session.scalars(
                select(TeamMember.operator_id).where(TeamMember.team_id == team_id)
            )
        ).all()
    )


async def team_name(tx: Tx, team_id: int | None) -> str | None:
    if team_id is None:
        return None
    return await tx.session.scalar(select(Team.name).where(Team.id == team_id))
