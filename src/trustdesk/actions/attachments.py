"""Files, screenshots and voice messages: checked by content, cleaned, stored once.

Uploads become messages through the one message-creating function (post_message), so
fan-out, unread counts, read receipts and resume work for them unchanged.
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import logging
import re
import secrets
import unicodedata
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select

from trustdesk.actions import customers, imaging, retention
from trustdesk.actions.errors import ActionError, Invalid, NotFound, RateLimited
from trustdesk.actions.messages import clean_text, find_by_client_id, message_json, post_message
from trustdesk.actions.runtime import Runtime
from trustdesk.actions.tickets import (
    _join,
    _mark_read_by_operator,
    _reopen,
    clean_client_id,
    load_ticket,
    start_ticket,
    ticket_by_number,
)
from trustdesk.store.db import Tx
from trustdesk.store.files import FileStore, Staged, file_store_for
from trustdesk.store.models import Attachment, Operator, SupportMessage, Ticket, Visitor, utcnow

log = logging.getLogger(__name__)


class TooLarge(ActionError):
    status = 413
    code = "file_too_large"


class Unsupported(ActionError):
    status = 415
    code = "unsupported_type"


@dataclass(frozen=True)
class FileType:
    mime: str
    kind: str  # image / file / audio
    ext: str


PNG = FileType("image/png", "image", "png")
JPEG = FileType("image/jpeg", "image", "jpg")
GIF = FileType("image/gif", "image", "gif")
WEBP = FileType("image/webp", "image", "webp")
PDF = FileType("application/pdf", "file", "pdf")
WEBM = FileType("audio/webm", "audio", "webm")
OGG = FileType("audio/ogg", "audio", "ogg")
ALLOWED = "PNG, JPEG, GIF, WebP, PDF, WebM or Ogg audio"


def sniff(data: bytes) -> FileType:
    """The type by magic bytes only: the name and the claimed type are never trusted."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if data.startswith(b"\xff\xd8\xff"):
        return JPEG
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return GIF
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return WEBP
    if data.startswith(b"%PDF-"):
        return PDF
    if data.startswith(b"\x1a\x45\xdf\xa3") and b"webm" in data[:64]:
        return WEBM
    if data.startswith(b"OggS"):
        return OGG
    raise Unsupported(f"this kind of file is not accepted (allowed: {ALLOWED})")


_UNSAFE = re.compile(r"[\x00-\x1f\x7f<>:\"/\\|?*]+")


def sanitize_name(name: str | None, ftype: FileType) -> str:
    """A display name that is only a name: no path, no control characters, bounded, and
    with the extension of what the file really is."""
    name = unicodedata.normalize("NFC", name or "")
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = _UNSAFE.sub("_", name).strip(" .")
    stem = name.rsplit(".", 1)[0] if "." in name else name
    stem = stem[:100].strip(" .") or "file"
    return f"{stem}.{ftype.ext}"


class StorageFull(RateLimited):
    """The disk is full: nothing was stored; the client keeps its client_msg_id and retries
    later (507 with Retry-After)."""

    status = 507
    code = "storage_full"


_DISK_FULL = {errno.ENOSPC, errno.EDQUOT}


def _disk_error(exc: OSError) -> Exception:
    if exc.errno in _DISK_FULL:
        log.warning("file store full: %s", exc)
        return StorageFull("the server has no room for files right now, retry later", 60)
    return exc


async def _check_quota(tx: Tx, visitor: Visitor, size: int, quota: int) -> None:
    """Read under the visitor's scope lock, so concurrent uploads cannot all fit."""
    used = await tx.session.scalar(
        select(func.coalesce(func.sum(Attachment.size), 0)).where(
            Attachment.visitor_id == visitor.id
        )
    )
    if int(used or 0) + size > quota:
        raise TooLarge("your upload quota is used up", "quota_exceeded")


async def _prepare(
    rt: Runtime, data: bytes, name: str | None
) -> tuple[bytes, FileType, str, int | None, int | None]:
    """Checked by content and cleaned: images are measured and re-encoded off the event
    loop (actions/imaging.py)."""
    if not data:
        raise Invalid("the file is empty", "empty_file")
    limit = rt.settings.max_upload_bytes
    if len(data) > limit:
        raise TooLarge(f"files are limited to {limit // (1024 * 1024)} MiB")
    ftype = sniff(data)
    width = height = None
    if ftype.kind == "image":
        data, width, height = await imaging.clean_image(data, ftype.ext, rt.settings)
    return data, ftype, sanitize_name(name, ftype), width, height


@asynccontextmanager
async def _staged(rt: Runtime, data: bytes) -> AsyncIterator[tuple[str, Staged]]:
    """The bytes, written aside before the transaction (nothing slow under its lock) and
    promoted by it; discarded if the upload is refused or fails. Should the commit fail
    after the promotion, the file goes unless another row uses the same bytes."""
    digest = hashlib.sha256(data).hexdigest()
    try:
        staged = await rt.files.stage(digest, data)
    except OSError as exc:
        raise _disk_error(exc) from exc
    try:
        yield digest, staged
    except BaseException:
        if staged.created:
            async with rt.store.read() as session:
                used = await session.scalar(
                    select(Attachment.id).where(Attachment.sha256 == digest).limit(1)
                )
            if used is None:
                await rt.files.delete(digest)
        raise
    finally:
        await staged.discard()


