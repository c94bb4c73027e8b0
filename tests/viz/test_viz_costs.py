"""The pictures of what training costs, measured in the kernel that draws them: memory and time
against the batch size with and without accumulation, checkpoint sizes on disk, the cost of
clipping. Each returns a Figure whose data shows its lesson, draws nothing under nbgrader, and
says "not written yet" for the student's unwritten code. Screenshots of the three go to
build/screenshots/ (11-memory-and-time.png, 12-checkpoint-sizes.png, 13-clipping-cost.png)."""

from __future__ import annotations

import types
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.figure import Figure

import tinytorch.core.training as reference
from course.assignment.solutions import strip_solutions
from tinytorch import viz
from tinytorch.core.optimizers import SGD, Adam
from tinytorch.core.training import Trainer, training_memory
from tinytorch.datasets import load_digits, split

SCREENSHOTS = Path(__file__).resolve().parents[2] / "build" / "screenshots"


@pytest.fixture(autouse=True)
def no_figure_left_open():
    yield
    assert plt.get_fignums() == []


@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, np.ndarray]:
    images, labels = load_digits()
    x_train, y_train, _, _ = split(images, labels, test_fraction=0.25, seed=0)
    return x_train, y_train


def _screenshot(fig: Figure, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / name
    fig.savefig(path, dpi=100)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000


def _lines(fig: Figure, axis: int) -> dict[str, np.ndarray]:
    return {ln.get_label(): np.asarray(ln.get_ydata(), dtype=float)
            for ln in fig.axes[axis].get_lines()}


def test_accumulation_keeps_memory_flat_and_one_big_batch_does_not(digits) -> None:
    fig = viz.plot_memory_and_time(Trainer, training_memory, *digits)
    memory = _lines(fig, 0)
    seconds = {c.get_label(): np.asarray(c.lines[0].get_ydata(), dtype=float)
               for c in fig.axes[1].containers}  # medians, with the middle half as error bars
    big = memory["one batch of that size: measured peak"]
    small = memory["accumulated batches of 32: measured peak"]
    predicted_big = memory["training_memory(...)['total'] of that batch"]
    assert big[-1] > 3 * big[0]  # batch 512 holds several times what batch 32 holds
    assert small.max() < 1.3 * small.min()  # accumulation: the memory of a batch of 32
    assert (big >= predicted_big).all()  # the prediction is what the step keeps, the peak more
    model = viz.digits_mlp()
    expected = training_memory(model, Adam(model.parameters(), lr=0.001), 512)["total"] / 1024
    assert predicted_big[-1] == pytest.approx(expected)
    # times are this machine's, as busy as it is (no order between them is asserted: a loaded
    # machine can make one large pass slower than sixteen small ones)
    for label in ("accumulated batches of 32", "one batch of that size"):
        assert len(seconds[label]) == 5 and (seconds[label] > 0).all()
        assert np.isfinite(seconds[label]).all()
    _screenshot(fig, "11-memory-and-time.png")


def test_checkpoint_size_is_parameters_plus_optimizer_state(digits) -> None:
    fig = viz.plot_checkpoint_sizes(Trainer, training_memory, *digits)
    ax = fig.axes[0]
    heights = [p.get_height() * 1024 for p in ax.patches]
    params, state, disk = heights[0:3], heights[3:6], heights[6:9]
    model = viz.digits_mlp()
    one = training_memory(model, SGD(model.parameters(), lr=0.1), 32)["parameters"]
    assert params == pytest.approx([one] * 3)
    assert state == pytest.approx([0, one, 2 * one])
    for p, s, d in zip(params, state, disk, strict=True):
        assert p + s < d < p + s + 16 * 1024  # what is left is the format's: a few KiB
    _screenshot(fig, "12-checkpoint-sizes.png")


def test_clipping_cost_is_measured_for_each_width(digits) -> None:
    fig = viz.plot_clipping_cost(Trainer, *digits, widths=(64, 256))
    bars = [p.get_height() for p in fig.axes[0].patches]
    assert len(bars) == 4 and all(b > 0 and np.isfinite(b) for b in bars)
    # times are this machine's, as busy as it is: no order between them is asserted (the
    # benchmarks compare times); what is asserted is that each width was measured and labelled
    labels = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert labels == ["hidden 64\n(4,810 parameters)", "hidden 256\n(19,210 parameters)"]
    assert len(fig.axes[0].texts) == 2  # the cost of clipping, as a percentage, per width
    _screenshot(viz.plot_clipping_cost(Trainer, *digits), "13-clipping-cost.png")


def test_under_nbgrader_nothing_is_measured_or_drawn(digits, monkeypatch) -> None:
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    trained = []

    class Recording(Trainer):
        def train_epoch(self, *args, **kwargs):
            trained.append(args)
            return super().train_epoch(*args, **kwargs)

    assert viz.plot_memory_and_time(Recording, training_memory, *digits) is None
    assert viz.plot_checkpoint_sizes(Recording, training_memory, *digits) is None
    assert viz.plot_clipping_cost(Recording, *digits) is None
    assert trained == [] and plt.get_fignums() == []  # nothing was trained, nothing drawn


def _released() -> types.ModuleType:
    module = types.ModuleType("released_training")
    source = strip_solutions(Path(reference.__file__).read_text())
    exec(compile(source, reference.__file__, "exec"), module.__dict__)
    return module


def _words(fig: Figure) -> str:
    return " ".join(t.get_text() for ax in fig.axes for t in ax.texts)


def test_unwritten_code_is_named_in_the_picture(digits) -> None:
    released = _released()
    fig = viz.plot_memory_and_time(Trainer, released.training_memory, *digits)
    assert f"{viz.NOT_WRITTEN}: training_memory" in _words(fig)
    fig = viz.plot_checkpoint_sizes(released.Trainer, training_memory, *digits)
    assert f"{viz.NOT_WRITTEN}: Trainer.train_epoch" in _words(fig)
    fig = viz.plot_clipping_cost(released.Trainer, *digits)
    assert f"{viz.NOT_WRITTEN}: Trainer.train_epoch" in _words(fig)
