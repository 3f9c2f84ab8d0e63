"""Files both ways, and every safety rule, with real files over real HTTP."""

from __future__ import annotations

import io
from pathlib import Path

import httpx
from PIL import ExifTags, Image

from tests.support.clients import OperatorClient, VisitorClient
from tests.support.server import ServerProcess


def png_bytes(color: str = "red", size: tuple[int, int] = (40, 30)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, "PNG")
    return out.getvalue()


def jpeg_with_gps() -> bytes:
    img = Image.new("RGB", (64, 48), "blue")
    exif = img.getexif()
    exif[ExifTags.Base.Make] = "SpyPhone"
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = (55.0, 45.0, 21.0)
    gps[ExifTags.GPS.GPSLongitudeRef] = "E"
    gps[ExifTags.GPS.GPSLongitude] = (37.0, 37.0, 4.0)
    out = io.BytesIO()
    img.save(out, "JPEG", exif=exif)
    return out.getvalue()


PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
OGG = b"OggS\x00\x02" + b"\x00" * 200


def upload(v: VisitorClient, data: bytes, name: str, **params: object) -> httpx.Response:
    q: dict[str, object] = {"name": name, **params}
    if v.ticket_id:
        q.setdefault("ticketId", v.ticket_id)
    return v.http.post(
        "/api/support/upload",
        content=data,
        params=q,
        headers={"content-type": "application/octet-stream"},
    )


def test_image_file_and_voice_both_ways(server: ServerProcess, operator: OperatorClient) -> None:
    v = VisitorClient(server.url)
    v.send("Вот фото")
    r = upload(v, png_bytes(), "photo.png", caption="Скриншот ошибки")
    assert r.status_code == 200, r.text
    msg = r.json()["message"]
    assert msg["kind"] == "file" and msg["message"] == "Скриншот ошибки"
    att = msg["attachment"]
    assert att["kind"] == "image" and att["mime"] == "image/png"
    assert (att["width"], att["height"]) == (40, 30)
    # The operator sees it in the history and downloads it.
    history = operator.open(v.ticket_id or "")["messages"]
    assert any(m.get("attachment") and m["attachment"]["id"] == att["id"] for m in history)
    got = operator.http.get(f"/api/admin/files/{att['id']}")
    assert got.status_code == 200 and got.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(got.content)).size == (40, 30)
    # And the other way: a PDF and a voice message from the operator.
    r = operator.http.post(
        "/api/admin/support/upload",
        content=PDF,
        params={"ticketId": v.ticket_id, "name": "счёт.pdf"},
    )
    assert r.status_code == 200, r.text
    pdf = r.json()["message"]["attachment"]
    r = operator.http.post(
        "/api/admin/support/upload",
        content=OGG,
        params={"ticketId": v.ticket_id, "name": "voice.ogg", "voice": True},
    )
    voice = r.json()["message"]
    assert voice["kind"] == "voice" and voice["attachment"]["mime"] == "audio/ogg"
    seen = v.messages()["messages"]
    assert [m["attachment"]["id"] for m in seen if m.get("attachment")][-2:] == [
        pdf["id"],
        voice["attachment"]["id"],
    ]
    dl = v.http.get(f"/api/support/files/{pdf['id']}")
    assert dl.status_code == 200 and dl.content == PDF
    assert dl.headers["content-type"] == "application/pdf"
    assert dl.headers["x-content-type-options"] == "nosniff"
    assert dl.headers["content-security-policy"].startswith("sandbox")
    assert dl.headers["content-disposition"].startswith("attachment;")
    assert "filename*=UTF-8''%D1%81%D1%87%D1%91%D1%82.pdf" in dl.headers["content-disposition"]


def test_gps_exif_is_stripped(server: ServerProcess, operator: OperatorClient) -> None:
    original = jpeg_with_gps()
    assert Image.open(io.BytesIO(original)).getexif().get_ifd(ExifTags.IFD.GPSInfo)
    v = VisitorClient(server.url)
    r = upload(v, original, "IMG_0001.JPG")
    assert r.status_code == 200, r.text
    att = r.json()["message"]["attachment"]
    assert att["name"] == "IMG_0001.jpg"
    stored = operator.http.get(f"/api/admin/files/{att['id']}").content
    exif = Image.open(io.BytesIO(stored)).getexif()
    assert not exif.get_ifd(ExifTags.IFD.GPSInfo) and ExifTags.Base.Make not in exif
    assert b"SpyPhone" not in stored


