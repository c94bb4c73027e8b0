"""Gradient accumulation: batches accumulated into one step follow the path of one big batch,
and the common bug (each batch's mean loss divided by the number of batches) strays from it."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from tinytorch.core.layers import Linear
from tinytorch.core.losses import MSELoss
from tinytorch.core.optimizers import SGD
from tinytorch.core.training import Trainer
from tinytorch.data import DataLoader, TensorDataset
from tinytorch.viz.figures import _flat_params, _integer_ticks, _new_figure, _unless_headless

if TYPE_CHECKING:
    from matplotlib.figure import Figure


@_unless_headless
def plot_accumulation(
    trainer_cls: type = Trainer, *, steps: int = 12, lr: float = 0.15, seed: int = 0
) -> Figure:
    """Parameter paths of a linear model trained three ways on 10 samples, and how far each
    strays from the first:

    * one batch of 10 per step;
    * ``trainer_cls`` accumulating 3 batches of 4, 4 and 2 per step: must coincide with the
      first, since the step's gradient is the mean over the same 10 samples;
    * the common bug, each batch's mean loss divided by 3: the batch of 2 weighs as much as a
      batch of 4, so the path visibly drifts away.
    """
    x = np.linspace(-1.0, 1.0, 10, dtype=np.float32).reshape(-1, 1)
    y = (2.0 * x + 1.0 + 0.5 * x**2).astype(np.float32)
    data = TensorDataset(x, y)

    def run(batch_size: int, accumulation: int, buggy: bool = False) -> np.ndarray:
        model = Linear(1, 1, seed=seed)
        optimizer, loss_fn = SGD(model.parameters(), lr=lr), MSELoss()
        loader = DataLoader(data, batch_size=batch_size)
        path = [_flat_params(model.parameters())]
        trainer = None if buggy else trainer_cls(model, optimizer, loss_fn)
        for _ in range(steps):
            if trainer is None:
                optimizer.zero_grad()
                batches = list(loader)
                for inputs, targets in batches:
                    (loss_fn(model(inputs), targets) * (1.0 / len(batches))).backward()
                optimizer.step()
            else:
                trainer.train_epoch(loader, accumulation_steps=accumulation)
            path.append(_flat_params(model.parameters()))
        return np.array(path)

    big, accumulated, wrong = run(10, 1), run(4, 3), run(4, 3, buggy=True)

    fig = _new_figure(figsize=(10, 3.6))
    ax_path, ax_gap = fig.subplots(1, 2)
    styles = {
        "one batch of 10": (big, dict(color="lightgrey", linewidth=6)),
        f"{trainer_cls.__name__}: 4 + 4 + 2 accumulated": (accumulated, dict(color="C0")),
        "bug: each batch's mean / 3": (wrong, dict(color="firebrick", linestyle="--")),
    }
    for label, (path, style) in styles.items():
        ax_path.plot(path[:, 0], path[:, 1], marker="o", markersize=3, label=label, **style)
        gap = np.linalg.norm(path - big, axis=1)
        ax_gap.plot(range(steps + 1), gap, marker="o", markersize=3, label=label, **style)
    ax_path.set(title="parameters after each step", xlabel="weight", ylabel="bias")
    ax_gap.set(title="distance from the one-batch parameters", xlabel="optimizer step")
    _integer_ticks(ax_gap)
    ax_path.legend(fontsize=8)
    return fig
