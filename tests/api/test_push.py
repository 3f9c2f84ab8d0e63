"""Browser push: a stored subscription receives an encrypted, VAPID-signed push, locally."""

from __future__ import annotations

import base64
import json
import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer

import http_ece
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.support.clients import OperatorClient, VisitorClient
from tests.support.server import ServerProcess


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class PushService:
    """A local stand-in for a browser vendor's push service: an HTTP endpoint that records."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.event = threading.Event()
        svc = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                svc.received.append((dict(self.headers), body))
                svc.event.set()
                self.send_response(201)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/push/abc"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


@pytest.fixture
def push_service() -> Iterator[PushService]:
    svc = PushService()
    yield svc
    svc.httpd.shutdown()


def test_push_reaches_a_closed_dashboard(
    server: ServerProcess, operator: OperatorClient, push_service: PushService
) -> None:
    key = operator.http.get("/api/admin/push/key").json()["public_key"]
    assert len(base64.urlsafe_b64decode(key + "==")) == 65  # uncompressed P-256 point
    browser_key = ec.generate_private_key(ec.SECP256R1())
    p256dh = b64(
        browser_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
    )
    auth = os.urandom(16)
    r = operator.post(
        "/api/admin/push/subscribe",
        json={"endpoint": push_service.url, "keys": {"p256dh": p256dh, "auth": b64(auth)}},
    )
    assert r.status_code == 200, r.text
    # No dashboard socket is open for this operator: a new customer message is pushed.
    customer = VisitorClient(server.url)
    customer.send("Где мой заказ?")
    assert push_service.event.wait(15), "no push arrived"
    headers, body = push_service.received[-1]
    lower = {k.lower(): v for k, v in headers.items()}
    assert lower["content-encoding"] == "aes128gcm"
    assert lower["authorization"].startswith("vapid t=")
    plain = http_ece.decrypt(body, private_key=browser_key, auth_secret=auth, version="aes128gcm")
    note = json.loads(plain)
    assert note["body"] == "Где мой заказ?" and note["ticketId"] == customer.ticket_id


def test_push_endpoint_must_be_a_push_service(operator: OperatorClient) -> None:
    r = operator.post(
        "/api/admin/push/subscribe",
        json={"endpoint": "http://169.254.169.254/latest", "keys": {"p256dh": "x", "auth": "y"}},
    )
    assert r.status_code == 422 and r.json()["error"]["code"] == "bad_endpoint"