def test_types_are_checked_by_content(server: ServerProcess) -> None:
    v = VisitorClient(server.url)
    v.send("hi")
    html = b"<html><body><script>alert(document.cookie)</script></body></html>"
    r = upload(v, html, "cat.png")
    assert r.status_code == 415 and r.json()["error"]["code"] == "unsupported_type"
    svg = (
        b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg">'
        b"<script>alert(1)</script></svg>"
    )
    assert upload(v, svg, "logo.svg").status_code == 415
    assert upload(v, b"MZ\x90\x00" + b"\x00" * 100, "setup.exe").status_code == 415
    broken = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64  # PNG magic, not a PNG
    r = upload(v, broken, "broken.png")
    assert r.status_code == 422 and r.json()["error"]["code"] == "bad_image"
    r = upload(v, b"", "empty.pdf")
    assert r.status_code == 422 and r.json()["error"]["code"] == "empty_file"
    big = b"%PDF-1.4\n" + b"0" * (10 * 1024 * 1024)
    r = upload(v, big, "big.pdf")
    assert r.status_code == 413
    # Nothing of those became a message.
    assert [m["kind"] for m in v.messages()["messages"]] == ["text", "text"]


def test_only_the_tickets_visitor_and_operators_can_download(
    server: ServerProcess, operator: OperatorClient
) -> None:
    alice, mallory = VisitorClient(server.url), VisitorClient(server.url)
    alice.send("мой паспорт")
    att = upload(alice, PDF, "passport.pdf").json()["message"]["attachment"]
    assert mallory.http.get(f"/api/support/files/{att['id']}").status_code == 404
    assert httpx.get(f"{server.url}/api/support/files/{att['id']}").status_code == 401
    assert httpx.get(f"{server.url}/api/admin/files/{att['id']}").status_code == 401
    for evil in (
        "..%2F..%2Fetc%2Fpasswd",
        "../../../etc/passwd",
        "%2e%2e%2fsecret_key",
        "0" * 32,
        att["id"] + "/../x",
    ):
        r = alice.http.get(f"/api/support/files/{evil}")
        assert r.status_code == 404, (evil, r.status_code)
        assert b"root:" not in r.content


def test_names_are_sanitised_and_files_stored_once(
    server: ServerProcess, operator: OperatorClient
) -> None:
    v = VisitorClient(server.url)
    v.send("файлы")
    data = png_bytes("green")
    a = upload(v, data, "../../etc/<img src=x onerror=alert(1)>.png.html").json()
    name = a["message"]["attachment"]["name"]
    assert "/" not in name and "<" not in name and ">" not in name and name.endswith(".png")
    upload(v, data, "same-again.png")
    files_dir = Path(server.data_dir) / "files"
    if files_dir.exists():  # SQLite run: files live under this server's data directory
        digest = (
            __import__("hashlib")
            .sha256(
                operator.http.get(f"/api/admin/files/{a['message']['attachment']['id']}").content
            )
            .hexdigest()
        )
        assert len(list(files_dir.rglob(digest))) == 1


def test_visitor_voice_message(server: ServerProcess) -> None:
    v = VisitorClient(server.url)
    v.send("голосовое")
    r = upload(v, OGG, "voice.ogg", voice=True)
    assert r.status_code == 200, r.text
    m = r.json()["message"]
    assert m["kind"] == "voice" and m["attachment"]["kind"] == "audio"


def test_deleting_a_customers_data_deletes_their_files(
    server: ServerProcess, operator: OperatorClient
) -> None:
    v = VisitorClient(server.url)
    v.send("удалите мои данные")
    data = png_bytes("purple", (33, 44))
    att = upload(v, data, "private.png").json()["message"]["attachment"]
    stored = operator.http.get(f"/api/admin/files/{att['id']}").content
    digest = __import__("hashlib").sha256(stored).hexdigest()
    files_dir = Path(server.data_dir) / "files"
    assert len(list(files_dir.rglob(digest))) == 1
    r = operator.http.delete(f"/api/admin/visitors/by-ticket/{v.ticket_id}")
    assert r.status_code == 200, r.text
    assert operator.http.get(f"/api/admin/files/{att['id']}").status_code == 404
    assert list(files_dir.rglob(digest)) == []
