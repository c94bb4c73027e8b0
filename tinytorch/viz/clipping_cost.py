"""What gradient clipping costs: the time per optimizer step with and without it, for models
of growing width (the cost follows the parameters, not the batch).

Clipping adds one pass over the gradients to a step, a few percent at most on this model, and
a few percent is what a busy machine moves a time by. So each bar is a median with the middle
half of its runs, and a cost is named only where the two spreads do not overlap.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from tinytorch.viz.figures import _new_figure, _unless_headless
from tinytorch.viz.measure import EpochSettings, _adam, digits_mlp, measure_epochs
from tinytorch.viz.timing import (
    REPEATS,
    THREADS,
    WARMUP,
    Timing,
    difference,
    error_bars,
)

if TYPE_CHECKING:
    from matplotlib.figure import Figure

WIDTHS = (64, 256, 1024)


def parameters(width: int) -> int:
    """Parameters of ``digits_mlp(width)``: 64 x width + width, then width x 10 + 10."""
    return 64 * width + width + 10 * width + 10


@dataclass(frozen=True)
class ClippingCosts:
    """Seconds per optimizer step for each hidden width, without and with clipping."""

    widths: tuple[int, ...]
    batch_size: int
    max_norm: float
    without: tuple[Timing, ...]
    with_clip: tuple[Timing, ...]


def _width(width: int) -> Callable[[], Any]:
    def build() -> Any:
        return digits_mlp(width)

    return build


def measure_clipping_cost(
    trainer_cls: type,
    x: np.ndarray,
    y: np.ndarray,
    *,
    widths: tuple[int, ...] = WIDTHS,
    batch_size: int = 32,
    max_norm: float = 1.0,
    repeats: int = REPEATS,
    warmup: int = WARMUP,
    threads: int | None = THREADS,
) -> ClippingCosts:
    """Epochs with and without ``grad_clip_norm`` for each width, timed in one interleaved
    series, divided by their optimizer steps (the same number with and without clipping)."""
    settings = {}
    for width in widths:
        build = _width(width)
        for clip in (None, max_norm):
            settings[width, clip] = EpochSettings(batch_size, 1, clip, build, _adam)
    measured = measure_epochs(trainer_cls, x, y, settings, repeats=repeats, warmup=warmup,
                              threads=threads)

    def per_step(width: int, clip: float | None) -> Timing:
        epoch = measured[width, clip]
        return epoch.time.scaled(1.0 / max(epoch.steps, 1))

    return ClippingCosts(tuple(widths), batch_size, max_norm,
                         tuple(per_step(w, None) for w in widths),
                         tuple(per_step(w, max_norm) for w in widths))


def clipping_lines(costs: ClippingCosts) -> list[str]:
    """The picture in words: each width's two medians with the middle half of their runs, and
    the cost of clipping, named as a cost only where the spreads do not overlap."""
    lines = [f"Time per optimizer step, batch {costs.batch_size} ({costs.without[0].how()}; "
             "in brackets, the middle half of the runs):"]
    for width, a, b in zip(costs.widths, costs.without, costs.with_clip, strict=True):
        lines.append(f"  hidden {width:>4} ({parameters(width):>6,} parameters): "
                     f"{a.brief()} without clipping, {b.brief()} with it: "
                     f"clipping costs {difference(a, b)}")
    return lines


def draw_clipping_cost(costs: ClippingCosts) -> Figure:
    """Bars at the medians, error bars over the middle half of the runs, and above each pair
    the change of the median with whether it is outside the spread."""
    fig = _new_figure(figsize=(8, 4.2))
    ax = fig.add_subplot()
    xs = np.arange(len(costs.widths))
    us = 1e6
    for times, at, color, label in ((costs.without, xs - 0.2, "C0", "grad_clip_norm=None"),
                                    (costs.with_clip, xs + 0.2, "C1",
                                     f"grad_clip_norm={costs.max_norm:g}")):
        medians, yerr = error_bars(times, us)
        ax.bar(at, medians, 0.4, yerr=yerr, capsize=4, color=color, label=label,
               error_kw={"elinewidth": 1.2})
    for i, (a, b) in enumerate(zip(costs.without, costs.with_clip, strict=True)):
        change = difference(a, b)
        ax.annotate(change.short(), (i + 0.2, max(a.q3, b.q3) * us), xytext=(0, 4),
                    textcoords="offset points", ha="center", va="bottom", fontsize=8,
                    color="dimgray" if change.within_noise else "black")
    top = max(t.q3 for t in costs.without + costs.with_clip) * us
    ax.set_ylim(0, top * 1.3)
    ax.set_xticks(xs, [f"hidden {w}\n({parameters(w):,} parameters)" for w in costs.widths])
    ax.set_title(f"time per optimizer step, batch {costs.batch_size}\n"
                 f"{costs.without[0].how()}; error bars: middle half of the runs", fontsize=9)
    ax.set_ylabel("microseconds")
    ax.legend(fontsize=8, loc="upper left")
    return fig


@_unless_headless
def plot_clipping_cost(
    trainer_cls: type,
    x: np.ndarray,
    y: np.ndarray,
    *,
    widths: tuple[int, ...] = WIDTHS,
    batch_size: int = 32,
    max_norm: float = 1.0,
) -> Figure:
    """Time per optimizer step with and without ``grad_clip_norm``, for digits models of
    several hidden widths, measured here: clipping reads every gradient once more and scales
    it, a cost that grows with the parameters, not the batch. The same numbers are printed
    under the cell's code, each with its spread."""
    costs = measure_clipping_cost(trainer_cls, x, y, widths=widths, batch_size=batch_size,
                                  max_norm=max_norm)
    print("\n".join(clipping_lines(costs)))
    return draw_clipping_cost(costs)
