"""`trustdesk run | migrate | create-operator | reset-password`."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import os
import secrets
import sys

from trustdesk.config import Settings


def _runtime(settings: Settings):  # type: ignore[no-untyped-def]
    from trustdesk.actions import audit
    from trustdesk.actions.runtime import Runtime
    from trustdesk.realtime.hub import make_hub
    from trustdesk.realtime.presence import make_presence
    from trustdesk.store.db import Store

    audit.acting(audit.Actor(name="CLI"))  # the audit log's actor for what this command does
    return Runtime(
        settings=settings, store=Store(settings), hub=make_hub(None), presence=make_presence(None)
    )


async def _create_operator(
    settings: Settings, email: str, name: str, password: str, role: str, gender: str | None
) -> None:
    from trustdesk.actions import operators

    rt = _runtime(settings)
    try:
        await operators.create_operator(rt, email, name, password, role, gender)
    finally:
        await rt.store.dispose()


async def _reset_password(settings: Settings, email: str, password: str) -> None:
    """A new password for the operator with this email; every session of theirs ends."""
    from sqlalchemy import select

    from trustdesk.actions import operators
    from trustdesk.actions.errors import NotFound
    from trustdesk.store.models import Operator

    rt = _runtime(settings)
    try:
        async with rt.store.read() as session:
            op_id = await session.scalar(
                select(Operator.id).where(Operator.email == email.strip().lower())
            )
        if op_id is None:
            raise NotFound(f"no operator with the email {email}")
        await operators.set_password(rt, op_id, password)
    finally:
        await rt.store.dispose()


def _read_new_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    password = getpass.getpass("Password: ")
    if password != getpass.getpass("Again: "):
        sys.exit("passwords do not match")
    return password


FIRST_PASSWORD_FILE = "first-operator-password"  # noqa: S105 - a file name


async def _first_operator(settings: Settings) -> None:
    """No operator yet: create "Артём" with a random password, shown once.

    On an interactive terminal (`make run`) it is printed there. Anywhere else (systemd,
    a container, a pipe) standard output ends up in a journal or a log store, so the
    password goes to a file only its owner can read, and only that file's path is printed."""
    from trustdesk.actions import operators

    rt = _runtime(settings)
    try:
        if await operators.count_operators(rt) > 0:
            return
        password = secrets.token_urlsafe(12)
        email = "admin@trust.store"
        await operators.create_operator(rt, email, "Артём", password, "admin", "male")
    finally:
        await rt.store.dispose()
    bar = "=" * 64
    if sys.stdout.isatty():
        where = f"    password: {password}\n  (shown once; "
    else:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        path = (settings.data_dir / FIRST_PASSWORD_FILE).resolve()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(password + "\n")
        where = f"    password: in {path} (readable by this user only)\n  (delete the file; "
    print(
        f"\n{bar}\n  First operator created. Log in at {settings.public_url}/admin\n"
        f"    email:    {email}\n{where}change it or add operators in the dashboard)\n{bar}\n",
        flush=True,
    )