async def _promote(staged: Staged) -> None:
    try:
        await staged.promote()
    except OSError as exc:
        raise _disk_error(exc) from exc


def _attachment(
    ftype: FileType,
    name: str,
    data: bytes,
    digest: str,
    visitor_id: str | None,
    width: int | None,
    height: int | None,
) -> Attachment:
    return Attachment(
        id=secrets.token_hex(16),
        visitor_id=visitor_id,
        name=name,
        mime=ftype.mime,
        kind=ftype.kind,
        size=len(data),
        sha256=digest,
        width=width,
        height=height,
        created_at=utcnow(),
    )


def _caption(caption: str | None, name: str, rt: Runtime) -> str:
    if caption and caption.strip():
        return clean_text(caption, rt.settings.max_message_chars)
    return name


async def _visitor_target(
    tx: Tx, visitor: Visitor, number: str | None, client_msg_id: str | None
) -> tuple[Ticket | None, dict[str, Any] | None]:
    """The ticket the upload goes to (None: a new one) and the message a retry already
    stored, if any. 404 for a ticket that is not there or not the visitor's."""
    s = tx.session
    t: Ticket | None = None
    if number is not None:
        t = await ticket_by_number(s, number)
        if t is None or not await customers.owns(s, visitor, t):
            raise NotFound("no such ticket", "ticket_not_found")
    else:
        mine = await customers.owner_ids(s, visitor)
        t = await s.scalar(
            select(Ticket)
            .where(Ticket.visitor_id.in_(mine), Ticket.status == "open")
            .order_by(Ticket.updated_at.desc())
            .limit(1)
        )
    if t is not None and client_msg_id:
        existing = await find_by_client_id(tx, t.id, client_msg_id)
        if existing is not None:
            return t, message_json(existing, t.number)
    return t, None


async def visitor_upload(
    rt: Runtime,
    visitor: Visitor,
    data: bytes,
    *,
    name: str | None,
    number: str | None,
    client_msg_id: str | None,
    caption: str | None = None,
    voice: bool = False,
) -> tuple[Ticket, dict[str, Any]]:
    """Refused before any work when the ticket is missing or the message is a retry; the
    bytes reach the store only with their row, the quota checked under the same lock."""
    client_msg_id = clean_client_id(client_msg_id)
    async with rt.store.transaction(write=False) as tx:
        t, existing = await _visitor_target(tx, visitor, number, client_msg_id)
        if t is not None and existing is not None:
            return t, existing
    data, ftype, clean_name, width, height = await _prepare(rt, data, name)
    kind = "voice" if voice and ftype.kind == "audio" else "file"
    async with _staged(rt, data) as (digest, staged), rt.store.transaction() as tx:
        await tx.lock_scope(f"visitor:{visitor.id}")
        t, existing = await _visitor_target(tx, visitor, number, client_msg_id)
        if t is not None and existing is not None:
            return t, existing
        await _check_quota(tx, visitor, len(data), rt.settings.visitor_upload_quota_bytes)
        if t is None:
            t = await start_ticket(rt, tx, visitor)
        elif t.status == "closed":
            await _reopen(tx, t)
        msg = await post_message(
            tx,
            t,
            sender_type="customer",
            sender_name=customers.visitor_name(visitor),
            text=_caption(caption, clean_name, rt),
            kind=kind,
            client_msg_id=client_msg_id,
            attachment=_attachment(ftype, clean_name, data, digest, visitor.id, width, height),
            read_by="customer",
        )
        tx.emit("operators", {"type": "ticket_changed", "ticket_ref": t.id})
        await _promote(staged)
        return t, msg


async def _operator_target(
    tx: Tx, number: str, client_msg_id: str | None, *, lock: bool
) -> tuple[Ticket, dict[str, Any] | None]:
    t = await load_ticket(tx, number, lock=lock)
    if t is None:
        raise NotFound("no such ticket", "ticket_not_found")
    if client_msg_id:
        existing = await find_by_client_id(tx, t.id, client_msg_id)
        if existing is not None:
            return t, message_json(existing, t.number)
    return t, None


