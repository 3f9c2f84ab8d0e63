"""TrustDesk benchmarks, in one run: `python -m bench.run` (what `make bench` runs).

    python -m bench.run                # everything (~35 min on 2 cores) -> docs/benchmarks.md
    python -m bench.run --quick        # every target with its figure and ratio, < 5 min
    python -m bench.run --parts latency --targets relay,sqlite --levels 1,100
    python -m bench.run --report-only  # rewrite docs/benchmarks.md from bench/results/latest.json

Parts:
  latency    operator reply -> visitor socket, p50/p99, at 1/10/100/1000 conversations, for
             the bare websockets relay, the spec's 3 s polling, TrustDesk on SQLite and on
             PostgreSQL + Redis; each TrustDesk target with a bare relay and a durable relay
             (commits each frame on the same kind of database) of its own beside it, their
             windows alternating, for the "x the relay" ratios (--no-paired-relay skips
             that); at --extras-level (100) the one-process targets also give their RSS idle
             and with 3 dashboards, and CPU per message with 1 and --many-dashboards (5)
  idle       server RSS per idle connected widget at 5,000 sockets, TrustDesk vs the relay
  sustained  messages/s stored and delivered by one process on SQLite and on PostgreSQL +
             Redis, stepping the offered rate up until it saturates, then a profile (py-spy
             if on PATH, else cProfile)

Everything runs on 127.0.0.1; every loop is bounded in count and time.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

from bench import load, profiles, report
from bench.servers import (
    ROOT,
    CpuMeter,
    RelayProcess,
    TrustDeskStack,
    machine,
    raise_nofile,
    rss,
    versions,
)
from tests.support.server import ADMIN_EMAIL, ADMIN_PASSWORD
from tests.support.services import Postgres, postgres_available, redis_available

RESULTS = ROOT / "bench" / "results"
TARGETS = ("relay", "polling", "sqlite", "pg", "pg2")


def log(*args: Any) -> None:
    print(time.strftime("%H:%M:%S"), *args, flush=True)


def run_async(coro: Any) -> Any:
    try:
        import uvloop

        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            return runner.run(coro)
    except ImportError:  # pragma: no cover
        return asyncio.run(coro)


def median(values: list[float | None]) -> float | None:
    vs = [v for v in values if v is not None]
    return statistics.median(vs) if vs else None


def combine(windows: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians over the runs of every numeric figure; errors summed."""
    out: dict[str, Any] = {"runs": windows}
    keys = [k for k, v in windows[0].items() if isinstance(v, (int, float)) or v is None]
    for k in keys:
        out[k] = median([w.get(k) for w in windows])
    errors: dict[str, int] = {}
    for w in windows:
        for e, n in w["errors"].items():
            errors[e] = errors.get(e, 0) + n
    out["errors"] = errors
    return out


def meters_for(server_pid: int, service_pids: list[int]) -> dict[str, Callable[[], float]]:
    me = psutil.Process()
    server = CpuMeter([server_pid])
    services = CpuMeter(service_pids)

    def client() -> float:
        t = me.cpu_times()
        return t.user + t.system

    return {
        "server": server.cpu_seconds,
        "services": services.cpu_seconds,
        "client": client,
        "system": system_busy,
    }


_shared_pg: list[Postgres] = []


def shared_pg(work: Path, backend: str) -> Postgres | None:
    """One PostgreSQL cluster for the whole run (started on first use, stopped by main()):
    every PostgreSQL target and the durable relay beside it get a database of their own
    on it, instead of an initdb each (10-20 s apiece on this machine)."""
    if backend != "pg":
        return None
    if not _shared_pg:
        pg = Postgres(work / "pg-shared")
        pg.start()
        _shared_pg.append(pg)
    return _shared_pg[0]


def stop_shared_pg() -> None:
    while _shared_pg:
        pg = _shared_pg.pop()
        pg.stop("immediate")
        if pg.root.name != "pg-shared":  # a private directory made for root
            shutil.rmtree(pg.root, ignore_errors=True)


def system_busy() -> float:
    """CPU seconds the whole machine has been busy (all cores)."""
    t = psutil.cpu_times()
    return float(t.user + t.nice + t.system + getattr(t, "irq", 0.0) + getattr(t, "softirq", 0.0))


# ====================================================================== latency


@dataclasses.dataclass
class Reference:
    """A floor held open beside a TrustDesk target, measured window by window with it.

    `key` names its figures in the result row: "ref" for the bare relay (ref_p50_ms,
    ref_runs, ratio_p50, ...; the names older results use), "durable" for the durable relay
    (durable_p50_ms, durable_runs, durable_ratio_p50, ...)."""

    key: str
    target: load.Target
    meters: dict[str, Callable[[], float]]
    convs: list[load.Conv] = dataclasses.field(default_factory=list)
    setup_errors: list[str] = dataclasses.field(default_factory=list)


