"""An operator's own account: forgot / reset / change password, two-factor login (TOTP).

Every password or code checked here is counted by the login guard first (the same budget
as /api/admin/login, api/login_guard.py), so none of these is a side door for guessing.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field

from trustdesk.actions import accounts, audit, operators
from trustdesk.actions import email as mail
from trustdesk.actions.errors import Conflict, Invalid, Unauthorized
from trustdesk.actions.operators import (
    PASSWORD_MAX_CHARS,
    PASSWORD_MIN_CHARS,
    Authenticated,
    operator_json,
    start_session,
    verify_password,
)
from trustdesk.actions.runtime import Runtime
from trustdesk.api import schemas as s
from trustdesk.api.deps import (
    SESSION_COOKIE,
    AdminDep,
    AnonymousDep,
    OperatorDep,
    RuntimeDep,
    client_ip,
)
from trustdesk.api.limits import limits
from trustdesk.api.ratelimit import TokenBucket

router = APIRouter(prefix="/api/admin", tags=["operator"])
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": s.ErrorOut} for code in (400, 401, 403, 404, 409, 413, 422, 429)
}
# Public (no session): the login screen's links and steps. Listed for the auth tests.
PUBLIC_PATHS = frozenset(
    {"/api/admin/password/rules", "/api/admin/password/forgot", "/api/admin/password/reset",
     "/api/admin/login/totp"}
)  # fmt: skip
# A password field is bounded here; the rule itself (and its message) is check_password_rules.
Password = Field(min_length=1, max_length=1024)
Code = Field(min_length=1, max_length=32)


class PasswordRulesOut(BaseModel):
    min_length: int
    max_length: int
    reset_minutes: int  # how long a reset link works
    smtp: bool  # whether "forgot password" can send a link (else: `trustdesk reset-password`)


class ForgotIn(s.In):
    email: str = Field(min_length=1, max_length=254)


class ForgotOut(BaseModel):
    sent: bool
    smtp: bool


class ResetIn(s.In):
    token: str = Field(min_length=1, max_length=128)
    password: str = Password


class ChangeIn(s.In):
    current: str = Password
    password: str = Password


class CodeIn(s.In):
    code: str = Code


class DisableIn(s.In):
    password: str = Password


class TotpLoginIn(s.In):
    pending: str = Field(min_length=1, max_length=200)
    code: str = Code


class TotpRequiredOut(BaseModel):
    totp_required: bool = True
    pending: str  # for POST /api/admin/login/totp, valid 5 minutes


class SetupOut(BaseModel):
    secret: str
    otpauth_uri: str
    qr_svg: str  # a data: URI of the QR code (SVG)


class RecoveryCodesOut(BaseModel):
    recovery_codes: list[str]


class SecurityIn(s.In):
    require_2fa: bool


class SecurityOut(BaseModel):
    require_2fa: bool


class AccountOut(BaseModel):
    operator: s.OperatorOut
    totp_enabled: bool
    recovery_codes_left: int
    require_2fa: bool
    password_min_length: int
    password_max_length: int


_forgot_buckets: dict[int, TokenBucket] = {}


def _forgot_bucket(rt: Runtime) -> TokenBucket:
    key = id(rt)
    if key not in _forgot_buckets:
        n = rt.settings.password_resets_per_hour_per_ip
        _forgot_buckets[key] = TokenBucket(n / 60, n)
    return _forgot_buckets[key]


def set_session_cookie(response: Response, rt: Runtime, sid: str) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        sid,
        httponly=True,
        samesite="lax",
        secure=rt.settings.cookie_secure,
        max_age=rt.settings.session_ttl_hours * 3600,
        path="/",
    )


def totp_required(rt: Runtime, op: Any) -> TotpRequiredOut:
    """The login's answer when the password was right and TOTP is on: no session yet."""
    return TotpRequiredOut(pending=accounts.pending_ticket(rt.settings, op))


async def _check_password(request: Request, rt: Runtime, auth: Authenticated, pw: str) -> None:
    """The operator's own password, counted like a login attempt; 422 naming the field."""
    guard = limits(rt).login
    attempt = await guard.reserve(client_ip(request), auth.operator.email)
    if not await verify_password(auth.operator.password_hash, pw):
        guard.failed(attempt)
        field = "current" if request.url.path.endswith("/change") else "password"
        raise Invalid("the current password is wrong", "wrong_password", field)
    await guard.succeeded(attempt)


# ------------------------------------------------------------------ public: the login screen


@router.get("/password/rules", response_model=PasswordRulesOut, responses=ERRORS)
async def password_rules(rt: RuntimeDep) -> PasswordRulesOut:
    return PasswordRulesOut(
        min_length=PASSWORD_MIN_CHARS,
        max_length=PASSWORD_MAX_CHARS,
        reset_minutes=rt.settings.password_reset_minutes,
        smtp=mail.enabled(rt.settings),
    )


@router.post(
    "/password/forgot",
    status_code=202,
    response_model=ForgotOut,
    responses=ERRORS,
    dependencies=[AnonymousDep],
)
async def forgot(body: ForgotIn, request: Request, rt: RuntimeDep) -> ForgotOut:
    """Mail a reset link if the email is an operator's. The answer is the same either way."""
    _forgot_bucket(rt).check(client_ip(request), "too many reset requests, try again later")
    sent = accounts.request_reset(rt, body.email)
    return ForgotOut(sent=sent, smtp=mail.enabled(rt.settings))


