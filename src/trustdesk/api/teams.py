"""Teams ("Отдел") and routing rules (actions/teams.py, actions/routing.py). Admins manage
teams and rules; any operator reads them and moves a ticket to a team."""

from __future__ import annotations

from fastapi import APIRouter

from trustdesk.actions import routing, teams
from trustdesk.actions.errors import Invalid
from trustdesk.api import schemas as s
from trustdesk.api.admin import ERRORS, RowId
from trustdesk.api.deps import AdminDep, OperatorDep, RuntimeDep

router = APIRouter(prefix="/api/admin", tags=["teams"])


@router.get("/teams", response_model=s.TeamsOut, responses=ERRORS)
async def list_teams(auth: OperatorDep, rt: RuntimeDep) -> s.TeamsOut:
    """Every team by name, with its members and number of open tickets."""
    return s.TeamsOut(teams=[s.TeamFull(**t) for t in await teams.list_teams(rt)])


@router.post("/teams", status_code=201, response_model=s.TeamOneOut, responses=ERRORS)
async def create_team(body: s.TeamIn, auth: AdminDep, rt: RuntimeDep) -> s.TeamOneOut:
    """A new team (admins); its name is unique whatever its case (409 team_exists)."""
    return s.TeamOneOut(team=s.TeamFull(**await teams.create_team(rt, body.name, body.members)))


@router.patch("/teams/{team_id}", response_model=s.TeamOneOut, responses=ERRORS)
async def update_team(
    team_id: RowId, body: s.TeamPatchIn, auth: AdminDep, rt: RuntimeDep
) -> s.TeamOneOut:
    """Rename and/or set the members (the whole list of operator ids)."""
    if body.name is None and body.members is None:
        raise Invalid("give a name or members", "nothing_to_change", field="name")
    out = await teams.update_team(rt, team_id, body.name, body.members)
    return s.TeamOneOut(team=s.TeamFull(**out))


@router.put("/teams/{team_id}/members", response_model=s.TeamOneOut, responses=ERRORS)
async def set_members(
    team_id: RowId, body: s.TeamMembersIn, auth: AdminDep, rt: RuntimeDep
) -> s.TeamOneOut:
    """Set the team's members (the whole list of operator ids)."""
    out = await teams.update_team(rt, team_id, members=body.members)
    return s.TeamOneOut(team=s.TeamFull(**out))


@router.delete("/teams/{team_id}", response_model=s.Ok, responses=ERRORS)
async def delete_team(team_id: RowId, auth: AdminDep, rt: RuntimeDep) -> s.Ok:
    """Delete a team (admins): its rules go too; its tickets are left without a team."""
    await teams.delete_team(rt, team_id)
    return s.Ok()


@router.post("/support/team", response_model=s.TicketOneOut, responses=ERRORS)
async def ticket_team(body: s.TicketTeamIn, auth: OperatorDep, rt: RuntimeDep) -> s.TicketOneOut:
    """Move a ticket to a team (null: none). With auto_assign, an unassigned ticket, or one
    whose assignee is not in the team, goes to the team's next available operator."""
    t = await routing.set_team(rt, auth.operator, body.ticketId, body.team_id)
    return s.TicketOneOut(ticket=s.TicketSummary(**t))


@router.get("/routing/rules", response_model=s.RulesOut, responses=ERRORS)
async def list_rules(auth: OperatorDep, rt: RuntimeDep) -> s.RulesOut:
    """The rules in the order they are tried; the first that matches chooses the team."""
    return s.RulesOut(rules=[s.RuleOut(**r) for r in await teams.list_rules(rt)])


@router.post("/routing/rules", status_code=201, response_model=s.RuleOneOut, responses=ERRORS)
async def create_rule(body: s.RuleIn, auth: AdminDep, rt: RuntimeDep) -> s.RuleOneOut:
    """A new rule: last, or at `position` (1: tried first)."""
    out = await teams.create_rule(rt, body.kind, body.pattern, body.team_id, body.position)
    return s.RuleOneOut(rule=s.RuleOut(**out))


@router.patch("/routing/rules/{rule_id}", response_model=s.RuleOneOut, responses=ERRORS)
async def update_rule(
    rule_id: RowId, body: s.RulePatchIn, auth: AdminDep, rt: RuntimeDep
) -> s.RuleOneOut:
    out = await teams.update_rule(rt, rule_id, body.kind, body.pattern, body.team_id)
    return s.RuleOneOut(rule=s.RuleOut(**out))


@router.delete("/routing/rules/{rule_id}", response_model=s.Ok, responses=ERRORS)
async def delete_rule(rule_id: RowId, auth: AdminDep, rt: RuntimeDep) -> s.Ok:
    await teams.delete_rule(rt, rule_id)
    return s.Ok()


@router.put("/routing/rules/order", response_model=s.RulesOut, responses=ERRORS)
async def order_rules(body: s.RuleOrderIn, auth: AdminDep, rt: RuntimeDep) -> s.RulesOut:
    """Set the order: every rule's id once, first tried first."""
    return s.RulesOut(rules=[s.RuleOut(**r) for r in await teams.order_rules(rt, body.ids)])
