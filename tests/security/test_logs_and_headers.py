"""What people typed never reaches the logs, the first password never reaches the journal,
and the response headers hold nothing back (issue 19, items 7 and 8).

Before: the widget put an upload's caption and file name in the URL, so the access log
recorded them (`caption=...card+is+4111...`), and an operator's search terms too; the
first operator's password went to standard output, and so to the journal under systemd;
file downloads were `Cache-Control: private, max-age=86400` (kept a day in a shared
computer's disk cache); CSP `connect-src ws: wss:` let a page talk to any host; no HSTS
behind HTTPS.
"""

from __future__ import annotations

import io
import stat
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from PIL import Image

from tests.security.conftest import start_server
from tests.support.clients import OperatorClient, VisitorClient
from tests.support.server import ADMIN_EMAIL, ADMIN_PASSWORD, ServerProcess

SECRET_CAPTION = "моя карта 4111 1111 1111 1111"
SECRET_NAME = "паспорт-Иванова.png"
SECRET_SEARCH = "Иванова"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    srv = start_server(tmp_path_factory, "logs", extra_env={"TRUSTDESK_LOG_FORMAT": "json"})
    yield srv
    srv.stop()


def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (20, 10), "green").save(out, "PNG")
    return out.getvalue()


def log_text(srv: ServerProcess) -> str:
    return srv.log_path.read_text(errors="replace")


def leaks(text: str) -> list[str]:
    """Every spelling of the secrets a log could carry: as typed, percent- or plus-encoded."""
    found = []
    for secret in (SECRET_CAPTION, SECRET_NAME, SECRET_SEARCH, "4111"):
        for form in (secret, quote(secret), quote(secret).replace("%20", "+")):
            if form in text:
                found.append(form)
    return found


def test_upload_text_travels_in_headers_and_never_reaches_the_log(server: ServerProcess) -> None:
    v = VisitorClient(server.url)
    v.send("Вот документ")
    r = v.http.post(
        "/api/support/upload",
        content=png(),
        params={"ticketId": v.ticket_id},
        headers={
            "content-type": "application/octet-stream",
            "X-TrustDesk-Name": quote(SECRET_NAME),
            "X-TrustDesk-Caption": quote(SECRET_CAPTION),
        },
    )
    assert r.status_code == 200, r.text
    msg = r.json()["message"]
    assert msg["message"] == SECRET_CAPTION
    assert msg["attachment"]["name"] == SECRET_NAME

    # The operator's side takes the same headers.
    op = OperatorClient(server.url, ADMIN_EMAIL, ADMIN_PASSWORD)
    r = op.http.post(
        "/api/admin/support/upload",
        content=png(),
        params={"ticketId": v.ticket_id},
        headers={"X-TrustDesk-Name": quote("ответ.png"), "X-TrustDesk-Caption": quote("Вот")},
    )
    assert r.status_code == 200, r.text
    assert r.json()["message"]["attachment"]["name"] == "ответ.png"

    # An old client that still puts them in the query string is served, but the access log
    # keeps the path only; an operator's search terms likewise.
    r = v.http.post(
        "/api/support/upload",
        content=png(),
        params={"ticketId": v.ticket_id, "name": SECRET_NAME, "caption": SECRET_CAPTION},
        headers={"content-type": "application/octet-stream"},
    )
    assert r.status_code == 200, r.text
    assert op.http.get("/api/admin/support/tickets", params={"q": SECRET_SEARCH}).status_code == 200
    # The log line of the last request is written once its response is; a request after it
    # (its own line a marker) makes sure everything before is in the file.
    httpx.get(server.url + "/healthz?marker=1")
    text = log_text(server)
    assert "/api/support/upload?[redacted]" in text and "/healthz?[redacted]" in text
    assert leaks(text) == []


def test_bad_header_text_is_a_clear_422(server: ServerProcess) -> None:
    v = VisitorClient(server.url)
    v.send("Здравствуйте")
    for bad in ("%FF%FE", quote("я" * 4001)):
        r = v.http.post(
            "/api/support/upload",
            content=png(),
            params={"ticketId": v.ticket_id},
            headers={"content-type": "application/octet-stream", "X-TrustDesk-Caption": bad},
        )
        assert r.status_code == 422, r.text
        assert r.json()["error"]["code"] in ("bad_header", "too_long")
    assert len(v.messages()["messages"]) == 2  # the greeting and the one message: nothing else


def test_first_password_goes_to_a_private_file_not_to_stdout(tmp_path: Path) -> None:
    srv = ServerProcess(tmp_path, extra_env={"TRUSTDESK_CREATE_FIRST_OPERATOR": "true"})
    srv.start()
    try:
        path = tmp_path / "first-operator-password"
        assert path.exists(), log_text(srv)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        password = path.read_text().strip()
        assert len(password) >= 16
        out = log_text(srv)  # standard output and error of the server, as a journal has them
        assert password not in out
        assert str(path) in out
        OperatorClient(srv.url, "admin@trust.store", password)  # and it logs in
    finally:
        srv.stop()


def test_downloads_are_not_cached_and_pages_connect_only_home(server: ServerProcess) -> None:
    v = VisitorClient(server.url)
    v.send("Вот фото")
    r = v.http.post(
        "/api/support/upload",
        content=png(),
        params={"ticketId": v.ticket_id},
        headers={"content-type": "application/octet-stream"},
    )
    att = r.json()["message"]["attachment"]["id"]
    op = OperatorClient(server.url, ADMIN_EMAIL, ADMIN_PASSWORD)
    for got in (op.http.get(f"/api/admin/files/{att}"), v.http.get(f"/api/support/files/{att}")):
        assert got.status_code == 200
        assert "no-store" in got.headers["cache-control"]
        assert "max-age" not in got.headers["cache-control"]
    for page in ("/", "/admin", "/widget/frame.html"):
        csp = httpx.get(server.url + page).headers["content-security-policy"]
        connect = next(d for d in csp.split(";") if d.strip().startswith("connect-src"))
        sources = connect.split()[1:]
        assert "ws:" not in sources and "wss:" not in sources, csp
        assert sources == ["'self'", server.ws_url], csp
    # Plain HTTP (no COOKIE_SECURE): no HSTS, which would break a local install.
    assert "strict-transport-security" not in httpx.get(server.url + "/admin").headers


def test_hsts_behind_https(tmp_path: Path) -> None:
    srv = ServerProcess(tmp_path, extra_env={"TRUSTDESK_COOKIE_SECURE": "true"})
    srv.start()
    try:
        for page in ("/admin", "/api/support/status", "/healthz"):
            h = httpx.get(srv.url + page).headers
            assert h.get("strict-transport-security", "").startswith("max-age="), page
            assert int(h["strict-transport-security"].split("=")[1]) >= 15552000
    finally:
        srv.stop()
