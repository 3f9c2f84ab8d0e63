"""Uploads and downloads for both sides. The body of an upload is the file itself."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote, unquote

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import Response

from trustdesk.actions import attachments
from trustdesk.actions.errors import Invalid
from trustdesk.api import schemas as s
from trustdesk.api.deps import OperatorDep, RuntimeDep, VisitorDep
from trustdesk.api.limits import limits
from trustdesk.store.models import Attachment

router = APIRouter(tags=["files"])
ERRORS: dict[int | str, dict[str, object]] = {
    code: {"model": s.ErrorOut} for code in (400, 401, 403, 404, 413, 415, 422, 429)
}
FILE_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    }
}
# The name and caption are customer text: they travel in headers (percent-encoded UTF-8),
# never in the URL, which access logs and proxies record. The query parameters of the same
# name are still read for old clients (the access log drops every query string anyway).
Name = Annotated[str | None, Query(max_length=255, description="deprecated: use X-TrustDesk-Name")]
Caption = Annotated[
    str | None, Query(max_length=4000, description="deprecated: use X-TrustDesk-Caption")
]
NameHeader = Annotated[
    str | None,
    Header(
        alias="X-TrustDesk-Name",
        max_length=255 * 9,
        description="the file's original name, percent-encoded UTF-8",
    ),
]
CaptionHeader = Annotated[
    str | None,
    Header(
        alias="X-TrustDesk-Caption",
        max_length=4000 * 9,
        description="text sent with the file, percent-encoded UTF-8 (at most 4000 characters)",
    ),
]
TicketQ = Annotated[str | None, Query(min_length=1, max_length=40)]
ClientId = Annotated[str | None, Query(min_length=1, max_length=64)]
FileId = Annotated[str, Query(max_length=64)]


def _text_header(value: str | None, fallback: str | None, limit: int, field: str) -> str | None:
    """A percent-encoded UTF-8 header's text (the query parameter if there is no header)."""
    if value is None:
        return fallback
    try:
        text = unquote(value, errors="strict")
    except UnicodeDecodeError as exc:
        raise Invalid(f"{field} is not percent-encoded UTF-8", "bad_header") from exc
    if len(text) > limit:
        raise Invalid(f"{field} is limited to {limit} characters", "too_long")
    return text


def file_response(a: Attachment, data: bytes) -> Response:
    """Never rendered as a page: a download, sniffing off, sandboxed if opened anyway."""
    ascii_name = a.name.encode("ascii", "replace").decode().replace('"', "_").replace("?", "_")
    return Response(
        content=data,
        media_type=a.mime,
        headers={
            "Content-Disposition": (
                f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(a.name)}"
            ),
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "sandbox; default-src 'none'",
            # A customer's file must not stay in a shared computer's disk cache after logout.
            "Cache-Control": "private, no-store",
            "Cross-Origin-Resource-Policy": "same-origin",
        },
    )


@router.post(
    "/api/support/upload",
    response_model=s.SendMessageOut,
    responses=ERRORS,
    openapi_extra=FILE_BODY,
)
async def visitor_upload(
    request: Request,
    visitor: VisitorDep,
    rt: RuntimeDep,
    name: Name = None,
    ticketId: TicketQ = None,  # noqa: N803
    client_msg_id: ClientId = None,
    caption: Caption = None,
    voice: bool = False,
    name_header: NameHeader = None,
    caption_header: CaptionHeader = None,
) -> s.SendMessageOut:
    """Send a file, screenshot or voice message (request body = the file's bytes).

    Types are checked by content (PNG, JPEG, GIF, WebP, PDF, WebM/Ogg audio); images are
    re-encoded without metadata; at most 10 MiB per file and a quota per visitor."""
    limits(rt).upload.check(visitor.id, "too many uploads, slow down")
    data = await request.body()
    t, msg = await attachments.visitor_upload(
        rt,
        visitor,
        data,
        name=_text_header(name_header, name, 255, "the file name"),
        number=ticketId,
        client_msg_id=client_msg_id,
        caption=_text_header(caption_header, caption, 4000, "the caption"),
        voice=voice,
    )
    return s.SendMessageOut(ticketId=t.number, message=s.Message(**msg))


@router.get("/api/support/files/{file_id}", responses=ERRORS)
async def visitor_download(file_id: str, visitor: VisitorDep, rt: RuntimeDep) -> Response:
    """A file of one of the visitor's own tickets (anything else is 404)."""
    a, data = await attachments.read_for_visitor(rt, visitor, file_id[:64])
    return file_response(a, data)


@router.post(
    "/api/admin/support/upload",
    response_model=s.MessageOut,
    responses=ERRORS,
    openapi_extra=FILE_BODY,
)
async def operator_upload(
    request: Request,
    auth: OperatorDep,
    rt: RuntimeDep,
    ticketId: Annotated[str, Query(min_length=1, max_length=40)],  # noqa: N803
    name: Name = None,
    client_msg_id: ClientId = None,
    caption: Caption = None,
    voice: bool = False,
    name_header: NameHeader = None,
    caption_header: CaptionHeader = None,
) -> s.MessageOut:
    """An operator sends a file, screenshot or voice message to the customer."""
    data = await request.body()
    msg = await attachments.operator_upload(
        rt,
        auth.operator,
        data,
        name=_text_header(name_header, name, 255, "the file name"),
        number=ticketId,
        client_msg_id=client_msg_id,
        caption=_text_header(caption_header, caption, 4000, "the caption"),
        voice=voice,
    )
    return s.MessageOut(message=s.Message(**msg))


@router.get("/api/admin/files/{file_id}", responses=ERRORS)
async def operator_download(file_id: str, auth: OperatorDep, rt: RuntimeDep) -> Response:
    a, data = await attachments.read_for_operator(rt, file_id[:64])
    return file_response(a, data)
