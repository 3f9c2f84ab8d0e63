"""A real HTTP server on 127.0.0.1 that receives webhooks, in a thread, for tests."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    answered: int

    @property
    def json(self) -> dict[str, Any]:
        out: dict[str, Any] = json.loads(self.body)
        return out


class Receiver:
    """Records every POST; answers with the next status of `script`, then `default`."""

    def __init__(self, script: list[int] | None = None, default: int = 200) -> None:
        self.script = list(script or [])
        self.default = default
        self.received: list[Received] = []
        self.cond = threading.Condition()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with owner.cond:
                    status = owner.script.pop(0) if owner.script else owner.default
                    owner.received.append(
                        Received({k.lower(): v for k, v in self.headers.items()}, body, status)
                    )
                    owner.cond.notify_all()
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def wait_for(
        self, pred: Callable[[list[Received]], bool], timeout: float = 15
    ) -> list[Received]:
        """Block until pred(everything received so far) holds (woken by each request)."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while not pred(self.received):
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = [(r.headers.get("x-trustdesk-event"), r.answered) for r in self.received]
                    raise TimeoutError(f"webhook receiver: condition not met; got {seen}")
                self.cond.wait(left)
            return list(self.received)

    def events(self) -> list[str]:
        with self.cond:
            return [r.headers["x-trustdesk-event"] for r in self.received]
