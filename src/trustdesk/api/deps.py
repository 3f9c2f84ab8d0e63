"""Who is calling: the visitor (bearer token) or the operator (session cookie + CSRF)."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request

from trustdesk.actions import accounts, api_tokens, audit, operators, visitors
from trustdesk.actions.errors import Forbidden, Unauthorized
from trustdesk.actions.operators import Authenticated
from trustdesk.actions.runtime import Runtime
from trustdesk.store.models import Visitor

SESSION_COOKIE = "td_session"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


async def get_runtime(request: Request) -> Runtime:
    # async: a plain `def` dependency would run in a worker thread on every request.
    rt: Runtime = request.app.state.runtime
    return rt


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


async def anonymous_caller(request: Request) -> None:
    """For the login screen's routes: the audit log knows the caller by address only."""
    audit.acting(audit.anonymous(client_ip(request)))


AnonymousDep = Depends(anonymous_caller)


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


async def current_visitor(request: Request, rt: RuntimeDep) -> Visitor:
    token = bearer_token(request)
    if token is None:
        raise Unauthorized("visitor token required (Authorization: Bearer)", "token_required")
    visitor = await visitors.visitor_by_token(rt, token)
    if visitor is None:
        raise Unauthorized("unknown visitor token", "bad_token")
    return visitor


VisitorDep = Annotated[Visitor, Depends(current_visitor)]


async def current_operator(request: Request, rt: RuntimeDep) -> Authenticated:
    """The operator: an API token (`Authorization: Bearer td_...`, on /api/admin/support/*
    with the scope each endpoint needs; no cookie, so no CSRF), or the session cookie with
    the X-CSRF-Token header on every state change."""
    token = bearer_token(request)
    if token is not None and token.startswith(api_tokens.TOKEN_PREFIX):
        return await _token_operator(request, rt, token)
    auth = await operators.authenticate(rt, request.cookies.get(SESSION_COOKIE))
    if auth is None:
        raise Unauthorized("login required", "login_required")
    audit.acting(audit.of(auth.operator, client_ip(request)))  # whom the audit log names
    if request.method not in SAFE_METHODS:
        sent = request.headers.get("x-csrf-token", "")
        if not hmac.compare_digest(sent.encode(), auth.csrf_token.encode()):
            raise Forbidden("missing or wrong X-CSRF-Token header", "csrf_failed")
    await accounts.enforce_required_2fa(rt, auth.operator, request.url.path)
    return auth


async def _token_operator(request: Request, rt: Runtime, token: str) -> Authenticated:
    scope = api_tokens.required_scope(request.method, request.url.path)
    if scope is None:
        raise Forbidden(
            "API tokens are accepted only on /api/admin/support/ endpoints", "token_not_allowed"
        )
    found = await api_tokens.authenticate_token(rt, token)
    if found is None:
        raise Unauthorized("unknown or revoked API token", "bad_api_token")
    tok, op = found
    if scope not in api_tokens.scopes_of(tok):
        raise Forbidden(f"this API token lacks the {scope} scope", "insufficient_scope")
    audit.acting(audit.of(op, client_ip(request)))
    return Authenticated(operator=op, session_hash="", csrf_token="")


OperatorDep = Annotated[Authenticated, Depends(current_operator)]


async def admin_operator(auth: OperatorDep) -> Authenticated:
    if auth.operator.role != "admin":
        raise Forbidden("only an admin can do this", "admin_only")
    return auth


AdminDep = Annotated[Authenticated, Depends(admin_operator)]