async def _open_level(
    target: load.Target, convs: list[load.Conv], level: int, timeout: float
) -> list[str]:
    """Bring `target` up to `level` conversations (appended to `convs`); returns the errors."""
    t0 = time.monotonic()
    new, errors = await load.add_conversations(
        target, len(convs), level - len(convs), timeout=timeout
    )
    convs += new
    failed = f", {len(errors)} failed; first error: {errors[0]}" if errors else ""
    log(f"  {target.name}: {len(convs)} conversations open ({time.monotonic() - t0:.1f}s{failed})")
    return errors


async def paired_windows(
    target: load.Target,
    convs: list[load.Conv],
    meters: dict[str, Callable[[], float]],
    refs: list[Reference],
    rate: float,
    args: argparse.Namespace,
) -> tuple[list[dict[str, Any]], dict[str, list[dict[str, Any]]]]:
    """Alternate bare relay window, durable relay window, target window, ... (`args.runs`
    of each) at one level.

    Each side gets the full warm-up once per level, before its first window: that is where
    the new conversations' first messages and cold caches are paid for. Before each later
    window each side gets only a short re-warm (`--paired-rewarm`, default 1 s): while the
    others ran, this one sat idle (and measure() drained its last messages), and a
    window started cold, with empty queues and an idle CPU, would not measure the steady
    state that the back-to-back windows of an unpaired run measure; a full warm-up each
    time would only add minutes.
    """
    windows: list[dict[str, Any]] = []
    ref_windows: dict[str, list[dict[str, Any]]] = {r.key: [] for r in refs}
    sides = [(r.target, r.convs, r.meters, ref_windows[r.key]) for r in refs if r.convs]
    sides.append((target, convs, meters, windows))
    for i in range(args.runs):
        warmup = args.warmup if i == 0 else min(args.warmup, args.paired_rewarm)
        for side, side_convs, side_meters, out in sides:
            out += await load.measure(
                side,
                side_convs,
                rate,
                warmup=warmup,
                runs=1,
                seconds=args.window,
                meters=side_meters,
            )
    return windows, {k: v for k, v in ref_windows.items() if v}


def paired_figures(
    windows: list[dict[str, Any]], ref_windows: list[dict[str, Any]], key: str = "ref"
) -> dict[str, Any]:
    """The paired reference of one level: its medians, and the median of per-window ratios.

    key "ref" (the bare relay) gives ref_p50_ms, ref_p99_ms, ref_runs, ratio_runs,
    ratio_p50; key "durable" gives durable_p50_ms, ..., durable_ratio_runs,
    durable_ratio_p50."""
    ratios = [
        w["reply_p50_ms"] / r["reply_p50_ms"]
        if w.get("reply_p50_ms") is not None and r.get("reply_p50_ms")
        else None
        for w, r in zip(windows, ref_windows, strict=True)
    ]
    pre = "" if key == "ref" else f"{key}_"
    return {
        f"{key}_p50_ms": median([r.get("reply_p50_ms") for r in ref_windows]),
        f"{key}_p99_ms": median([r.get("reply_p99_ms") for r in ref_windows]),
        f"{key}_server_cpu_ms_per_msg": median(
            [r.get("server_cpu_ms_per_msg") for r in ref_windows]
        ),
        f"{key}_runs": ref_windows,
        f"{pre}ratio_runs": ratios,
        f"{pre}ratio_p50": median(list(ratios)),
    }


async def _loaded_extras(
    target: load.TrustDeskTarget,
    convs: list[load.Conv],
    meters: dict[str, Callable[[], float]],
    pid: int | None,
    rate: float,
    args: argparse.Namespace,
) -> dict[str, Any]:
    """At the level of the targets (100 conversations open): the server's RSS with 3
    operator dashboards connected, then one window with 5 dashboards for the CPU per
    message (the paired windows before it had `--dashboards`, 1 by default)."""
    out: dict[str, Any] = {"dashboards_before": len(target.dash)}
    await target.add_dashboards(max(0, 3 - len(target.dash)))
    if pid is not None:
        await asyncio.sleep(2.0)  # the new dashboards' snapshots are sent and freed
        out["rss_loaded"] = rss(pid)
        out["rss_loaded_dashboards"] = len(target.dash)
    await target.add_dashboards(max(0, args.many_dashboards - len(target.dash)))
    w = await load.measure(
        target,
        convs,
        rate,
        warmup=args.warmup,
        runs=1,
        seconds=args.window,
        meters=meters,
    )
    out["many_dashboards"] = len(target.dash)
    out["many_window"] = w[0]
    await target.drop_dashboards(len(target.dash) - out["dashboards_before"])
    return out


