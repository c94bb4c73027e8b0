"""What gradient clipping costs: the time per optimizer step with and without it, for models
of growing width (the cost follows the parameters, not the batch)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from tinytorch.viz.figures import _new_figure, _unless_headless
from tinytorch.viz.measure import digits_mlp, measure_epoch

if TYPE_CHECKING:
    from matplotlib.figure import Figure


@_unless_headless
def plot_clipping_cost(
    trainer_cls: type,
    x: np.ndarray,
    y: np.ndarray,
    *,
    widths: tuple[int, ...] = (64, 256, 1024),
    batch_size: int = 32,
    max_norm: float = 1.0,
) -> Figure:
    """Time per optimizer step with and without ``grad_clip_norm``, for digits models of
    several hidden widths, measured here (the fastest of 3 epochs each): clipping reads every
    gradient once more and scales it, a cost that grows with the parameters, not the batch."""
    without, with_clip = [], []
    for width in widths:
        def build(width: int = width) -> Any:
            return digits_mlp(width)

        for clip, out in ((None, without), (max_norm, with_clip)):
            run = measure_epoch(trainer_cls, x, y, batch_size=batch_size, grad_clip_norm=clip,
                                make_model=build)
            out.append(run["seconds"] / max(run["steps"], 1.0) * 1e6)
    fig = _new_figure(figsize=(8, 3.8))
    ax = fig.add_subplot()
    xs = np.arange(len(widths))
    ax.bar(xs - 0.2, without, 0.4, color="C0", label="grad_clip_norm=None")
    ax.bar(xs + 0.2, with_clip, 0.4, color="C1", label=f"grad_clip_norm={max_norm:g}")
    for i, (a, b) in enumerate(zip(without, with_clip, strict=True)):
        ax.annotate(f"{(b - a) / a:+.0%}", (i + 0.2, b), ha="center", va="bottom", fontsize=9)
    ax.set_xticks(xs, [f"hidden {w}\n({64 * w + w + 10 * w + 10:,} parameters)" for w in widths])
    ax.set(title=f"time per optimizer step, batch {batch_size} (fastest of 3 epochs)",
           ylabel="microseconds")
    ax.legend(fontsize=8)
    return fig
