"""The installation check an owner runs from the dashboard (Settings → Installation check).

`GET /api/admin/selftest` answers `{"checks": [{"name", "ok", "detail"}]}`: one row per part
of the installation the server can test itself, each bounded by CHECK_SECONDS and all run at
once, so one SMTP server that never answers cannot make the page hang. The one thing the
server cannot see, whether a WebSocket passes through the URL the browser used (a proxy
without the Upgrade headers), the page tests itself (web/admin/selftest.js).

Stable names: database, public_url, smtp, push, redis, disk, descriptors, clock. A part that
is optional and not configured (SMTP, Redis) is ok, with a detail that says so. The details
are written for the owner, in the dashboard's language (`?lang=ru|en`, default the server's
TRUSTDESK_LOCALE), and say what to change.

This module is diagnostics only: its one write (the database check) inserts and deletes a
row of app_settings in one committed transaction, so it leaves nothing behind.
"""

from __future__ import annotations

import asyncio
import re
import resource
import secrets
import shutil
import smtplib
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, cast
from urllib.parse import urlsplit

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy import delete, insert, text

from trustdesk.actions import email, push
from trustdesk.actions.errors import ActionError, Forbidden, Invalid
from trustdesk.actions.runtime import Runtime
from trustdesk.api.deps import AdminDep, RuntimeDep
from trustdesk.api.schemas import ErrorOut
from trustdesk.config import Settings
from trustdesk.store.models import AppSetting, utcnow

router = APIRouter(prefix="/api/admin", tags=["operator"])
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorOut} for code in (400, 401, 403, 413, 422, 429, 502)
}

CHECK_SECONDS = 3.0  # each check; the page waits about this long in all
MAX_SKEW_SECONDS = 60.0
MIN_FREE_BYTES = 1 << 30  # 1 GiB
MIN_FREE_SHARE = 0.05
MIN_NOFILE = 4096  # one descriptor per open socket, plus files and the database
DOCS = "docs/deployment.md#installation-check"

Lang = Literal["ru", "en"]