async def latency_levels(
    target: load.Target,
    args: argparse.Namespace,
    meters: dict[str, Callable[[], float]],
    refs: list[Reference] | None = None,
    pid: int | None = None,
) -> list[dict[str, Any]]:
    """Every level of one target; `pid` (one-process TrustDesk servers): its RSS, idle and
    loaded, is recorded."""
    refs = refs or []
    convs: list[load.Conv] = []
    out = []
    rss_idle = rss(pid) if pid is not None else None
    try:
        await target.open()
        for ref in refs:
            await ref.target.open()
        for level in args.levels:
            errors = await _open_level(target, convs, level, args.setup_timeout)
            if not convs:
                break
            for ref in refs:
                ref.setup_errors += await _open_level(
                    ref.target, ref.convs, level, args.setup_timeout
                )
            rate = args.single_rate if level == 1 else args.rate
            ref_windows: dict[str, list[dict[str, Any]]] = {}
            if any(ref.convs for ref in refs):
                windows, ref_windows = await paired_windows(target, convs, meters, refs, rate, args)
            else:
                windows = await load.measure(
                    target,
                    convs,
                    rate,
                    warmup=args.warmup,
                    runs=args.runs,
                    seconds=args.window,
                    meters=meters,
                )
            row = combine(windows)
            row.update(
                level=level,
                open=len(convs),
                rate_per_conv=rate,
                offered_nominal=rate * len(convs),
                setup_errors=errors[:5],
                setup_failed=len(errors),
            )
            for ref in refs:
                if ref.key in ref_windows:
                    row.update(
                        paired_figures(windows, ref_windows[ref.key], ref.key),
                        **{
                            f"{ref.key}_open": len(ref.convs),
                            f"{ref.key}_setup_failed": len(ref.setup_errors),
                        },
                    )
            if (
                level == args.extras_level
                and isinstance(target, load.TrustDeskTarget)
                and not isinstance(target, load.PollingTarget)
            ):
                extras = await _loaded_extras(target, convs, meters, pid, rate, args)
                row.update(extras, rss_idle=rss_idle)
                mw = extras["many_window"]
                log(
                    f"  {target.name} @ {level}: server CPU per message "
                    f"{fmt2(row['server_cpu_ms_per_msg'])} ms ({len(target.dash)} dashboard), "
                    f"{fmt2(mw['server_cpu_ms_per_msg'])} ms ({extras['many_dashboards']} "
                    "dashboards)"
                    + (
                        f"; RSS idle {rss_idle / 2**20:.0f} MiB, loaded "
                        f"{extras['rss_loaded'] / 2**20:.0f} MiB"
                        if rss_idle is not None and "rss_loaded" in extras
                        else ""
                    )
                )
            out.append(row)
            log(
                f"  {target.name} @ {level}: reply p50 {fmt(row['reply_p50_ms'])} ms, "
                f"p99 {fmt(row['reply_p99_ms'])} ms, offered {row['offered_per_s']:.0f}/s "
                f"(sent {row['sent_per_s']:.0f}/s), "
                f"delivered {row['delivered_per_s']:.0f}/s, lost {row['lost']}, "
                f"server CPU {row['server_cpu_pct']:.0f}%, client CPU {row['client_cpu_pct']:.0f}%"
                + (f", errors {row['errors']}" if row["errors"] else "")
            )
            for key, what, rkey in (
                ("ref", "bare relay", "ratio"),
                ("durable", "durable relay", "durable_ratio"),
            ):
                if f"{key}_runs" not in row:
                    continue
                pairs = "; ".join(
                    f"{fmt2(r['reply_p50_ms'])} -> {fmt2(w['reply_p50_ms'])} ms"
                    for r, w in zip(row[f"{key}_runs"], row["runs"], strict=True)
                )
                log(
                    f"  {target.name} @ {level}: {what} beside it p50 "
                    f"{fmt2(row[f'{key}_p50_ms'])} ms, p99 {fmt2(row[f'{key}_p99_ms'])} ms; "
                    f"windows ({what} -> {target.name}) {pairs}; "
                    f"ratio p50 {fmt2(row[f'{rkey}_p50'])}x"
                )
            if len(convs) < level * 0.9:
                log(f"  {target.name}: could not open {level} conversations; stopping here")
                break
            if args.early_stop and row["delivered_per_s"] < 0.8 * row["offered_per_s"]:
                log(
                    f"  {target.name}: saturated (delivered under 80% of what was offered); "
                    "higher levels skipped (--no-early-stop runs them anyway)"
                )
                row["saturated"] = True
                break
    finally:
        # Every target's sockets (up to 3 x the level) are closed whatever happened.
        try:
            await target.close()
        finally:
            for ref in refs:
                with contextlib.suppress(Exception):
                    await ref.target.close()
    return out


def fmt(v: float | None) -> str:
    return "-" if v is None else (f"{v:.1f}" if v < 100 else f"{v:.0f}")


def fmt2(v: float | None) -> str:
    return "-" if v is None else (f"{v:.2f}" if v < 10 else fmt(v))


