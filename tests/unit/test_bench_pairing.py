"""bench: the bare relay and the durable relay measured beside each TrustDesk target,
window by window, and the Targets table built from them (issue 24)."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

import pytest

from bench import load, report, run


def window(p50: float | None, p99: float | None = None) -> dict[str, Any]:
    return {"reply_p50_ms": p50, "reply_p99_ms": p99, "errors": {}}


def test_paired_figures_are_medians_and_the_median_of_per_window_ratios() -> None:
    target = [window(1.2, 6.0), window(3.0, 9.0), window(1.0, 5.0)]
    relay = [window(0.4, 2.0), window(0.5, 3.0), window(0.5, 4.0)]
    out = run.paired_figures(target, relay)
    assert out["ref_p50_ms"] == 0.5
    assert out["ref_p99_ms"] == 3.0
    assert out["ratio_runs"] == pytest.approx([3.0, 6.0, 2.0])
    assert out["ratio_p50"] == pytest.approx(3.0)
    assert out["ref_runs"] is relay


def test_the_durable_relay_figures_have_names_of_their_own() -> None:
    out = run.paired_figures([window(2.0)], [window(0.5)], "durable")
    assert out["durable_p50_ms"] == 0.5
    assert out["durable_ratio_p50"] == pytest.approx(4.0)
    assert "ratio_p50" not in out and "ref_p50_ms" not in out


def test_paired_figures_skip_windows_without_a_p50() -> None:
    out = run.paired_figures([window(None), window(1.0)], [window(0.5), window(None)])
    assert out["ratio_runs"] == [None, None]
    assert out["ratio_p50"] is None


def test_paired_windows_alternate_bare_durable_target_and_warm_up_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[tuple[str, float, int]] = []

    async def fake_measure(target: Any, convs: Any, rate: float, **kw: Any) -> list[Any]:
        calls.append((target.name, kw["warmup"], kw["runs"]))
        return [window(float(len(calls)))]

    monkeypatch.setattr(load, "measure", fake_measure)
    target, bare, durable = load.Target(), load.Target(), load.Target()
    target.name, bare.name, durable.name = "trustdesk", "bare", "durable"
    refs = [
        run.Reference("ref", bare, {}, convs=[load.Conv(0)]),
        run.Reference("durable", durable, {}, convs=[load.Conv(0)]),
    ]
    args = argparse.Namespace(runs=2, warmup=3.0, paired_rewarm=1.0, window=4.0)
    windows, ref_windows = asyncio.run(
        run.paired_windows(target, [load.Conv(0)], {}, refs, 1.0, args)
    )
    assert calls == [
        ("bare", 3.0, 1),
        ("durable", 3.0, 1),
        ("trustdesk", 3.0, 1),
        ("bare", 1.0, 1),
        ("durable", 1.0, 1),
        ("trustdesk", 1.0, 1),
    ]
    assert [w["reply_p50_ms"] for w in ref_windows["ref"]] == [1.0, 4.0]
    assert [w["reply_p50_ms"] for w in ref_windows["durable"]] == [2.0, 5.0]
    assert [w["reply_p50_ms"] for w in windows] == [3.0, 6.0]


def _data(durable_ratio: float = 1.4) -> dict[str, Any]:
    sqlite = {
        "level": 100,
        "reply_p50_ms": 1.1,
        "reply_p99_ms": 5.0,
        "runs": [],
        "ref_p50_ms": 0.3,
        "ratio_p50": 3.7,
        "ref_runs": [],
        "durable_p50_ms": 0.79,
        "durable_ratio_p50": durable_ratio,
        "durable_runs": [],
        "server_cpu_ms_per_msg": 0.65,
        "dashboards_before": 1,
        "many_dashboards": 5,
        "many_window": {"server_cpu_ms_per_msg": 0.9},
        "rss_idle": 79e6,
        "rss_loaded": 125e6,
        "rss_loaded_dashboards": 3,
    }
    return {"config": {"levels": [100], "extras_level": 100}, "latency": {"sqlite": [sqlite]}}


def test_the_target_divides_by_the_durable_relay_and_the_3x_row_is_gone() -> None:
    lines = "\n".join(report.targets_table(_data()))
    assert (
        "| p50 ≤ 1.5× the durable relay at 100 conversations (SQLite) | 1.40× (1.10 vs "
        "0.79 ms, paired window by window) | **met** |" in lines
    )
    assert "3×" not in lines
    assert "**not met**" in "\n".join(report.targets_table(_data(1.6)))


def test_cpu_per_message_and_memory_rows_against_their_limits() -> None:
    lines = report.targets_table(_data())
    cpu = [row for row in lines if "server CPU ≤ 0.7 ms" in row]
    assert cpu == [
        "| server CPU ≤ 0.7 ms per message, 1 dashboard(s), 100 conversations (SQLite) | "
        "0.65 ms | **met** |",
        "| server CPU ≤ 0.7 ms per message, 5 dashboard(s), 100 conversations (SQLite) | "
        "0.90 ms | **not met** |",
    ]
    assert "| idle RSS of the server ≤ 80 MB (SQLite) | 79 MB | **met** |" in lines
    assert (
        "| RSS ≤ 120 MB with 100 open conversations and 3 dashboards (SQLite) | 125 MB | "
        "**not met** |" in lines
    )


def test_a_saturated_level_gets_no_ratio() -> None:
    """A level where the server fell behind: the few late deliveries' p50 is no latency."""
    data = _data()
    data["latency"]["sqlite"][0].update(saturated=True, delivered_per_s=495.0, offered_per_s=994.0)
    assert report.vs_durable(data, "sqlite", 100)[0] is None
    assert "1.40×" not in "\n".join(report.targets_table(data))


def test_sustained_results_of_both_shapes() -> None:
    step = {"offered_nominal": 1000, "delivered_per_s": 990.0, "reply_p99_ms": 20.0}
    old = {"config": {}, "sustained": {"steps": [step]}}
    assert list(report.sustained_by_backend(old)) == ["sqlite"]
    new = {"config": {}, "sustained": {"sqlite": {"steps": [step]}, "pg": {"steps": [step]}}}
    lines = "\n".join(report.targets_table(new))
    assert "≥ 1,000 messages/s stored and delivered, one process, SQLite | 990" in lines
    assert "≥ 1,500 messages/s stored and delivered, one process, PostgreSQL + Redis" in lines