@router.post("/password/reset", response_model=s.Ok, responses=ERRORS, dependencies=[AnonymousDep])
async def reset(body: ResetIn, request: Request, rt: RuntimeDep) -> s.Ok:
    """A new password with the link's token; ends every session of that operator."""
    guard = limits(rt).login
    attempt = await guard.reserve(client_ip(request), "password-reset-link")
    try:
        await accounts.reset_password(rt, body.token, body.password)
    except Invalid as exc:
        if exc.field == "token":
            guard.failed(attempt)
        else:
            await guard.succeeded(attempt)  # a too-short password guesses nothing
        raise
    await guard.succeeded(attempt)
    return s.Ok()


@router.post(
    "/login/totp", response_model=s.LoginOut, responses=ERRORS, dependencies=[AnonymousDep]
)
async def login_totp(
    body: TotpLoginIn, request: Request, response: Response, rt: RuntimeDep
) -> s.LoginOut:
    """The login's second step: the pending ticket from /login and a code (TOTP, or a
    recovery code, once)."""
    op = await accounts.pending_operator(rt, body.pending)
    if op is None:
        raise Unauthorized("the login has expired: enter the password again", "login_expired")
    guard = limits(rt).login
    attempt = await guard.reserve(client_ip(request), op.email)
    if not await accounts.check_second_factor(rt, op.id, body.code):
        guard.failed(attempt)
        await audit.record_alone(rt, "login.2fa_failed", op.email, actor=audit.of(op))
        raise Unauthorized("the code is wrong or was used already", "bad_code")
    await guard.succeeded(attempt)
    sid, csrf = await start_session(rt, op)
    set_session_cookie(response, rt, sid)
    return s.LoginOut(operator=s.OperatorOut(**operator_json(op)), csrf_token=csrf)


# ------------------------------------------------------------------ signed in


@router.get("/account", response_model=AccountOut, responses=ERRORS)
async def account(auth: OperatorDep, rt: RuntimeDep) -> AccountOut:
    op = await accounts.load(rt, auth.operator.id)
    return AccountOut(
        operator=s.OperatorOut(**operator_json(op)),
        totp_enabled=op.totp_enabled_at is not None,
        recovery_codes_left=await accounts.recovery_codes_left(rt, op.id),
        require_2fa=(await accounts.security(rt))["require_2fa"],
        password_min_length=PASSWORD_MIN_CHARS,
        password_max_length=PASSWORD_MAX_CHARS,
    )


@router.post("/account/gender", response_model=s.OperatorOneOut, responses=ERRORS)
async def set_gender(body: s.GenderIn, auth: OperatorDep, rt: RuntimeDep) -> s.OperatorOneOut:
    """The operator's own grammatical gender (female / male / null: unset), which the
    notices about them agree with ("Мария подключилась")."""
    op = await operators.set_gender(rt, auth.operator.id, body.gender)
    return s.OperatorOneOut(operator=s.OperatorOut(**operator_json(op)))


@router.post("/password/change", response_model=s.Ok, responses=ERRORS)
async def change(body: ChangeIn, request: Request, auth: OperatorDep, rt: RuntimeDep) -> s.Ok:
    """A new password, given the current one: this session stays, the others end."""
    if not auth.session_hash:
        raise Invalid("sign in with a password to change it", "session_required")
    await _check_password(request, rt, auth, body.current)
    await accounts.change_password(rt, auth.operator.id, body.password, auth.session_hash)
    return s.Ok()


@router.post("/2fa/setup", response_model=SetupOut, responses=ERRORS)
async def totp_setup(auth: OperatorDep, rt: RuntimeDep) -> SetupOut:
    return SetupOut(**await accounts.totp_setup(rt, auth.operator.id))


@router.post("/2fa/enable", response_model=RecoveryCodesOut, responses=ERRORS)
async def totp_enable(
    body: CodeIn, request: Request, auth: OperatorDep, rt: RuntimeDep
) -> RecoveryCodesOut:
    guard = limits(rt).login
    attempt = await guard.reserve(client_ip(request), auth.operator.email)
    try:
        codes = await accounts.totp_enable(rt, auth.operator.id, body.code)
    except Invalid:
        guard.failed(attempt)
        raise
    await guard.succeeded(attempt)
    return RecoveryCodesOut(recovery_codes=codes)


@router.post("/2fa/disable", response_model=s.Ok, responses=ERRORS)
async def totp_disable(
    body: DisableIn, request: Request, auth: OperatorDep, rt: RuntimeDep
) -> s.Ok:
    await _check_password(request, rt, auth, body.password)
    await accounts.totp_disable(rt, auth.operator.id)
    return s.Ok()


@router.put("/security", response_model=SecurityOut, responses=ERRORS)
async def set_security(body: SecurityIn, auth: AdminDep, rt: RuntimeDep) -> SecurityOut:
    """Admins only: require two-factor login of every operator (those without it are sent
    to its setup after they log in, and cannot turn it off). Only an admin who has it
    themselves may require it: otherwise the requirement would lock them out at once."""
    if body.require_2fa and auth.operator.totp_enabled_at is None:
        raise Conflict(
            "set up your own two-factor login before requiring it of everyone",
            "totp_setup_first",
        )
    return SecurityOut(**await accounts.set_require_2fa(rt, body.require_2fa))