def latency_part(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for name in args.targets:
        if name in ("pg", "pg2") and not (postgres_available() and redis_available()):
            log("  pg: PostgreSQL 15 or redis-server not installed (make system-deps); skipped")
            continue
        log(f"latency: {name}")
        rec = load.Recorder()
        if name == "relay":
            relay = RelayProcess(work).start()
            try:
                target: load.Target = load.RelayTarget(rec, relay.ws_url)
                results[name] = run_async(latency_levels(target, args, meters_for(relay.pid, [])))
            finally:
                relay.stop()
            continue
        # pg2: the same, served by two worker processes (`trustdesk run --workers 2`): the
        # way past one process's CPU, events crossing between them through Redis.
        backend = "pg" if name in ("pg", "pg2") else "sqlite"
        # The TrustDesk targets get a bare relay and a durable relay of their own (the
        # latter committing each frame on the same kind of database, on the same PostgreSQL
        # server), measured window by window beside them (paired_windows): the floor drifts
        # too much over a run to divide by a relay measured minutes earlier. Not the 3 s
        # polling, whose ratio is ~1,000x anyway.
        beside = args.paired_relay and name in report.TRUSTDESK
        relays: list[RelayProcess] = []
        stack = None
        try:
            stack = TrustDeskStack(
                backend,
                work / name,
                workers=2 if name == "pg2" else 1,
                pg=shared_pg(work, backend),
            ).start()
            refs: list[Reference] = []
            if beside:
                if stack.pg is not None:
                    db = stack.pg.create_database(f"relay_{name}_{int(time.time() * 1000)}")
                else:
                    db = f"sqlite:{work / name / 'durable-relay.sqlite3'}"
                for key, store in (("ref", None), ("durable", db)):
                    relay = RelayProcess(work, store=store).start()
                    relays.append(relay)
                    ref_target = load.RelayTarget(load.Recorder(), relay.ws_url)
                    ref_target.name = "durable relay" if store else "bare relay"
                    services = [stack.service_pids()[0]] if store and stack.pg else []
                    refs.append(Reference(key, ref_target, meters_for(relay.pid, services)))
            cls = load.PollingTarget if name == "polling" else load.TrustDeskTarget
            target = cls(
                rec,
                stack.url,
                stack.ws_url,
                (ADMIN_EMAIL, ADMIN_PASSWORD),
                dashboards=args.dashboards,
                reply_via="http" if name == "polling" else args.reply_via,
            )
            meters = meters_for(stack.pid, stack.service_pids())
            pid = stack.pid if name in ("sqlite", "pg") else None
            results[name] = run_async(latency_levels(target, args, meters, refs, pid))
        finally:
            try:
                if stack is not None:
                    stack.stop()
            finally:
                for relay in relays:
                    relay.stop()
    return results


# ====================================================================== idle sockets


async def _open_idle(
    connect: Callable[[int], Any], n: int, concurrency: int = 100, timeout: float = 240
) -> tuple[list[Any], int]:
    sem = asyncio.Semaphore(concurrency)

    async def one(i: int) -> Any:
        async with sem:
            return await asyncio.wait_for(connect(i), 60)

    tasks = [asyncio.create_task(one(i)) for i in range(n)]
    done, pending = await asyncio.wait(tasks, timeout=timeout)
    for t in pending:
        t.cancel()
    ok = [t.result() for t in tasks if t in done and t.exception() is None]
    return ok, n - len(ok)


async def _ping_all(socks: list[Any], frame: Callable[[int], str], timeout: float = 60) -> int:
    """Send an app-level ping on every socket; count the answers (bounded in time)."""

    async def one(i: int, ws: Any) -> bool:
        try:
            await ws.send(frame(i))
            while True:
                f = json.loads(await ws.recv())
                if f.get("type") == "pong":
                    return True
        except Exception:
            return False

    sem = asyncio.Semaphore(500)

    async def bounded(i: int, ws: Any) -> bool:
        async with sem:
            return await asyncio.wait_for(one(i, ws), 30)

    results = await asyncio.wait_for(
        asyncio.gather(*(bounded(i, ws) for i, ws in enumerate(socks)), return_exceptions=True),
        timeout,
    )
    return sum(1 for r in results if r is True)


async def _idle_cpu(
    pid: int, hold: float, quiet_pct: float = 25.0, settle_max: float = 60.0
) -> tuple[float, float]:
    """CPU of the server while its sockets are idle: (seconds it took to settle, CPU %).

    Each connection leaves work behind after its `ready` frame (the visitor's last-seen
    write, presence, the "visitor online" event): wait, bounded, until a 1 s window is under
    `quiet_pct`, then measure `hold` seconds of what idle sockets really cost."""
    cpu = CpuMeter([pid])
    start = time.monotonic()
    while time.monotonic() - start < settle_max:
        c0, t0 = cpu.cpu_seconds(), time.monotonic()
        await asyncio.sleep(1)
        if 100 * (cpu.cpu_seconds() - c0) / (time.monotonic() - t0) < quiet_pct:
            break
    settle = time.monotonic() - start
    c0, t0 = cpu.cpu_seconds(), time.monotonic()
    await asyncio.sleep(hold)
    return settle, 100 * (cpu.cpu_seconds() - c0) / (time.monotonic() - t0)


async def idle_trustdesk(
    stack: TrustDeskStack, n: int, hold: float, tokens: list[str]
) -> dict[str, Any]:
    """RSS per idle widget; `tokens` are reused from an earlier run on the same database."""
    rec = load.Recorder()
    target = load.TrustDeskTarget(
        rec, stack.url, stack.ws_url, (ADMIN_EMAIL, ADMIN_PASSWORD), operators=1, dashboards=0
    )
    pid = stack.pid
    out: dict[str, Any] = {"rss_start": rss(pid), "sessions_s": 0.0}
    if not tokens:
        t0 = time.monotonic()
        sem = asyncio.Semaphore(8)

        async def session(_: int) -> str:
            async with sem:
                return await target._session()

        tokens += await asyncio.wait_for(asyncio.gather(*(session(i) for i in range(n + 50))), 300)
        out["sessions_s"] = time.monotonic() - t0
    # Warm every code path once, so that "before" already holds what one socket loads.
    warm, _ = await _open_idle(lambda i: target.connect_visitor(tokens[n + i]), 50)
    await asyncio.gather(*(ws.close() for ws in warm), return_exceptions=True)
    await asyncio.sleep(2)
    out["rss_before"] = rss(pid)
    t0 = time.monotonic()
    socks, failed = await _open_idle(lambda i: target.connect_visitor(tokens[i]), n)
    out["connect_s"] = time.monotonic() - t0
    out["connected"], out["failed"] = len(socks), failed
    await asyncio.sleep(3)
    out["rss_after"] = rss(pid)
    out["settle_s"], out["idle_cpu_pct"] = await _idle_cpu(pid, hold)
    out["rss_held"] = rss(pid)
    out["answered"] = await _ping_all(socks, lambda i: '{"type":"ping"}')
    await asyncio.gather(*(ws.close() for ws in socks), return_exceptions=True)
    await target.close()
    await asyncio.sleep(3)
    out["rss_closed"] = rss(pid)
    return out


async def idle_relay(relay: RelayProcess, n: int, hold: float) -> dict[str, Any]:
    target = load.RelayTarget(load.Recorder(), relay.ws_url, operators=0)
    pid = relay.pid
    out: dict[str, Any] = {"rss_start": rss(pid), "sessions_s": 0.0}
    warm, _ = await _open_idle(lambda i: target._connect(f"warm{i}"), 50)
    await asyncio.gather(*(ws.close() for ws in warm), return_exceptions=True)
    await asyncio.sleep(2)
    out["rss_before"] = rss(pid)
    t0 = time.monotonic()
    socks, failed = await _open_idle(lambda i: target._connect(f"v{i}"), n)
    out["connect_s"] = time.monotonic() - t0
    out["connected"], out["failed"] = len(socks), failed
    await asyncio.sleep(3)
    out["rss_after"] = rss(pid)
    out["settle_s"], out["idle_cpu_pct"] = await _idle_cpu(pid, hold)
    out["rss_held"] = rss(pid)
    # The relay's "ping": a frame addressed to oneself comes back.
    out["answered"] = await _ping_all(socks, lambda i: json.dumps({"to": f"v{i}", "type": "pong"}))
    await asyncio.gather(*(ws.close() for ws in socks), return_exceptions=True)
    await asyncio.sleep(3)
    out["rss_closed"] = rss(pid)
    return out


def idle_part(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    results: dict[str, list[dict[str, Any]]] = {"relay": [], "sqlite": []}
    tokens: list[str] = []
    for r in range(args.idle_runs):
        log(f"idle: relay, {args.idle} sockets (run {r + 1}/{args.idle_runs})")
        relay = RelayProcess(work).start()
        try:
            res = run_async(idle_relay(relay, args.idle, args.idle_hold))
        finally:
            relay.stop()
        results["relay"].append(res)
        log(
            f"  relay: {per_socket(res) / 1024:.1f} KiB/socket, {res['connected']} connected, "
            f"{res['answered']} answered"
        )
        log(f"idle: trustdesk sqlite, {args.idle} sockets (run {r + 1}/{args.idle_runs})")
        # A fresh process each run, on the same database: the visitor sessions made in the
        # first run are reused.
        stack = TrustDeskStack("sqlite", work / "idle").start(create_admin=r == 0)
        try:
            res = run_async(idle_trustdesk(stack, args.idle, args.idle_hold, tokens))
        finally:
            stack.stop()
        results["sqlite"].append(res)
        log(
            f"  trustdesk: {per_socket(res) / 1024:.1f} KiB/socket, {res['connected']} connected, "
            f"{res['answered']} answered, idle CPU {res['idle_cpu_pct']:.0f}%"
        )
    return {
        k: {"runs": v, "per_socket": median([per_socket(x) for x in v])} for k, v in results.items()
    }


def per_socket(res: dict[str, Any]) -> float:
    return (res["rss_after"] - res["rss_before"]) / max(1, res["connected"])


# ====================================================================== sustained


def _sustained_target(stack: TrustDeskStack, args: argparse.Namespace) -> load.TrustDeskTarget:
    return load.TrustDeskTarget(
        load.Recorder(),
        stack.url,
        stack.ws_url,
        (ADMIN_EMAIL, ADMIN_PASSWORD),
        dashboards=args.dashboards,
        reply_via=args.reply_via,
    )


async def sustained_async(
    stack: TrustDeskStack, args: argparse.Namespace, prof: profiles.Profiler
) -> dict[str, Any]:
    target = _sustained_target(stack, args)
    meters = meters_for(stack.pid, stack.service_pids())
    await target.open()
    steps: list[dict[str, Any]] = []
    out: dict[str, Any] = {"conversations": args.sustained_convs, "steps": steps}
    try:
        convs, errors = await load.add_conversations(target, 0, args.sustained_convs)
        out["open"] = len(convs)
        log(f"  {len(convs)} conversations open" + (f", {len(errors)} failed" if errors else ""))
        if args.cost_probe > 0 and convs:
            out["cost"] = await cost_probe(
                stack, target, convs, args.cost_probe, args.probe_extra_dashboards
            )
        saturated_at = None
        for total in args.sustained_rates:
            rate = total / len(convs)
            w = await load.measure(
                target, convs, rate, warmup=args.warmup, runs=1, seconds=args.step, meters=meters
            )
            row = dict(w[0], offered_nominal=total)
            steps.append(row)
            log(
                f"  offered {total}/s: stored {row['stored_per_s']:.0f}/s, delivered "
                f"{row['delivered_per_s']:.0f}/s, reply p50 {fmt(row['reply_p50_ms'])} ms p99 "
                f"{fmt(row['reply_p99_ms'])} ms, server CPU {row['server_cpu_pct']:.0f}%, "
                f"client CPU {row['client_cpu_pct']:.0f}%, lost {row['lost']}, "
                f"skipped {row['skipped']}"
            )
            # Against what this step really offered (Poisson: a short low-rate step offers a
            # little more or less than the nominal rate), not against the nominal figure.
            offered = row["offered_per_s"] or total
            if row["delivered_per_s"] < 0.9 * offered or (row["reply_p99_ms"] or 0) > 1000:
                saturated_at = total
                break
        out["saturated_at"] = saturated_at
        if prof.kind != "none":
            total = saturated_at or args.sustained_rates[-1]
            log(f"  profiling the server ({prof.kind}) at {total} msg/s offered")

            async def record(_: int) -> None:
                await prof.record(stack.pid, args.profile_seconds)

            w = await load.measure(
                target,
                convs,
                total / len(convs),
                warmup=1,
                runs=1,
                seconds=args.profile_seconds + 1,
                meters=meters,
                during=record,
            )
            out["profile_step"] = dict(w[0], offered_nominal=total)
            out["profile"] = prof.summary()
    finally:
        await target.close()
    return out


async def _probe(
    stack: TrustDeskStack,
    target: load.TrustDeskTarget,
    convs: list[load.Conv],
    n: int,
    kind: str,
    label: str,
) -> dict[str, Any]:
    rec = target.rec
    cpu = CpuMeter([stack.pid, *stack.service_pids()])
    await asyncio.sleep(2.0)  # let earlier work (set-up, the previous probe) finish
    c_idle, t_idle = cpu.cpu_seconds(), time.perf_counter()
    await asyncio.sleep(1.0)  # the background rate (heartbeats), and the dump thread catches up
    sql0, cpu0, t0 = stack.sql_counts(), cpu.cpu_seconds(), time.perf_counter()
    idle_rate = (cpu0 - c_idle) / (t0 - t_idle)
    walls = []
    for i in range(n):
        conv = convs[i % len(convs)]
        text = f"{kind}|{load.WARMUP}|{load.now_ns()}|{conv.idx}|probe{i}"
        fut = rec.expect(text if kind == load.REPLY else "ack:" + text)
        t1 = time.perf_counter()
        if kind == load.REPLY:
            await target.reply(conv, text)
        else:
            await target.visitor_send(conv, text)
        await asyncio.wait_for(fut, 30)
        walls.append(1000 * (time.perf_counter() - t1))
    await asyncio.sleep(1.0)  # the fan-out that follows the last message, and the dump
    used = cpu.cpu_seconds() - cpu0 - idle_rate * (time.perf_counter() - t0)
    sql1 = stack.sql_counts()
    diff = {k: v - sql0.get(k, 0) for k, v in sql1.items() if v - sql0.get(k, 0) > 0}
    top = sorted(diff.items(), key=lambda kv: -kv[1])
    return {
        "label": label,
        "n": n,
        "dashboards": len(target.dash),
        "wall_ms_p50": load.percentile(walls, 50),
        "cpu_ms": max(0.0, used) * 1000 / n,
        "sql_per_msg": sum(diff.values()) / n if diff else None,
        "transactions_per_msg": sum(v for k, v in diff.items() if k.startswith("BEGIN")) / n
        if diff
        else None,
        "sql": [(k, v / n) for k, v in top[:25]],
    }


async def cost_probe(
    stack: TrustDeskStack,
    target: load.TrustDeskTarget,
    convs: list[load.Conv],
    n: int,
    extra_dashboards: int,
) -> dict[str, Any]:
    """One message at a time: server CPU, wall time and SQL statements per message.

    With nothing else in flight these do not depend on queueing, and CPU time and statement
    counts hardly depend on other load on the machine. Then again with more operator
    dashboards connected, for what each one adds.
    """
    out: dict[str, Any] = {}
    rounds = [0, extra_dashboards] if extra_dashboards > 0 else [0]
    for extra in rounds:
        if extra:
            await target.add_dashboards(extra)
        for kind, label in ((load.REPLY, "operator reply"), (load.VISITOR, "visitor message")):
            r = await _probe(stack, target, convs, n, kind, label)
            out[f"{kind}{len(target.dash)}"] = r
            log(
                f"  one {label} at a time, {r['dashboards']} dashboard(s): "
                f"{r['wall_ms_p50']:.1f} ms to deliver (p50), {r['cpu_ms']:.1f} ms server CPU"
                + (
                    f", {r['sql_per_msg']:.1f} SQL statements per message"
                    if r["sql_per_msg"]
                    else ""
                )
            )
    if extra_dashboards > 0:
        await target.drop_dashboards(extra_dashboards)
    return out


def sustained_part(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """The step test on each database of `--sustained-backends`: {backend: result}."""
    out = {}
    for backend in args.sustained_backends:
        if backend == "pg" and not (postgres_available() and redis_available()):
            log("  sustained pg: PostgreSQL 15 or redis-server not installed; skipped")
            continue
        out[backend] = sustained_one(args, work / f"sustained-{backend}", backend)
    return out


def sustained_one(args: argparse.Namespace, work: Path, backend: str) -> dict[str, Any]:
    log(
        f"sustained: trustdesk {backend}, {args.sustained_convs} conversations, "
        f"{args.dashboards} dashboard socket(s)"
    )
    counts: dict[str, Any] = {}
    if args.count_sql and args.cost_probe > 0:
        # Statements are counted on a server of their own: the counting listener costs
        # ~2-3 ms of CPU per operator reply, which must not weigh on the CPU per message,
        # the steps or the profile measured below.
        log("  counting SQL statements per message (a separate server with the listener)")
        counter = TrustDeskStack(
            backend,
            work / "sqlcount",
            sqlcount_out=work / "sqlcount.json",
            pg=shared_pg(work, backend),
        ).start()
        try:
            counts = run_async(sql_count_probe(counter, args))
        finally:
            counter.stop()
    prof = profiles.Profiler(args.profiler, work / "profile")
    stack = TrustDeskStack(
        backend, work / "sustained", cprofile_out=prof.cprofile_out, pg=shared_pg(work, backend)
    ).start()
    try:
        out = run_async(sustained_async(stack, args, prof))
    finally:
        stack.stop()
    for key, row in out.get("cost", {}).items():
        for field in ("sql_per_msg", "transactions_per_msg", "sql"):
            row[field] = counts.get(key, {}).get(field)
    return out


async def sql_count_probe(stack: TrustDeskStack, args: argparse.Namespace) -> dict[str, Any]:
    target = _sustained_target(stack, args)
    await target.open()
    try:
        convs, _ = await load.add_conversations(target, 0, min(20, args.sustained_convs))
        return await cost_probe(stack, target, convs, args.cost_probe, args.probe_extra_dashboards)
    finally:
        await target.close()


# ====================================================================== main


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench.run",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ints = lambda s: [int(x) for x in s.split(",") if x]  # noqa: E731
    p.add_argument("--quick", action="store_true", help="small, fast smoke run")
    p.add_argument("--parts", default="latency,idle,sustained")
    p.add_argument("--targets", default=",".join(TARGETS), help="relay,polling,sqlite,pg")
    p.add_argument(
        "--levels",
        type=ints,
        default=[1, 10, 100, 1000],
        help="concurrent conversations (ascending)",
    )
    p.add_argument(
        "--reply-via",
        default="socket",
        choices=["socket", "http"],
        help="how operators reply: the dashboard's socket (as the dashboard does) or HTTP",
    )
    p.add_argument("--runs", type=int, default=3, help="measurement windows per level")
    p.add_argument("--window", type=float, default=10.0, help="seconds per window")
    p.add_argument("--warmup", type=float, default=3.0)
    p.add_argument(
        "--no-paired-relay",
        dest="paired_relay",
        action="store_false",
        help="latency: do not measure a bare relay beside each TrustDesk target, window by "
        "window (quicker; the ratios then divide by the relay target measured on its own)",
    )
    p.add_argument(
        "--paired-rewarm",
        type=float,
        default=1.0,
        help="seconds of load before each paired window after a level's first (which gets "
        "the full --warmup)",
    )
    p.add_argument(
        "--rate", type=float, default=1.0, help="messages/s per conversation (both sides together)"
    )
    p.add_argument(
        "--single-rate",
        type=float,
        default=6.0,
        help="messages/s of the lone conversation at level 1 (for enough samples)",
    )
    p.add_argument(
        "--dashboards",
        type=int,
        default=1,
        help="operator dashboard sockets connected to TrustDesk",
    )
    p.add_argument(
        "--setup-timeout",
        type=float,
        default=150.0,
        help="seconds allowed to open the conversations of one level (then go on with those open)",
    )
    p.add_argument(
        "--no-early-stop",
        dest="early_stop",
        action="store_false",
        help="run every level even after a target has saturated (delivered < 80%% of offered)",
    )
    p.add_argument("--idle", type=int, default=5000, help="idle sockets")
    p.add_argument("--idle-runs", type=int, default=3)
    p.add_argument("--idle-hold", type=float, default=5.0)
    p.add_argument("--sustained-convs", type=int, default=200)
    p.add_argument(
        "--sustained-rates",
        type=ints,
        default=[10, 25, 50, 100, 200, 400, 700, 1000, 1200, 1500, 2000],
    )
    p.add_argument(
        "--sustained-backends",
        default="sqlite,pg",
        help="databases of the sustained part, each with its own server, in turn "
        "(targets: 1,000 msg/s on SQLite, 1,500 on PostgreSQL + Redis)",
    )
    p.add_argument(
        "--extras-level",
        type=int,
        default=100,
        help="latency: at this level each one-process TrustDesk target also records its RSS "
        "with 3 dashboards connected and runs a window with --many-dashboards",
    )
    p.add_argument(
        "--many-dashboards",
        type=int,
        default=5,
        help="dashboards connected for the second CPU-per-message window",
    )
    p.add_argument(
        "--cost-probe",
        type=int,
        default=50,
        help="messages of each kind sent one at a time to measure the cost of one (0: skip)",
    )
    p.add_argument(
        "--probe-extra-dashboards",
        type=int,
        default=2,
        help="dashboards added for a second cost probe (what each operator online costs)",
    )
    p.add_argument(
        "--no-count-sql",
        dest="count_sql",
        action="store_false",
        help="do not count SQL statements (bench/sqlcount) in the sustained server",
    )
    p.add_argument("--step", type=float, default=8.0, help="seconds per sustained step")
    p.add_argument("--profiler", default="auto", choices=["auto", "py-spy", "cprofile", "none"])
    p.add_argument("--profile-seconds", type=float, default=10.0)
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks.md")
    p.add_argument("--results", type=Path, default=RESULTS / "latest.json")
    p.add_argument(
        "--report-only", action="store_true", help="only rewrite the report from --results"
    )
    p.add_argument("--keep", action="store_true", help="keep the temporary data directory")
    p.add_argument(
        "--src",
        type=Path,
        default=None,
        help="run the server from this src/ directory (e.g. an exported older "
        "commit, for before/after comparisons) instead of the installed one",
    )
    args = p.parse_args(argv)
    if args.quick:
        # Every target, on the same code path, with fewer and shorter windows: only the
        # level the targets are stated at, one paired window per side, a short idle part,
        # the sustained steps around the targets, no SQL counting server.
        args.levels = [args.extras_level]
        args.runs, args.window, args.warmup, args.paired_rewarm = 1, 3.0, 1.0, 1.0
        args.idle, args.idle_runs, args.idle_hold = 300, 1, 2.0
        args.sustained_convs, args.step = 30, 3.0
        args.sustained_rates = [100, 300, 700, 1000, 1500, 2000]
        args.profile_seconds = 3.0
        args.cost_probe, args.count_sql, args.probe_extra_dashboards = 10, False, 0
        if "--profiler" not in " ".join(argv if argv is not None else sys.argv):
            args.profiler = "none"  # a diagnosis, not a target: the full run profiles
    args.parts = [x for x in args.parts.split(",") if x]
    args.targets = [x for x in args.targets.split(",") if x]
    args.sustained_backends = [x for x in args.sustained_backends.split(",") if x]
    for t in args.targets:
        if t not in TARGETS:
            p.error(f"unknown target {t!r}")
    args.levels = sorted(set(args.levels))
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    if args.report_only:
        data = json.loads(args.results.read_text())
        report.write(data, args.out)
        log(f"wrote {args.out}")
        return
    nofile = raise_nofile()
    if args.src is not None:
        src = args.src.resolve()
        if not (src / "trustdesk" / "__init__.py").exists():
            sys.exit(f"--src {src}: no trustdesk package there")
        os.environ["PYTHONPATH"] = os.pathsep.join(
            [str(src), *filter(None, [os.environ.get("PYTHONPATH")])]
        )
    started = time.time()
    work = Path(tempfile.mkdtemp(prefix="trustdesk-bench-"))
    data: dict[str, Any] = {
        "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "argv": sys.argv[1:] if argv is None else argv,
        "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "machine": machine(),
        "versions": versions(),
        "nofile": nofile,
        "commit": _git_commit() if args.src is None else f"src from {args.src}",
        "load_before": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }
    log(f"bench: {', '.join(args.parts)}; work dir {work}; RLIMIT_NOFILE {nofile}")
    stop = {"sig": False}

    def on_term(*_: Any) -> None:
        stop["sig"] = True
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    try:
        if "latency" in args.parts:
            data["latency"] = latency_part(args, work)
        if "idle" in args.parts:
            data["idle"] = idle_part(args, work)
        if "sustained" in args.parts:
            data["sustained"] = sustained_part(args, work)
    finally:
        stop_shared_pg()
        data["seconds"] = time.time() - started
        data["load_after"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
        args.results.parent.mkdir(parents=True, exist_ok=True)
        args.results.write_text(json.dumps(data, indent=1, default=str))
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    report.write(data, args.out)
    log(f"done in {data['seconds'] / 60:.1f} min; wrote {args.out} and {args.results}")


def _git_commit() -> str:
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "src"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        return head + (" (src/ modified)" if dirty else "")
    return "?"


if __name__ == "__main__":
    os.chdir(ROOT)
    main()
