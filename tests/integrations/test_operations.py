"""Operations: Prometheus metrics at /metrics and logs as JSON lines."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import httpx

from tests.support.clients import OperatorClient, VisitorClient
from tests.support.server import ServerProcess
from tests.support.wsclient import operator_socket, visitor_socket
from trustdesk.app import create_app
from trustdesk.config import Settings


def _metric(text: str, name: str, labels: str = "") -> float:
    pattern = rf"^{re.escape(name)}{re.escape(labels)} (\S+)$"
    m = re.search(pattern, text, re.M)
    assert m, f"{name}{labels} not in /metrics"
    return float(m.group(1))


def _metrics(server: ServerProcess) -> str:
    r = httpx.get(server.url + "/metrics", timeout=30)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    return r.text


def test_metrics_count_messages_sockets_and_delivery_latency(
    server: ServerProcess, admin: OperatorClient
) -> None:
    before = _metrics(server)
    customer_before = _metric(before, "trustdesk_messages_total", '{sender_type="customer"}')
    visitor = VisitorClient(server.url)
    number = visitor.send("метрики")["ticketId"]
    session = admin.http.cookies["td_session"]
    last = max(m["id"] for m in visitor.messages()["messages"])

    async def live() -> tuple[str, str]:
        vs, _ = await visitor_socket(server.ws_url, visitor.token, number, since=last)
        ops, _ = await operator_socket(server.ws_url, session, server.url, since=last)
        try:
            during = await asyncio.to_thread(_metrics, server)
            await asyncio.to_thread(admin.reply, number, "ответ по сокету")
            await vs.until(
                lambda f: (
                    f.get("type") == "message" and f["message"]["message"] == "ответ по сокету"
                )
            )
            await ops.until(
                lambda f: (
                    f.get("type") == "message" and f["message"]["message"] == "ответ по сокету"
                )
            )
        finally:
            await vs.close()
            await ops.close()
        return during, await asyncio.to_thread(_metrics, server)

    during, after = asyncio.run(live())
    assert _metric(after, "trustdesk_messages_total", '{sender_type="customer"}') >= (
        customer_before + 1
    )
    assert _metric(after, "trustdesk_messages_total", '{sender_type="admin"}') >= 1
    assert _metric(during, "trustdesk_websocket_connections", '{kind="visitor"}') >= 1
    assert _metric(during, "trustdesk_websocket_connections", '{kind="operator"}') >= 1
    for kind in ("visitor", "operator"):
        assert _metric(after, "trustdesk_delivery_latency_seconds_count", f'{{kind="{kind}"}}') >= 1
    assert "# TYPE trustdesk_delivery_latency_seconds histogram" in after


def test_metrics_can_be_switched_off(tmp_path: Path) -> None:
    on = create_app(Settings(data_dir=tmp_path))
    off = create_app(Settings(data_dir=tmp_path, metrics=False))
    assert "/metrics" in {getattr(r, "path", None) for r in on.routes}
    assert "/metrics" not in {getattr(r, "path", None) for r in off.routes}


def test_logs_are_json_lines(server: ServerProcess) -> None:
    httpx.get(server.url + "/healthz", timeout=30)
    httpx.get(server.url + "/api/support/status", timeout=30)
    lines = [line for line in server.log_path.read_text().splitlines() if line.strip()]
    assert lines
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    for rec in records:
        assert {"ts", "level", "logger", "message"} <= set(rec)
    access = [r for r in records if r["logger"] == "uvicorn.access"]
    assert any(r.get("path") == "/api/support/status" and r.get("status") == 200 for r in access)
    assert any("startup complete" in r["message"].lower() for r in records)
