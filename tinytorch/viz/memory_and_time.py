"""Memory against time: one big batch per step against the same update from accumulated small
batches, measured, beside what the student's ``training_memory`` predicts."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from tinytorch.viz.figures import _new_figure, _unless_headless
from tinytorch.viz.measure import _adam, digits_mlp, measure_epoch

if TYPE_CHECKING:
    from matplotlib.figure import Figure


@_unless_headless
def plot_memory_and_time(
    trainer_cls: type,
    training_memory: Callable[..., dict],
    x: np.ndarray,
    y: np.ndarray,
    *,
    micro_batch: int = 32,
    effective: tuple[int, ...] = (32, 64, 128, 256, 512),
    make_model: Callable[[], Any] = digits_mlp,
    make_optimizer: Callable[[Any], Any] = _adam,
) -> Figure:
    """Peak memory and time of one epoch against the effective batch size, measured here, two
    ways: one batch of that size per step, and ``effective / micro_batch`` accumulated batches
    of ``micro_batch`` (the same update). Dashed: ``training_memory``'s total for the batch
    that is in memory at once. Accumulation keeps memory at the small batch's and pays in time.
    """
    big = [measure_epoch(trainer_cls, x, y, batch_size=b, make_model=make_model,
                         make_optimizer=make_optimizer) for b in effective]
    small = [measure_epoch(trainer_cls, x, y, batch_size=micro_batch,
                           accumulation_steps=b // micro_batch, make_model=make_model,
                           make_optimizer=make_optimizer) for b in effective]

    def predicted(batch: int) -> float:
        model = make_model()
        return float(training_memory(model, make_optimizer(model.parameters()), batch)["total"])

    fig = _new_figure(figsize=(11, 3.8))
    ax_mem, ax_time = fig.subplots(1, 2)
    xs = np.arange(len(effective))
    kib = 1.0 / 1024
    ax_mem.plot(xs, [r["peak"] * kib for r in big], "o-", color="firebrick",
                label="one batch of that size: measured peak")
    ax_mem.plot(xs, [predicted(b) * kib for b in effective], "--", color="firebrick",
                alpha=0.6, label="training_memory(...)['total'] of that batch")
    ax_mem.plot(xs, [r["peak"] * kib for r in small], "o-", color="C0",
                label=f"accumulated batches of {micro_batch}: measured peak")
    ax_mem.plot(xs, [predicted(micro_batch) * kib] * len(xs), "--", color="C0", alpha=0.6,
                label=f"training_memory(...)['total'] of {micro_batch}")
    ax_time.plot(xs, [r["seconds"] * 1000 for r in big], "o-", color="firebrick",
                 label="one batch of that size")
    ax_time.plot(xs, [r["seconds"] * 1000 for r in small], "o-", color="C0",
                 label=f"accumulated batches of {micro_batch}")
    ticks = [f"{b}\n(k = {b // micro_batch})" for b in effective]
    for ax in (ax_mem, ax_time):
        ax.set_xticks(xs, ticks)
        ax.set_xlabel(f"effective batch size (k = accumulation steps of {micro_batch})")
        ax.set_ylim(bottom=0)
    ax_mem.set(title="peak memory of one epoch (tracemalloc)", ylabel="KiB")
    ax_time.set(title="time of one epoch on this machine (fastest of 3)", ylabel="ms")
    ax_mem.legend(fontsize=7, loc="upper left")
    ax_time.legend(fontsize=8)
    return fig
