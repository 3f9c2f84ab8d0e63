"""A local stand-in for the Telegram Bot API: the one stand-in in the test suite.

The real Bot API (api.telegram.org) cannot be reached from the test machines, and no
Debian or PyPI package ships a Bot API server, so the tests run the Telegram channel against
this small HTTP server instead. It speaks the documented Bot API JSON
(https://core.telegram.org/bots/api) for exactly the methods the channel uses: getMe,
getUpdates (long polling, offsets confirm updates), setWebhook / deleteWebhook (with
secret_token: updates are then POSTed to the URL with the X-Telegram-Bot-Api-Secret-Token
header, as Telegram does), sendMessage, sendPhoto, sendDocument and getFile, and it serves
files at /file/bot<token>/<file_path>. Requests come as the client sends them: form fields
or multipart with files.
"""

from __future__ import annotations

import itertools
import json
import re
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

from tests.support.services import free_port

TOKEN = "123456:TEST-token-for-the-stand-in"


class BotApi:
    def __init__(self, token: str = TOKEN) -> None:
        self.token = token
        self.port = free_port()
        self.lock = threading.Condition()
        self.updates: list[dict[str, Any]] = []
        self.update_ids = itertools.count(1000)
        self.message_ids = itertools.count(1)
        self.files: dict[str, tuple[str, bytes]] = {}  # file_id -> (file_path, bytes)
        self.sent: list[dict[str, Any]] = []  # what the bot sent: method, fields, file
        self.webhook: dict[str, str] | None = None
        self.calls: list[str] = []
        self.refusing = False  # answer every send with 502 (Telegram's side is down)
        self.refused = 0
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as the client expects

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                prefix = f"/file/bot{api.token}/"
                self.path = urllib.parse.unquote(self.path)  # (the client quotes the token)
                if not self.path.startswith(prefix):
                    self._answer(404, {"ok": False, "error_code": 404, "description": "Not Found"})
                    return
                path = self.path[len(prefix) :]
                data = next((d for p, d in api.files.values() if p == path), None)
                if data is None:
                    self._answer(404, {"ok": False, "error_code": 404, "description": "Not Found"})
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:  # noqa: N802
                if self.path.startswith("/file/"):  # (the client fetches files by POST too)
                    self.do_GET()
                    return
                prefix = f"/bot{api.token}/"
                if not self.path.startswith(prefix):
                    self._answer(
                        401, {"ok": False, "error_code": 401, "description": "Unauthorized"}
                    )
                    return
                method = self.path[len(prefix) :]
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                fields, files = _form(self.headers.get("Content-Type", ""), body)
                status, result = api.call(method, fields, files)
                self._answer(status, result)

            def _answer(self, status: int, doc: dict[str, Any]) -> None:
                out = json.dumps(doc).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> BotApi:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    # ------------------------------------------------------------ the Bot API

    def call(
        self, method: str, fields: dict[str, str], files: dict[str, tuple[str, bytes]]
    ) -> tuple[int, dict[str, Any]]:
        self.calls.append(method)
        if method == "getMe":
            return 200, _ok(
                {
                    "id": 42,
                    "is_bot": True,
                    "first_name": "Trust Store",
                    "username": "trust_store_bot",
                }
            )
        if method == "getUpdates":
            if self.webhook is not None:
                return 409, {
                    "ok": False,
                    "error_code": 409,
                    "description": "Conflict: can't use getUpdates method while webhook is active",
                }
            offset = int(fields.get("offset") or 0)
            timeout = float(fields.get("timeout") or 0)
            deadline = time.monotonic() + min(timeout, 30)
            with self.lock:
                self.updates = [u for u in self.updates if u["update_id"] >= offset]
                while not self.updates and time.monotonic() < deadline:
                    self.lock.wait(deadline - time.monotonic())
                return 200, _ok(list(self.updates))
        if method == "setWebhook":
            url = fields.get("url", "")
            if url:
                self.webhook = {"url": url, "secret": fields.get("secret_token", "")}
            else:
                self.webhook = None
            return 200, _ok(True)
        if method == "deleteWebhook":
            self.webhook = None
            return 200, _ok(True)
        if method == "getFile":
            found = self.files.get(fields.get("file_id", ""))
            if found is None:
                return 400, {
                    "ok": False,
                    "error_code": 400,
                    "description": "Bad Request: invalid file_id",
                }
            fid = fields["file_id"]
            return 200, _ok(
                {
                    "file_id": fid,
                    "file_unique_id": fid,
                    "file_size": len(found[1]),
                    "file_path": found[0],
                }
            )
        if method in ("sendMessage", "sendPhoto", "sendDocument") and self.refusing:
            with self.lock:
                self.refused += 1
                self.lock.notify_all()
            return 502, {"ok": False, "error_code": 502, "description": "Bad Gateway"}
        if method in ("sendMessage", "sendPhoto", "sendDocument"):
            chat = fields.get("chat_id")
            if not chat:
                return 400, {
                    "ok": False,
                    "error_code": 400,
                    "description": "Bad Request: chat not found",
                }
            entry: dict[str, Any] = {"method": method, **fields}
            for name, (filename, data) in files.items():
                entry["file"] = {"field": name, "name": filename, "data": data}
            with self.lock:
                self.sent.append(entry)
                self.lock.notify_all()
            message = {
                "message_id": next(self.message_ids),
                "date": int(time.time()),
                "chat": {"id": int(chat), "type": "private"},
            }
            if "text" in fields:
                message["text"] = fields["text"]
            return 200, _ok(message)
        return 404, {"ok": False, "error_code": 404, "description": "Not Found: method not found"}

    # ------------------------------------------------------------ what a customer does

    def add_file(self, data: bytes, path: str) -> str:
        fid = f"file{len(self.files) + 1}"
        self.files[fid] = (path, data)
        return fid

    def customer_writes(self, chat_id: int, first_name: str, **content: Any) -> dict[str, Any]:
        """A customer's message to the bot (text=..., photo=[...], document={...}, voice=...)."""
        message = {
            "message_id": next(self.message_ids),
            "date": int(time.time()),
            "chat": {"id": chat_id, "type": "private", "first_name": first_name},
            "from": {"id": chat_id, "is_bot": False, "first_name": first_name},
            **content,
        }
        update = {"update_id": next(self.update_ids), "message": message}
        hook = self.webhook
        if hook is not None:  # as Telegram does: POST it, with the secret
            r = httpx.post(
                hook["url"],
                json=update,
                headers={"X-Telegram-Bot-Api-Secret-Token": hook["secret"]},
                timeout=10,
            )
            assert r.status_code == 200, r.text
        else:
            with self.lock:
                self.updates.append(update)
                self.lock.notify_all()
        return update

    def wait_sent(self, count: int, timeout: float = 15) -> list[dict[str, Any]]:
        with self.lock:
            assert self.lock.wait_for(lambda: len(self.sent) >= count, timeout), (
                f"expected {count} bot messages, got {len(self.sent)}"
            )
            return list(self.sent)


