"""The widget stays light: its chat files under content-hashed URLs, every page compressed.

- `HashedFiles`: the widget's files read once, each JavaScript/CSS file also served as
  `/widget/<stem>.<hash>.<ext>` (the hash of its content, import specifiers already rewritten
  to hashed names, so a change anywhere below changes the name above). The frame page and the
  modules refer only to hashed names, which are cached for a year (`immutable`); the frame
  page itself and unhashed names are revalidated (`no-cache` + ETag, 304). No build step: the
  names are computed when the process starts serving, from the files as they are.
- `Compress`: an ASGI middleware for the page paths (never /api/: its answers carry tokens
  next to text a visitor chose, the BREACH pattern, and downloads must stream). It buffers a
  page answer, gives it an ETag if it has none (the loader is generated per request), answers
  304 to a matching If-None-Match, and sends brotli or gzip by Accept-Encoding. Compressed
  bodies are cached by content, so a file is compressed once per process, not per request.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import brotli
from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

IMMUTABLE = "public, max-age=31536000, immutable"
_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".json": "application/json",
    ".svg": "image/svg+xml",
}
# `from "./x.js"`, `import "./x.js"`, `import("./x.js")` in a module; src/href in the page.
_IMPORT = re.compile(r'((?:\bfrom|\bimport)\s*\(?\s*)"\./([\w-]+\.js)"')
# `from "../shared/x.js"`: the front end's shared core (web/shared/), served at /shared/.
_SHARED_IMPORT = re.compile(r'((?:\bfrom|\bimport)\s*\(?\s*)"\.\./shared/([\w-]+\.js)"')
# `loadStyle("./x.css", ...)` in a module: a stylesheet loaded with its feature.
_STYLE_REF = re.compile(r'(\bloadStyle\(\s*)"\./([\w-]+\.css)"')
_PAGE_REF = re.compile(r'((?:src|href)=)"([\w-]+\.(?:js|css))"')


@dataclass(frozen=True)
class Asset:
    body: bytes
    media_type: str
    etag: str
    cache_control: str


def _etag(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest()[:20] + '"'


def _matches(if_none_match: str | None, etag: str) -> bool:
    """Weak comparison (RFC 9110 13.1.2): a compressed answer carries W/ on the same tag."""
    if not if_none_match:
        return False
    tags = {t.strip().removeprefix("W/") for t in if_none_match.split(",")}
    return "*" in tags or etag.removeprefix("W/") in tags


class HashedFiles:
    """One folder's files, in memory, with a hashed name for every module and stylesheet."""

    def __init__(self, directory: Path, shared: HashedFiles | None = None) -> None:
        """`shared`: the folder `../shared/` imports point at (hashed first: its names are
        part of the importing modules' content, hence of their hashes)."""
        self.directory = directory
        self.shared = shared
        self._sources = {
            p.name: p.read_bytes()
            for p in sorted(directory.iterdir())
            if p.is_file() and p.suffix in _TYPES
        }
        self.hashed: dict[str, str] = {}  # "chat.js" -> "chat.3f9a1c0d2e.js"
        self.files: dict[str, Asset] = {}
        for name in self._sources:
            if name.endswith((".js", ".css")):
                self._hash(name, ())
        for name, source in self._sources.items():
            body = self._rewrite(name, source)
            self.files[name] = Asset(body, _TYPES[Path(name).suffix], _etag(body), "no-cache")
            if name in self.hashed:
                self.files[self.hashed[name]] = Asset(
                    body, _TYPES[Path(name).suffix], _etag(body), IMMUTABLE
                )

    def _rewrite(self, name: str, source: bytes) -> bytes:
        """The file with its references to sibling files spelled with their hashed names."""
        pattern = _PAGE_REF if name.endswith(".html") else _IMPORT
        text = source.decode("utf-8")

        def sub(m: re.Match[str]) -> str:
            ref = m.group(2)
            return f'{m.group(1)}"{"./" if pattern is _IMPORT else ""}{self.hashed.get(ref, ref)}"'

        text = pattern.sub(sub, text)
        if pattern is _IMPORT:
            text = _STYLE_REF.sub(
                lambda m: f'{m.group(1)}"./{self.hashed.get(m.group(2), m.group(2))}"', text
            )
        if self.shared is not None and pattern is _IMPORT:
            known = self.shared.hashed
            text = _SHARED_IMPORT.sub(
                lambda m: f'{m.group(1)}"../shared/{known.get(m.group(2), m.group(2))}"', text
            )
        return text.encode("utf-8")

    def _hash(self, name: str, stack: tuple[str, ...]) -> str:
        """Hash after the imports' own names are known (depth first), so the name of chat.js
        changes when files.js, which it imports, changes."""
        if name in self.hashed:
            return self.hashed[name]
        if name in stack:
            raise ValueError(f"import cycle through {name}: hashed names need a tree")
        text = self._sources[name].decode("utf-8")
        deps = [*_IMPORT.findall(text), *_STYLE_REF.findall(text)] if name.endswith(".js") else []
        for dep in deps:
            if dep[1] in self._sources:
                self._hash(dep[1], (*stack, name))
        digest = hashlib.sha256(self._rewrite(name, self._sources[name])).hexdigest()[:10]
        stem, ext = name.rsplit(".", 1)
        self.hashed[name] = f"{stem}.{digest}.{ext}"
        return self.hashed[name]

    def response(self, name: str, if_none_match: str | None) -> Response:
        asset = self.files.get(name)
        if asset is None:
            return Response("Not Found", status_code=404, media_type="text/plain")
        # The frame says no-referrer itself (<meta>); its files say the same, which is also
        # the shortest value of a header sent with each of them.
        headers = {
            "ETag": asset.etag,
            "Cache-Control": asset.cache_control,
            "Referrer-Policy": "no-referrer",
        }
        if _matches(if_none_match, asset.etag):
            return Response(status_code=304, headers=headers)
        return Response(asset.body, media_type=asset.media_type, headers=headers)


