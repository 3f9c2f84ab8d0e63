"""Operators, their passwords (argon2id) and server-side revocable sessions."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select, update

from trustdesk.actions import audit, texts
from trustdesk.actions.errors import Conflict, Invalid, NotFound, Unauthorized
from trustdesk.actions.runtime import Runtime
from trustdesk.store.db import Tx
from trustdesk.store.models import Operator, OperatorSession, utcnow
from trustdesk.store.raw import Row, Sql, as_loaded, to_dt

_hasher = PasswordHasher()  # argon2id with the library's current recommended parameters
# Verified against when the email is unknown, so timing does not reveal which emails exist.
_DUMMY_HASH = _hasher.hash("not a real password")
ROLES = frozenset({"admin", "agent"})
# One argon2 hash takes tens of milliseconds of CPU and 64 MiB. On the event loop a burst
# of logins stalled every request of the process (/healthz took 1.7-3.5 s); argon2-cffi
# releases the GIL, so they run here instead, two at a time (bounded CPU and memory).
_argon2_pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="argon2")


async def hash_password(password: str) -> str:
    """The argon2id hash of `password`, computed off the event loop."""
    return await asyncio.get_running_loop().run_in_executor(_argon2_pool, _hasher.hash, password)


def _matches(stored_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(stored_hash, password)
    except (VerificationError, InvalidHashError):  # VerifyMismatchError is one of these
        return False


async def verify_password(stored_hash: str, password: str) -> bool:
    """Whether `password` matches `stored_hash`, checked off the event loop."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_argon2_pool, _matches, stored_hash, password)


# The one password rule: stated in every form that sets a password and in every 422.
PASSWORD_MIN_CHARS = 8
PASSWORD_MAX_CHARS = 256


def check_password_rules(password: str, field: str = "password") -> None:
    if not isinstance(password, str) or len(password) < PASSWORD_MIN_CHARS:
        raise Invalid(
            f"Пароль: не короче {PASSWORD_MIN_CHARS} символов"
            f" (password: at least {PASSWORD_MIN_CHARS} characters)",
            "weak_password",
            field,
        )
    if len(password) > PASSWORD_MAX_CHARS:
        raise Invalid(
            f"Пароль: не длиннее {PASSWORD_MAX_CHARS} символов"
            f" (password: at most {PASSWORD_MAX_CHARS} characters)",
            "invalid_password",
            field,
        )


class SecondFactorNeeded(Exception):  # noqa: N818 - not an error: the login's second step
    """The password was right and the operator has TOTP on: no session until the code."""

    def __init__(self, operator: Operator) -> None:
        super().__init__("second factor needed")
        self.operator = operator


def operator_json(op: Operator) -> dict[str, Any]:
    return {
        "id": op.id,
        "email": op.email,
        "name": op.display_name,
        "role": op.role,
        "active": op.active,
        "gender": op.gender,
    }


def _sid_hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


@dataclass
class Authenticated:
    operator: Operator
    session_hash: str
    csrf_token: str


async def create_operator(
    rt: Runtime,
    email: str,
    name: str,
    password: str,
    role: str = "agent",
    gender: str | None = None,
) -> Operator:
    email = email.strip().lower()
    name = name.strip()
    if not email or "@" not in email or len(email) > 254:
        raise Invalid("a valid email is required", "invalid_email")
    if not name or len(name) > rt.settings.max_name_chars:
        raise Invalid("name must have 1-100 characters", "invalid_name")
    if role not in ROLES:
        raise Invalid("role must be admin or agent", "invalid_role")
    _check_gender(gender)
    check_password_rules(password)
    password_hash = await hash_password(password)  # before the transaction: not under its lock
    async with rt.store.transaction() as tx:
        exists = await tx.session.scalar(select(Operator.id).where(Operator.email == email))
        if exists is not None:
            raise Conflict("an operator with this email exists", "email_taken")
        op = Operator(
            email=email, display_name=name, password_hash=password_hash, role=role, gender=gender
        )
        tx.session.add(op)
        await tx.session.flush()
        audit.record(tx, "operator.created", email, {"id": op.id, "name": name, "role": role})
    return op


