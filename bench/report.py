"""docs/benchmarks.md (and docs/bench-latency.png) from the results of `python -m bench.run`.

The hand-written analysis between the markers below is kept from the existing file, so that
a new run refreshes the figures without losing it:

    <!-- analysis:start --> ... <!-- analysis:end -->
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

START, END = "<!-- analysis:start -->", "<!-- analysis:end -->"
# What `python -m bench.run` writes goes between these; the rest of the file (e.g. the soak
# test's figures) is kept as it is.
BENCH_START, BENCH_END = "<!-- bench:start -->", "<!-- bench:end -->"
NAMES = {
    "relay": "bare websockets relay",
    "polling": "3 s polling (TrustDesk, SQLite)",
    "sqlite": "TrustDesk, SQLite",
    "pg": "TrustDesk, PostgreSQL + Redis",
    "pg2": "TrustDesk, PostgreSQL + Redis, 2 processes",
}
SHORT = {
    "relay": "relay",
    "polling": "3 s polling",
    "sqlite": "SQLite",
    "pg": "PG + Redis",
    "pg2": "PG + Redis, 2 proc.",
}
TRUSTDESK = ("sqlite", "pg", "pg2")  # the targets that are TrustDesk with sockets


def ms(v: float | None) -> str:
    if v is None:
        return "–"
    if v < 10:
        return f"{v:.2f}"
    if v < 100:
        return f"{v:.1f}"
    return f"{v:,.0f}"


def ratio(a: float | None, b: float | None) -> str:
    if a is None or b is None or b <= 0:
        return "–"
    r = a / b
    return f"{r:.1f}×" if r < 100 else f"{r:,.0f}×"


def mark(ok: bool | None) -> str:
    return "–" if ok is None else ("**met**" if ok else "**not met**")


def _level(data: dict[str, Any], target: str, level: int) -> dict[str, Any] | None:
    for row in data.get("latency", {}).get(target, []):
        if row["level"] == level:
            return row
    return None


def vs_relay(
    data: dict[str, Any], target: str, level: int
) -> tuple[float | None, float | None, float | None, bool]:
    """(ratio, target p50, relay p50, paired) for "target p50 ÷ relay p50" at one level.

    The relay measured beside the target, window by window (run.py `paired_windows`): the
    ratio is the median over the runs of each target window's p50 over the p50 of the relay
    window just before it. Results without it (older runs, `--no-paired-relay`) fall back
    to the standalone relay target, measured minutes apart.
    """
    row = _level(data, target, level)
    p50 = row.get("reply_p50_ms") if row else None
    if row and row.get("saturated"):  # (a few late deliveries: no ratio worth quoting)
        return None, p50, row.get("ref_p50_ms"), bool(row.get("ref_p50_ms"))
    if row and row.get("ratio_p50") is not None and row.get("ref_p50_ms"):
        return row["ratio_p50"], p50, row["ref_p50_ms"], True
    relay = _level(data, "relay", level)
    ref = relay.get("reply_p50_ms") if relay else None
    if p50 is None or not ref:
        return None, p50, ref, False
    return p50 / ref, p50, ref, False


def times(r: float | None) -> str:
    if r is None:
        return "–"
    return f"{r:.1f}×" if r < 100 else f"{r:,.0f}×"


def _paired(data: dict[str, Any]) -> bool:
    return any("ref_runs" in row for rows in (data.get("latency") or {}).values() for row in rows)


def _keep_analysis(out: Path) -> str:
    if out.exists():
        m = re.search(re.escape(START) + r"(.*?)" + re.escape(END), out.read_text(), re.S)
        if m:
            return m.group(1).strip("\n")
    return "_(No analysis written yet.)_"


def plot(data: dict[str, Any], path: Path) -> bool:
    lat = data.get("latency") or {}
    if not lat:
        return False
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, ax = plt.subplots(figsize=(8, 5), dpi=110)
    colours = {
        "relay": "#555555",
        "polling": "#d62728",
        "sqlite": "#1f77b4",
        "pg": "#2ca02c",
        "pg2": "#9467bd",
    }
    for target, rows in lat.items():
        rows = [r for r in rows if r.get("reply_p50_ms") is not None]
        if not rows:
            continue
        xs = [r["level"] for r in rows]
        c = colours.get(target)
        ax.plot(
            xs,
            [r["reply_p50_ms"] for r in rows],
            "o-",
            color=c,
            label=f"{SHORT.get(target, target)} p50",
        )
        ax.plot(
            xs,
            [r["reply_p99_ms"] for r in rows],
            "s--",
            color=c,
            alpha=0.7,
            label=f"{SHORT.get(target, target)} p99",
        )
    ax.axhline(10, color="#999999", lw=0.8, ls=":")
    ax.axhline(50, color="#999999", lw=0.8, ls=":")
    ax.text(1, 10, " target p50 10 ms", va="bottom", fontsize=8, color="#666666")
    ax.text(1, 50, " target p99 50 ms", va="bottom", fontsize=8, color="#666666")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("concurrent conversations (about 1 message/s each)")
    ax.set_ylabel("operator reply → visitor socket, ms")
    ax.set_title("Delivery latency against concurrency (median of runs)")
    ax.grid(True, which="both", alpha=0.25)
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return True


def targets_table(data: dict[str, Any]) -> list[str]:
    cfg = data.get("config", {})
    lines = ["| target | measured | |", "|---|---|---|"]
    at = 100 if 100 in cfg.get("levels", []) else max(cfg.get("levels", [0]) or [0])
    poll = _level(data, "polling", at)
    for t in TRUSTDESK:
        row = _level(data, t, at)
        if row is None:
            continue
        p50, p99 = row.get("reply_p50_ms"), row.get("reply_p99_ms")
        n = SHORT[t]
        lines.append(
            f"| p50 < 10 ms at {at} conversations ({n}) | {ms(p50)} ms | "
            f"{mark(None if p50 is None else p50 < 10)} |"
        )
        lines.append(
            f"| p99 < 50 ms at {at} conversations ({n}) | {ms(p99)} ms | "
            f"{mark(None if p99 is None else p99 < 50)} |"
        )
        r, _, ref, paired = vs_relay(data, t, at)
        if r is not None:
            how = "relay paired window by window" if paired else "relay measured separately"
            lines.append(
                f"| p50 within 3× the bare relay ({n}) | {times(r)} "
                f"({ms(p50)} vs {ms(ref)} ms, {how}) | {mark(r <= 3)} |"
            )
        if poll and poll.get("reply_p50_ms") and p50:
            r = poll["reply_p50_ms"] / p50
            lines.append(
                f"| p50 over 100× better than 3 s polling ({n}) | "
                f"{ratio(poll['reply_p50_ms'], p50)} "
                f"({ms(poll['reply_p50_ms'])} vs {ms(p50)} ms) | {mark(r > 100)} |"
            )
    idle = data.get("idle")
    if idle:
        td, rl = idle["sqlite"]["per_socket"], idle["relay"]["per_socket"]
        n_ok = min(r["connected"] for r in idle["sqlite"]["runs"])
        n_ans = min(r["answered"] for r in idle["sqlite"]["runs"])
        want = data["config"]["idle"]
        if td is not None and rl:
            lines.append(
                f"| memory per idle widget ≤ 2× the bare server | {td / 1024:.1f} KiB vs "
                f"{rl / 1024:.1f} KiB = {td / rl:.1f}× | {mark(td / rl <= 2)} |"
            )
        lines.append(
            f"| {want:,} idle widgets in one process | {n_ok:,} connected, "
            f"{n_ans:,} answered a ping (worst run) | "
            f"{mark(n_ok >= want and n_ans >= want)} |"
        )
    sus = data.get("sustained")
    if sus and sus.get("steps"):
        best = _best_sustained(sus)
        lines.append(
            f"| ≥ 1,000 messages/s stored and delivered, one process, SQLite | "
            f"{best:,.0f} msg/s (highest step delivered within 10% of offered, "
            f"p99 < 1 s) | {mark(best >= 1000)} |"
        )
    return lines


def _best_sustained(sus: dict[str, Any]) -> float:
    best = 0.0
    for s in sus["steps"]:
        ok = (
            s["delivered_per_s"] >= 0.9 * s["offered_nominal"]
            and (s.get("reply_p99_ms") or 0) <= 1000
        )
        if ok:
            best = max(best, s["delivered_per_s"])
    return best


def latency_tables(data: dict[str, Any]) -> list[str]:
    lat = data.get("latency") or {}
    if not lat:
        return ["_(latency not measured in this run)_"]
    levels = sorted({r["level"] for rows in lat.values() for r in rows})
    order = [t for t in ("relay", "polling", *TRUSTDESK) if t in lat]
    head = "| conversations | " + " | ".join(f"{SHORT[t]} p50 / p99 (ms)" for t in order)
    ratios = [t for t in TRUSTDESK if t in lat]
    with_relay = "relay" in lat or _paired(data)
    if with_relay:
        head += "".join(f" | {SHORT[t]} ÷ relay (p50)" for t in ratios)
    if "polling" in lat:
        head += "".join(f" | polling ÷ {SHORT[t]} (p50)" for t in ratios)
    lines = [head + " |", "|---" * (head.count("|")) + "|"]
    for lv in levels:
        cells = [f"{lv:,}"]
        for t in order:
            row = _level(data, t, lv)
            if row is None and any(r.get("saturated") for r in lat[t]):
                cells.append("not run (saturated at a lower level)")
            elif row is not None and row.get("saturated"):
                cells.append(
                    f"{ms(row['reply_p50_ms'])} / {ms(row['reply_p99_ms'])} (saturated: "
                    f"{row['delivered_per_s']:,.0f} of {row['offered_per_s']:,.0f} msg/s "
                    "delivered)"
                )
            else:
                cells.append(
                    "–" if row is None else f"{ms(row['reply_p50_ms'])} / {ms(row['reply_p99_ms'])}"
                )
        poll = _level(data, "polling", lv)
        if with_relay:
            for t in ratios:
                r, _, ref, paired = vs_relay(data, t, lv)
                cells.append(f"{times(r)} (vs {ms(ref)})" if paired else times(r))
        if "polling" in lat:
            for t in ratios:
                row = _level(data, t, lv)
                p50 = None if row is None or row.get("saturated") else row["reply_p50_ms"]
                cells.append(ratio(poll and poll["reply_p50_ms"], p50))
        lines.append("| " + " | ".join(cells) + " |")
    if with_relay and ratios:
        got = [vs_relay(data, t, lv) for t in ratios for lv in levels]
        kinds = {paired for r, _, _, paired in got if r is not None}
        paired_text = (
            "the median over the runs of each window's p50 divided by the p50 of the bare "
            "relay window measured just before it, beside the same server (in brackets that "
            "relay's median p50, ms; see Method)"
        )
        apart_text = "the p50 divided by the relay column's, measured separately"
        if kinds == {True, False}:
            note = f"with a relay p50 in brackets, {paired_text}; without one, {apart_text}"
        else:
            note = paired_text if True in kinds else apart_text
        if kinds:
            lines += ["", f"÷ relay: {note}."]
    lines += [
        "",
        "Load actually offered and achieved, per target and level (medians of the runs; "
        'messages/s counts both directions; "reply stored" is the operator\'s wait for '
        "the `ack` frame, or for the HTTP answer where replies go over HTTP (3 s polling); "
        "CPU in % of one core, 200% = the whole machine):",
        "",
        "| target | conv. | offered / sent msg/s | stored msg/s | delivered msg/s | lost | "
        "reply stored p50 ms | visitor→dashboard p50 / p99 ms | server CPU | PG+Redis CPU | "
        "client CPU | other processes CPU | errors |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for t in order:
        for row in lat[t]:
            errs = sum(row.get("errors", {}).values())
            services = f"{row['services_cpu_pct']:.0f}%" if t in ("pg", "pg2") else "–"
            lines.append(
                f"| {SHORT[t]} | {row['level']:,} | {row['offered_per_s']:,.0f} / "
                f"{row.get('sent_per_s', row['offered_per_s']):,.0f} | "
                f"{'–' if t == 'relay' else format(row['stored_per_s'], ',.0f')} | "
                f"{row['delivered_per_s']:,.0f} | {row['lost']:,.0f} | "
                f"{ms(row.get('reply_http_p50_ms')) if t != 'relay' else '–'} | "
                f"{ms(row.get('visitor_p50_ms'))} / {ms(row.get('visitor_p99_ms'))} | "
                f"{row['server_cpu_pct']:.0f}% | "
                f"{services} | "
                f"{row['client_cpu_pct']:.0f}% | {row.get('other_cpu_pct', 0):.0f}% | "
                f"{errs or ''} |"
            )
    all_errors: dict[str, int] = {}
    for rows in lat.values():
        for row in rows:
            for e, n in row.get("errors", {}).items():
                all_errors[e] = all_errors.get(e, 0) + n
    if all_errors:
        lines += [
            "",
            "Errors seen by the client: "
            + "; ".join(
                f"`{e}` ×{n}" for e, n in sorted(all_errors.items(), key=lambda kv: -kv[1])[:8]
            ),
        ]
    lines += ["", "Every run, for the record (reply p50 / p99 ms of each window):", ""]
    for t in order:
        for row in lat[t]:
            runs = ", ".join(
                f"{ms(w['reply_p50_ms'])} / {ms(w['reply_p99_ms'])}" for w in row["runs"]
            )
            if row.get("ref_runs"):
                refs = ", ".join(
                    f"{ms(w['reply_p50_ms'])} / {ms(w['reply_p99_ms'])}" for w in row["ref_runs"]
                )
                each = ", ".join(times(r) for r in row.get("ratio_runs", []))
                runs += (
                    f"; the relay beside it, each window just before: {refs} (p50 ratios {each})"
                )
            lines.append(f"- {SHORT[t]} @ {row['level']:,}: {runs}")
    return lines


def _settled(r: dict[str, Any]) -> str:
    # Older results measured CPU 3 s after the last socket connected, settled or not.
    return f"{r['settle_s']:.0f} s" if "settle_s" in r else "–"


def idle_table(data: dict[str, Any]) -> list[str]:
    idle = data.get("idle")
    if not idle:
        return ["_(idle connections not measured in this run)_"]
    n = data["config"]["idle"]
    lines = [
        f"| server | idle sockets connected | RSS before | RSS with {n:,} sockets | per socket | "
        "after holding | after closing | settled after | CPU while idle | connect time | "
        "answered a ping |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for key, name in (("relay", NAMES["relay"]), ("sqlite", NAMES["sqlite"])):
        runs = idle[key]["runs"]
        for i, r in enumerate(runs):
            per = (r["rss_after"] - r["rss_before"]) / max(1, r["connected"])
            lines.append(
                f"| {name} (run {i + 1}) | {r['connected']:,} | "
                f"{r['rss_before'] / 2**20:.1f} MiB | "
                f"{r['rss_after'] / 2**20:.1f} MiB | {per / 1024:.1f} KiB | "
                f"{r['rss_held'] / 2**20:.1f} MiB | {r['rss_closed'] / 2**20:.1f} MiB | "
                f"{_settled(r)} | {r['idle_cpu_pct']:.1f}% | {r['connect_s']:.1f} s | "
                f"{r['answered']:,} |"
            )
    td, rl = idle["sqlite"]["per_socket"], idle["relay"]["per_socket"]
    if td is not None and rl:
        lines += [
            "",
            f"Median per idle socket: TrustDesk **{td / 1024:.1f} KiB**, bare relay "
            f"**{rl / 1024:.1f} KiB**: **{td / rl:.1f}×**.",
        ]
    return lines


def sustained_section(data: dict[str, Any]) -> list[str]:
    sus = data.get("sustained")
    if not sus:
        return ["_(sustained throughput not measured in this run)_"]
    cfg = data["config"]
    lines = [
        f"One TrustDesk process on "
        f"{'PostgreSQL + Redis' if cfg.get('sustained_backend') == 'pg' else 'SQLite'}, "
        f"{sus.get('open', '?')} conversations, "
        f"{cfg.get('dashboards')} operator dashboard socket(s), the offered rate stepped up "
        f"({cfg.get('step')} s per step) until delivery fell 10% behind or p99 passed 1 s:",
        "",
        "| offered msg/s | stored msg/s | delivered msg/s | reply p50 / p99 ms | "
        "visitor ack p50 / p99 ms | server CPU | client CPU | other CPU | lost | errors |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in sus["steps"]:
        lines.append(
            f"| {s['offered_nominal']:,} ({s['offered_per_s']:,.0f}) | {s['stored_per_s']:,.0f} | "
            f"{s['delivered_per_s']:,.0f} | {ms(s['reply_p50_ms'])} / {ms(s['reply_p99_ms'])} | "
            f"{ms(s['ack_p50_ms'])} / {ms(s['ack_p99_ms'])} | {s['server_cpu_pct']:.0f}% | "
            f"{s['client_cpu_pct']:.0f}% | {s.get('other_cpu_pct', 0):.0f}% | {s['lost']:,} | "
            f"{sum(s['errors'].values()) or ''} |"
        )
    cost = sus.get("cost")
    if cost:
        lines += [
            "",
            "### The cost of one message",
            "",
            f"Before the steps: {next(iter(cost.values()))['n']} messages of each kind sent one "
            "at a time (each waits for the previous to be delivered), on the same server. CPU "
            "is the server process's (plus PostgreSQL and Redis when used); statements are "
            "counted by a SQLAlchemy event listener injected for the bench "
            "(`bench/sqlcount/sitecustomize.py`) into a separate server that runs the same "
            "probe first (the listener itself costs ~2-3 ms per reply, so it is kept out of "
            "the CPU figures, the steps and the profile), including what the sockets' "
            "reactions to the message cost (the dashboards' ticket summaries, the visitor's "
            "replays). CPU "
            "is counted until 1 s after the last message, less the idle rate measured just "
            "before.",
            "",
            "| message | operator dashboards online | delivered in (p50) | server CPU per "
            "message | SQL statements | transactions (BEGIN) | ⇒ CPU-bound ceiling |",
            "|---|---|---|---|---|---|---|",
        ]
        for c in cost.values():
            ceiling = 1000 / c["cpu_ms"] if c.get("cpu_ms") else None
            tx = c["transactions_per_msg"]
            lines.append(
                f"| {c['label']} | {c.get('dashboards', '?')} | {ms(c['wall_ms_p50'])} ms | "
                f"{ms(c['cpu_ms'])} ms | "
                f"{'–' if c['sql_per_msg'] is None else format(c['sql_per_msg'], '.1f')} | "
                f"{'–' if tx is None else format(tx, '.1f')} | "
                f"{'–' if ceiling is None else format(ceiling, ',.0f') + ' msg/s per core'} |"
            )
        for c in cost.values():
            if c.get("sql"):
                lines += [
                    "",
                    f"Statements per {c['label']} with {c.get('dashboards', '?')} dashboard(s) "
                    "(by text, per message):",
                    "",
                    "| per message | statement |",
                    "|---|---|",
                ]
                lines += [f"| {v:.2f} | `{k[:120]}` |" for k, v in c["sql"][:20]]
    best = _best_sustained(sus)
    sat = sus.get("saturated_at")
    lines += [
        "",
        f"Highest rate sustained: **{best:,.0f} messages/s**"
        + (
            f"; saturated at {sat:,} msg/s offered."
            if sat
            else "; it did not saturate within the steps tried."
        ),
    ]
    prof = sus.get("profile")
    if prof:
        lines += ["", f"### Profile of the server at saturation ({prof.get('kind')})", ""]
        if prof.get("error"):
            lines.append(f"_Profiling failed: {prof['error']}_")
        else:
            step = sus.get("profile_step") or {}
            if step:
                lines.append(
                    f"Recorded for {cfg.get('profile_seconds')} s while offering "
                    f"{step.get('offered_nominal', 0):,} msg/s (delivered "
                    f"{step.get('delivered_per_s', 0):,.0f}/s, server CPU "
                    f"{step.get('server_cpu_pct', 0):.0f}%)"
                    + (f", {prof['samples']:,} samples." if prof.get("samples") else ".")
                )
                lines.append("")
            if prof.get("loop_busy_pct") is not None:
                lines += [
                    f"The event loop (main thread) was busy **{prof['loop_busy_pct']:.0f}%** "
                    "of the time.",
                    "",
                ]
            for key, title, secs in (
                (
                    "thread_states",
                    "Thread time by state (Python-level sampling, thread-seconds)",
                    prof.get("seconds") or cfg.get("profile_seconds"),
                ),
                (
                    "native_thread_states",
                    "Thread time by state from the short native sample "
                    "(thread-seconds, idle included)",
                    prof.get("native_seconds"),
                ),
            ):
                rows = prof.get(key) or []
                if not rows:
                    continue
                lines += [
                    f"{title}, over {secs or 0:.0f} s:",
                    "",
                    "| threads | state | thread-seconds |",
                    "|---|---|---|",
                ]
                lines += [f"| {k} | {st} | {v:.2f} |" for k, st, v in rows]
                lines.append("")
            if prof.get("categories"):
                lines += [
                    "Where the event loop's busy time goes (each sample counted once, by "
                    "its innermost Python library):",
                    "",
                    "| share | where |",
                    "|---|---|",
                ]
                lines += [f"| {pct:.1f}% | {name} |" for name, pct in prof["categories"]]
                lines.append("")
            if prof.get("inclusive"):
                lines += [
                    "TrustDesk functions on the event loop's stack, inclusive (SQLAlchemy "
                    "runs in greenlets whose stacks do not show the calling TrustDesk code, "
                    "so these are lower bounds):",
                    "",
                    "| share | function |",
                    "|---|---|",
                ]
                lines += [f"| {pct:.1f}% | `{name}` |" for name, pct in prof["inclusive"][:20]]
            lines += [
                "",
                "Top functions of the event loop, self time:",
                "",
                "| share | function |",
                "|---|---|",
            ]
            lines += [f"| {pct:.1f}% | `{name}` |" for name, pct in prof["self"][:15]]
    return lines


def environment(data: dict[str, Any]) -> list[str]:
    m, v = data.get("machine", {}), data.get("versions", {})
    lines = [
        f"- Machine: {m.get('cpu')}, {m.get('cores')} cores, {m.get('memory')}, "
        f"Linux {m.get('kernel')}",
        f"- Run started {data.get('started')}, took {data.get('seconds', 0) / 60:.1f} min; "
        f"commit {data.get('commit')}; RLIMIT_NOFILE {data.get('nofile')}",
        f"- Python {v.get('python')}, SQLite {v.get('sqlite')}, {v.get('postgresql')}, "
        f"{v.get('redis-server', '').split(' sha=')[0]}",
        "- Packages: "
        + ", ".join(
            f"{k} {v[k]}"
            for k in (
                "fastapi",
                "uvicorn",
                "websockets",
                "uvloop",
                "httptools",
                "sqlalchemy",
                "aiosqlite",
                "asyncpg",
                "redis",
                "httpx",
            )
            if k in v
        ),
    ]
    if data.get("load_before"):
        lines.append(f"- Load average when the run started: {data['load_before']}")
    return lines


def other_load(data: dict[str, Any]) -> list[str]:
    """A warning when other processes took CPU during the measurements."""
    vals = []
    for rows in (data.get("latency") or {}).values():
        for row in rows:
            if row.get("saturated"):
                # A server behind on its backlog keeps working through the next window,
                # the paired relay's too, where it counts as another process.
                continue
            vals += [w.get("other_cpu_pct", 0) for w in row["runs"] + row.get("ref_runs", [])]
    vals += [s.get("other_cpu_pct", 0) for s in (data.get("sustained") or {}).get("steps", [])]
    if not vals:
        return []
    mean, worst = sum(vals) / len(vals), max(vals)
    if worst < 15:
        return [
            f"Other processes on the machine used {mean:.0f}% CPU on average during the "
            f"measurement runs (worst {worst:.0f}%, of 200%): the figures are clean.",
            "",
        ]
    return [
        f"> **Caveat:** other processes on the machine used **{mean:.0f}%** CPU on average "
        f"during the measurement runs (worst {worst:.0f}%, of 200% for 2 cores), so the "
        "server and the load client did not have the machine to themselves. The column "
        '"other processes CPU" shows it per level; compare figures taken at similar '
        "levels of other load.",
        "",
    ]


def write(data: dict[str, Any], out: Path) -> None:
    cfg = data.get("config", {})
    png = out.parent / "bench-latency.png"
    has_plot = plot(data, png)
    argv = " ".join(data.get("argv") or [])
    lines = [
        "# Benchmarks",
        "",
        "Figures from one run of `python -m bench.run"
        + (f" {argv}" if argv else "")
        + "` on the machine described under [Environment](#environment). Medians of "
        f"{cfg.get('runs')} runs where it says so. Regenerate with `make bench` "
        "(about 28 minutes); the raw results are in `bench/results/latest.json`.",
        "",
        *other_load(data),
        "## Targets",
        "",
        *targets_table(data),
        "",
        "## Analysis",
        "",
        START,
        _keep_analysis(out),
        END,
        "",
        "## Delivery latency: operator reply → visitor socket",
        "",
        f"Medians over {cfg.get('runs')} runs of {cfg.get('window')} s each "
        f"(after {cfg.get('warmup')} s of warm-up) of each run's p50 and p99, in milliseconds. "
        f"Each conversation sends about {cfg.get('rate')} message/s (Poisson, alternating "
        f"operator reply and visitor message), so N conversations offer about N messages/s; "
        f"the single conversation sends {cfg.get('single_rate')}/s, still a light load, so that "
        "a run has a few dozen replies (its p99 is close to the run's maximum).",
        "",
        *latency_tables(data),
        "",
    ]
    if has_plot:
        lines += [f"![Latency against concurrency]({png.name})", ""]
    lines += [
        "## Idle connections",
        "",
        "Resident memory (RSS, psutil) of the server process before and after "
        f"{cfg.get('idle', 0):,} idle widgets connect: each a visitor socket that has said "
        "`hello` with its token and no ticket (what every page view of the shop opens), versus "
        "the bare relay with the same number of sockets that have said hello. The visitor "
        'sessions are created over HTTP before the "before" figure, and 50 sockets are '
        "opened and closed first so that both processes have loaded their code paths. "
        '"CPU while idle" is measured once the server has settled (the first 1 s window '
        "under 25% after the last socket got `ready`: each connection's last-seen write, "
        'presence entry and "visitor online" event are done after its `ready`), over the '
        "holding time; what remains is heartbeats, presence expiry and keepalive pings.",
        "",
        *idle_table(data),
        "",
        "## Sustained messages/s",
        "",
        *sustained_section(data),
        "",
        "## Method",
        "",
        "- **Load client** (`bench/load.py`): one asyncio process on uvloop plays every visitor "
        "and operator, on 127.0.0.1. Visitors are `websockets` clients on `/ws/visitor` "
        "(`hello` with a token from `POST /api/support/session`, first `send` creates the "
        "ticket). Operators reply as the dashboard does, with a `send` frame on their "
        "dashboard socket (stored = its `ack`)"
        + (
            ""
            if cfg.get("reply_via", "http") == "socket"
            else " — in this run with `--reply-via http`: `POST /api/admin/support/reply` from "
            "4 logged-in operators, each an `httpx.AsyncClient` with 8 keep-alive connections"
        )
        + "; the 3 s polling reference replies over HTTP as the spec's dashboard did; "
        f"{cfg.get('dashboards')} operator dashboard socket(s) on `/ws/operator` stay "
        "connected, as a dashboard would (they receive every message and a `ticket` summary "
        "per change), and time visitor → operator delivery.",
        "- **Latency**: the message text carries `time.perf_counter_ns()` taken just before the "
        "operator's frame or request is sent; the visitor's socket reader subtracts it on arrival "
        "(same process, same clock). The operator's first reply to each ticket (which also "
        'posts "operator joined") happens during set-up and is not measured.',
        "- **Pacing**: open loop. One scheduler draws Poisson arrivals at N × rate and hands "
        "each to a random conversation, which alternates operator reply / visitor message. "
        "Sends never wait for earlier answers; a slow server shows as latency and as "
        'delivered < offered ("lost" = sent in a run and not delivered within 5 s after it; '
        "for TrustDesk a visitor message counts as delivered when dashboard socket 0 gets it). "
        "The client keeps at most 4,000 sends in flight and skips sends beyond that, so "
        '"sent" can be lower than "offered" once the server has fallen far behind. Client '
        "sockets send no keepalive pings (browsers do not either).",
        "- **Bare relay** (`bench/relay.py`): `websockets` server on uvloop that forwards a "
        "frame addressed to another socket; operators are 4 sockets on it instead of HTTP "
        "clients. Same wire settings as `trustdesk run`: no permessage-deflate (until "
        "2026-11-29 the relay compressed, which made it a slower and larger floor). The floor "
        "for any Python WebSocket chat server on this machine.",
        *(
            [
                "- **Relay beside each TrustDesk target**: a second bare relay runs alongside "
                "each TrustDesk server with the same number of conversations open on both, and "
                "each level alternates a relay window and a TrustDesk window "
                f"({cfg.get('runs')} of each, the full warm-up once per level for each, then "
                f"{cfg.get('paired_rewarm')} s of load before every later window), so that "
                'the "÷ relay" ratio of each run divides by a floor measured seconds before '
                "on the same machine (the floor drifts by 2× within an hour here, more than "
                "the difference being judged), and the ratio shown is the median of the runs' "
                "ratios.",
            ]
            if _paired(data)
            else []
        ),
        "- **3 s polling**: the same TrustDesk server (SQLite), but visitors have no socket: "
        "they send with `POST /api/support/send-message` and poll `GET "
        "/api/support/messages/{id}?after=N` every 3 s (random phase), as the original spec "
        "did. Expected mean ≈ 1.5 s.",
        "- **Runs**: conversations are opened level by level (1, then up to 10, 100 and "
        "1,000) on one server per target; each level has a warm-up and then back-to-back "
        "measurement runs. Once a target delivers less than 80% of what is offered it is "
        "saturated, and its higher levels are skipped (they would only take longer to "
        "fail; `--no-early-stop` runs them). PostgreSQL 15 (fsync off, as in the tests) "
        "and Redis run locally "
        "from `tests/support/services.py`; TrustDesk runs as `python -m trustdesk run` from "
        "`tests/support/server.py`, with the per-visitor send rate lifted. "
        '"PG + Redis, 2 proc." is the same server started with `--workers 2` (two processes '
        "sharing the port; events cross between them through Redis): the way past one "
        "process's CPU.",
        "- **CPU**: psutil CPU time of the server process (with its worker processes), of "
        "PostgreSQL + Redis, of the load "
        'client, and of everything else on the machine ("other processes") during each run. '
        "The client shares the 2 cores with the server, so at high rates it competes for CPU: "
        'read the figures as "server + client on 2 cores".',
        "- **Profile**: py-spy (`record --rate 250 --threads --nonblocking`, all threads, "
        "raw collapsed stacks summarised by `bench/profiles.py`) when `py-spy` is on PATH, "
        "e.g. `uv run --with py-spy python -m bench.run`; otherwise cProfile on the event-loop "
        "thread via `bench/profiled_server.py` (SIGUSR1 starts, SIGUSR2 dumps).",
        "",
        "## Reproduce",
        "",
        "```sh",
        "make bench                                   # = .venv/bin/python -m bench.run",
        "uv run --group bench python -m bench.run     # the same, through uv",
        "uv run --group bench --with py-spy python -m bench.run   # profile with py-spy",
        "uv run --group bench python -m bench.run --quick         # 2-3 min smoke run",
        "uv run --group bench python -m bench.run --parts latency --targets relay,sqlite "
        "--levels 1,100",
        "uv run --group bench python -m bench.run --parts idle --idle 5000",
        "uv run --group bench python -m bench.run --parts sustained "
        "--sustained-rates 500,1000,1500",
        "uv run --group bench python -m bench.run --report-only   # rewrite this file",
        "```",
        "",
        "`make bench` needs PostgreSQL 15 and redis-server (`make system-deps`); without them "
        "the PostgreSQL + Redis column is skipped. All options: `python -m bench.run --help`.",
        "",
        "## Environment",
        "",
        *environment(data),
        "",
    ]
    out.parent.mkdir(parents=True, exist_ok=True)
    block = BENCH_START + "\n" + "\n".join(lines).rstrip() + "\n" + BENCH_END
    old = out.read_text() if out.exists() else ""
    if BENCH_START in old and BENCH_END in old:
        head, rest = old.split(BENCH_START, 1)
        tail = rest.split(BENCH_END, 1)[1]
        text = head + block + tail
    else:
        text = block + "\n\n" + old.lstrip("\n")
    out.write_text(text.rstrip("\n") + "\n")
