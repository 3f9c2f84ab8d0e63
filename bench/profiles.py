"""Profiling the server while it is saturated: py-spy (sampling, all threads) or cProfile.

py-spy is not a project dependency. To use it without installing anything into the venv:

    uv run --with py-spy python -m bench.run --parts sustained --profiler py-spy

Otherwise (`--profiler auto` without py-spy on PATH) the server runs under
bench/profiled_server.py and cProfile is switched on for the profile window by SIGUSR1 and
dumped by SIGUSR2.
"""

from __future__ import annotations

import asyncio
import os
import pstats
import shutil
import signal
from collections import Counter
from pathlib import Path
from typing import Any

TOP = 25


class Profiler:
    def __init__(self, kind: str, out_dir: Path) -> None:
        if kind == "auto":
            kind = "py-spy" if shutil.which("py-spy") else "cprofile"
        self.kind = kind
        self.out_dir = out_dir
        out_dir.mkdir(parents=True, exist_ok=True)
        self.cprofile_out = out_dir / "server.pstats" if kind == "cprofile" else None
        self.raw = out_dir / "server.pyspy.txt"
        self.error: str | None = None
        self.rate = 100.0
        self.native_raw = out_dir / "server.pyspy-native.txt"
        self.native_rate = 20.0
        self.native_seconds = 0.0
        self.seconds = 0.0

    async def _py_spy(self, pid: int, seconds: float, rate: float, out: Path, *extra: str) -> None:
        exe = shutil.which("py-spy")
        if exe is None:
            self.error = "py-spy not found on PATH"
            return
        proc = await asyncio.create_subprocess_exec(
            exe,
            "record",
            "--pid",
            str(pid),
            "--duration",
            str(max(1, int(seconds))),
            "--rate",
            str(int(rate)),
            "--format",
            "raw",
            "--threads",
            *extra,
            "--output",
            str(out),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            _, err = await asyncio.wait_for(proc.communicate(), seconds + 60)
        except TimeoutError:
            proc.kill()
            self.error = "py-spy timed out"
            return
        if proc.returncode != 0:
            self.error = f"py-spy failed: {err.decode(errors='replace')[-500:]}"

    async def record(self, pid: int, seconds: float) -> None:
        """Profile `pid` for about `seconds` (py-spy: plus a short native sample after it)."""
        if self.kind == "py-spy":
            # 1. Python stacks of every thread, without stopping the process: where the
            #    event loop's busy time goes (idle samples are left out by py-spy).
            self.seconds = seconds
            await self._py_spy(pid, seconds, self.rate, self.raw, "--nonblocking")
            # 2. A short, sparse native sample (this one stops the process at each sample):
            #    what the SQLite threads are doing in C, e.g. sleeping in the busy handler.
            self.native_seconds = max(2.0, seconds / 3)
            await self._py_spy(
                pid, self.native_seconds, self.native_rate, self.native_raw, "--native", "--idle"
            )
        elif self.kind == "cprofile":
            os.kill(pid, signal.SIGUSR1)
            await asyncio.sleep(seconds)
            os.kill(pid, signal.SIGUSR2)
            assert self.cprofile_out is not None
            for _ in range(100):  # the stats are written by the server's main thread
                await asyncio.sleep(0.1)
                if self.cprofile_out.exists() and self.cprofile_out.stat().st_size > 0:
                    break

    def summary(self) -> dict[str, Any]:
        if self.error:
            return {"kind": self.kind, "error": self.error}
        if self.kind == "py-spy":
            if not self.raw.exists():
                return {"kind": self.kind, "error": "no py-spy output"}
            out = {
                "kind": self.kind,
                **summarise_collapsed(self.raw.read_text(), self.rate, self.seconds),
            }
            if self.native_raw.exists():
                native = summarise_collapsed(
                    self.native_raw.read_text(), self.native_rate, self.native_seconds
                )
                out["native_thread_states"] = native.get("thread_states", [])
                out["native_seconds"] = self.native_seconds
            return out
        if self.kind == "cprofile" and self.cprofile_out and self.cprofile_out.exists():
            return {"kind": self.kind, **summarise_pstats(self.cprofile_out)}
        return {"kind": self.kind, "error": "no profile written"}


def _frame_name(frame: str) -> str:
    """'func (path/to/module.py:123)' -> 'func (module.py)'; keeps a package hint."""
    name, _, where = frame.partition(" (")
    where = where.rstrip(")")
    path = where.rsplit(":", 1)[0]
    parts = path.split("/")
    short = "/".join(parts[-2:]) if len(parts) > 1 else path
    for marker in ("site-packages/", "src/"):
        if marker in path:
            short = path.split(marker, 1)[1]
            break
    return f"{name} ({short})" if where else name


IDLE_LOOP = (
    "epoll_pwait",
    "epoll_wait",
    "uv__io_poll",
    "select.epoll.poll",
    "EpollSelector.select",
)
IDLE_SLEEP = ("time_sleep", "clock_nanosleep")  # time.sleep() (outside SQLite's busy handler)
IDLE_WORKER = (
    "_queue_SimpleQueue_get",
    "Condition.wait",
    "Queue.get",
    "Event.wait",
    "SimpleQueue.get",
)
ROOTS = {
    "<module>",
    "main",
    "run",
    "_run_module_as_main",
    "_run_code",
    "Server.run",
    "asyncio_run",
    "Runner.run",
    "Loop.run_until_complete",
    "Loop.run_forever",
    "Server.serve",
    "Server._serve",
    "Handle._run",
    "Context.run",
    "run_forever",
    "Loop__run",
    "Loop__Loop__run",
    "uv_run",
    "Thread._bootstrap",
    "Thread._bootstrap_inner",
    "Thread.run",
    "thread_run",
}


def _state(frames: list[str], thread: str) -> str:
    """What a sampled thread was doing: a coarse state from its whole stack."""
    text = ";".join(frames)
    if "sqlite3InvokeBusyHandler" in text:
        return "sleeping in SQLite's busy handler (waiting for another connection's write lock)"
    if "_connection_worker_thread" in thread or "_connection_worker_thread" in text:
        if "_pysqlite" in text or "sqlite3_" in text or "stmt_step" in text:
            return "running SQLite (sqlite3 C code)"
        if any(m in text for m in IDLE_WORKER):
            return "idle"
        if frames and frames[-1].startswith("_connection_worker_thread"):
            return "in a sqlite3 call (C: running SQL or sleeping in the busy handler)"
        return "running (aiosqlite worker, Python)"
    if any(m in text for m in IDLE_LOOP) or any(m in text for m in IDLE_SLEEP):
        return "idle"
    if any(m in text for m in IDLE_WORKER):
        return "idle"
    return "running"


def _thread_kind(thread: str) -> str:
    if "MainThread" in thread:
        return "event loop (main thread)"
    if "_connection_worker_thread" in thread:
        return "aiosqlite worker threads"
    return "other threads"


def _library(frames: list[str]) -> str:
    """The innermost Python library of a busy event-loop sample."""
    for f in reversed(frames):
        if ".py" not in f:
            continue
        for key, cat in (
            ("sqlalchemy", "SQLAlchemy (ORM, SQL compile, results)"),
            ("aiosqlite", "aiosqlite (hand-off to its thread)"),
            ("asyncpg", "asyncpg"),
            ("redis/", "redis-py"),
            ("json/", "json encode/decode"),
            ("websockets/", "websockets protocol (frames; no compression)"),
            ("uvicorn/", "uvicorn (HTTP/WS protocol)"),
            ("starlette/", "Starlette/FastAPI (routing, middleware)"),
            ("fastapi/", "Starlette/FastAPI (routing, middleware)"),
            ("pydantic", "pydantic validation"),
            ("trustdesk/", "TrustDesk code itself"),
            ("asyncio/", "asyncio"),
        ):
            if key in f:
                return cat
        return "other Python"
    return "native (uvloop, zlib, ...)"


def summarise_collapsed(text: str, rate: float = 100.0, seconds: float = 0.0) -> dict[str, Any]:
    """Thread states, and where the event loop's busy time goes, from py-spy raw output.

    `rate` is py-spy's sampling rate: samples / rate = thread-seconds. Without --idle the
    idle samples are missing: then the loop's busy share is its samples / (rate x seconds).
    """
    states: Counter[tuple[str, str]] = Counter()
    loop_busy = 0
    loop_total = 0
    self_c: Counter[str] = Counter()
    incl: Counter[str] = Counter()
    libs: Counter[str] = Counter()
    for line in text.splitlines():
        stack_s, _, n_s = line.rpartition(" ")
        if not stack_s or not n_s.isdigit():
            continue
        n = int(n_s)
        frames = stack_s.split(";")
        thread = frames[0] if frames and frames[0].startswith(("thread", "process")) else ""
        frames = [f for f in frames if not f.startswith(("thread (", "process "))]
        kind = _thread_kind(thread)
        state = _state(frames, thread)
        states[(kind, state)] += n
        if kind != "event loop (main thread)":
            continue
        loop_total += n
        if state == "idle":
            continue
        loop_busy += n
        py = [_frame_name(f) for f in frames if ".py" in f]
        if not py:
            libs["native (uvloop, zlib, ...)"] += n
            continue
        self_c[py[-1]] += n
        for name in set(py):
            if "(trustdesk/" in name and name.split(" (")[0] not in ROOTS:
                incl[name] += n
        libs[_library(frames)] += n
    if loop_total == 0:
        return {"samples": 0}

    def pct(c: Counter[str], k: int) -> list[tuple[str, float]]:
        return [(name, 100 * v / max(1, loop_busy)) for name, v in c.most_common(k)]

    native = "(libc" in text or ".so" in text
    if native or not seconds:
        busy_pct = 100 * loop_busy / loop_total  # idle samples are in the data
    else:  # py-spy leaves idle samples out: compare with what a busy thread would give
        busy_pct = min(100.0, 100 * loop_busy / (rate * seconds))
    return {
        "samples": sum(states.values()),
        "rate": rate,
        "loop_busy_pct": busy_pct,
        "thread_states": [
            (k, s, v / rate)
            for (k, s), v in sorted(states.items(), key=lambda kv: (kv[0][0], -kv[1]))
        ],
        "categories": pct(libs, 20),
        "inclusive": pct(incl, TOP),
        "self": pct(self_c, TOP),
    }


def summarise_pstats(path: Path) -> dict[str, Any]:
    """Self time per function and per library from cProfile stats.

    Only self time is shown: cProfile counts each resumption of a coroutine (and each
    greenlet switch of SQLAlchemy's async bridge) as a call, so cumulative times mislead.
    """
    st = pstats.Stats(str(path))
    raw: dict[Any, Any] = st.stats  # type: ignore[attr-defined]
    total_tt = sum(v[2] for v in raw.values()) or 1e-9

    def name(key: tuple[str, int, str]) -> str:
        return _frame_name(f"{key[2]} ({key[0]}:{key[1]})")

    libs: Counter[str] = Counter()
    for key, v in raw.items():
        if key[0] == "~":
            libs["C built-ins (queue hand-offs to threads, zlib, ...)"] += v[2]
        else:
            libs[_library([f"x ({key[0]}:{key[1]})"])] += v[2]
    by_tt = sorted(raw.items(), key=lambda kv: kv[1][2], reverse=True)[:TOP]
    return {
        "samples": None,
        "total_seconds": total_tt,
        "self": [(name(k), 100 * v[2] / total_tt) for k, v in by_tt],
        "inclusive": [],
        "categories": [(k, 100 * v / total_tt) for k, v in libs.most_common(20)],
        "thread_states": [],
    }
