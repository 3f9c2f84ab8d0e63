"""Every error is JSON {"error": {"code", "message"}} with the right 4xx; never a bare 500."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from trustdesk.actions.errors import ActionError, RateLimited
from trustdesk.store.db import storage_unavailable

log = logging.getLogger(__name__)

_STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid",
    429: "rate_limited",
}


def error_response(
    status: int,
    code: str,
    message: str,
    headers: dict[str, str] | None = None,
    field: str | None = None,
) -> JSONResponse:
    error = {"code": code, "message": message} | ({"field": field} if field else {})
    return JSONResponse({"error": error}, status_code=status, headers=headers)


def _describe(errors: list[Any]) -> str:
    parts = []
    for e in errors[:5]:
        loc = ".".join(str(x) for x in e.get("loc", ()) if x != "body")
        parts.append(f"{loc}: {e.get('msg', 'invalid')}" if loc else str(e.get("msg")))
    return "; ".join(parts) or "invalid request"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ActionError)
    async def on_action_error(request: Request, exc: ActionError) -> JSONResponse:
        headers = None
        if isinstance(exc, RateLimited):
            headers = {"Retry-After": str(exc.retry_after)}
        return error_response(exc.status, exc.code, exc.message, headers, exc.field)

    @app.exception_handler(RequestValidationError)
    async def on_validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = list(exc.errors())
        if any(e.get("type") == "json_invalid" for e in errors):
            return error_response(400, "malformed_json", "request body is not valid JSON")
        return error_response(422, "invalid", _describe(errors))

    @app.exception_handler(StarletteHTTPException)
    async def on_http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _STATUS_CODES.get(exc.status_code, "error")
        message = exc.detail if isinstance(exc.detail, str) else code
        return error_response(exc.status_code, code, message, getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        if storage_unavailable(exc):
            # Not the request's fault: the client keeps its client_msg_id and retries.
            log.warning("storage unavailable on %s %s: %s", request.method, request.url.path, exc)
            return error_response(
                503, "unavailable", "storage is unavailable, retry shortly", {"Retry-After": "1"}
            )
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return error_response(500, "internal", "internal error")


class BodyLimit:
    """Refuse request bodies over the limit with 413 before the route reads them."""

    def __init__(self, app: ASGIApp, max_bytes: int, upload_bytes: int | None = None) -> None:
        self.app = app
        self.default_max = max_bytes
        # Upload endpoints take a file (the action then applies the exact file limit).
        self.upload_max = (upload_bytes or max_bytes) + 64 * 1024

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if "\x00" in scope["path"] or b"%00" in scope.get("query_string", b"").lower():
            # No identifier or search ever contains NUL (PostgreSQL cannot even compare one).
            await error_response(400, "bad_request", "NUL is not allowed in URLs")(
                scope, receive, send
            )
            return
        limit = self.upload_max if scope["path"].endswith("/upload") else self.default_max
        declared = dict(scope.get("headers") or {}).get(b"content-length")
        too_big = error_response(413, "payload_too_large", f"body over {limit} bytes")
        if declared is not None:
            try:
                if int(declared) > limit:
                    await too_big(scope, receive, send)
                    return
            except ValueError:
                await error_response(400, "bad_request", "bad content-length")(scope, receive, send)
                return
        seen = 0
        started = False
        exceeded = False

        async def limited_receive() -> Message:
            nonlocal seen, exceeded
            msg = await receive()
            if msg["type"] == "http.request":
                seen += len(msg.get("body", b""))
                if seen > limit:
                    exceeded = True
                    raise _TooLarge()
            return msg

        async def tracking_send(msg: Message) -> None:
            nonlocal started
            if exceeded:
                # The route caught the error while reading the body (FastAPI turns it into
                # a 400): answer what it is, 413, and drop the route's own answer.
                if not started:
                    started = True
                    await too_big(scope, receive, send)
                return
            if msg["type"] == "http.response.start":
                started = True
            await send(msg)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _TooLarge:
            if not started:
                await too_big(scope, receive, send)


class _TooLarge(ActionError):
    status = 413
    code = "payload_too_large"

    def __init__(self) -> None:
        super().__init__("request body is too large")
