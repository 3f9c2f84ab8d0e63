"""Image cleaning that cannot freeze the server: measured first, decoded elsewhere.

A few kilobytes of GIF can describe a 2000×2000 canvas with 200 frames: decoding it took
49 s of the event loop and 1.17 GB. So an image is first measured from its headers
(size and frame count, nothing decoded) and refused over budget; what passes is decoded
and re-encoded in a short-lived worker process, forked from a small pre-loaded server
(multiprocessing's "forkserver": a few milliseconds, no copy of the web server's memory),
with an address-space limit, and killed if it runs over the time budget. Its memory
leaves with it. At most `image_workers` run at once (a thread each waits on one);
uploads beyond a short queue are told to retry (503).
"""

from __future__ import annotations

import asyncio
import io
import multiprocessing
import resource
import struct
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.context import ForkServerContext
from multiprocessing.process import BaseProcess
from typing import Any

from trustdesk.actions.errors import Invalid, RateLimited
from trustdesk.config import Settings


class TooComplex(Invalid):
    code = "image_too_complex"


class Busy(RateLimited):
    """Every image worker is taken and the queue is full: retry in a moment (Retry-After)."""

    status = 503
    code = "busy"


@dataclass(frozen=True)
class Budget:
    max_pixels: int  # one frame's width × height
    max_total_pixels: int  # width × height × frames
    max_frames: int
    seconds: float  # decoding and re-encoding, in the worker
    memory_bytes: int  # the worker's address space (0 = no limit)

    @classmethod
    def of(cls, settings: Settings) -> Budget:
        return cls(
            settings.image_max_pixels,
            settings.image_max_total_pixels,
            settings.image_max_frames,
            settings.image_decode_seconds,
            settings.image_worker_memory_mb * 1024 * 1024,
        )


def _bad(what: str) -> Invalid:
    return Invalid(f"the image cannot be decoded: {what}", "bad_image")


def _gif(data: bytes, stop_after: int) -> tuple[int, int, int]:
    """Canvas and frame count from the GIF's blocks (image data skipped, never decoded).
    A frame reaching past the logical screen enlarges the canvas, as Pillow does."""
    if len(data) < 13:
        raise _bad("truncated GIF")
    width, height, flags = struct.unpack_from("<HHB", data, 6)
    pos = 13 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0)
    frames = 0
    while pos < len(data) and frames <= stop_after:
        block = data[pos]
        if block == 0x21:  # extension: label, then sub-blocks
            pos = _skip_sub_blocks(data, pos + 2)
        elif block == 0x2C and pos + 10 <= len(data):  # image descriptor
            left, top, w, h, flags = struct.unpack_from("<HHHHB", data, pos + 1)
            width, height = max(width, left + w), max(height, top + h)
            pos += 10 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0)
            pos = _skip_sub_blocks(data, pos + 1)  # after the LZW code size
            frames += 1
        else:  # trailer, or garbage where Pillow stops reading too
            break
    return width, height, max(frames, 1)


def _skip_sub_blocks(data: bytes, pos: int) -> int:
    while pos < len(data):
        n = data[pos]
        pos += 1 + n
        if n == 0:
            break
    return pos


def _png(data: bytes) -> tuple[int, int, int]:
    """IHDR's size and APNG's acTL frame count; chunks are walked up to the first IDAT."""
    pos, size, frames = 8, None, 1
    while pos + 16 <= len(data):
        length, kind = struct.unpack_from(">I4s", data, pos)
        if kind == b"IHDR":
            size = struct.unpack_from(">II", data, pos + 8)
        elif kind == b"acTL":
            frames = struct.unpack_from(">I", data, pos + 8)[0]
        elif kind == b"IDAT":
            break
        pos += 12 + length
    if size is None:
        raise _bad("PNG without a header")
    return size[0], size[1], max(frames, 1)