async def count_operators(rt: Runtime) -> int:
    async with rt.store.read() as session:
        return int(await session.scalar(select(func.count(Operator.id))) or 0)


async def list_operators(rt: Runtime) -> list[Operator]:
    async with rt.store.read() as session:
        return list((await session.scalars(select(Operator).order_by(Operator.id))).all())


async def get_operator(rt: Runtime, operator_id: int) -> Operator:
    async with rt.store.read() as session:
        op = await session.get(Operator, operator_id)
    if op is None:
        raise NotFound("no such operator")
    return op


async def login(rt: Runtime, email: str, password: str) -> tuple[Operator, str, str]:
    """Returns (operator, session id for the cookie, csrf token). A fresh session every time.
    Raises SecondFactorNeeded instead when the operator has TOTP on (actions/accounts.py)."""
    email = (email or "").strip().lower()
    async with rt.store.read() as session:
        op = await session.scalar(select(Operator).where(Operator.email == email))
    ok = await verify_password(op.password_hash if op else _DUMMY_HASH, password)
    if not ok or op is None or not op.active:
        await audit.record_alone(rt, "login.failed", audit.plausible_email(email))
        raise Unauthorized("wrong email or password", "bad_credentials")
    if op.totp_enabled_at is not None:
        raise SecondFactorNeeded(op)
    sid, csrf = await start_session(rt, op, password)
    return op, sid, csrf


async def start_session(rt: Runtime, op: Operator, password: str | None = None) -> tuple[str, str]:
    """A new server-side session for `op` (checked already): (session id, csrf token).
    With the password just checked, an outdated argon2 hash is upgraded on the way."""
    sid = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(32)
    rehashed = None
    if password is not None and _hasher.check_needs_rehash(op.password_hash):
        rehashed = await hash_password(password)
    async with rt.store.transaction() as tx:
        tx.session.add(
            OperatorSession(
                id_hash=_sid_hash(sid),
                operator_id=op.id,
                csrf_token=csrf,
                expires_at=utcnow() + timedelta(hours=rt.settings.session_ttl_hours),
            )
        )
        if rehashed is not None:
            fresh = await tx.session.get(Operator, op.id)
            if fresh is not None:
                fresh.password_hash = rehashed
        audit.record(tx, "login" if password else "login.2fa", op.email, actor=audit.of(op))
    return sid, csrf


# Every operator request runs this: on the driver (store/raw.py).
_AUTHENTICATE = Sql(
    "SELECT s.revoked, s.expires_at, s.csrf_token,"
    " o.id, o.email, o.display_name, o.password_hash, o.role, o.active, o.created_at,"
    " o.totp_enabled_at, o.gender"
    " FROM sessions s JOIN operators o ON o.id = s.operator_id WHERE s.id_hash = :h"
)


async def _session_row(rt: Runtime, session_hash: str) -> Row | None:
    async with rt.store.raw_read() as raw:
        row = await raw.first(_AUTHENTICATE, {"h": session_hash})
    if row is None or row[0] or not row[8] or to_dt(row[1]) <= utcnow():
        return None  # revoked, operator deactivated, or expired
    return row


async def authenticate(rt: Runtime, session_id: str | None) -> Authenticated | None:
    if not session_id or len(session_id) > 128:
        return None
    h = _sid_hash(session_id)
    row = await _session_row(rt, h)
    if row is None:
        return None
    op = as_loaded(  # as if loaded by a session that has closed
        Operator,
        {
            "id": row[3],
            "email": row[4],
            "display_name": row[5],
            "password_hash": row[6],
            "role": row[7],
            "active": bool(row[8]),
            "created_at": to_dt(row[9]),
            "totp_enabled_at": to_dt(row[10]) if row[10] is not None else None,
            "gender": row[11],
        },
    )
    return Authenticated(operator=op, session_hash=h, csrf_token=row[2])


async def session_valid(rt: Runtime, session_hash: str) -> bool:
    return await _session_row(rt, session_hash) is not None


