"""Prometheus metrics, served as text at /metrics (TRUSTDESK_METRICS=false turns it off).

Every process counts its own; Prometheus adds them up across processes. With
`trustdesk run --workers N` set PROMETHEUS_MULTIPROC_DIR to an empty directory so that
the workers of one server share their numbers (prometheus-client's multiprocess mode).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
)

REGISTRY = CollectorRegistry()
_MULTIPROCESS = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
if not _MULTIPROCESS:
    ProcessCollector(registry=REGISTRY)

CONNECTIONS = Gauge(
    "trustdesk_websocket_connections",
    "Open WebSocket connections, by kind (visitor or operator).",
    ["kind"],
    registry=REGISTRY,
    multiprocess_mode="livesum",
)
MESSAGES = Counter(
    "trustdesk_messages",
    "Messages committed to the database, by sender_type.",
    ["sender_type"],
    registry=REGISTRY,
)
DELIVERY_LATENCY = Histogram(
    "trustdesk_delivery_latency_seconds",
    "From a message's commit (its created_at) to its frame being sent on a live socket.",
    ["kind"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
    registry=REGISTRY,
)
WEBHOOK_DELIVERIES = Counter(
    "trustdesk_webhook_deliveries",
    "Webhook delivery attempts, by result (ok, retry, failed).",
    ["result"],
    registry=REGISTRY,
)
PURGED_TICKETS = Counter(
    "trustdesk_retention_purged_tickets",
    "Tickets deleted by the retention policy.",
    registry=REGISTRY,
)
LOGIN_ATTEMPTS = Counter(
    "trustdesk_login_attempts",
    "Operator logins, by result: ok and failed had their password checked, refused did not "
    "(over a login limit).",
    ["result"],
    registry=REGISTRY,
)

for _kind in ("visitor", "operator"):
    CONNECTIONS.labels(_kind)
    DELIVERY_LATENCY.labels(_kind)
for _sender in ("customer", "admin", "system", "bot"):
    MESSAGES.labels(_sender)
for _result in ("ok", "retry", "failed"):
    WEBHOOK_DELIVERIES.labels(_result)
for _result in ("ok", "failed", "refused"):
    LOGIN_ATTEMPTS.labels(_result)


def ws_opened(kind: str) -> None:
    CONNECTIONS.labels(kind).inc()


def ws_closed(kind: str) -> None:
    CONNECTIONS.labels(kind).dec()


def messages_committed(messages: Iterable[dict[str, Any]]) -> None:
    for m in messages:
        MESSAGES.labels(str(m.get("sender_type", "unknown"))).inc()


def message_delivered(kind: str, message: dict[str, Any]) -> None:
    """A live message frame went out on a socket: observe commit -> send.

    created_at is taken just before the commit, by the process that wrote the row; across
    machines the figure includes their clock difference.
    """
    try:
        created = datetime.fromisoformat(message["created_at"])  # (strptime: 10x slower)
    except (KeyError, TypeError, ValueError):
        return
    DELIVERY_LATENCY.labels(kind).observe(max(0.0, time.time() - created.timestamp()))


def render() -> tuple[bytes, str]:
    """The text exposition format and its content type."""
    if _MULTIPROCESS:
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
