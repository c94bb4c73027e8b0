"""What one epoch of training costs on this machine: its peak memory and its time, measured
on the lesson's digits model; the three cost pictures are made of these measurements.

Memory is traced once per setting (``tracemalloc`` counts bytes, it does not wobble). Time is
what the machine moves: every setting is timed the way ``timing.py`` says (BLAS pinned to one
thread, warm-ups, repeats interleaved with the settings it is compared with), and a setting is
measured once however many pictures' lines it belongs to.
"""

from __future__ import annotations

import functools
import tracemalloc
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

from tinytorch.core.activations import ReLU
from tinytorch.core.layers import Dropout, Linear, Sequential
from tinytorch.core.losses import CrossEntropyLoss
from tinytorch.core.optimizers import Adam
from tinytorch.data import DataLoader, TensorDataset
from tinytorch.viz.timing import REPEATS, THREADS, WARMUP, Timing, time_runs

Key = TypeVar("Key", bound=Hashable)


def digits_mlp(hidden: int = 64) -> Any:
    """The lesson's digits model, 64 -> hidden -> 10 with ReLU and Dropout(0.1), seeded."""
    return Sequential(Linear(64, hidden, seed=1), ReLU(), Dropout(0.1, seed=2),
                      Linear(hidden, 10, seed=3))


def _adam(params: Any) -> Any:
    return Adam(params, lr=0.001)


@dataclass(frozen=True)
class EpochSettings:
    """One way to train an epoch. Two equal settings are the same computation: measured once."""

    batch_size: int
    accumulation_steps: int = 1
    grad_clip_norm: float | None = None
    make_model: Callable[[], Any] = digits_mlp
    make_optimizer: Callable[[Any], Any] = _adam


@dataclass(frozen=True)
class Epoch:
    """One epoch's costs, measured here. ``peak``: the most bytes traced at once above where the
    epoch started (``tracemalloc``, to which numpy reports its arrays), counting the model and
    optimizer built for it: the parameters, gradients, optimizer buffers and activations, and
    also what a prediction leaves out (each batch's copy of the data, the loss's arrays,
    backward's temporaries, the optimizer's scratch array). ``steps``: optimizer steps taken.
    ``time``: the untraced epochs' seconds (tracing slows every allocation)."""

    peak: float
    steps: int
    time: Timing


def _fresh_epoch(trainer_cls: type, x: np.ndarray, y: np.ndarray,
                 settings: EpochSettings) -> tuple[Any, Callable[[], Any]]:
    """A new loader, model, optimizer and Trainer, and the epoch to run on them (not yet run):
    every run starts from the same weights and the same batch order."""
    loader = DataLoader(TensorDataset(x, y), batch_size=settings.batch_size, shuffle=True, seed=0)
    model = settings.make_model()
    trainer = trainer_cls(model, settings.make_optimizer(model.parameters()), CrossEntropyLoss(),
                          grad_clip_norm=settings.grad_clip_norm)
    return trainer, functools.partial(trainer.train_epoch, loader,
                                      accumulation_steps=settings.accumulation_steps)


def _traced(trainer_cls: type, x: np.ndarray, y: np.ndarray,
            settings: EpochSettings) -> tuple[float, int]:
    """Peak traced bytes of one epoch, objects built for it included, and the steps it took."""
    tracing = tracemalloc.is_tracing()
    if not tracing:
        tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        start = tracemalloc.get_traced_memory()[0]
        trainer, run = _fresh_epoch(trainer_cls, x, y, settings)
        run()
        peak = tracemalloc.get_traced_memory()[1] - start
    finally:
        if not tracing:
            tracemalloc.stop()
    return float(peak), int(trainer.step)


def measure_epochs(
    trainer_cls: type,
    x: np.ndarray,
    y: np.ndarray,
    settings: Mapping[Key, EpochSettings],
    *,
    repeats: int = REPEATS,
    warmup: int = WARMUP,
    threads: int | None = THREADS,
) -> dict[Key, Epoch]:
    """Each setting's epoch: traced once for memory, then timed ``repeats`` times after
    ``warmup`` runs, interleaved with the other settings (see ``timing.time_runs``), so the
    settings a picture compares met the same moments of the machine. Equal settings under
    different keys are measured once and share their ``Epoch``."""
    unique = list(dict.fromkeys(settings.values()))
    traced = {s: _traced(trainer_cls, x, y, s) for s in unique}

    def setup(s: EpochSettings) -> Callable[[], Callable[[], Any]]:
        return lambda: _fresh_epoch(trainer_cls, x, y, s)[1]

    times = time_runs({s: setup(s) for s in unique}, repeats=repeats, warmup=warmup,
                      threads=threads)
    measured = {s: Epoch(traced[s][0], traced[s][1], times[s]) for s in unique}
    return {key: measured[s] for key, s in settings.items()}


def measure_epoch(
    trainer_cls: type,
    x: np.ndarray,
    y: np.ndarray,
    *,
    batch_size: int,
    accumulation_steps: int = 1,
    grad_clip_norm: float | None = None,
    make_model: Callable[[], Any] = digits_mlp,
    make_optimizer: Callable[[Any], Any] = _adam,
    repeats: int = REPEATS,
    warmup: int = WARMUP,
    threads: int | None = THREADS,
) -> Epoch:
    """One epoch of training with cross-entropy on ``x``, ``y`` on fresh objects, measured here:
    its peak memory, its steps, and its time over ``repeats`` runs (see ``Epoch``)."""
    settings = EpochSettings(batch_size, accumulation_steps, grad_clip_norm, make_model,
                             make_optimizer)
    return measure_epochs(trainer_cls, x, y, {"epoch": settings}, repeats=repeats,
                          warmup=warmup, threads=threads)["epoch"]