def _webp(data: bytes) -> tuple[int, int, int]:
    """The canvas (VP8X, or the one bitstream's own header) and the ANMF frame count.
    Pillow's WebP reader allocates the whole canvas when it opens: not used here."""
    pos, size, frames = 12, None, 0
    while pos + 8 <= len(data):
        kind, length = struct.unpack_from("<4sI", data, pos)
        body = data[pos + 8 : pos + 8 + min(length, 16)]
        if kind == b"VP8X" and len(body) >= 10:
            w = int.from_bytes(body[4:7], "little") + 1
            size = (w, int.from_bytes(body[7:10], "little") + 1)
        elif kind == b"ANMF":
            frames += 1
        elif size is None and kind == b"VP8 " and len(body) >= 10:
            w, h = struct.unpack_from("<HH", body, 6)
            size = (w & 0x3FFF, h & 0x3FFF)
        elif size is None and kind == b"VP8L" and len(body) >= 5:
            bits = int.from_bytes(body[1:5], "little")
            size = ((bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1)
        pos += 8 + length + (length & 1)
    if size is None:
        raise _bad("WebP without a size")
    return size[0], size[1], max(frames, 1)


def measure(data: bytes, ext: str, stop_after: int = 1 << 30) -> tuple[int, int, int]:
    """(width, height, frames) from the headers alone: microseconds, whatever the image."""
    if ext == "gif":
        return _gif(data, stop_after)
    if ext == "png":
        return _png(data)
    if ext == "webp":
        return _webp(data)
    from PIL import Image, UnidentifiedImageError  # here and in the workers only: 11 MB

    try:  # JPEG: Pillow reads the markers up to the scan, nothing more
        with Image.open(io.BytesIO(data)) as img:
            return img.width, img.height, 1
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise _bad(str(exc)) from exc


def check(data: bytes, ext: str, budget: Budget) -> None:
    """Refuse, before any decoding, what would cost more than the budget to decode."""
    width, height, frames = measure(data, ext, budget.max_frames)
    if width <= 0 or height <= 0:
        raise _bad("empty canvas")
    if frames > budget.max_frames:
        raise TooComplex(f"images are limited to {budget.max_frames} frames")
    if width * height > budget.max_pixels:
        raise TooComplex(f"images are limited to {budget.max_pixels // 1_000_000} megapixels")
    if width * height * frames > budget.max_total_pixels:
        raise TooComplex(
            f"an animation is limited to {budget.max_total_pixels // 1_000_000} megapixels "
            "over all its frames"
        )


def clean(data: bytes, ext: str) -> tuple[bytes, int, int]:
    """Decode fully (or refuse), apply the EXIF orientation, and re-encode without any
    metadata: EXIF (GPS included), XMP and text chunks never reach anyone else.
    Runs in a worker process (see ImagePool)."""
    from PIL import Image, ImageOps

    with Image.open(io.BytesIO(data)) as img:
        img.load()
        if ext == "gif" and getattr(img, "n_frames", 1) > 1:
            img.info.pop("comment", None)  # (Pillow would write it again)
            img.info.pop("extension", None)
            out = io.BytesIO()
            img.save(out, "GIF", save_all=True)  # animated: frames kept, comments dropped
            return out.getvalue(), img.width, img.height
        fixed = ImageOps.exif_transpose(img) or img
        out = io.BytesIO()
        if ext == "jpg":
            fixed.convert("RGB").save(out, "JPEG", quality=90)
        elif ext == "png":
            fixed.save(out, "PNG")
        elif ext == "webp":
            fixed.save(out, "WEBP", quality=90)
        else:
            fixed.save(out, "GIF")
        return out.getvalue(), fixed.width, fixed.height


def _work(conn: Connection, data: bytes, ext: str, budget: Budget) -> None:
    """The worker process: limits first, then one image, then exit (its memory with it)."""
    if budget.memory_bytes:
        resource.setrlimit(resource.RLIMIT_AS, (budget.memory_bytes, budget.memory_bytes))
    cpu = int(budget.seconds) + 2  # a backstop if the server is gone
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu))
    from PIL import Image, UnidentifiedImageError

    Image.MAX_IMAGE_PIXELS = budget.max_pixels
    warnings.simplefilter("error", Image.DecompressionBombWarning)
    conn.send(("started",))
    result: tuple[Any, ...]
    try:
        result = ("ok", *clean(data, ext))
    except MemoryError:
        result = ("too_complex", "the image needs too much memory to decode")
    except (
        UnidentifiedImageError,
        OSError,
        ValueError,
        SyntaxError,
        EOFError,
        Image.DecompressionBombError,
        Image.DecompressionBombWarning,
    ) as exc:
        result = ("bad", str(exc))
    conn.send(result)


