"""The report of ``python -m benchmarks.section5`` on made-up runs: how far medians move, whether
the runs' spreads share a point, and whether each comparison got the same verdict every run.
Nothing is timed here (the benchmark itself is ``make bench-section5``)."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest


@pytest.fixture(scope="module")
def section5(benchmark_module: Callable[[str], ModuleType]) -> ModuleType:
    return benchmark_module("section5")


def _run(a: list[float], b: list[float]) -> dict[str, Any]:
    figure = {"unit": "ms", "warmup": 2, "threads": 1}
    return {"figures": {"a": {**figure, "samples": a}, "b": {**figure, "samples": b}},
            "comparisons": {"b against a": ["a", "b"]}, "seconds": 1.0, "load_before": 0.5}


def test_medians_that_move_and_spreads_that_share_a_point(section5: ModuleType) -> None:
    runs = [_run([1.0, 2.0, 3.0], [1.5, 2.5, 3.5]),   # a: 1.5-2.5, b: 2.0-3.0: noise
            _run([2.0, 3.0, 4.0], [8.0, 9.0, 10.0])]  # a: 2.5-3.5, b: 8.5-9.5: spread
    summary = section5.summarize(runs)
    a, b = summary["figures"]["a"], summary["figures"]["b"]
    assert a["medians"] == [2.0, 3.0] and a["max_over_min"] == 1.5
    assert a["ranges_share_a_point"]  # 1.5-2.5 and 2.5-3.5 touch at 2.5
    assert not b["ranges_share_a_point"]  # 2.0-3.0 and 8.5-9.5
    compared = summary["comparisons"]["b against a"]
    assert compared["verdicts"] == ["noise", "spread"] and not compared["stable"]
    assert compared["changes"] == pytest.approx([0.25, 2.0])
    table = section5.render_markdown({
        "settings": {"runs": 2, "threads": 1, "repeats": 3, "warmup": 2},
        "environment": {"cpu": "a CPU", "python": "3.11"},
        "load_before": [0.5, 0.5], "seconds": [1.0, 1.0], "summary": summary})
    assert "| b against a | +25% noise | +200% spread | **changes** |" in table
