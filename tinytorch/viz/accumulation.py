"""Gradient accumulation: accumulated windows follow the path of one batch per window, epoch
after epoch, and a loop that gets a window wrong leaves that path.

Each epoch holds two windows, and the second is partial: 22 samples in batches of 4 make the
batches 4, 4, 4, 4, 4, 2, and ``accumulation_steps=4`` makes the windows 4 + 4 + 4 + 4 = 16
samples, then 4 + 2 = 6 (two batches where four were asked). So every classic bug shows as a
distance from the one-batch path:

* gradients not cleared between optimizer steps: the second window adds the first's gradient;
* each window divided by its number of batches instead of samples: the partial window's
  batch of 2 weighs as much as a batch of 4;
* a partial last window that is dropped: the 6 samples never take a step;
* gradients summed instead of averaged: every step is several times too long.

With one window per epoch, a missing clear would hide behind the clearing at the epoch's start.
"""

from __future__ import annotations

from collections.abc import Callable
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

#: 22 samples in batches of 4, accumulated 4 at a time: windows of 16 and 6 samples per epoch.
SAMPLES, BATCH, STEPS = 22, 4, 4
#: One batch per window: the same samples, each window's mean loss in one backward pass.
WINDOWS = (BATCH * STEPS, SAMPLES - BATCH * STEPS)
#: The label of the path every other path is measured against.
ONE_BATCH = f"one batch per window ({WINDOWS[0]}, then {WINDOWS[1]})"
CONTRAST = "for contrast, a bug: each batch's mean / k"


def accumulated_label(trainer_cls: type) -> str:
    """The label of the Trainer's own path."""
    return f"{trainer_cls.__name__}: 4 batches of 4, then 4 + 2, accumulated (k = {STEPS})"


def _data() -> TensorDataset:
    x = np.linspace(-1.0, 1.0, SAMPLES, dtype=np.float32).reshape(-1, 1)
    return TensorDataset(x, (2.0 * x + 1.0 + 0.5 * x**2).astype(np.float32))


def _path(epochs: int, seed: int, lr: float, run_epoch: Callable[..., None]) -> np.ndarray:
    """The parameters of a fresh linear model at the start and after each epoch of
    ``run_epoch(model, optimizer, loss_fn)``."""
    model = Linear(1, 1, seed=seed)
    optimizer, loss_fn = SGD(model.parameters(), lr=lr), MSELoss()
    state = {"model": model, "optimizer": optimizer, "loss_fn": loss_fn}
    path = [_flat_params(model.parameters())]
    for _ in range(epochs):
        run_epoch(**state)
        path.append(_flat_params(model.parameters()))
    return np.array(path)


@_unless_headless
def plot_accumulation(
    trainer_cls: type = Trainer, *, epochs: int = 8, lr: float = 0.3, seed: int = 0
) -> Figure:
    """Parameter paths of a linear model trained three ways on the same 22 samples, and how
    far each strays from the first after every epoch (two optimizer steps):

    * one batch per window: 16 samples, then 6, each one step on its mean loss;
    * ``trainer_cls`` with batches of 4 and ``accumulation_steps=4``: the same two windows,
      so the path must coincide;
    * for contrast, the bug that divides each batch's mean loss by k: it leaves the path at the
      partial window.
    """
    data = _data()

    def one_batch(model, optimizer, loss_fn) -> None:  # noqa: ANN001 - the three parts
        for inputs, targets in DataLoader(data, batch_size=WINDOWS[0]):
            optimizer.zero_grad()
            loss_fn(model(inputs), targets).backward()
            optimizer.step()

    trainers: dict[int, object] = {}

    def accumulated(model, optimizer, loss_fn) -> None:  # noqa: ANN001
        trainer = trainers.setdefault(id(model), trainer_cls(model, optimizer, loss_fn))
        trainer.train_epoch(DataLoader(data, batch_size=BATCH), accumulation_steps=STEPS)

    def divided_by_k(model, optimizer, loss_fn) -> None:  # noqa: ANN001
        batches = list(DataLoader(data, batch_size=BATCH))
        for start in range(0, len(batches), STEPS):
            optimizer.zero_grad()
            for inputs, targets in batches[start:start + STEPS]:
                (loss_fn(model(inputs), targets) * (1.0 / STEPS)).backward()
            optimizer.step()

    big = _path(epochs, seed, lr, one_batch)
    styles = {
        ONE_BATCH: (big, dict(color="lightgrey", linewidth=6)),
        accumulated_label(trainer_cls): (_path(epochs, seed, lr, accumulated),
                                         dict(color="C0")),
        CONTRAST: (_path(epochs, seed, lr, divided_by_k),
                   dict(color="firebrick", linestyle="--")),
    }
    fig = _new_figure(figsize=(10, 3.8))
    ax_path, ax_gap = fig.subplots(1, 2)
    for label, (path, style) in styles.items():
        ax_path.plot(path[:, 0], path[:, 1], marker="o", markersize=3, label=label, **style)
        gap = np.linalg.norm(path - big, axis=1)
        ax_gap.plot(range(epochs + 1), gap, marker="o", markersize=3,
                    label=f"largest: {gap.max():.3g}", **style)
    ax_path.set(title="parameters after each epoch", xlabel="weight", ylabel="bias")
    ax_gap.set(title="distance from the one-batch parameters",
               xlabel=f"epoch (two optimizer steps each: {WINDOWS[0]} then {WINDOWS[1]} samples)")
    # symmetric log: a distance of 0 stays 0, and a small gap (a missing clear adds a sixth of
    # the first window's mean gradient) shows beside a large one
    ax_gap.set_yscale("symlog", linthresh=1e-3)
    _integer_ticks(ax_gap)
    ax_path.legend(fontsize=7)
    ax_gap.legend(fontsize=7)
    return fig


def distances(fig: Figure) -> dict[str, np.ndarray]:
    """Each path's distance from the one-batch path, epoch by epoch, read back from the
    picture (its label in the left panel -> the right panel's line)."""
    ax_path, ax_gap = fig.axes[:2]
    return {path.get_label(): np.asarray(gap.get_ydata())
            for path, gap in zip(ax_path.get_lines(), ax_gap.get_lines(), strict=True)}