# Every detail the owner reads, in both languages; {placeholders} are filled in by _t.
TEXTS: dict[str, dict[str, str]] = {
    "ru": {
        "timeout": "Нет ответа за {s} с.",
        "error": "Ошибка: {err}",
        "db_ok": "{dialect}: запись и фиксация прошли за {ms} мс.",
        "db_fail": "{dialect}: не удалось записать ({err}). Проверьте права на каталог данных "
        "и место на диске (SQLite) или права пользователя базы (PostgreSQL).",
        "url_ok": "TRUSTDESK_PUBLIC_URL = {public} совпадает с адресом этой страницы.",
        "url_mismatch": "TRUSTDESK_PUBLIC_URL = {public}, а страница открыта по адресу {page}: "
        "ссылки в письмах и уведомлениях ведут на {public}. "
        "Укажите TRUSTDESK_PUBLIC_URL={page}.",
        "url_proto": "Страница открыта по HTTPS, а сервер видит HTTP: прокси не передаёт "
        "X-Forwarded-Proto (nginx: proxy_set_header X-Forwarded-Proto $scheme;) или сервер "
        "ему не доверяет (FORWARDED_ALLOW_IPS).",
        "url_host": "Прокси подменяет заголовок Host (сервер видит {seen}): "
        "добавьте в nginx proxy_set_header Host $host;",
        "url_cookie": "Сайт работает по HTTPS, но TRUSTDESK_COOKIE_SECURE выключен: "
        "включите его, чтобы cookie входа не уходила по HTTP.",
        "smtp_off": "Не настроено (сервер SMTP не задан ни в «Настройки → Каналы», ни в "
        "TRUSTDESK_SMTP_HOST): письма покупателям не отправляются.",
        "smtp_ok": "Подключение к {server}{tls}{login} — успешно.",
        "smtp_tls": ", STARTTLS",
        "smtp_login": ", вход как {user}",
        "smtp_refused": "Не удалось подключиться к {server}: {err}. Проверьте сервер и порт "
        "SMTP («Настройки → Каналы» или TRUSTDESK_SMTP_HOST и TRUSTDESK_SMTP_PORT).",
        "smtp_auth": "Сервер {server} отклонил вход как {user}: {err}. Проверьте логин и "
        "пароль SMTP («Настройки → Каналы» или TRUSTDESK_SMTP_USER и TRUSTDESK_SMTP_PASSWORD).",
        "smtp_fail": "Ошибка SMTP на {server}: {err}",
        "push_ok": "Ключи VAPID загружены (публичный ключ {key}…).",
        "push_http": "Ключи VAPID загружены, но браузеры разрешают push-уведомления только "
        "по HTTPS, а TRUSTDESK_PUBLIC_URL = {public}.",
        "push_fail": "Ключи VAPID не загружаются ({err}): проверьте файл "
        "vapid_private.pem в каталоге данных.",
        "redis_off": "Не настроено (TRUSTDESK_REDIS_URL пуст): нужно только для нескольких "
        "процессов.",
        "redis_ok": "{server} ответил на PING за {ms} мс.",
        "redis_fail": "{server} не отвечает: {err}",
        "disk_ok": "Свободно {free} из {total} ({pct}%) в {path}.",
        "disk_low": "Мало места: свободно {free} из {total} ({pct}%) в {path}. Нужно хотя бы "
        "1 ГиБ и 5%: освободите место, иначе файлы и сообщения перестанут сохраняться.",
        "fd_ok": "Лимит открытых файлов: {soft}.",
        "fd_low": "Лимит открытых файлов {soft} меньше {min}: каждое открытое окно чата "
        "занимает один. Поднимите его (systemd: LimitNOFILE=65536; иначе ulimit -n).",
        "clock_ok": "Часы сервера: {now} UTC{diffs}.",
        "clock_bad": "Часы расходятся{diffs}: включите синхронизацию времени (NTP, "
        "systemd-timesyncd).",
        "clock_browser": "; с браузером: {d} с",
        "clock_db": "; с базой данных: {d} с",
        "mail_subject": "TrustDesk: проверочное письмо",
        "mail_body": "Это проверочное письмо от TrustDesk ({public}). Если вы его читаете, "
        "отправка почты работает.",
    },
    "en": {
        "timeout": "No answer within {s} s.",
        "error": "Error: {err}",
        "db_ok": "{dialect}: a write and commit took {ms} ms.",
        "db_fail": "{dialect}: could not write ({err}). Check the data directory's "
        "permissions and free space (SQLite) or the database user's rights (PostgreSQL).",
        "url_ok": "TRUSTDESK_PUBLIC_URL = {public} matches this page's address.",
        "url_mismatch": "TRUSTDESK_PUBLIC_URL is {public}, but this page was opened at "
        "{page}: links in emails and notifications lead to {public}. "
        "Set TRUSTDESK_PUBLIC_URL={page}.",
        "url_proto": "The page is on HTTPS but the server sees HTTP: the proxy does not pass "
        "X-Forwarded-Proto (nginx: proxy_set_header X-Forwarded-Proto $scheme;) or the "
        "server does not trust it (FORWARDED_ALLOW_IPS).",
        "url_host": "The proxy rewrites the Host header (the server sees {seen}): add "
        "proxy_set_header Host $host; to nginx.",
        "url_cookie": "The site is on HTTPS but TRUSTDESK_COOKIE_SECURE is off: turn it on so "
        "the login cookie never travels over HTTP.",
        "smtp_off": "Not configured (no SMTP server in Settings → Channels nor in "
        "TRUSTDESK_SMTP_HOST): no email to customers.",
        "smtp_ok": "Connected to {server}{tls}{login}.",
        "smtp_tls": ", STARTTLS",
        "smtp_login": ", logged in as {user}",
        "smtp_refused": "Cannot connect to {server}: {err}. Check the SMTP server and port "
        "(Settings → Channels, or TRUSTDESK_SMTP_HOST and TRUSTDESK_SMTP_PORT).",
        "smtp_auth": "{server} refused the login as {user}: {err}. Check the SMTP user and "
        "password (Settings → Channels, or TRUSTDESK_SMTP_USER and TRUSTDESK_SMTP_PASSWORD).",
        "smtp_fail": "SMTP error at {server}: {err}",
        "push_ok": "VAPID keys loaded (public key {key}…).",
        "push_http": "VAPID keys loaded, but browsers allow push notifications on HTTPS only "
        "and TRUSTDESK_PUBLIC_URL is {public}.",
        "push_fail": "The VAPID keys do not load ({err}): check vapid_private.pem in the "
        "data directory.",
        "redis_off": "Not configured (TRUSTDESK_REDIS_URL is empty): needed only for several "
        "processes.",
        "redis_ok": "{server} answered PING in {ms} ms.",
        "redis_fail": "{server} does not answer: {err}",
        "disk_ok": "{free} free of {total} ({pct}%) in {path}.",
        "disk_low": "Low on space: {free} free of {total} ({pct}%) in {path}. Keep at least "
        "1 GiB and 5% free, or files and messages stop being saved.",
        "fd_ok": "Open file limit: {soft}.",
        "fd_low": "The open file limit {soft} is below {min}: every open chat takes one. "
        "Raise it (systemd: LimitNOFILE=65536; otherwise ulimit -n).",
        "clock_ok": "Server clock: {now} UTC{diffs}.",
        "clock_bad": "The clocks disagree{diffs}: turn on time sync (NTP, systemd-timesyncd).",
        "clock_browser": "; with the browser: {d} s",
        "clock_db": "; with the database: {d} s",
        "mail_subject": "TrustDesk: test email",
        "mail_body": "This is a test email from TrustDesk ({public}). If you can read it, "
        "sending email works.",
    },
}