async def operator_upload(
    rt: Runtime,
    op: Operator,
    data: bytes,
    *,
    name: str | None,
    number: str,
    client_msg_id: str | None,
    caption: str | None = None,
    voice: bool = False,
) -> dict[str, Any]:
    """As visitor_upload: no work for a missing ticket or a retry, bytes only with a row."""
    client_msg_id = clean_client_id(client_msg_id)
    async with rt.store.transaction(write=False) as tx:
        _, existing = await _operator_target(tx, number, client_msg_id, lock=False)
        if existing is not None:
            return existing
    data, ftype, clean_name, width, height = await _prepare(rt, data, name)
    kind = "voice" if voice and ftype.kind == "audio" else "file"
    async with _staged(rt, data) as (digest, staged), rt.store.transaction() as tx:
        await tx.lock_scope(f"ticket:{number}")
        # The ticket's row before the join row, as a reply takes them (tickets._reply).
        t, existing = await _operator_target(tx, number, client_msg_id, lock=True)
        if existing is not None:
            return existing
        if t.status == "open":
            await _join(tx, t, op)
        msg = await post_message(
            tx,
            t,
            sender_type="admin",
            sender_name=op.display_name,
            text=_caption(caption, clean_name, rt),
            kind=kind,
            operator_id=op.id,
            client_msg_id=client_msg_id,
            attachment=_attachment(ftype, clean_name, data, digest, None, width, height),
        )
        await _mark_read_by_operator(tx, t, op, msg["id"])
        await _promote(staged)
        return msg


_ID = re.compile(r"^[0-9a-f]{32}$")


async def _load(rt: Runtime, attachment_id: str) -> tuple[Attachment, Ticket]:
    if not _ID.match(attachment_id):
        raise NotFound("no such file", "file_not_found")
    async with rt.store.read() as session:
        row = (
            await session.execute(
                select(Attachment, Ticket)
                .join(Ticket, Ticket.id == Attachment.ticket_id)
                .join(SupportMessage, SupportMessage.id == Attachment.message_id)
                .where(Attachment.id == attachment_id, SupportMessage.kind != "note")
            )
        ).first()
    if row is None:
        raise NotFound("no such file", "file_not_found")
    return row[0], row[1]


async def read_for_visitor(
    rt: Runtime, visitor: Visitor, attachment_id: str
) -> tuple[Attachment, bytes]:
    a, t = await _load(rt, attachment_id)
    async with rt.store.read() as session:
        if not await customers.owns(session, visitor, t):
            raise NotFound("no such file", "file_not_found")
    data = await rt.files.get(a.sha256)
    if data is None:
        raise NotFound("the file is gone", "file_not_found")
    return a, data


async def read_for_operator(rt: Runtime, attachment_id: str) -> tuple[Attachment, bytes]:
    if not _ID.match(attachment_id):
        raise NotFound("no such file", "file_not_found")
    async with rt.store.read() as session:
        a = await session.get(Attachment, attachment_id)
    if a is None:
        raise NotFound("no such file", "file_not_found")
    data = await rt.files.get(a.sha256)
    if data is None:
        raise NotFound("the file is gone", "file_not_found")
    return a, data


@retention.on_tickets_deleted
async def _tickets_deleted(tx: Tx, ticket_ids: list[str]) -> None:
    """Deleting a ticket's data deletes its files (once no other message uses them)."""
    hashes = list(
        (
            await tx.session.scalars(
                select(Attachment.sha256).where(Attachment.ticket_id.in_(ticket_ids))
            )
        ).all()
    )
    if not hashes:
        return
    store = file_store_for(tx.settings)

    async def drop() -> None:
        await delete_unreferenced_in(tx.session.bind, store, hashes)

    tx.after_commit.append(drop)


async def delete_unreferenced_in(bind: Any, store: FileStore, hashes: list[str]) -> int:
    """Drop the bytes of these hashes that no attachment row refers to any more."""
    from sqlalchemy.ext.asyncio import AsyncSession

    async with AsyncSession(bind) as session:
        still = set(
            (
                await session.scalars(
                    select(Attachment.sha256).where(Attachment.sha256.in_(hashes))
                )
            ).all()
        )
    removed = 0
    for h in set(hashes) - still:
        await store.delete(h)
        removed += 1
    return removed


async def sweep_orphans(rt: Runtime) -> int:
    """Delete stored bytes no attachment refers to (an upload that crashed between its
    bytes and its commit), and stale staging files. Only what is older than the grace:
    an upload's staged or reused bytes are fresh until its row has committed."""
    grace = rt.settings.files_orphan_grace_minutes * 60
    keys = await rt.files.old_keys(grace)
    removed = 0
    for i in range(0, len(keys), 500):
        chunk = keys[i : i + 500]
        async with rt.store.read() as session:
            used = set(
                (
                    await session.scalars(
                        select(Attachment.sha256).where(Attachment.sha256.in_(chunk))
                    )
                ).all()
            )
        for key in chunk:
            if key not in used and await rt.files.delete_if_old(key, grace):
                removed += 1
    return removed


async def sweep_periodically(rt: Runtime) -> None:
    """At start, then every `files_sweep_minutes` (every process may run it: idempotent)."""
    while True:
        try:
            removed = await sweep_orphans(rt)
            if removed:
                log.info("removed %d stored files no attachment refers to", removed)
        except Exception:  # pragma: no cover - keep sweeping
            log.exception("file sweep failed")
        await asyncio.sleep(rt.settings.files_sweep_minutes * 60)
