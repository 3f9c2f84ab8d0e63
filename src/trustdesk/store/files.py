"""Where attachment bytes live. A small interface, so an S3-compatible store can be added
later without touching the actions; the default keeps files under the data directory
(never under the web root), keyed by their sha256, so the same file is stored once."""

from __future__ import annotations

import asyncio
import os
import re
from abc import ABC, abstractmethod
from pathlib import Path

from trustdesk.config import Settings

_KEY = re.compile(r"^[0-9a-f]{64}$")


class FileStore(ABC):
    @abstractmethod
    async def put(self, sha256: str, data: bytes) -> None:
        """Store bytes under their hash (a no-op if already there)."""

    @abstractmethod
    async def get(self, sha256: str) -> bytes | None: ...

    @abstractmethod
    async def delete(self, sha256: str) -> None: ...


def file_store_for(settings: Settings) -> FileStore:
    """The one place that picks the file store from settings (an S3 store would go here)."""
    return LocalFileStore(settings.data_dir / "files")


class LocalFileStore(FileStore):
    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, sha256: str) -> Path:
        if not _KEY.match(sha256):  # keys are hashes: nothing else can name a path
            raise ValueError("bad file key")
        return self.root / sha256[:2] / sha256[2:4] / sha256

    async def put(self, sha256: str, data: bytes) -> None:
        path = self._path(sha256)
        if path.exists():
            return

        def write() -> None:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            with tmp.open("wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            tmp.replace(path)

        await asyncio.to_thread(write)

    async def get(self, sha256: str) -> bytes | None:
        path = self._path(sha256)
        try:
            return await asyncio.to_thread(path.read_bytes)
        except FileNotFoundError:
            return None

    async def delete(self, sha256: str) -> None:
        path = self._path(sha256)
        await asyncio.to_thread(path.unlink, True)
