"""The rate limiters of one process, built from settings."""

from __future__ import annotations

from dataclasses import dataclass

from trustdesk.actions.runtime import Runtime
from trustdesk.api.login_guard import Budget, LoginGuard
from trustdesk.api.ratelimit import TokenBucket
from trustdesk.realtime.presence import RedisPresence


@dataclass
class Limits:
    visitor_send: TokenBucket
    ip_send: TokenBucket
    session_create: TokenBucket
    login: LoginGuard  # per address and per email, shared through Redis if configured
    transcript: TokenBucket
    upload: TokenBucket
    # Sockets (api/ws.py): opens per address (each is a visitor row write and two presence
    # frames), and read-cursor writes per address (five sockets' worth of the per-socket rate).
    ws_open: TokenBucket
    ip_read: TokenBucket


_cache: dict[int, Limits] = {}


def limits(rt: Runtime) -> Limits:
    key = id(rt)
    if key not in _cache:
        st = rt.settings
        _cache[key] = Limits(
            visitor_send=TokenBucket(st.visitor_rate_per_minute, st.visitor_rate_burst),
            ip_send=TokenBucket(st.ip_rate_per_minute, st.ip_rate_burst),
            session_create=TokenBucket(
                st.session_create_per_minute_per_ip, st.session_create_per_minute_per_ip
            ),
            login=LoginGuard(
                Budget.from_attempts(st.login_attempts_per_15min),
                redis=rt.presence.client if isinstance(rt.presence, RedisPresence) else None,
                prefix=st.redis_prefix,
            ),
            transcript=TokenBucket(2, 2),
            upload=TokenBucket(st.visitor_uploads_per_minute, st.visitor_uploads_per_minute),
            ws_open=TokenBucket(st.ws_per_ip * 6, st.ws_per_ip * 2),
            ip_read=TokenBucket(
                st.ws_read_writes_per_second * 300, int(st.ws_read_writes_per_second * 5)
            ),
        )
    return _cache[key]
