"""The rate limiters of one process, built from settings."""

from __future__ import annotations

from dataclasses import dataclass

from trustdesk.actions.runtime import Runtime
from trustdesk.api.ratelimit import TokenBucket


@dataclass
class Limits:
    visitor_send: TokenBucket
    ip_send: TokenBucket
    session_create: TokenBucket
    login_ip: TokenBucket
    login_email: TokenBucket
    transcript: TokenBucket
    upload: TokenBucket


_cache: dict[int, Limits] = {}


def limits(rt: Runtime) -> Limits:
    key = id(rt)
    if key not in _cache:
        st = rt.settings
        attempts = st.login_attempts_per_15min
        _cache[key] = Limits(
            visitor_send=TokenBucket(st.visitor_rate_per_minute, st.visitor_rate_burst),
            ip_send=TokenBucket(st.ip_rate_per_minute, st.ip_rate_burst),
            session_create=TokenBucket(
                st.session_create_per_minute_per_ip, st.session_create_per_minute_per_ip
            ),
            login_ip=TokenBucket(attempts * 5 / 15, attempts * 5),
            login_email=TokenBucket(attempts / 15, attempts),
            transcript=TokenBucket(2, 2),
            upload=TokenBucket(st.visitor_uploads_per_minute, st.visitor_uploads_per_minute),
        )
    return _cache[key]