def _t(lang: Lang, text_id: str, **params: Any) -> str:
    return TEXTS[lang][text_id].format(**params)


class Check(BaseModel):
    name: str
    ok: bool
    detail: str


class SelftestOut(BaseModel):
    checks: list[Check]


class TestMailIn(BaseModel):
    to: str | None = Field(default=None, max_length=254)


class TestMailOut(BaseModel):
    sent: bool
    to: str


class MailFailed(ActionError):
    status = 502
    code = "smtp_failed"


Result = tuple[bool, str]


# ------------------------------------------------------------------ the checks


async def check_database(rt: Runtime, lang: Lang) -> Result:
    """A real write: insert a row and delete it again in one committed transaction (the
    SQLite write lock, the log and the commit are all exercised; nothing is left)."""
    dialect = "SQLite" if rt.store.dialect == "sqlite" else "PostgreSQL"
    key = f"selftest:{secrets.token_hex(4)}"
    start = time.perf_counter()
    try:
        async with rt.store.transaction() as tx:
            await tx.session.execute(
                insert(AppSetting).values(key=key, value="{}", updated_at=utcnow())
            )
            await tx.session.execute(delete(AppSetting).where(AppSetting.key == key))
    except Exception as exc:
        return False, _t(lang, "db_fail", dialect=dialect, err=_short(exc))
    ms = round((time.perf_counter() - start) * 1000)
    return True, _t(lang, "db_ok", dialect=dialect, ms=ms)


def _origin(url: str) -> str:
    """scheme://host[:port], without a default port, lower case."""
    parts = urlsplit(url.strip())
    scheme = (parts.scheme or "http").lower()
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    default = {"http": 80, "https": 443}.get(scheme)
    port = parts.port if parts.port and parts.port != default else None
    return f"{scheme}://{host}" + (f":{port}" if port else "")


def check_public_url(settings: Settings, request: Request, page: str | None, lang: Lang) -> Result:
    """TRUSTDESK_PUBLIC_URL against the address the browser used (`page_origin`, sent by the
    page) and against what reached the server through the proxy (scheme and Host)."""
    public = _origin(settings.public_url)
    seen = _origin(f"{request.url.scheme}://{request.headers.get('host', '')}")
    page = _origin(page) if page else seen
    problems = []
    if public != page:
        problems.append(_t(lang, "url_mismatch", public=public, page=page))
    if page.startswith("https:") and seen.startswith("http:"):
        problems.append(_t(lang, "url_proto"))
    elif page.split("://", 1)[1] != seen.split("://", 1)[1]:
        problems.append(_t(lang, "url_host", seen=seen.split("://", 1)[1]))
    if page.startswith("https:") and not settings.cookie_secure:
        problems.append(_t(lang, "url_cookie"))
    if problems:
        return False, " ".join(problems)
    return True, _t(lang, "url_ok", public=public)


