"""The hidden-seed sweep (``python -m benchmarks.hidden_seeds``) reports what it should: nothing
for correct code at seeds it passes, the seed and the check when a check fails correct code,
and a mutant's escape from a check meant for it. It never asserts on a time."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest


@pytest.fixture(scope="module")
def sweep(benchmark_module: Callable[[str], ModuleType]) -> ModuleType:
    return benchmark_module("hidden_seeds")


def test_correct_code_at_two_drawn_seeds_fails_nothing(sweep: ModuleType) -> None:
    seeds = sweep._draw(2)
    assert all(1 <= s < 2**31 for s in seeds)
    assert sweep._correct("reference", seeds) == {"name": "reference", "seeds": 2, "failures": []}


def test_a_check_failing_correct_code_is_reported_with_its_seed(
        sweep: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    import checks

    def unlucky(implementations: dict[str, Any], *, seed: int) -> dict[str, str | None]:
        return {"1.1": "the schedule is wrong" if seed == 13 else None, "1.2": None}

    monkeypatch.setattr(checks, "run_all", unlucky)
    result = sweep._correct("reference", [12, 13, 14])
    assert result["failures"] == [{"seed": 13, "failed": {"1.1": "the schedule is wrong"}}]
    text = "\n".join(sweep.summary({"correct": [result], "mutants": [], "seconds": 0, "jobs": 1}))
    assert "reference: failed at 1 of 3 seeds" in text and "seed 13: ['1.1']" in text


def test_a_mutant_escaping_its_check_is_reported(
        sweep: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    import checks

    mutant = sweep._mutants()[0]
    meant = sorted(mutant.named_by)[0]
    monkeypatch.setattr(checks, "run_all", lambda implementations, *, seed: {
        check: None if check == meant else "failed" for check in mutant.caught_by})
    result = sweep._mutant(mutant.name, [5])
    assert result["failures"] == [{"seed": 5, "escaped": [meant], "extra": []}]


def test_the_exit_status_and_report_say_whether_anything_failed(
        sweep: ModuleType, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clean = {"seconds": 1.0, "jobs": 1, "correct": [{"name": "reference", "seeds": 1,
                                                      "failures": []}], "mutants": []}
    monkeypatch.setattr(sweep, "run", lambda *args: clean)
    assert sweep.main(["--output", str(tmp_path / "a.json")]) == 0
    assert json.loads((tmp_path / "a.json").read_text()) == clean
    failing = {**clean, "mutants": [{"name": "m", "seeds": 1,
                                     "failures": [{"seed": 3, "escaped": ["2.1"], "extra": []}]}]}
    monkeypatch.setattr(sweep, "run", lambda *args: failing)
    assert sweep.main(["--output", str(tmp_path / "b.json")]) == 1
    with pytest.raises(SystemExit):
        sweep.main(["--seeds", "0"])
