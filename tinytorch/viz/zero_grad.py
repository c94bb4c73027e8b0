"""The classic bug of a training loop that forgets ``zero_grad()``: gradients add into
``.grad``, so on the same batch the gradient norm grows step after step."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from tinytorch.core.layers import Linear
from tinytorch.core.losses import MSELoss
from tinytorch.core.optimizers import SGD
from tinytorch.core.tensor import Tensor
from tinytorch.viz.figures import _global_norm, _integer_ticks, _new_figure, _unless_headless

if TYPE_CHECKING:
    from matplotlib.figure import Figure


@_unless_headless
def plot_missing_zero_grad(*, steps: int = 10, lr: float = 0.001, seed: int = 0) -> Figure:
    """Gradient norm per step on the same batch, with and without clearing the gradients.

    Gradients ADD into ``.grad``; without ``zero_grad()`` step k uses the sum of k gradients, so
    the norm grows like k times the first one and the steps grow with it.
    """
    rng = np.random.default_rng(seed)
    x = Tensor(rng.normal(size=(16, 3)))
    y = Tensor(rng.normal(size=(16, 1)))

    def norms(clear: bool) -> list[float]:
        model = Linear(3, 1, seed=seed)
        optimizer, loss_fn = SGD(model.parameters(), lr=lr), MSELoss()
        result = []
        for _ in range(steps):
            if clear:
                optimizer.zero_grad()
            loss_fn(model(x), y).backward()
            result.append(_global_norm(model.parameters()))
            optimizer.step()
        return result

    cleared, kept = norms(clear=True), norms(clear=False)
    k = np.arange(1, steps + 1)
    fig = _new_figure(figsize=(6, 3.5))
    ax = fig.add_subplot()
    ax.plot(k, kept, "o-", color="firebrick", label="zero_grad() forgotten")
    ax.plot(k, k * kept[0], ":", color="grey", label="k × first norm")
    ax.plot(k, cleared, "o-", color="C0", label="zero_grad() every step")
    ax.set(title="Same batch every step: forgotten gradients pile up",
           xlabel="step k", ylabel="gradient norm")
    _integer_ticks(ax)
    ax.legend()
    return fig