# ---------------------------------------------------------------------------------------------
# Compression

PAGE_PREFIXES = ("/widget/", "/shared/", "/admin/", "/demo/", "/i18n/")
PAGE_PATHS = frozenset({"/", "/widget.js", "/admin", "/admin/"})
_COMPRESSIBLE = ("text/", "application/javascript", "application/json", "image/svg+xml")
MIN_SIZE = 512  # below this the headers outweigh the saving
MAX_SIZE = 2 * 1024 * 1024  # a page answer larger than this streams through as it is


def is_page(path: str) -> bool:
    return path in PAGE_PATHS or path.startswith(PAGE_PREFIXES)


def choose_encoding(accept_encoding: str) -> str | None:
    """br if the client takes it, else gzip, else none (a q=0 refuses a coding)."""
    offered: dict[str, float] = {}
    for part in accept_encoding.lower().split(","):
        coding, _, params = part.strip().partition(";")
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        offered[coding.strip()] = q
    for coding in ("br", "gzip"):
        if offered.get(coding, offered.get("*", 0.0)) > 0:
            return coding
    return None


@functools.lru_cache(maxsize=256)
def compressed(body: bytes, coding: str) -> bytes:
    """Cached by content: a bytes object keeps its hash, so a hit on the loader (one bytes
    object per settings version) or a file held in memory costs a dict lookup."""
    if coding == "br":
        return bytes(brotli.compress(body, quality=11))
    return gzip.compress(body, compresslevel=9, mtime=0)


@functools.lru_cache(maxsize=256)
def body_etag(body: bytes) -> str:
    return "W/" + _etag(body)


class Compress:
    """Brotli/gzip and revalidation for page answers (see the module's docstring)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "GET" or not is_page(scope["path"]):
            await self.app(scope, receive, send)
            return
        request_headers = Headers(scope=scope)
        coding = choose_encoding(request_headers.get("accept-encoding", ""))
        if_none_match = request_headers.get("if-none-match")
        start: Message | None = None
        chunks: list[bytes] = []
        passing = False

        async def wrapped(message: Message) -> None:
            nonlocal start, passing
            if message["type"] == "http.response.start":
                h = Headers(raw=message["headers"])
                MutableHeaders(scope=message).add_vary_header("Accept-Encoding")
                length = int(h.get("content-length", "0") or 0)
                passing = (
                    message["status"] != 200
                    or "content-encoding" in h
                    or not h.get("content-type", "").startswith(_COMPRESSIBLE)
                    or length > MAX_SIZE
                )
                if passing:
                    await send(message)
                else:
                    start = message
                return
            if passing or message["type"] != "http.response.body" or start is None:
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            await self._finish(start, b"".join(chunks), coding, if_none_match, send)

        await self.app(scope, receive, wrapped)

    @staticmethod
    async def _finish(
        start: Message, body: bytes, coding: str | None, if_none_match: str | None, send: Send
    ) -> None:
        headers = MutableHeaders(scope=start)
        etag = headers.get("etag") or body_etag(body)
        if _matches(if_none_match, etag):
            kept = [(k, v) for k, v in start["headers"] if k.lower() != b"content-length"]
            not_modified = {**start, "status": 304, "headers": kept}
            MutableHeaders(scope=not_modified)["ETag"] = etag
            await send(not_modified)
            await send({"type": "http.response.body", "body": b""})
            return
        if coding and len(body) >= MIN_SIZE:
            body = compressed(body, coding)
            headers["Content-Encoding"] = coding
            etag = "W/" + etag.removeprefix("W/")  # another byte sequence of the same page
        headers["ETag"] = etag
        headers["Content-Length"] = str(len(body))
        await send(start)
        await send({"type": "http.response.body", "body": body})