def _migrate_in_child(settings: Settings) -> None:
    """Migrate in a forked child: Alembic (12 MB) never loads into the serving process."""
    import multiprocessing

    from trustdesk.store.db import run_migrations

    child = multiprocessing.get_context("fork").Process(target=run_migrations, args=(settings,))
    child.start()
    child.join()
    if child.exitcode:
        sys.exit(f"error: the database migration failed (exit code {child.exitcode})")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="trustdesk", description="TrustDesk live-chat support")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="migrate, then serve the widget, dashboard and API")
    run.add_argument("--host", default="0.0.0.0")  # noqa: S104 - a server listens
    run.add_argument("--port", type=int, default=3000)
    run.add_argument("--workers", type=int, default=1)
    sub.add_parser("migrate", help="create or upgrade the database schema")
    purge = sub.add_parser("purge", help="apply the retention policy now (prints what went)")
    purge.add_argument("--days", type=int, default=None, help="override TRUSTDESK_RETENTION_DAYS")
    sub.add_parser("wake-snoozed", help="wake the snoozed tickets whose time has come, once")
    sub.add_parser("protocol-doc", help="print docs/protocol.md, rendered from the models")
    co = sub.add_parser("create-operator", help="add an operator who can log in")
    co.add_argument("--email", required=True)
    co.add_argument("--name", required=True)
    co.add_argument("--role", choices=["admin", "agent"], default="admin")
    co.add_argument(
        "--gender",
        choices=["female", "male"],
        default=None,
        help="for the notices about them (unset: wording that needs no gender)",
    )
    co.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from standard input instead of a prompt",
    )
    rp = sub.add_parser(
        "reset-password", help="set an operator's password (ends every session of theirs)"
    )
    rp.add_argument("--email", required=True)
    rp.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from standard input instead of a prompt",
    )
    args = parser.parse_args(argv)
    settings = Settings()

    from trustdesk.actions.errors import ActionError
    from trustdesk.store.db import run_migrations

    if args.command == "protocol-doc":
        from trustdesk.realtime.events import render_protocol_md

        sys.stdout.write(render_protocol_md())
        return
    if args.command == "migrate":
        run_migrations(settings)
        print("database is up to date")
    elif args.command == "purge":
        import trustdesk.actions.attachments  # noqa: F401 - registers "delete the files too"
        from trustdesk.actions.retention import purge_once

        run_migrations(settings)
        print(json.dumps(asyncio.run(purge_once(settings, args.days))))
    elif args.command == "wake-snoozed":
        from trustdesk.actions.routing import wake_once

        run_migrations(settings)
        print(json.dumps({"woken": asyncio.run(wake_once(settings))}))
    elif args.command == "create-operator":
        run_migrations(settings)
        if args.password_stdin:
            password = sys.stdin.readline().rstrip("\r\n")
        else:
            password = getpass.getpass("Password: ")
            if password != getpass.getpass("Again: "):
                sys.exit("passwords do not match")
        try:
            asyncio.run(
                _create_operator(settings, args.email, args.name, password, args.role, args.gender)
            )
        except ActionError as exc:
            sys.exit(f"error: {exc.message}")
        print(f"operator {args.email} created")
    elif args.command == "reset-password":
        run_migrations(settings)
        password = _read_new_password(args.password_stdin)
        try:
            asyncio.run(_reset_password(settings, args.email, password))
        except ActionError as exc:
            sys.exit(f"error: {exc.message}")
        print(f"password of {args.email} changed; every session of theirs has ended")
    elif args.command == "run":
        import uvicorn

        from trustdesk.api.http_guard import header_timeout_protocol
        from trustdesk.logging import log_config

        if args.workers > 1 and not settings.redis_url:
            sys.exit(
                "error: --workers > 1 needs TRUSTDESK_REDIS_URL (the workers share events "
                "through Redis) and, for real load, TRUSTDESK_DATABASE_URL on PostgreSQL"
            )
        if args.workers == 1:
            import trustdesk.app  # noqa: F401 - loaded once, before the fork below shares it
        _migrate_in_child(settings)
        settings.resolved_secret_key  # noqa: B018 - generate and keep it before workers fork
        if settings.create_first_operator:
            asyncio.run(_first_operator(settings))
        uvicorn.run(
            "trustdesk.app:create_app",
            factory=True,
            host=args.host,
            port=args.port,
            workers=args.workers,
            log_config=log_config(settings),
            log_level=settings.log_level,
            # uvicorn's sans-I/O websockets protocol: frames are parsed in the transport's
            # callback and a send is one transport write, with no reader task, keepalive task
            # or drain per connection (the default implementation has all three).
            ws="websockets-sansio",
            ws_max_size=1024 * 1024,
            # Chat frames are small: compressing them costs more CPU (and a zlib state of
            # memory per idle widget) than the bytes it saves.
            ws_per_message_deflate=False,
            proxy_headers=True,
            # No "server: uvicorn" on every answer: it tells nothing a client needs, and the
            # widget's first open is ~20 files (bench/widget_weight.py counts the bytes).
            server_header=False,
            # Connections that do not finish their headers in time are closed (slowloris).
            http=header_timeout_protocol(settings.header_timeout_seconds),
        )
