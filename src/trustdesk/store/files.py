"""Where attachment bytes live. A small interface, so an S3-compatible store can be added
later without touching the actions; the default keeps files under the data directory
(never under the web root), keyed by their sha256, so the same file is stored once.

An upload stages its bytes first (written and synced aside, before any database lock is
taken), and promotes them under their key inside the transaction that stores the
attachment row: a rename, so nothing slow runs under the lock, and a refused upload
(no such ticket, over quota, a retry) discards them. Bytes no row refers to (a crash
between the two) are found by `old_keys` and swept by the actions."""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import time
from abc import ABC, abstractmethod
from pathlib import Path

from trustdesk.config import Settings

_KEY = re.compile(r"^[0-9a-f]{64}$")


class Staged(ABC):
    """Bytes written aside under a key, not yet visible under it."""

    created = False  # True once promote has made the key's file (it was not there)

    @abstractmethod
    async def promote(self) -> None:
        """Make the bytes visible under their key (a no-op if they already are)."""

    @abstractmethod
    async def discard(self) -> None:
        """Drop what was staged and not promoted (safe to call after promote)."""


class FileStore(ABC):
    @abstractmethod
    async def stage(self, sha256: str, data: bytes) -> Staged:
        """Write the bytes aside (an OSError, e.g. ENOSPC, leaves nothing behind)."""

    async def put(self, sha256: str, data: bytes) -> None:
        """Store bytes under their hash (a no-op if already there)."""
        staged = await self.stage(sha256, data)
        try:
            await staged.promote()
        finally:
            await staged.discard()

    @abstractmethod
    async def get(self, sha256: str) -> bytes | None: ...

    @abstractmethod
    async def delete(self, sha256: str) -> None: ...

    @abstractmethod
    async def old_keys(self, older_than_seconds: float) -> list[str]:
        """Keys not written or staged for that long (and stale staging files removed)."""

    @abstractmethod
    async def delete_if_old(self, sha256: str, older_than_seconds: float) -> bool:
        """Delete unless an upload has staged the same bytes meanwhile."""


def file_store_for(settings: Settings) -> FileStore:
    """The one place that picks the file store from settings (an S3 store would go here)."""
    return LocalFileStore(settings.data_dir / "files")


def _write_synced(path: Path, data: bytes) -> None:
    """Write and fsync, or remove the partial file and raise (a full disk leaves nothing)."""
    try:
        with path.open("xb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        path.unlink(missing_ok=True)
        raise


class _LocalStaged(Staged):
    def __init__(self, path: Path, tmp: Path | None, data: bytes) -> None:
        self.path = path
        self.tmp = tmp  # None: the key's file was already there (its age refreshed)
        self.data = data

    async def promote(self) -> None:
        def run() -> None:
            if self.path.exists():
                os.utime(self.path)  # in use again: not an orphan for the sweep
            elif self.tmp is not None:
                os.replace(self.tmp, self.path)
                self.tmp = None
                self.created = True
            else:  # swept or deleted since it was staged: write it again
                tmp = _tmp_path(self.path)
                _write_synced(tmp, self.data)
                os.replace(tmp, self.path)
                self.created = True

        await asyncio.to_thread(run)

    async def discard(self) -> None:
        if self.tmp is not None:
            tmp, self.tmp = self.tmp, None
            await asyncio.to_thread(tmp.unlink, True)


def _tmp_path(path: Path) -> Path:
    return path.with_name(f"{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")


class LocalFileStore(FileStore):
    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, sha256: str) -> Path:
        if not _KEY.match(sha256):  # keys are hashes: nothing else can name a path
            raise ValueError("bad file key")
        return self.root / sha256[:2] / sha256[2:4] / sha256

    async def stage(self, sha256: str, data: bytes) -> Staged:
        path = self._path(sha256)

        def write() -> Staged:
            if path.exists():
                os.utime(path)
                return _LocalStaged(path, None, data)
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = _tmp_path(path)
            _write_synced(tmp, data)
            return _LocalStaged(path, tmp, data)

        return await asyncio.to_thread(write)

    async def get(self, sha256: str) -> bytes | None:
        path = self._path(sha256)
        try:
            return await asyncio.to_thread(path.read_bytes)
        except FileNotFoundError:
            return None

    async def delete(self, sha256: str) -> None:
        path = self._path(sha256)
        await asyncio.to_thread(path.unlink, True)

    async def old_keys(self, older_than_seconds: float) -> list[str]:
        def scan() -> list[str]:
            cutoff = time.time() - older_than_seconds
            keys = []
            for entry in self.root.glob("*/*/*"):
                try:
                    old = entry.stat().st_mtime < cutoff
                except FileNotFoundError:
                    continue
                if not old:
                    continue
                if entry.name.endswith(".tmp"):
                    entry.unlink(missing_ok=True)  # a crash mid-write, long ago
                elif _KEY.match(entry.name):
                    keys.append(entry.name)
            return keys

        return await asyncio.to_thread(scan)

    async def delete_if_old(self, sha256: str, older_than_seconds: float) -> bool:
        path = self._path(sha256)

        def run() -> bool:
            try:
                if path.stat().st_mtime >= time.time() - older_than_seconds:
                    return False
            except FileNotFoundError:
                return False
            path.unlink(missing_ok=True)
            return True

        return await asyncio.to_thread(run)