async def logout(rt: Runtime, session_hash: str, operator_id: int) -> None:
    async with rt.store.transaction() as tx:
        await tx.session.execute(
            update(OperatorSession)
            .where(OperatorSession.id_hash == session_hash)
            .values(revoked=True)
        )
        audit.record(tx, "logout")
        tx.emit(
            "operators",
            {"type": "session_revoked", "session_hash": session_hash, "operator_id": operator_id},
        )


async def set_active(rt: Runtime, operator_id: int, active: bool) -> Operator:
    async with rt.store.transaction() as tx:
        op = await tx.session.get(Operator, operator_id)
        if op is None:
            raise NotFound("no such operator")
        op.active = active
        audit.record(tx, "operator.activated" if active else "operator.deactivated", op.email)
        if not active:
            await tx.session.execute(
                update(OperatorSession)
                .where(OperatorSession.operator_id == operator_id)
                .values(revoked=True)
            )
            tx.emit(
                "operators",
                {"type": "session_revoked", "operator_id": operator_id, "session_hash": None},
            )
    return op


async def set_role(rt: Runtime, operator_id: int, role: str) -> Operator:
    """Make an operator an admin or an agent. The last active admin stays one (409), so an
    installation is never left with nobody who can manage it."""
    if role not in ("admin", "agent"):
        raise Invalid("role must be admin or agent", "invalid_role", field="role")
    async with rt.store.transaction() as tx:
        op = await tx.session.get(Operator, operator_id)
        if op is None:
            raise NotFound("no such operator")
        if op.role == role:
            return op
        if op.role == "admin" and op.active:
            admins = await tx.session.scalar(
                select(func.count(Operator.id)).where(
                    Operator.role == "admin", Operator.active.is_(True)
                )
            )
            if (admins or 0) <= 1:
                raise Conflict("the last admin cannot become an agent", "last_admin")
        change = {"changed": ["role"], "old": {"role": op.role}, "new": {"role": role}}
        audit.record(tx, "operator.role", op.email, change)
        op.role = role
    return op


def _check_gender(gender: str | None) -> None:
    if gender is not None and gender not in texts.GENDERS:
        raise Invalid("gender must be female, male or null", "invalid_gender", field="gender")


async def set_gender(rt: Runtime, operator_id: int, gender: str | None) -> Operator:
    """The operator's grammatical gender ("female" | "male" | None: unset), which notices
    about them agree with (actions/texts.py); set by themselves or by an admin."""
    _check_gender(gender)
    async with rt.store.transaction() as tx:
        op = await tx.session.get(Operator, operator_id)
        if op is None:
            raise NotFound("no such operator")
        op.gender = gender
    return op


async def set_password(rt: Runtime, operator_id: int, password: str) -> Operator:
    check_password_rules(password)
    password_hash = await hash_password(password)  # before the transaction: not under its lock
    async with rt.store.transaction() as tx:
        op = await tx.session.get(Operator, operator_id)
        if op is None:
            raise NotFound("no such operator")
        op.password_hash = password_hash
        audit.record(tx, "password.set", op.email)
        # A reset ends every session of that operator.
        await end_sessions(tx, operator_id)
    return op


async def end_sessions(tx: Tx, operator_id: int, keep: str | None = None) -> None:
    """Revoke every session of the operator (but `keep`, a session hash); open sockets
    hear of it after the commit and close."""
    live = (OperatorSession.operator_id == operator_id, OperatorSession.revoked.is_(False))
    if keep is None:
        await tx.session.execute(update(OperatorSession).where(*live).values(revoked=True))
        ended: list[str | None] = [None]  # None: every socket of the operator closes
    else:
        # Named one by one, so the socket of the session that stays stays open.
        rows = await tx.session.scalars(
            select(OperatorSession.id_hash).where(*live, OperatorSession.id_hash != keep)
        )
        ended = list(rows.all())
        if ended:
            await tx.session.execute(
                update(OperatorSession)
                .where(OperatorSession.id_hash.in_(ended))
                .values(revoked=True)
            )
    for session_hash in ended:
        tx.emit(
            "operators",
            {"type": "session_revoked", "operator_id": operator_id, "session_hash": session_hash},
        )
