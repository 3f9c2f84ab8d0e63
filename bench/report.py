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


def vs_durable(
    data: dict[str, Any], target: str, level: int
) -> tuple[float | None, float | None, float | None]:
    """(ratio, target p50, durable relay p50) at one level: the median over the runs of each
    target window's p50 over the p50 of the durable relay window measured just before it."""
    row = _level(data, target, level)
    if row is None:
        return None, None, None
    p50, ref = row.get("reply_p50_ms"), row.get("durable_p50_ms")
    if row.get("saturated"):
        return None, p50, ref
    return row.get("durable_ratio_p50"), p50, ref


def sustained_by_backend(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """{"sqlite": ..., "pg": ...}; older results held one SQLite (or --sustained-backend)
    result directly."""
    sus = data.get("sustained") or {}
    if "steps" in sus:
        return {data.get("config", {}).get("sustained_backend", "sqlite"): sus}
    return {k: v for k, v in sus.items() if isinstance(v, dict) and v.get("steps") is not None}


# Issue 24's targets for the server alone (the server process's CPU; PostgreSQL and Redis
# are shown beside it, not counted).
CPU_TARGET_MS = {"sqlite": 0.7, "pg": 1.2}
SUSTAINED_TARGET = {"sqlite": 1000, "pg": 1500}
RSS_IDLE_MB, RSS_LOADED_MB = 80, 120
IDLE_TARGET = 5000


def mb(v: float | None) -> str:
    return "–" if v is None else f"{v / 1e6:.0f} MB"


def extras_level(data: dict[str, Any]) -> int:
    cfg = data.get("config", {})
    levels = cfg.get("levels", []) or [0]
    want = cfg.get("extras_level", 100)
    return int(want if want in levels else max(levels))


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
    lines = ["| target | measured | |", "|---|---|---|"]
    at = extras_level(data)
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
        r, _, ref = vs_durable(data, t, at)
        lines.append(
            f"| p50 ≤ 1.5× the durable relay at {at} conversations ({n}) | "
            + (
                f"{f'{r:.2f}×' if r < 10 else times(r)} ({ms(p50)} vs {ms(ref)} ms, "
                "paired window by window)"
                if r is not None
                else "– (no paired durable relay"
                + (", saturated)" if row.get("saturated") else ")")
            )
            + f" | {mark(None if r is None else r <= 1.5)} |"
        )
        if poll and poll.get("reply_p50_ms") and p50:
            r = poll["reply_p50_ms"] / p50
            lines.append(
                f"| p50 over 100× better than 3 s polling ({n}) | "
                f"{ratio(poll['reply_p50_ms'], p50)} "
                f"({ms(poll['reply_p50_ms'])} vs {ms(p50)} ms) | {mark(r > 100)} |"
            )
    for t in ("sqlite", "pg"):
        row = _level(data, t, at)
        if row is None:
            continue
        limit, n = CPU_TARGET_MS[t], SHORT[t]
        many = row.get("many_window") or {}
        for dash, v in (
            (
                row.get("dashboards_before", data.get("config", {}).get("dashboards")),
                row.get("server_cpu_ms_per_msg"),
            ),
            (row.get("many_dashboards"), many.get("server_cpu_ms_per_msg")),
        ):
            if dash is None:
                continue
            lines.append(
                f"| server CPU ≤ {limit} ms per message, {dash} dashboard(s), {at} "
                f"conversations ({n}) | {ms(v)} ms | {mark(None if v is None else v <= limit)} |"
            )
    for t in ("sqlite", "pg"):
        row = _level(data, t, at)
        if row is None or row.get("rss_idle") is None:
            continue
        n = SHORT[t]
        idle, loaded = row.get("rss_idle"), row.get("rss_loaded")
        lines.append(
            f"| idle RSS of the server ≤ {RSS_IDLE_MB} MB ({n}) | {mb(idle)} | "
            f"{mark(idle <= RSS_IDLE_MB * 1e6)} |"
        )
        if loaded is not None:
            lines.append(
                f"| RSS ≤ {RSS_LOADED_MB} MB with {at} open conversations and "
                f"{row.get('rss_loaded_dashboards')} dashboards ({n}) | {mb(loaded)} | "
                f"{mark(loaded <= RSS_LOADED_MB * 1e6)} |"
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
        if want >= IDLE_TARGET:
            lines.append(
                f"| {IDLE_TARGET:,} idle widgets in one process | {n_ok:,} connected, "
                f"{n_ans:,} answered a ping (worst run) | "
                f"{mark(n_ok >= want and n_ans >= want)} |"
            )
        else:
            lines.append(
                f"| {IDLE_TARGET:,} idle widgets in one process | only {want:,} tried in this "
                f"run: {n_ok:,} connected, {n_ans:,} answered a ping | – (not measured) |"
            )
    for backend, sus in sustained_by_backend(data).items():
        best = _best_sustained(sus)
        want = SUSTAINED_TARGET.get(backend, 1000)
        name = "SQLite" if backend == "sqlite" else "PostgreSQL + Redis"
        lines.append(
            f"| ≥ {want:,} messages/s stored and delivered, one process, {name} | "
            f"{best:,.0f} msg/s (highest step delivered within 10% of offered, "
            f"p99 < 1 s; steps up to {max(s['offered_nominal'] for s in sus['steps']):,}) | "
            f"{mark(best >= want)} |"
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


def cell(row: dict[str, Any] | None, prefix: str = "reply") -> str:
    if row is None:
        return "–"
    return f"{ms(row.get(prefix + '_p50_ms'))} / {ms(row.get(prefix + '_p99_ms'))}"


def paired_table(data: dict[str, Any]) -> list[str]:
    """Bare relay, durable relay and TrustDesk side by side, each level's windows paired."""
    lat = data.get("latency") or {}
    rows = [(t, row) for t in TRUSTDESK for row in lat.get(t, []) if "ref_runs" in row]
    if not rows:
        return []
    lines = [
        "Each TrustDesk target beside its own bare relay and durable relay (same level, "
        "windows alternating bare → durable → TrustDesk; p50 / p99 ms, medians of the runs; "
        "the ratios are the medians of the per-window ratios; CPU = the process's own "
        "CPU-seconds per message delivered, PostgreSQL's backends not included):",
        "",
        "| target | conv. | bare relay | durable relay | TrustDesk | ÷ bare relay (p50) | "
        "÷ durable relay (p50) | CPU ms/msg: bare / durable / TrustDesk |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for t, row in rows:
        sat = " (saturated)" if row.get("saturated") else ""
        cpu = " / ".join(
            ms(row.get(k)) for k in ("ref_server_cpu_ms_per_msg", "durable_server_cpu_ms_per_msg")
        )
        lines.append(
            f"| {SHORT[t]} | {row['level']:,} | {cell(row, 'ref')} | {cell(row, 'durable')} | "
            f"{cell(row)}{sat} | {times(row.get('ratio_p50'))} | "
            f"{times(row.get('durable_ratio_p50'))} | {cpu} / "
            f"{ms(row.get('server_cpu_ms_per_msg'))} |"
        )
    return lines + [""]


def latency_tables(data: dict[str, Any]) -> list[str]:
    lat = data.get("latency") or {}
    if not lat:
        return ["_(latency not measured in this run)_"]
    levels = sorted({r["level"] for rows in lat.values() for r in rows})
    order = [t for t in ("relay", "polling", *TRUSTDESK) if t in lat]
    head = "| conversations | " + " | ".join(f"{SHORT[t]} p50 / p99 (ms)" for t in order)
    ratios = [t for t in TRUSTDESK if t in lat]
    if "polling" in lat:
        head += "".join(f" | polling ÷ {SHORT[t]} (p50)" for t in ratios)
    lines = [head + " |", "|---" * head.count("|") + "|"]
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
                cells.append(cell(row))
        poll = _level(data, "polling", lv)
        if "polling" in lat:
            for t in ratios:
                row = _level(data, t, lv)
                p50 = None if row is None or row.get("saturated") else row["reply_p50_ms"]
                cells.append(ratio(poll and poll["reply_p50_ms"], p50))
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", *paired_table(data)]
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
            for key, pre, what in (
                ("ref", "", "bare relay"),
                ("durable", "durable_", "durable relay"),
            ):
                if not row.get(f"{key}_runs"):
                    continue
                refs = ", ".join(
                    f"{ms(w['reply_p50_ms'])} / {ms(w['reply_p99_ms'])}" for w in row[f"{key}_runs"]
                )
                each = ", ".join(times(r) for r in row.get(f"{pre}ratio_runs", []))
                runs += f"; the {what} beside it: {refs} (p50 ratios {each})"
            many = row.get("many_window")
            if many:
                runs += (
                    f"; with {row.get('many_dashboards')} dashboards: "
                    f"{ms(many['reply_p50_ms'])} / {ms(many['reply_p99_ms'])}"
                )
            lines.append(f"- {SHORT[t]} @ {row['level']:,}: {runs}")
    return lines


def cpu_memory_section(data: dict[str, Any]) -> list[str]:
    at = extras_level(data)
    rows = [(t, _level(data, t, at)) for t in TRUSTDESK]
    rows = [(t, r) for t, r in rows if r is not None and r.get("many_window")]
    if not rows:
        return ["_(not measured in this run)_"]
    lines = [
        f"At {at} conversations (about {at} messages/s), after the paired latency windows "
        "(with the dashboards of those windows), then the same server with more operator "
        "dashboards connected for one more window. CPU per message = CPU-seconds of the "
        "server process (psutil `cpu_times`, user + system, its worker processes included) "
        "over the window ÷ messages delivered in it (operator replies on visitor sockets + "
        "visitor messages on dashboard 0); idle work (heartbeats, presence) is included. "
        "PostgreSQL + Redis are shown beside it, not counted. RSS (psutil, MB = 10⁶ bytes): "
        '"idle" just after the server started and an admin was created, before any client '
        f'connected; "loaded" with the {at} conversations\' visitor sockets still open and '
        "3 dashboards connected (2 s after the extra dashboards got their snapshot).",
        "",
        "| target | dashboards | server CPU per message | PG + Redis CPU per message | "
        "server CPU | delivered msg/s | reply p50 / p99 ms |",
        "|---|---|---|---|---|---|---|",
    ]
    for t, row in rows:
        many = row["many_window"]
        for dash, w in ((row.get("dashboards_before"), row), (row.get("many_dashboards"), many)):
            pg = ms(w.get("services_cpu_ms_per_msg")) + " ms" if t in ("pg", "pg2") else "–"
            lines.append(
                f"| {SHORT[t]} | {dash} | {ms(w.get('server_cpu_ms_per_msg'))} ms | {pg} | "
                f"{w['server_cpu_pct']:.0f}% | {w['delivered_per_s']:,.0f} | {cell(w)} |"
            )
    mem = [(t, r) for t, r in rows if r.get("rss_idle") is not None]
    if mem:
        lines += [
            "",
            "| target | RSS idle | RSS loaded | dashboards (loaded) |",
            "|---|---|---|---|",
        ]
        lines += [
            f"| {SHORT[t]} | {mb(r['rss_idle'])} | {mb(r.get('rss_loaded'))} | "
            f"{r.get('rss_loaded_dashboards', '–')} |"
            for t, r in mem
        ]
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
    by = sustained_by_backend(data)
    if not by:
        return ["_(sustained throughput not measured in this run)_"]
    lines: list[str] = []
    for backend, sus in by.items():
        name = "PostgreSQL + Redis" if backend == "pg" else "SQLite"
        lines += [f"### {name}", "", *sustained_one(data, name, sus), ""]
    return lines


def sustained_one(data: dict[str, Any], name: str, sus: dict[str, Any]) -> list[str]:
    cfg = data["config"]
    lines = [
        f"One TrustDesk process on {name}, "
        f"{sus.get('open', '?')} conversations, "
        f"{cfg.get('dashboards')} operator dashboard socket(s), the offered rate stepped up "
        f"({cfg.get('step')} s per step) until delivery fell 10% behind or p99 passed 1 s:",
        "",
        "| offered msg/s | stored msg/s | delivered msg/s | reply p50 / p99 ms | "
        "visitor ack p50 / p99 ms | server CPU | server CPU per msg | PG+Redis CPU | "
        "client CPU | other CPU | lost | errors |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in sus["steps"]:
        lines.append(
            f"| {s['offered_nominal']:,} ({s['offered_per_s']:,.0f}) | {s['stored_per_s']:,.0f} | "
            f"{s['delivered_per_s']:,.0f} | {ms(s['reply_p50_ms'])} / {ms(s['reply_p99_ms'])} | "
            f"{ms(s['ack_p50_ms'])} / {ms(s['ack_p99_ms'])} | {s['server_cpu_pct']:.0f}% | "
            f"{ms(s.get('server_cpu_ms_per_msg'))} ms | "
            f"{s.get('services_cpu_pct', 0):.0f}% | "
            f"{s['client_cpu_pct']:.0f}% | {s.get('other_cpu_pct', 0):.0f}% | {s['lost']:,} | "
            f"{sum(s['errors'].values()) or ''} |"
        )
    cost = sus.get("cost")
    if cost:
        lines += [
            "",
            "#### The cost of one message",
            "",
            f"Before the steps: {next(iter(cost.values()))['n']} messages of each kind sent one "
            "at a time (each waits for the previous to be delivered), on the same server. CPU "
            "is the server process's (plus PostgreSQL and Redis when used); "
            + (
                ""
                if cfg.get("count_sql", True)
                else "(statements not counted in this run, `--no-count-sql` / `--quick`) "
            )
            + "statements are counted by a SQLAlchemy event listener injected for the bench "
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
        lines += ["", f"#### Profile of the server at saturation ({prof.get('kind')})", ""]
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
        lines.append(
            f"- Load average (1, 5, 15 min) when the run started: {data['load_before']}"
            + (f"; when it ended: {data['load_after']}" if data.get("load_after") else "")
        )
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
            vals += [
                w.get("other_cpu_pct", 0)
                for w in row["runs"] + row.get("ref_runs", []) + row.get("durable_runs", [])
            ]
    for sus in sustained_by_backend(data).values():
        vals += [s.get("other_cpu_pct", 0) for s in sus["steps"]]
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
    quick = bool(cfg.get("quick"))
    mode = (
        "**Mode: quick** (`--quick`: only the level the targets are stated at, one paired "
        f"window of {cfg.get('window')} s per side, {cfg.get('idle'):,} idle sockets, "
        "3 s sustained steps, no SQL counting; the same code path as the full run, fewer "
        "and shorter windows: the figures are noisier than a full run's)."
        if quick
        else "**Mode: full** (`make bench`)."
    )
    lines = [
        "# Benchmarks",
        "",
        "Figures from one run of `python -m bench.run"
        + (f" {argv}" if argv else "")
        + "` on the machine described under [Environment](#environment). "
        + mode
        + f" Medians of {cfg.get('runs')} run(s) where it says so. Regenerate with "
        "`make bench` (about 35 minutes) or `make bench-quick` (under 5 minutes); the raw "
        "results are in `bench/results/latest.json`.",
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
        "## CPU per message and memory under load",
        "",
        *cpu_memory_section(data),
        "",
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
        "for any Python WebSocket chat server on this machine; shown for scale, no target "
        "divides by it any more (issue 24 retired the 3× target: it stores nothing).",
        "- **Durable relay** (`bench/relay.py --store`): the same relay, but before "
        "forwarding each frame it inserts one row (sender, recipient, frame) and commits, on "
        "the same kind of database as the TrustDesk target beside it. SQLite: a file in the "
        "same work directory, stdlib `sqlite3` on the event loop in autocommit mode, "
        "TrustDesk's pragmas (WAL, foreign keys, synchronous=NORMAL). PostgreSQL: asyncpg "
        "(pool of 4-16 connections), a database of its own on the same PostgreSQL server as "
        "the TrustDesk target (fsync off, as for TrustDesk). The least a server that keeps "
        "what it delivers must do: the reference of the 1.5× targets.",
        *(
            [
                "- **Relays beside each TrustDesk target**: a bare relay and a durable relay "
                "run alongside each TrustDesk server with the same number of conversations "
                "open on all three, and each level alternates a bare relay window, a durable "
                "relay window and a TrustDesk window "
                f"({cfg.get('runs')} of each, the full warm-up once per level for each, then "
                f"{cfg.get('paired_rewarm')} s of load before every later window), so that "
                'each "÷ relay" ratio divides by a floor measured seconds before on the same '
                "machine (the floor drifts by 2× within an hour here, more than the "
                "difference being judged), and the ratio shown is the median of the runs' "
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
        "- **Quick mode** (`--quick`, `make bench-quick`): the same code path with less "
        "of it, so that every target gets its figure in a few minutes: only the level the "
        "targets are stated at (100 conversations), one paired window of 3 s per side "
        "after 1 s of warm-up, 300 idle sockets (the 5,000-widget row then says it was not "
        "measured), 30 conversations and 3 s steps from 100 to 2,000 msg/s in the sustained "
        "part, 10 messages per cost probe, no SQL-counting server and no profile unless "
        "`--profiler` is given. Its figures are single windows: use it to see a change, "
        "quote the full run.",
        "- **PostgreSQL**: one cluster for the whole run (fsync off, as in the tests); each "
        "PostgreSQL target, its durable relay and the sustained server get a database of "
        "their own on it; Redis is started per server.",
        "- **CPU per message and memory under load**: see that section; measured in the "
        f"latency part at {cfg.get('extras_level', 100)} conversations on the one-process "
        "targets (SQLite, PG + Redis), one extra window with "
        f"{cfg.get('many_dashboards', 5)} dashboards. The sustained part runs on SQLite "
        "and on PostgreSQL + Redis, each with a server of its own.",
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
        "make bench-quick                             # = make bench ARGS=--quick (< 5 min)",
        "uv run --group bench python -m bench.run     # the same, through uv",
        "uv run --group bench --with py-spy python -m bench.run   # profile with py-spy",
        "uv run --group bench python -m bench.run --quick         # every target, < 5 min",
        "uv run --group bench python -m bench.run --parts latency --targets relay,sqlite "
        "--levels 1,100",
        "uv run --group bench python -m bench.run --parts idle --idle 5000",
        "uv run --group bench python -m bench.run --parts sustained "
        "--sustained-backends pg --sustained-rates 500,1000,1500,2000",
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