def _ok(result: Any) -> dict[str, Any]:
    return {"ok": True, "result": result}


def _form(ctype: str, body: bytes) -> tuple[dict[str, str], dict[str, tuple[str, bytes]]]:
    if ctype.startswith("multipart/form-data"):
        # Split by hand: the client sends file names as raw UTF-8 in the part headers.
        boundary = re.search(r'boundary="?([^";]+)"?', ctype)
        assert boundary is not None
        fields: dict[str, str] = {}
        files: dict[str, tuple[str, bytes]] = {}
        for chunk in body.split(b"--" + boundary.group(1).encode())[1:]:
            if chunk.startswith(b"--"):
                break
            chunk = chunk.removeprefix(b"\r\n").removesuffix(b"\r\n")
            head, _, data = chunk.partition(b"\r\n\r\n")
            disposition = head.decode("utf-8", "replace")
            name = re.search(r'; name="([^"]*)"', disposition)
            filename = re.search(r'; filename="([^"]*)"', disposition)
            assert name is not None
            if filename is not None:
                files[name.group(1)] = (filename.group(1), data)
            else:
                fields[name.group(1)] = data.decode()
        return fields, files
    if ctype.startswith("application/json"):
        return {
            k: v if isinstance(v, str) else json.dumps(v)
            for k, v in json.loads(body or b"{}").items()
        }, {}
    return dict(urllib.parse.parse_qsl(body.decode())), {}
