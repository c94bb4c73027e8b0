"""The pictures of the classic bugs: each returns a Figure whose data shows its lesson."""

from __future__ import annotations

import io
import math

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.figure import Figure

from tinytorch.core.optimizers import grad_array
from tinytorch.core.training import Trainer, clip_grad_norm
from tinytorch.viz import (
    accumulation,
    plot_accumulation,
    plot_clipping,
    plot_dropout_modes,
    plot_missing_zero_grad,
)


@pytest.fixture(autouse=True)
def no_figure_left_open():
    yield
    assert plt.get_fignums() == []


def test_forgotten_zero_grad_makes_the_norm_grow_linearly(line) -> None:
    fig = plot_missing_zero_grad(steps=10)
    assert isinstance(fig, Figure)
    kept = np.array(line(fig, "zero_grad() forgotten").get_ydata())
    cleared = np.array(line(fig, "zero_grad() every step").get_ydata())
    k = np.arange(1, 11)
    np.testing.assert_allclose(kept, k * kept[0], rtol=0.05)  # step k: about k x step 1
    assert kept[0] == cleared[0]
    np.testing.assert_allclose(cleared, cleared[0], rtol=0.05)  # cleared: about constant


@pytest.mark.parametrize("implementation", [clip_grad_norm, Trainer])
def test_clipped_norms_never_exceed_max_norm(line, implementation) -> None:
    fig = plot_clipping(implementation, max_norm=2.0, steps=6)
    before = np.array(line(fig, "before clipping").get_ydata())
    after = np.array(line(fig, "after clipping").get_ydata())
    assert len(before) == len(after) == 6
    assert (before > 100 * 2.0).all()  # exploding: far above the threshold
    # the Trainer's "after" is measured from the float32 update, hence the tolerance
    np.testing.assert_allclose(after, 2.0, rtol=1e-3)


def test_a_clip_function_that_does_nothing_shows_it(line) -> None:
    fig = plot_clipping(lambda params, max_norm: 0.0, steps=3)
    before = line(fig, "before clipping").get_ydata()
    np.testing.assert_array_equal(line(fig, "after clipping").get_ydata(), before)


def _paths(fig):
    ax = fig.axes[0]  # parameters after each step: x = weight, y = bias
    return {ln.get_label(): np.column_stack(ln.get_data()) for ln in ax.get_lines()}


def test_accumulation_coincides_with_one_batch_per_window_and_the_bug_does_not() -> None:
    fig = plot_accumulation(Trainer)
    paths = _paths(fig)
    big = paths[accumulation.ONE_BATCH]
    accumulated = paths[accumulation.accumulated_label(Trainer)]
    wrong = paths[accumulation.CONTRAST]
    assert len(big) == len(accumulated) == len(wrong) == 9  # the start and 8 epochs
    np.testing.assert_allclose(accumulated, big, atol=1e-6)
    assert np.max(np.abs(wrong - big)) > 0.05
    gaps = accumulation.distances(fig)
    assert gaps[accumulation.accumulated_label(Trainer)].max() < 1e-5
    assert gaps[accumulation.CONTRAST].max() > 0.05


def test_a_trainer_that_averages_batches_equally_is_visibly_off() -> None:
    class EqualWeights(Trainer):
        """Steps on the mean of batch means, one step per epoch: the bug, inside a Trainer."""

        def train_epoch(self, dataloader, accumulation_steps=1):
            self.optimizer.zero_grad()
            batches = list(dataloader)
            for inputs, targets in batches:
                loss = self.loss_fn(self.model.forward(inputs), targets)
                (loss * (1 / len(batches))).backward()
            self.optimizer.step()
            self.optimizer.zero_grad()

    gaps = accumulation.distances(plot_accumulation(EqualWeights))
    assert gaps[accumulation.accumulated_label(EqualWeights)].max() > 0.05


def test_dropout_varies_in_train_mode_and_is_constant_in_eval_mode() -> None:
    fig = plot_dropout_modes(p=0.5, calls=6, units=12)
    training = np.asarray(fig.axes[0].images[0].get_array())
    evaluating = np.asarray(fig.axes[1].images[0].get_array())
    assert training.shape == evaluating.shape == (6, 12)
    assert set(np.unique(training)) == {0.0, 2.0}  # dropped, or kept and scaled by 1/(1-p)
    assert len({row.tobytes() for row in training}) == 6  # a new mask every call
    np.testing.assert_array_equal(evaluating, np.ones((6, 12)))  # identity, every call


@pytest.mark.parametrize(
    "draw",
    [plot_missing_zero_grad, plot_clipping, plot_accumulation, plot_dropout_modes],
    ids=lambda f: f.__name__,
)
def test_every_picture_renders_to_png_without_a_warning(draw) -> None:
    """Warnings are errors here (pyproject); in a notebook one would land on stderr."""
    png = io.BytesIO()
    draw().savefig(png, format="png", bbox_inches="tight")  # as the inline backend does
    assert png.getvalue().startswith(b"\x89PNG")


def test_teaching_pictures_are_not_drawn_under_nbgrader(monkeypatch: pytest.MonkeyPatch) -> None:
    """Grading time is not spent on pictures: each returns None while nbgrader runs."""
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    for picture in (plot_missing_zero_grad, plot_clipping, plot_accumulation,
                    plot_dropout_modes):
        assert picture() is None, picture.__name__


def test_a_picture_of_unwritten_code_says_so_instead_of_failing() -> None:
    """Before the student writes clip_grad_norm, its picture names the error in words."""

    def unwritten(parameters: object, max_norm: float = 1.0) -> float:
        raise NotImplementedError("write clip_grad_norm")

    fig = plot_clipping(unwritten)
    words = " ".join(t.get_text() for ax in fig.axes for t in ax.texts)
    # the checks' words, naming the student's function
    assert words.startswith("not written yet: unwritten (plot_clipping draws it"), words
    # what the notebook shows: IPython's inline backend turns the figure into a PNG (a figure
    # without axes gives none, and the cell shows "<Figure size 800x100 with 0 Axes>")
    from IPython.core.pylabtools import print_figure

    png = print_figure(fig, "png")
    assert png and png[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_picture_names_the_warnings_of_the_code_it_draws_instead_of_printing_them() -> None:
    """A clip_grad_norm squaring float32 gradients of 1e20 overflows: the picture says so under
    its axes, and nothing reaches the cell's stderr (pytest turns an escaped warning into an
    error here)."""

    def overflowing(parameters: object, max_norm: float = 1.0) -> float:
        params = list(parameters)
        squares = sum(float(np.square(grad_array(p).astype(np.float32) * 1e20).sum())
                      for p in params)
        return math.sqrt(squares)

    fig = plot_clipping(overflowing, steps=2)
    words = " ".join(t.get_text() for t in fig.texts)
    assert "RuntimeWarning" in words and "overflow" in words, words
