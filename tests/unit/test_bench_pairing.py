"""bench: the bare relay measured beside each TrustDesk target, window by window."""

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


def test_paired_figures_skip_windows_without_a_p50() -> None:
    out = run.paired_figures([window(None), window(1.0)], [window(0.5), window(None)])
    assert out["ratio_runs"] == [None, None]
    assert out["ratio_p50"] is None


def test_paired_windows_alternate_relay_then_target_and_warm_up_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[tuple[str, float, int]] = []

    async def fake_measure(target: Any, convs: Any, rate: float, **kw: Any) -> list[Any]:
        calls.append((target.name, kw["warmup"], kw["runs"]))
        return [window(float(len(calls)))]

    monkeypatch.setattr(load, "measure", fake_measure)
    target, relay = load.Target(), load.Target()
    target.name, relay.name = "trustdesk", "relay"
    ref = run.Reference(relay, {}, convs=[load.Conv(0)])
    args = argparse.Namespace(runs=3, warmup=3.0, paired_rewarm=1.0, window=4.0)
    windows, ref_windows = asyncio.run(
        run.paired_windows(target, [load.Conv(0)], {}, ref, 1.0, args)
    )
    assert calls == [
        ("relay", 3.0, 1),
        ("trustdesk", 3.0, 1),
        ("relay", 1.0, 1),
        ("trustdesk", 1.0, 1),
        ("relay", 1.0, 1),
        ("trustdesk", 1.0, 1),
    ]
    assert [w["reply_p50_ms"] for w in ref_windows] == [1.0, 3.0, 5.0]
    assert [w["reply_p50_ms"] for w in windows] == [2.0, 4.0, 6.0]


def _data(paired: bool) -> dict[str, Any]:
    sqlite = {"level": 100, "reply_p50_ms": 1.1, "reply_p99_ms": 5.0, "runs": []}
    if paired:
        sqlite.update(ref_p50_ms=0.39, ref_p99_ms=2.0, ratio_p50=2.8, ref_runs=[])
    return {
        "config": {"levels": [100]},
        "latency": {
            "relay": [{"level": 100, "reply_p50_ms": 0.26, "reply_p99_ms": 1.0, "runs": []}],
            "sqlite": [sqlite],
        },
    }


def test_the_ratio_uses_the_paired_relay_when_there_is_one() -> None:
    assert report.vs_relay(_data(True), "sqlite", 100) == (2.8, 1.1, 0.39, True)
    lines = "\n".join(report.targets_table(_data(True)))
    assert "2.8× (1.10 vs 0.39 ms, relay paired window by window) | **met**" in lines


def test_older_results_fall_back_to_the_standalone_relay() -> None:
    r, p50, ref, paired = report.vs_relay(_data(False), "sqlite", 100)
    assert (p50, ref, paired) == (1.1, 0.26, False)
    assert r == pytest.approx(1.1 / 0.26)
    lines = "\n".join(report.targets_table(_data(False)))
    assert "4.2× (1.10 vs 0.26 ms, relay measured separately) | **not met**" in lines


def test_a_saturated_level_gets_no_ratio() -> None:
    """A level where the server fell behind: the few late deliveries' p50 is no latency."""
    data = _data(True)
    row = data["latency"]["sqlite"][0]
    row.update(saturated=True, delivered_per_s=495.0, offered_per_s=994.0)
    assert report.vs_relay(data, "sqlite", 100)[0] is None
    assert "2.8×" not in "\n".join(report.targets_table(data))
