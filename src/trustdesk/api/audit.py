"""The audit log, for admins (/api/admin/audit): who signed in, changed a setting, deleted
or exported data (actions/audit.py writes it)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from trustdesk.actions import audit
from trustdesk.api import schemas as s
from trustdesk.api.admin import ERRORS
from trustdesk.api.deps import AdminDep, RuntimeDep

router = APIRouter(prefix="/api/admin", tags=["audit"])


@router.get("/audit", response_model=s.AuditOut, responses=ERRORS)
async def audit_log(
    auth: AdminDep,
    rt: RuntimeDep,
    limit: Annotated[int, Query(ge=1, le=audit.MAX_PAGE)] = 50,
    before: Annotated[int | None, Query(ge=1, le=2**62)] = None,
    action: Annotated[str | None, Query(max_length=40)] = None,
    actor: Annotated[int | None, Query(ge=1, le=2**62)] = None,
) -> s.AuditOut:
    """Newest first, `limit` at a time; `next` is the `before` of the next page (null at
    the end). `action`: a code ("login.failed") or a group ("login."); `actor`: an
    operator id."""
    rows, nxt = await audit.entries(rt, limit, before, action or None, actor)
    return s.AuditOut(entries=[s.AuditEntryOut(**r) for r in rows], next=nxt)