async def check_smtp(settings: Settings, lang: Lang) -> Result:
    """Connect, STARTTLS and log in as the server would to send mail (no mail is sent)."""
    if not email.enabled(settings):
        return True, _t(lang, "smtp_off")
    server = f"{settings.smtp_host}:{settings.smtp_port}"
    try:
        await asyncio.to_thread(email.login_only, settings, CHECK_SECONDS)
    except smtplib.SMTPAuthenticationError as exc:
        return False, _t(lang, "smtp_auth", server=server, user=settings.smtp_user, err=_short(exc))
    except smtplib.SMTPException as exc:
        return False, _t(lang, "smtp_fail", server=server, err=_short(exc))
    except OSError as exc:
        return False, _t(lang, "smtp_refused", server=server, err=_short(exc))
    tls = _t(lang, "smtp_tls") if settings.smtp_starttls else ""
    login = _t(lang, "smtp_login", user=settings.smtp_user) if settings.smtp_user else ""
    return True, _t(lang, "smtp_ok", server=server, tls=tls, login=login)


async def check_push(settings: Settings, lang: Lang) -> Result:
    """The VAPID key pair loads (it is made on first use, as the dashboard would), and the
    public URL is one where browsers allow push at all."""
    try:
        key = await asyncio.to_thread(push.public_key, settings)
    except Exception as exc:
        return False, _t(lang, "push_fail", err=_short(exc))
    parts = urlsplit(settings.public_url)
    local = parts.hostname in ("localhost", "127.0.0.1", "::1")
    if parts.scheme != "https" and not local:
        return False, _t(lang, "push_http", public=_origin(settings.public_url))
    return True, _t(lang, "push_ok", key=key[:12])


async def check_redis(settings: Settings, lang: Lang) -> Result:
    if not settings.redis_url:
        return True, _t(lang, "redis_off")
    parts = urlsplit(settings.redis_url)
    server = f"Redis {parts.hostname or 'localhost'}:{parts.port or 6379}"  # no password
    from redis.asyncio import Redis

    client = Redis.from_url(
        settings.redis_url, socket_timeout=CHECK_SECONDS, socket_connect_timeout=CHECK_SECONDS
    )
    start = time.perf_counter()
    try:
        await cast(Awaitable[bool], client.ping())  # typed as sync-or-async in redis-py
    except Exception as exc:
        return False, _t(lang, "redis_fail", server=server, err=_short(exc))
    finally:
        await client.aclose()
    ms = round((time.perf_counter() - start) * 1000)
    return True, _t(lang, "redis_ok", server=server, ms=ms)


def _gib(n: int, lang: Lang) -> str:
    return f"{n / (1 << 30):.1f} " + ("ГиБ" if lang == "ru" else "GiB")


def check_disk(settings: Settings, lang: Lang) -> Result:
    path = settings.data_dir.resolve()
    usage = shutil.disk_usage(path)
    share = usage.free / usage.total if usage.total else 0.0
    params = {
        "free": _gib(usage.free, lang),
        "total": _gib(usage.total, lang),
        "pct": round(share * 100),
        "path": str(path),
    }
    if usage.free < MIN_FREE_BYTES or share < MIN_FREE_SHARE:
        return False, _t(lang, "disk_low", **params)
    return True, _t(lang, "disk_ok", **params)


def check_descriptors(lang: Lang) -> Result:
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < MIN_NOFILE:
        return False, _t(lang, "fd_low", soft=soft, min=MIN_NOFILE)
    return True, _t(lang, "fd_ok", soft="∞" if soft == resource.RLIM_INFINITY else soft)


async def check_clock(rt: Runtime, client_ms: int | None, lang: Lang) -> Result:
    """The server's clock against the browser's (sent as `client_time`, ms since the epoch)
    and, on PostgreSQL, the database server's now(): sessions, rate windows and "5 minutes
    ago" all assume they agree."""
    now = time.time()
    diffs, bad = "", False
    if client_ms is not None:
        d = now - client_ms / 1000
        bad |= abs(d) >= MAX_SKEW_SECONDS
        diffs += _t(lang, "clock_browser", d=f"{d:+.1f}")
    if rt.store.dialect == "postgresql":
        async with rt.store.read() as session:
            db_now: datetime = (await session.execute(text("SELECT now()"))).scalar_one()
        d = now - db_now.timestamp()
        bad |= abs(d) >= MAX_SKEW_SECONDS
        diffs += _t(lang, "clock_db", d=f"{d:+.1f}")
    if bad:
        return False, _t(lang, "clock_bad", diffs=diffs)
    stamp = datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%d %H:%M:%S")
    return True, _t(lang, "clock_ok", now=stamp, diffs=diffs)


