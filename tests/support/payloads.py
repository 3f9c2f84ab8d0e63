"""Small, valid files made on the spot (no fixtures on disk), and attack payloads."""

from __future__ import annotations

import struct
import zlib


def png(width: int = 2, height: int = 2, rgb: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    """A real, decodable PNG (8-bit RGB)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    raw = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


# Each would run script if some page inserted it as HTML. `window.__xss(...)` is what the
# browser tests hook; `alert` is hooked too.
XSS = [
    "<img src=x onerror=alert(1)>",
    "<script>alert(2)</script>",
    '"><svg onload=alert(3)>',
    '<iframe srcdoc="<script>parent.alert(4)</script>"></iframe>',
    "javascript:alert(5)",
    '<a href="javascript:alert(6)">жми</a>',
    "{{constructor.constructor('alert(7)')()}}",
    "<details open ontoggle=alert(8)>",
    "</textarea><script>alert(9)</script>",
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(10)>",
]
