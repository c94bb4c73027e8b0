"""Dropout in train and eval mode: a new random mask at every call while training, the
identity while evaluating (why ``evaluate`` must switch the model to eval mode)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from tinytorch.core.layers import Dropout
from tinytorch.core.tensor import Tensor
from tinytorch.viz.figures import _new_figure, _unless_headless

if TYPE_CHECKING:
    from matplotlib.figure import Figure


@_unless_headless
def plot_dropout_modes(
    *, p: float = 0.5, calls: int = 6, units: int = 12, seed: int = 0
) -> Figure:
    """A Dropout layer called repeatedly on the same input of ones, in train and eval mode.

    Training: a new random mask every call, survivors scaled by 1/(1-p) (the mean stays 1).
    Evaluation: the identity, the same output every call: a model left in train mode while
    evaluating gives noisy, too-pessimistic numbers.
    """
    layer = Dropout(p, seed=seed)
    ones = Tensor(np.ones((1, units)))
    layer.train()
    training = np.vstack([layer(ones).data for _ in range(calls)])
    layer.eval()
    evaluating = np.vstack([layer(ones).data for _ in range(calls)])

    fig = _new_figure(figsize=(10, 3.2))
    axes = fig.subplots(1, 2)
    scale = 1.0 / (1.0 - p)
    for ax, values, title in (
        (axes[0], training, f"train mode: new mask each call (0 or {scale:g})"),
        (axes[1], evaluating, "eval mode: identical every call"),
    ):
        image = ax.imshow(values, vmin=0.0, vmax=scale, cmap="viridis")
        ax.set(title=title, xlabel="unit", ylabel="call")
    fig.colorbar(image, ax=axes, shrink=0.8, label="output")
    return fig
