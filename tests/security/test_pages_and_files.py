"""Security headers on every page, path traversal, and what uploads can and cannot be.

Every file under src/trustdesk/web/ and every route is fetched: each response carries a
strict Content-Security-Policy (no inline script), nosniff, a Referrer-Policy, and may be
framed only where it must be (the widget frame, by the configured shop origins).
Traversal attempts are sent as raw request lines, byte for byte, so no client library
normalises them away.
"""

from __future__ import annotations

import socket
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.security.conftest import start_server
from tests.support.clients import OperatorClient, VisitorClient
from tests.support.inspect_db import query
from tests.support.payloads import png
from tests.support.server import ADMIN_EMAIL, ADMIN_PASSWORD, ServerProcess

WEB = Path(__file__).resolve().parents[2] / "src" / "trustdesk" / "web"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    srv = start_server(tmp_path_factory, "pages")
    yield srv
    srv.stop()


def pages() -> list[str]:
    files = sorted(
        "/" + str(p.relative_to(WEB))
        for p in WEB.rglob("*")
        if p.is_file() and not p.name.startswith(".")
    )
    return [
        "/",
        "/admin",
        "/admin/",
        "/widget.js",
        "/healthz",
        "/api/openapi.json",
        "/api/support/status",
        "/nope",
        "/widget/nope.js",
        "/api/nope",
        *files,
    ]


def csp_directives(value: str) -> dict[str, list[str]]:
    out = {}
    for part in value.split(";"):
        words = part.split()
        if words:
            out[words[0]] = words[1:]
    return out


def test_security_headers_on_every_page(server: ServerProcess) -> None:
    allowed = {"'self'", server.url, f"http://localhost:{server.port}"}
    checked = 0
    for path in pages():
        r = httpx.get(server.url + path)
        assert r.status_code in (200, 404), (path, r.status_code)
        h = r.headers
        assert h.get("x-content-type-options") == "nosniff", path
        assert h.get("referrer-policy") in (
            "strict-origin-when-cross-origin",
            "no-referrer",
            "same-origin",
            "strict-origin",
        ), path
        csp = csp_directives(h.get("content-security-policy", ""))
        assert csp, f"no CSP on {path}"
        # No inline or eval'd script anywhere; plugins off.
        script = csp.get("script-src", csp.get("default-src"))
        assert script is not None and script in (["'self'"], ["'none'"]), (path, script)
        assert "object-src" in csp or csp.get("default-src") == ["'none'"], path
        for words in csp.values():
            assert "'unsafe-inline'" not in words or words is csp.get("style-src"), path
            assert "'unsafe-eval'" not in words, path
            assert "*" not in words, path
        # Framing: the widget's frame by the shop origins only; everything else by no one.
        if path.startswith("/widget/"):
            assert set(csp["frame-ancestors"]) <= allowed, (path, csp["frame-ancestors"])
        else:
            assert csp.get("frame-ancestors") == ["'none'"], path
            assert h.get("x-frame-options") == "DENY", path
        checked += 1
    assert checked > 20
    # The dashboard itself, explicitly.
    h = httpx.get(server.url + "/admin").headers
    assert "frame-ancestors 'none'" in h["content-security-policy"]
    assert h["x-frame-options"] == "DENY"


def test_api_docs_page_cannot_be_framed(server: ServerProcess) -> None:
    """/api/docs (Swagger UI) loads its script from a CDN and so has no CSP of ours: it is
    at least never framed and never sniffed (see SECURITY.md, "Known limits")."""
    h = httpx.get(server.url + "/api/docs").headers
    assert h["x-frame-options"] == "DENY" and h["x-content-type-options"] == "nosniff"


