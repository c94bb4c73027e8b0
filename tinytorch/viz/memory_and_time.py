"""Memory against time: one big batch per step against the same update from accumulated small
batches, measured, beside what the student's ``training_memory`` predicts.

At k = 1 the two ways are one computation (one batch of ``micro_batch``, accumulated once): it
is measured once and both lines pass through it, so the picture cannot show them apart there.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from tinytorch.viz.figures import _new_figure, _unless_headless
from tinytorch.viz.measure import Epoch, EpochSettings, _adam, digits_mlp, measure_epochs
from tinytorch.viz.timing import (
    REPEATS,
    THREADS,
    WARMUP,
    difference,
    error_bars,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

EFFECTIVE = (32, 64, 128, 256, 512)


@dataclass(frozen=True)
class BatchCosts:
    """One epoch per effective batch size, two ways: ``one_batch[i]`` takes one batch of
    ``effective[i]`` per step, ``accumulated[i]`` accumulates ``effective[i] // micro_batch``
    batches of ``micro_batch``. Where the two are the same settings (k = 1) they are the same
    ``Epoch`` object: one measurement."""

    micro_batch: int
    effective: tuple[int, ...]
    one_batch: tuple[Epoch, ...]
    accumulated: tuple[Epoch, ...]

    def k(self, i: int) -> int:
        return self.effective[i] // self.micro_batch

    def same_run(self, i: int) -> bool:
        return self.one_batch[i] is self.accumulated[i]


def measure_memory_and_time(
    trainer_cls: type,
    x: np.ndarray,
    y: np.ndarray,
    *,
    micro_batch: int = 32,
    effective: tuple[int, ...] = EFFECTIVE,
    make_model: Callable[[], Any] = digits_mlp,
    make_optimizer: Callable[[Any], Any] = _adam,
    repeats: int = REPEATS,
    warmup: int = WARMUP,
    threads: int | None = THREADS,
) -> BatchCosts:
    """Every epoch of the picture, timed in one interleaved series (the two ways at each batch
    size meet the same moments of the machine), each distinct setting once."""
    settings: dict[tuple[str, int], EpochSettings] = {}
    for b in effective:
        settings["one", b] = EpochSettings(b, 1, None, make_model, make_optimizer)
        settings["accumulated", b] = EpochSettings(micro_batch, b // micro_batch, None,
                                                   make_model, make_optimizer)
    measured = measure_epochs(trainer_cls, x, y, settings, repeats=repeats, warmup=warmup,
                              threads=threads)
    return BatchCosts(micro_batch, tuple(effective),
                      tuple(measured["one", b] for b in effective),
                      tuple(measured["accumulated", b] for b in effective))


def time_lines(costs: BatchCosts) -> list[str]:
    """The times of the picture in words: each median with the middle half of its runs, and
    accumulation against one batch, named only where their spreads do not overlap."""
    first = costs.one_batch[0].time
    lines = [f"Time of one epoch ({first.how()}; in brackets, the middle half of the runs):"]
    for i, b in enumerate(costs.effective):
        one, acc = costs.one_batch[i].time, costs.accumulated[i].time
        head = f"  batch {b:>3}, k = {costs.k(i):>2}: "
        if costs.same_run(i):
            lines.append(f"{head}{one.brief()}, one run for both ways (k = 1 accumulates "
                         f"a single batch of {costs.micro_batch}: the same computation)")
        else:
            lines.append(f"{head}one batch {one.brief()}; accumulated {acc.brief()}: "
                         f"accumulation {difference(one, acc)}")
    return lines


def draw_memory_and_time(costs: BatchCosts, predicted: Mapping[int, float]) -> Figure:
    """The picture of ``costs``; ``predicted[b]``: training_memory's total for a batch of b."""
    fig = _new_figure(figsize=(11, 4.2))
    ax_mem, ax_time = fig.subplots(1, 2)
    xs = np.arange(len(costs.effective))
    kib, micro = 1.0 / 1024, costs.micro_batch
    ax_mem.plot(xs, [e.peak * kib for e in costs.one_batch], "o-", color="firebrick",
                label="one batch of that size: measured peak")
    ax_mem.plot(xs, [predicted[b] * kib for b in costs.effective], "--", color="firebrick",
                alpha=0.6, label="training_memory(...)['total'] of that batch")
    ax_mem.plot(xs, [e.peak * kib for e in costs.accumulated], "o-", color="C0",
                label=f"accumulated batches of {micro}: measured peak")
    ax_mem.plot(xs, [predicted[micro] * kib] * len(xs), "--", color="C0", alpha=0.6,
                label=f"training_memory(...)['total'] of {micro}")
    _draw_times(ax_time, costs, xs)
    ticks = [f"{b}\n(k = {costs.k(i)})" for i, b in enumerate(costs.effective)]
    for ax in (ax_mem, ax_time):
        ax.set_xticks(xs, ticks)
        ax.set_xlabel(f"effective batch size (k = accumulation steps of {micro})")
        ax.set_ylim(bottom=0)
    ax_mem.set_title("peak memory of one epoch (tracemalloc)", fontsize=10)
    ax_mem.set_ylabel("KiB")
    ax_mem.legend(fontsize=7, loc="upper left")
    return fig