# Loaded once by the fork server, not by each worker (nor by the web server): Pillow and the
# decoders of the formats we take, which Image.open would otherwise import in every worker.
_PRELOAD = (
    "PIL.Image",
    "PIL.ImageOps",
    "PIL.JpegImagePlugin",
    "PIL.PngImagePlugin",
    "PIL.GifImagePlugin",
    "PIL.WebPImagePlugin",
    "PIL.BmpImagePlugin",  # (Image.preinit loads these two as well)
    "PIL.PpmImagePlugin",
)
START_SECONDS = 30.0  # for the worker to start (the first one starts the fork server)


class ImagePool:
    """The process's image workers: at most `workers` at once, `workers × 4` waiting.

    Process-wide (one per server process, whichever event loop asks), started lazily on
    the first image, stopped by `shutdown` (the app's lifespan)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._threads: ThreadPoolExecutor | None = None
        self._admitted = 0
        self._workers = 1
        self._running: set[BaseProcess] = set()
        self._context: ForkServerContext | None = None

    def _start(self, workers: int) -> ThreadPoolExecutor:
        with self._lock:
            if self._threads is None:
                self._threads = ThreadPoolExecutor(workers, thread_name_prefix="image")
                self._workers = workers
            if self._context is None:
                ctx = multiprocessing.get_context("forkserver")
                ctx.set_forkserver_preload([__name__, *_PRELOAD])
                self._context = ctx
            return self._threads

    async def clean(self, data: bytes, ext: str, settings: Settings) -> tuple[bytes, int, int]:
        threads = self._start(max(1, settings.image_workers))
        with self._lock:
            if self._admitted >= self._workers * 4:
                raise Busy("images are being processed, retry in a moment", 2)
            self._admitted += 1
        try:
            loop = asyncio.get_running_loop()
            result = await loop.run_in_executor(threads, self._run, data, ext, Budget.of(settings))
        finally:
            with self._lock:
                self._admitted -= 1
        if result[0] == "ok":
            return result[1], result[2], result[3]
        if result[0] == "bad":
            raise _bad(result[1])
        raise TooComplex(result[1])

    def _run(self, data: bytes, ext: str, budget: Budget) -> tuple[Any, ...]:
        """In a pool thread: one worker process for one image, killed at the deadline."""
        assert self._context is not None
        receive, send = self._context.Pipe(duplex=False)
        proc = self._context.Process(target=_work, args=(send, data, ext, budget), daemon=True)
        self._running.add(proc)
        try:
            proc.start()
            send.close()  # (ours: the worker has its own; EOF when it dies)
            if not receive.poll(START_SECONDS):
                return ("too_complex", "the image worker did not start")
            receive.recv()  # "started": the time budget counts from here
            if not receive.poll(budget.seconds):
                return ("too_complex", f"decoding took more than {budget.seconds:g} s")
            result: tuple[Any, ...] = receive.recv()
            return result
        except EOFError:  # killed by a limit (memory, CPU) or crashed
            return ("too_complex", "the image could not be decoded within its limits")
        finally:
            send.close()
            if proc.is_alive():
                proc.kill()
            if proc.pid is not None:
                proc.join(5)
            receive.close()
            self._running.discard(proc)

    def shutdown(self) -> None:
        """Kill running workers; the next image starts the pool again."""
        for proc in list(self._running):
            if proc.is_alive():
                proc.kill()
        with self._lock:
            threads, self._threads = self._threads, None
        if threads is not None:
            threads.shutdown(wait=False, cancel_futures=True)


POOL = ImagePool()


async def clean_image(data: bytes, ext: str, settings: Settings) -> tuple[bytes, int, int]:
    """Measured and refused over budget (before any decoding), else cleaned by a worker."""
    check(data, ext, Budget.of(settings))
    return await POOL.clean(data, ext, settings)
