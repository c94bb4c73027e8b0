"""Smoke tests of the training-step benchmark (``python -m benchmarks.train_step``).

They check that the benchmark runs, that its implementations agree (and that the agreement check
would notice if one did not), and that its report has every row. They never assert on a time or
a ratio: timings depend on the machine and its load, and a test that fails on a busy runner
teaches everyone to ignore failures. The speed targets are reported by ``make bench`` instead.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
BATCH_ROWS = ("32", "128")
# Whether PyTorch should be measured, found without importing it: importing torch costs seconds,
# so the in-process tests compare tinytorch and the Trainer with numpy, and the subprocess run
# (which imports torch anyway) checks all four.
HAS_TORCH = importlib.util.find_spec("torch") is not None


@pytest.fixture(scope="module")
def train_step(benchmark_module: Callable[[str], ModuleType]) -> ModuleType:
    return benchmark_module("train_step")


@pytest.mark.parametrize("batch_size", [32, 128])
def test_implementations_agree(train_step: ModuleType, batch_size: int) -> None:
    agreement = train_step.check_agreement(batch_size, None)
    assert agreement.passed, "\n".join(agreement.failures)
    assert set(agreement.losses) == {"tinytorch", "trainer", "numpy"}
    for name, losses in agreement.losses.items():
        assert len(losses) == train_step.AGREEMENT_STEPS, name


def test_agreement_check_catches_a_wrong_step(
    train_step: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without zero_grad, gradients pile up from step 2 on: the check must fail and say where
    (an agreement check that cannot fail would make every timing look comparable)."""

    def step_without_zero_grad(self: Any, batch: Any) -> Any:
        x, y = batch
        loss = self.loss_fn(self.model(x), y)
        loss.backward()
        self.optimizer.step()
        return loss

    monkeypatch.setattr(train_step.TinytorchLoop, "step", step_without_zero_grad)
    agreement = train_step.check_agreement(32, None)
    assert not agreement.passed
    assert agreement.failures and all("tinytorch" in f for f in agreement.failures)


@pytest.mark.slow
def test_quick_run_reports_every_row(tmp_path: Path) -> None:
    """The real command, in a fresh process (so the thread-pinning environment variables act
    before numpy loads), writing to a temporary folder instead of benchmarks/results. Its
    agreement check covers PyTorch too."""
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.train_step", "--quick", "--output-dir", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "threadpool_info()" in result.stdout
    report = json.loads((tmp_path / "latest.json").read_text())
    markdown = (tmp_path / "latest.md").read_text()
    assert markdown in result.stdout

    expected = {"tinytorch", "trainer", "numpy"} | ({"torch"} if HAS_TORCH else set())
    assert report["agreement"]["passed"]
    for batch in BATCH_ROWS:
        assert set(report["agreement"]["by_batch"][batch]["losses"]) == expected
    assert all(pool["num_threads"] == 1 for pool in report["threads"]["threadpools"])
    assert set(report["timing"]) == set(BATCH_ROWS)
    for batch in BATCH_ROWS:
        assert set(report["timing"][batch]) == expected
        assert f"| {batch} |" in markdown
        assert {"tinytorch/numpy", "trainer/numpy"} <= set(report["ratios"][batch])
        for name in ("tinytorch", "numpy"):
            memory = report["memory"][batch][name]
            assert memory["peak_bytes"] > 0
            assert {"traced_at_early_step_bytes", "traced_at_last_step_bytes"} <= set(memory)
    targets = {(t["target"], t["batch_size"]) for t in report["targets"]}
    for batch in (32, 128):
        assert ("tinytorch <= 1.2x numpy", batch) in targets
        if HAS_TORCH:
            assert ("tinytorch <= 1.2x PyTorch CPU", batch) in targets
    assert {t["result"] for t in report["targets"]} <= {"PASS", "MISS", "n/a"}
    for text in ("PASS", "tinytorch / numpy", "Trainer / numpy", "peak (MiB)"):
        assert text in markdown


def test_quick_run_without_torch(
    train_step: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """With PyTorch unavailable the benchmark says so and still reports the other three."""
    status = train_step.main(
        ["--quick", "--no-torch", "--batch-sizes", "32", "--output-dir", str(tmp_path)]
    )
    out = capsys.readouterr().out
    assert status == 0
    assert "PyTorch not measured" in out
    report = json.loads((tmp_path / "latest.json").read_text())
    assert report["environment"]["torch"] is None
    assert set(report["timing"]["32"]) == {"tinytorch", "trainer", "numpy"}
    assert "tinytorch/torch" not in report["ratios"]["32"]
