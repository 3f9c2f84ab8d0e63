"""An operator's own account: "forgot password" by email, changing the password, and the
optional second factor (TOTP, RFC 6238, with one-time recovery codes).

What is stored is never enough to use: reset tokens and recovery codes as SHA-256, the
TOTP secret encrypted with a key derived from the server's secret key (a copy of the
database alone does not give anyone's codes). The password checks themselves (and their
rate limits) are the API's: api/account.py runs each through the login guard first.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import secrets
import smtplib
import time
from datetime import timedelta
from typing import TYPE_CHECKING

from sqlalchemy import delete, select, update

from trustdesk.actions import audit
from trustdesk.actions import email as mail
from trustdesk.actions.errors import Conflict, Forbidden, Invalid, NotFound
from trustdesk.actions.operators import check_password_rules, end_sessions, hash_password
from trustdesk.actions.runtime import Runtime
from trustdesk.config import Settings
from trustdesk.store.models import AppSetting, Operator, PasswordReset, RecoveryCode, utcnow

if TYPE_CHECKING:
    from cryptography.fernet import Fernet

log = logging.getLogger(__name__)

SECURITY_KEY = "security"  # the app_settings row: {"require_2fa": bool}
PENDING_SECONDS = 300  # between a right password and its TOTP code
RECOVERY_CODES = 10
ISSUER = "TrustDesk"
_background: set[asyncio.Task[None]] = set()  # reset mails in flight (kept referenced)


def _sha(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


# ------------------------------------------------------------------ the "security" setting


async def security(rt: Runtime) -> dict[str, bool]:
    async with rt.store.read() as session:
        row = await session.get(AppSetting, SECURITY_KEY)
    stored = json.loads(row.value) if row else {}
    return {"require_2fa": bool(stored.get("require_2fa", False))}


# Whether admins require two-factor login, as each request sees it: read from the table at
# most every few seconds per process (other processes follow within REQUIRE_2FA_TTL).
REQUIRE_2FA_TTL = 5.0
_required: dict[int, tuple[float, bool]] = {}
# What an operator without a second factor may still do when it is required: set it up.
SETUP_PATHS = frozenset(
    {"/api/admin/me", "/api/admin/logout", "/api/admin/account", "/api/admin/2fa/setup",
     "/api/admin/2fa/enable", "/api/admin/password/change", "/api/admin/password/rules"}
)  # fmt: skip


async def requires_2fa(rt: Runtime) -> bool:
    now = time.monotonic()
    cached = _required.get(id(rt))
    if cached is None or cached[0] < now:
        cached = (now + REQUIRE_2FA_TTL, (await security(rt))["require_2fa"])
        _required[id(rt)] = cached
    return cached[1]


async def enforce_required_2fa(rt: Runtime, op: Operator, path: str | None) -> None:
    """Refuse a session of an operator without TOTP while admins require it, except for
    setting it up (path None: the operator socket, refused too). The dashboard opens the
    setup for them; this makes the requirement hold for any client, not only the page."""
    if op.totp_enabled_at is not None or path in SETUP_PATHS:
        return
    if await requires_2fa(rt):
        raise Forbidden(
            "two-factor login is required here: set it up in your profile first",
            "totp_setup_required",
        )


async def set_require_2fa(rt: Runtime, required: bool) -> dict[str, bool]:
    _required.pop(id(rt), None)
    value = json.dumps({"require_2fa": bool(required)})
    async with rt.store.transaction() as tx:
        row = await tx.session.get(AppSetting, SECURITY_KEY)
        old = json.loads(row.value) if row is not None else {"require_2fa": False}
        audit.record(tx, "settings.security", SECURITY_KEY, audit.changes(old, json.loads(value)))
        if row is None:
            tx.session.add(AppSetting(key=SECURITY_KEY, value=value, updated_at=utcnow()))
        else:
            row.value, row.updated_at = value, utcnow()
    return {"require_2fa": bool(required)}


# ------------------------------------------------------------------ forgot / reset


def reset_link(settings: Settings, token: str) -> str:
    return f"{settings.public_url.rstrip('/')}/admin#/reset/{token}"


def request_reset(rt: Runtime, email: str) -> bool:
    """Start sending a reset link to `email` if it is an active operator's. Returns at once
    and the same way whoever asks (no account enumeration, not even by timing): the lookup
    and the mail happen in the background. False when this server has no SMTP."""
    if not mail.enabled(rt.settings):
        return False
    task = asyncio.create_task(_send_reset(rt, email.strip().lower()))
    _background.add(task)
    task.add_done_callback(_background.discard)
    return True


_mails_per_operator: dict[int, list[float]] = {}


def _mail_allowed(operator_id: int, per_hour: int = 3) -> bool:
    """At most `per_hour` reset mails to one operator: nobody can flood their inbox."""
    now = time.monotonic()
    recent = [t for t in _mails_per_operator.get(operator_id, []) if now - t < 3600]
    if len(recent) >= per_hour:
        return False
    _mails_per_operator[operator_id] = [*recent, now]
    return True


async def _send_reset(rt: Runtime, email: str) -> None:
    try:
        async with rt.store.read() as session:
            op = await session.scalar(select(Operator).where(Operator.email == email))
        if op is None or not op.active or not _mail_allowed(op.id):
            return
        token = secrets.token_urlsafe(32)
        minutes = rt.settings.password_reset_minutes
        async with rt.store.transaction() as tx:
            tx.session.add(
                PasswordReset(
                    token_hash=_sha(token),
                    operator_id=op.id,
                    expires_at=utcnow() + timedelta(minutes=minutes),
                )
            )
            audit.record(tx, "password.reset_requested", op.email)
        body = (
            f"Здравствуйте, {op.display_name}!\n\n"
            f"Чтобы задать новый пароль TrustDesk, откройте ссылку (действует {minutes} мин.,"
            f" один раз):\n\n{reset_link(rt.settings, token)}\n\n"
            "Если вы не просили сменить пароль, просто удалите это письмо: пароль останется"
            " прежним.\n\n"
            f"To set a new TrustDesk password open the link above (valid {minutes} minutes,"
            " once). If you did not ask for it, ignore this email."
        )
        await mail.send(
            rt.settings, op.email, "TrustDesk: новый пароль", body, rt.settings.smtp_from
        )
    except (OSError, smtplib.SMTPException) as exc:
        log.warning("password reset mail failed: %s", exc)
    except Exception:
        log.exception("password reset mail failed")


async def reset_password(rt: Runtime, token: str, password: str) -> Operator:
    """Set a new password with a link's token: once, before it expires; every session of
    that operator ends, and so does every other link sent to them."""
    check_password_rules(password)
    h = _sha(token)
    async with rt.store.read() as session:
        row = await session.scalar(select(PasswordReset).where(PasswordReset.token_hash == h))
    if row is None or row.used_at is not None or row.expires_at <= utcnow():
        raise Invalid(
            "this reset link is invalid, used or expired: ask for a new one",
            "reset_link_invalid",
            "token",
        )
    password_hash = await hash_password(password)  # off the loop, outside the transaction
    async with rt.store.transaction() as tx:
        # Conditional: of two requests with one token only the first one gets the row.
        used = await tx.session.execute(
            update(PasswordReset)
            .where(PasswordReset.id == row.id, PasswordReset.used_at.is_(None))
            .values(used_at=utcnow())
        )
        op = await tx.session.get(Operator, row.operator_id)
        if used.rowcount != 1 or op is None or not op.active:  # type: ignore[attr-defined]
            raise Invalid("this reset link was already used", "reset_link_invalid", "token")
        await tx.session.execute(
            update(PasswordReset)
            .where(PasswordReset.operator_id == op.id, PasswordReset.used_at.is_(None))
            .values(used_at=utcnow())
        )
        op.password_hash = password_hash
        audit.record(tx, "password.reset", op.email, actor=audit.of(op))
        await end_sessions(tx, op.id)
    return op


async def change_password(rt: Runtime, operator_id: int, password: str, keep_session: str) -> None:
    """The operator's own new password (the current one was checked by the caller): this
    session stays, every other one ends."""
    check_password_rules(password)
    password_hash = await hash_password(password)
    async with rt.store.transaction() as tx:
        op = await tx.session.get(Operator, operator_id)
        if op is None:
            raise NotFound("no such operator")
        op.password_hash = password_hash
        audit.record(tx, "password.changed", op.email)
        await end_sessions(tx, operator_id, keep=keep_session)


# ------------------------------------------------------------------ TOTP


# pyotp, segno and cryptography (13 MB) are loaded by the first two-factor login or set-up.


def _fernet(settings: Settings) -> Fernet:
    from cryptography.fernet import Fernet

    key = hashlib.sha256(b"trustdesk totp\0" + settings.resolved_secret_key.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(key))


def _secret_of(settings: Settings, op: Operator) -> str | None:
    if not op.totp_secret:
        return None
    from cryptography.fernet import InvalidToken

    try:
        return _fernet(settings).decrypt(op.totp_secret.encode()).decode()
    except InvalidToken:  # the secret key changed: the operator sets TOTP up again
        log.warning("operator %s: TOTP secret cannot be decrypted", op.id)
        return None


async def load(rt: Runtime, operator_id: int) -> Operator:
    async with rt.store.read() as session:
        op = await session.get(Operator, operator_id)
    if op is None:
        raise NotFound("no such operator")
    return op


async def recovery_codes_left(rt: Runtime, operator_id: int) -> int:
    async with rt.store.read() as session:
        rows = await session.scalars(
            select(RecoveryCode.id).where(
                RecoveryCode.operator_id == operator_id, RecoveryCode.used_at.is_(None)
            )
        )
        return len(rows.all())


async def totp_setup(rt: Runtime, operator_id: int) -> dict[str, str]:
    """A new secret for the authenticator app; in force only after `totp_enable`."""
    op = await load(rt, operator_id)
    if op.totp_enabled_at is not None:
        raise Conflict("two-factor login is already on: turn it off first", "totp_enabled")
    import pyotp
    import segno

    secret = pyotp.random_base32()
    async with rt.store.transaction() as tx:
        row = await tx.session.get(Operator, operator_id)
        assert row is not None
        row.totp_secret = _fernet(rt.settings).encrypt(secret.encode()).decode()
    uri = pyotp.TOTP(secret).provisioning_uri(name=op.email, issuer_name=ISSUER)
    qr = segno.make(uri, error="m").svg_data_uri(scale=4, border=2)
    return {"secret": secret, "otpauth_uri": uri, "qr_svg": qr}


def _code_step(secret: str, code: str) -> int | None:
    """The 30-second step `code` belongs to (this one, or one either side), or None."""
    import pyotp

    totp = pyotp.TOTP(secret)
    now = int(time.time()) // totp.interval
    for step in (now, now - 1, now + 1):
        if hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None


def _clean(code: str) -> str:
    return "".join(code.split()).replace("-", "").lower()


async def _use_totp(rt: Runtime, op: Operator, code: str) -> bool:
    secret = _secret_of(rt.settings, op)
    step = _code_step(secret, code) if secret and code.isdigit() and len(code) == 6 else None
    if step is None:
        return False
    async with rt.store.transaction() as tx:
        # Conditional: a code (or an older one) that was already accepted never works again.
        moved = await tx.session.execute(
            update(Operator)
            .where(
                Operator.id == op.id,
                (Operator.totp_last_step.is_(None)) | (Operator.totp_last_step < step),
            )
            .values(totp_last_step=step)
        )
        return bool(moved.rowcount == 1)  # type: ignore[attr-defined]


async def _use_recovery_code(rt: Runtime, operator_id: int, code: str) -> bool:
    async with rt.store.transaction() as tx:
        used = await tx.session.execute(
            update(RecoveryCode)
            .where(
                RecoveryCode.operator_id == operator_id,
                RecoveryCode.code_hash == _sha(code),
                RecoveryCode.used_at.is_(None),
            )
            .values(used_at=utcnow())
        )
        return bool(used.rowcount == 1)  # type: ignore[attr-defined]


async def check_second_factor(rt: Runtime, operator_id: int, code: str) -> bool:
    """A current TOTP code not used before, or an unused recovery code (used up by this)."""
    op = await load(rt, operator_id)
    if op.totp_enabled_at is None or not op.active:
        return False
    code = _clean(code)
    if await _use_totp(rt, op, code):
        return True
    return len(code) == 10 and await _use_recovery_code(rt, operator_id, code)


def _new_recovery_code() -> str:
    alphabet = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i
    raw = "".join(secrets.choice(alphabet) for _ in range(10))
    return f"{raw[:5]}-{raw[5:]}"


async def totp_enable(rt: Runtime, operator_id: int, code: str) -> list[str]:
    """Turn TOTP on with a code from the app (it proves the app has the secret); returns
    fresh recovery codes, shown once."""
    op = await load(rt, operator_id)
    if op.totp_enabled_at is not None:
        raise Conflict("two-factor login is already on", "totp_enabled")
    secret = _secret_of(rt.settings, op)
    if secret is None:
        raise Conflict("start the setup first", "totp_not_set_up")
    code = _clean(code)
    step = _code_step(secret, code) if code.isdigit() and len(code) == 6 else None
    if step is None:
        raise Invalid("the code does not match: check the app and the clock", "bad_code", "code")
    codes = [_new_recovery_code() for _ in range(RECOVERY_CODES)]
    async with rt.store.transaction() as tx:
        row = await tx.session.get(Operator, operator_id)
        assert row is not None
        row.totp_enabled_at, row.totp_last_step = utcnow(), step
        audit.record(tx, "2fa.enabled", row.email)
        await tx.session.execute(delete(RecoveryCode).where(RecoveryCode.operator_id == op.id))
        for c in codes:
            tx.session.add(RecoveryCode(operator_id=op.id, code_hash=_sha(_clean(c))))
    return codes


async def totp_disable(rt: Runtime, operator_id: int) -> None:
    """Turn TOTP off (the password was checked by the caller), unless admins require it."""
    if (await security(rt))["require_2fa"]:
        raise Conflict("two-factor login is required on this server", "totp_required")
    async with rt.store.transaction() as tx:
        row = await tx.session.get(Operator, operator_id)
        if row is None:
            raise NotFound("no such operator")
        row.totp_secret, row.totp_enabled_at, row.totp_last_step = None, None, None
        audit.record(tx, "2fa.disabled", row.email)
        await tx.session.execute(
            delete(RecoveryCode).where(RecoveryCode.operator_id == operator_id)
        )


# ------------------------------------------------------------------ the login's second step


def _pending_mac(settings: Settings, op_id: int, expires: int, password_hash: str) -> str:
    key = settings.resolved_secret_key.encode()
    msg = f"totp-pending:{op_id}:{expires}:{_sha(password_hash)}".encode()
    return hmac.new(key, msg, hashlib.sha256).hexdigest()[:40]


def pending_ticket(settings: Settings, op: Operator) -> str:
    """Proof that the password was right a moment ago; opens nothing but the code step.
    Signed, so no table; bound to the password hash, so a new password voids it."""
    expires = int(time.time()) + PENDING_SECONDS
    return f"{op.id}.{expires}.{_pending_mac(settings, op.id, expires, op.password_hash)}"


async def pending_operator(rt: Runtime, ticket: str) -> Operator | None:
    parts = ticket.split(".")
    if len(parts) != 3 or not parts[0].isdigit() or not parts[1].isdigit():
        return None
    op_id, expires = int(parts[0]), int(parts[1])
    if expires < time.time() or op_id > 2**62:
        return None
    async with rt.store.read() as session:
        op = await session.get(Operator, op_id)
    if op is None or not op.active:
        return None
    good = _pending_mac(rt.settings, op_id, expires, op.password_hash)
    return op if hmac.compare_digest(good, parts[2]) else None