def _draw_times(ax: Axes, costs: BatchCosts, xs: np.ndarray) -> None:
    """Medians with the middle half of the runs as error bars; the accumulated line sits a
    little to the right where it is a run of its own, so the two bars never hide each other."""
    ms = 1000.0
    shift = np.array([0.0 if costs.same_run(i) else 0.08 for i in range(len(xs))])
    one = [e.time for e in costs.one_batch]
    acc = [e.time for e in costs.accumulated]
    for times, at, color, label in (
            (one, xs, "firebrick", "one batch of that size"),
            (acc, xs + shift, "C0", f"accumulated batches of {costs.micro_batch}")):
        medians, yerr = error_bars(times, ms)
        ax.errorbar(at, medians, yerr=yerr, fmt="o-", color=color, capsize=3, label=label)
    top = max(t.q3 for t in one + acc) * ms
    for i in range(len(xs)):
        if costs.same_run(i):
            ax.annotate("k = 1: one run,\nboth lines", (xs[i], one[i].q3 * ms),
                        xytext=(4, 4), textcoords="offset points", ha="left", va="bottom",
                        fontsize=7, color="dimgray")
            continue
        change = difference(one[i], acc[i])
        ax.annotate(change.short(), (xs[i] + shift[i], acc[i].q3 * ms), xytext=(0, 6),
                    textcoords="offset points", ha="center", va="bottom", fontsize=7,
                    color="dimgray" if change.within_noise else "black")
    ax.set_ylim(top=top * 1.35)
    ax.set_xlim(xs[0] - 0.4, xs[-1] + 0.55)  # room for the last label, right of its point
    ax.set_title(f"time of one epoch on this machine\n{one[0].how()};\n"
                 "error bars: middle half of the runs", fontsize=9)
    ax.set_ylabel("ms")
    ax.legend(fontsize=8, loc="lower left", title="labels: accumulated against one batch",
              title_fontsize=7)


@_unless_headless
def plot_memory_and_time(
    trainer_cls: type,
    training_memory: Callable[..., dict],
    x: np.ndarray,
    y: np.ndarray,
    *,
    micro_batch: int = 32,
    effective: tuple[int, ...] = EFFECTIVE,
    make_model: Callable[[], Any] = digits_mlp,
    make_optimizer: Callable[[Any], Any] = _adam,
) -> Figure:
    """Peak memory and time of one epoch against the effective batch size, measured here, two
    ways: one batch of that size per step, and ``effective / micro_batch`` accumulated batches
    of ``micro_batch`` (the same update). Dashed: ``training_memory``'s total for the batch
    that is in memory at once. The times, with their spreads and the comparison of the two
    ways, are also printed under the cell's code."""

    def predict(batch: int) -> float:
        model = make_model()
        return float(training_memory(model, make_optimizer(model.parameters()), batch)["total"])

    # The prediction first: an unwritten training_memory is named before a second of measuring.
    predicted = {b: predict(b) for b in dict.fromkeys((*effective, micro_batch))}
    costs = measure_memory_and_time(trainer_cls, x, y, micro_batch=micro_batch,
                                    effective=effective, make_model=make_model,
                                    make_optimizer=make_optimizer)
    print("\n".join(time_lines(costs)))
    return draw_memory_and_time(costs, predicted)