def _short(exc: BaseException) -> str:
    text_ = str(exc).strip() or type(exc).__name__
    return text_[:300]


async def _bounded(name: str, run: Callable[[], Awaitable[Result]], lang: Lang) -> Check:
    """One check, never longer than CHECK_SECONDS, never raising."""
    try:
        ok, detail = await asyncio.wait_for(run(), CHECK_SECONDS)
    except TimeoutError:
        ok, detail = False, _t(lang, "timeout", s=f"{CHECK_SECONDS:g}")
    except Exception as exc:
        ok, detail = False, _t(lang, "error", err=_short(exc))
    return Check(name=name, ok=ok, detail=detail)


def _sync(fn: Callable[[], Result]) -> Callable[[], Awaitable[Result]]:
    """A blocking check (a system call on a slow disk) off the event loop."""
    return lambda: asyncio.to_thread(fn)


# ------------------------------------------------------------------ the routes


def _lang(rt: Runtime, lang: Lang | None) -> Lang:
    return lang or ("en" if rt.settings.locale == "en" else "ru")


@router.get("/selftest", response_model=SelftestOut, responses=ERRORS)
async def selftest(
    request: Request,
    rt: RuntimeDep,
    _admin: AdminDep,
    client_time: Annotated[int | None, Query(ge=0, le=2**53)] = None,
    page_origin: Annotated[str | None, Query(max_length=300)] = None,
    lang: Lang | None = None,
) -> SelftestOut:
    """Admins only. Every check at once, each within CHECK_SECONDS."""
    lg = _lang(rt, lang)
    s = rt.settings
    checks: list[tuple[str, Callable[[], Awaitable[Result]]]] = [
        ("database", lambda: check_database(rt, lg)),
        ("public_url", _sync(lambda: check_public_url(s, request, page_origin, lg))),
        ("smtp", lambda: check_smtp(s, lg)),
        ("push", lambda: check_push(s, lg)),
        ("redis", lambda: check_redis(s, lg)),
        ("disk", _sync(lambda: check_disk(s, lg))),
        ("descriptors", _sync(lambda: check_descriptors(lg))),
        ("clock", lambda: check_clock(rt, client_time, lg)),
    ]
    results = await asyncio.gather(*(_bounded(name, run, lg) for name, run in checks))
    return SelftestOut(checks=list(results))


_EMAIL_RE = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,189}\.[^@\s.]{1,63}$")


@router.post("/selftest/mail", response_model=TestMailOut, responses=ERRORS)
async def selftest_mail(
    body: TestMailIn, rt: RuntimeDep, admin: AdminDep, lang: Lang | None = None
) -> TestMailOut:
    """Send a test email to the admin's own address (or `to`) through the configured SMTP
    server, so the owner sees it arrive, not only that the login works."""
    if not email.enabled(rt.settings):
        raise Forbidden("email is not configured on this server", "email_disabled")
    to = (body.to or admin.operator.email or "").strip()
    if not _EMAIL_RE.match(to):
        raise Invalid("an email address like name@example.com is needed", "bad_email", "to")
    lg = _lang(rt, lang)
    public = _origin(rt.settings.public_url)
    try:
        await asyncio.wait_for(
            email.send(
                rt.settings,
                to,
                _t(lg, "mail_subject"),
                _t(lg, "mail_body", public=public),
                rt.settings.smtp_from,
            ),
            timeout=15,
        )
    except TimeoutError as exc:
        raise MailFailed("the SMTP server did not answer within 15 s") from exc
    except (OSError, smtplib.SMTPException) as exc:
        raise MailFailed(f"sending failed: {_short(exc)}") from exc
    return TestMailOut(sent=True, to=to)