def raw_get(server: ServerProcess, target: str) -> tuple[int, bytes]:
    """GET exactly this request target, unnormalised."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        s.sendall(
            f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
            "Connection: close\r\n\r\n".encode("latin-1")
        )
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    status = int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/") else 0
    return status, data


TRAVERSALS = [
    "/widget/../../config.py",
    "/widget/..%2f..%2fconfig.py",
    "/widget/%2e%2e/%2e%2e/config.py",
    "/widget/%2e%2e%2f%2e%2e%2fconfig.py",
    "/widget/%252e%252e/%252e%252e/config.py",
    "/admin/..%2f..%2fstore%2fdb.py",
    "/demo/..%5c..%5cconfig.py",
    "/i18n/....//....//config.py",
    "/demo/img/../../../config.py",
    "/widget/..%00/config.py",
    "/widget/%2fetc%2fpasswd",
    "/widget//etc/passwd",
    "/admin/..%2f..%2f..%2f..%2f..%2f..%2fetc%2fpasswd",
    "/widget/{data}/secret_key",
    "/widget/..%2f..%2f..%2f..%2f..%2f..%2f..%2f..{data}%2ftrustdesk.db",
]


def test_path_traversal_reads_nothing_outside_the_web_root(server: ServerProcess) -> None:
    secret = (
        (server.data_dir / "secret_key").read_bytes().strip()
        if (server.data_dir / "secret_key").exists()
        else b"test-secret-key-for-this-run-only"
    )
    data = str(server.data_dir).replace("/", "%2f")
    for target in TRAVERSALS:
        status, body = raw_get(server, target.format(data=data))
        assert status in (400, 404), (target, status)
        for leak in (
            b"class Settings",
            b"root:x:0",
            b"SQLite format",
            secret,
            b"create_async_engine",
        ):
            assert leak not in body, (target, leak)


def test_file_downloads_only_by_id_and_only_as_attachments(server: ServerProcess) -> None:
    v = VisitorClient(server.url)
    ticket = v.send("файл")["ticketId"]
    # A PNG with an HTML payload glued after it, named as a page.
    polyglot = png() + b"<html><script>alert(1)</script></html>"
    r = v.http.post(
        "/api/support/upload",
        params={"ticketId": ticket, "name": "../../evil.html\r\nSet-Cookie: td_session=x"},
        content=polyglot,
        headers={"Content-Type": "text/html"},
    )
    assert r.status_code == 200, r.text
    att = r.json()["message"]["attachment"]
    fid = att["id"]
    assert "/" not in att["name"] and "\r" not in att["name"] and "\n" not in att["name"]
    assert att["name"].endswith(".png")
    d = v.http.get(f"/api/support/files/{fid}")
    assert d.status_code == 200
    assert d.headers["content-type"] == "image/png"
    assert d.headers["x-content-type-options"] == "nosniff"
    assert d.headers["content-disposition"].startswith("attachment;")
    assert "sandbox" in d.headers["content-security-policy"]
    assert "set-cookie" not in d.headers
    # Re-encoded: the script that rode along is gone.
    assert d.content.startswith(b"\x89PNG") and b"<script>" not in d.content
    # Stored by content hash under the data directory, never under the web root.
    (sha,) = query(server, "SELECT sha256 FROM attachments WHERE id = $1", fid)[0]
    assert not list(WEB.rglob(f"*{sha}*"))
    assert list(server.data_dir.rglob(f"*{sha}*"))
    # Traversal and guessing through the id: nothing.
    op = OperatorClient(server.url, ADMIN_EMAIL, ADMIN_PASSWORD)
    for bad in (
        "..%2f..%2ftrustdesk.db",
        "%2e%2e",
        "..",
        sha,
        sha[:32],
        fid.upper(),
        "0" * 32,
        fid + "%00",
        "%2fetc%2fpasswd",
    ):
        for http, base in ((v.http, "/api/support/files/"), (op.http, "/api/admin/files/")):
            r = http.get(base + bad)
            assert r.status_code in (400, 404, 422), (base, bad, r.status_code)
            assert b"SQLite" not in r.content and b"root:x" not in r.content


def _png_header_only(width: int, height: int) -> bytes:
    """A tiny PNG that claims a huge canvas (a decompression bomb's header)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    row = b"\x00" + b"\x00" * 3 * width
    body = zlib.compressobj(9)
    idat = body.compress(row * 64) + body.flush()
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


@pytest.mark.parametrize(
    ("name", "content", "status"),
    [
        ("page.html", b"<!doctype html><script>alert(1)</script>", 415),
        ("x.png", b"<svg xmlns='http://www.w3.org/2000/svg' onload='alert(1)'/>", 415),
        ("x.js", b"alert(document.cookie)", 415),
        ("x.exe", b"MZ\x90\x00\x03\x00\x00\x00", 415),
        ("broken.png", b"\x89PNG\r\n\x1a\n" + b"garbage" * 10, 422),
        ("bomb.png", _png_header_only(40_000, 40_000), 422),
    ],
)
def test_uploads_refuse_what_is_not_an_allowed_file(
    server: ServerProcess, name: str, content: bytes, status: int
) -> None:
    v = VisitorClient(server.url)
    ticket = v.send("загрузка")["ticketId"]
    before = query(server, "SELECT COUNT(*) FROM attachments")
    r = v.http.post(
        "/api/support/upload",
        params={"ticketId": ticket, "name": name},
        content=content,
        headers={"Content-Type": "image/png"},
    )
    assert r.status_code == status, (name, r.status_code, r.text)
    assert query(server, "SELECT COUNT(*) FROM attachments") == before
    assert httpx.get(server.url + "/healthz").status_code == 200
