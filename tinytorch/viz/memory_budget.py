"""The memory of one step: what ``training_memory`` predicts, component by component, against
the peak an epoch measured, with what the prediction leaves out drawn as bars of their own.

The prediction counts what a step keeps: parameters, gradients, the optimizer's state and the
activations backward needs. The measured peak holds more, and the gap is no error of the
prediction: the batch's own copy of the data and targets (known exactly), and the loss's arrays
and backward's temporary arrays (the rest of the gap). Drawn as its own bars, the gap is
something to read, not a discrepancy to explain away.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

import numpy as np

from tinytorch.viz.figures import _new_figure, _unless_headless
from tinytorch.viz.measure import EpochSettings, _adam, _traced, digits_mlp

if TYPE_CHECKING:
    from matplotlib.figure import Figure

#: ``training_memory``'s components, in the order they are stacked.
PREDICTED = ("parameters", "gradients", "optimizer_state", "activations")
BATCH = "the batch (data and targets)"
REST = "loss and backward's temporaries"


def budget(parts: Mapping[str, float], peak: float, batch_bytes: float) -> dict[str, float]:
    """The measured peak split into the prediction's total, the batch, and the rest (which is
    negative when the prediction exceeds what was measured)."""
    total = float(sum(parts[name] for name in PREDICTED))
    return {"predicted total": total, BATCH: float(batch_bytes),
            REST: float(peak) - total - float(batch_bytes)}


@_unless_headless
def plot_memory_budget(trainer_cls: type, training_memory: Callable[..., Mapping[str, float]],
                       x: np.ndarray, y: np.ndarray, *, batch_size: int = 32) -> Figure:
    """One epoch of ``trainer_cls`` with Adam on the digits MLP, batches of ``batch_size``: its
    peak traced bytes against ``training_memory``'s prediction for the same step (see
    ``draw_memory_budget``). Code not written yet is named in the picture's place."""
    model = digits_mlp()
    parts = training_memory(model, _adam(model.parameters()), batch_size=batch_size)
    peak, _ = _traced(trainer_cls, x, y, EpochSettings(batch_size))
    return draw_memory_budget(parts, peak, x[:batch_size].nbytes + y[:batch_size].nbytes,
                              batch_size)


def draw_memory_budget(parts: Mapping[str, float], peak: float, batch_bytes: float,
                       batch_size: int = 32) -> Figure:
    """Two stacked bars in KiB: ``parts`` (``training_memory``'s dict) by component, and the
    measured ``peak`` as the prediction's total, the batch (``batch_bytes``) and the rest."""
    kib = 1 / 1024
    fig = _new_figure(figsize=(9, 2.8))
    ax = fig.add_subplot()
    left = 0.0
    for i, name in enumerate(PREDICTED):
        value = float(parts[name]) * kib
        ax.barh(1, value, left=left, color=f"C{i}", label=f"{name.replace('_', ' ')}: "
                f"{value:,.1f} KiB")
        left += value
    split = budget(parts, peak, batch_bytes)
    left = 0.0
    for name, color in (("predicted total", "lightgrey"), (BATCH, "C6"), (REST, "C7")):
        value = split[name] * kib
        ax.barh(0, value, left=left, color=color, hatch="//" if name != "predicted total" else None,
                label=f"{name}: {value:,.1f} KiB")
        left += max(value, 0.0)
    ax.set_yticks([0, 1], ["measured peak", "your prediction"])
    ax.set_xlabel("KiB")
    predicted = split["predicted total"] * kib
    ax.set_title(f"one step of batch {batch_size}: predicted {predicted:,.1f} KiB, measured "
                 f"peak {float(peak) * kib:,.1f} KiB", fontsize=10)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    return fig
