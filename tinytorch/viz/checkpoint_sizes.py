"""What a checkpoint weighs on disk with SGD, SGD with momentum and Adam, beside the
parameters and optimizer state that the student's ``training_memory`` predicts."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from tinytorch.core.losses import CrossEntropyLoss
from tinytorch.core.optimizers import SGD
from tinytorch.data import DataLoader, TensorDataset
from tinytorch.viz.figures import _new_figure, _unless_headless
from tinytorch.viz.measure import _adam, digits_mlp

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def _kib(n: float) -> str:
    return f"{n / 1024:,.0f} KiB" if n >= 10 * 1024 else f"{n / 1024:,.1f} KiB"


@_unless_headless
def plot_checkpoint_sizes(
    trainer_cls: type,
    training_memory: Callable[..., dict],
    x: np.ndarray,
    y: np.ndarray,
    *,
    batch_size: int = 32,
    make_model: Callable[[], Any] = digits_mlp,
) -> Figure:
    """The size on disk of a checkpoint saved after one epoch with SGD, SGD with momentum and
    Adam, beside ``training_memory``'s parameters + optimizer_state: what is left is the
    format's own (array names and headers, the JSON record with the history)."""
    kinds: list[tuple[str, Callable[[Any], Any]]] = [
        ("SGD", lambda ps: SGD(ps, lr=0.1)),
        ("SGD, momentum 0.9", lambda ps: SGD(ps, lr=0.1, momentum=0.9)),
        ("Adam", _adam),
    ]
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for name, make in kinds:
            model = make_model()
            optimizer = make(model.parameters())
            memory = training_memory(model, optimizer, batch_size)
            trainer = trainer_cls(model, optimizer, CrossEntropyLoss())
            trainer.train_epoch(DataLoader(TensorDataset(x, y), batch_size=batch_size))
            path = os.path.join(folder, f"{len(rows)}.ckpt")
            trainer.save_checkpoint(path)
            rows.append((name, float(memory["parameters"]), float(memory["optimizer_state"]),
                         float(os.path.getsize(path))))
    fig = _new_figure(figsize=(8, 3.8))
    ax = fig.add_subplot()
    xs = np.arange(len(rows))
    params = np.array([r[1] for r in rows]) / 1024
    state = np.array([r[2] for r in rows]) / 1024
    disk = np.array([r[3] for r in rows]) / 1024
    ax.bar(xs - 0.2, params, 0.4, color="C0", label="predicted: parameters")
    ax.bar(xs - 0.2, state, 0.4, bottom=params, color="C1", label="predicted: optimizer_state")
    ax.bar(xs + 0.2, disk, 0.4, color="grey", label="checkpoint file on disk")
    for i, (_, p, s, d) in enumerate(rows):
        ax.annotate(f"{_kib(d)}\n(+{_kib(d - p - s)} format)", (i + 0.2, d / 1024),
                    ha="center", va="bottom", fontsize=8)
    ax.set_xticks(xs, [r[0] for r in rows])
    ax.set_ylim(top=max(disk.max(), (params + state).max()) * 1.25)
    ax.set(title="checkpoint size: parameters + optimizer state, measured on disk",
           ylabel="KiB")
    ax.legend(fontsize=8, loc="upper left")
    return fig
