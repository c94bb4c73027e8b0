"""What one epoch of training costs on this machine: its peak memory and its time, measured
on the lesson's digits model; the three cost pictures are made of these measurements."""

from __future__ import annotations

import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import numpy as np

from tinytorch.core.activations import ReLU
from tinytorch.core.layers import Dropout, Linear, Sequential
from tinytorch.core.losses import CrossEntropyLoss
from tinytorch.core.optimizers import Adam
from tinytorch.data import DataLoader, TensorDataset


def digits_mlp(hidden: int = 64) -> Any:
    """The lesson's digits model, 64 -> hidden -> 10 with ReLU and Dropout(0.1), seeded."""
    return Sequential(Linear(64, hidden, seed=1), ReLU(), Dropout(0.1, seed=2),
                      Linear(hidden, 10, seed=3))


def _adam(params: Any) -> Any:
    return Adam(params, lr=0.001)


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
    repeats: int = 3,
) -> dict[str, float]:
    """One epoch of training with cross-entropy on ``x``, ``y`` on fresh objects, measured here.

    ``peak``: the most bytes traced at once above where the epoch started (``tracemalloc``, to
    which numpy reports its arrays), counting the model and optimizer built for it: the
    parameters, gradients, optimizer buffers and activations, and also what a prediction
    leaves out (each batch's copy of the data, the loss's arrays, backward's temporaries, the
    optimizer's scratch array). ``seconds``: the fastest of ``repeats`` untraced epochs
    (``time.perf_counter``; tracing slows every allocation). ``steps``: optimizer steps taken.
    """
    def run(trace: bool) -> tuple[float, int, int]:
        loader = DataLoader(TensorDataset(x, y), batch_size=batch_size, shuffle=True, seed=0)
        if trace:
            tracemalloc.reset_peak()
            start = tracemalloc.get_traced_memory()[0]
        model = make_model()
        trainer = trainer_cls(model, make_optimizer(model.parameters()), CrossEntropyLoss(),
                              grad_clip_norm=grad_clip_norm)
        began = time.perf_counter()
        trainer.train_epoch(loader, accumulation_steps=accumulation_steps)
        seconds = time.perf_counter() - began
        peak = tracemalloc.get_traced_memory()[1] - start if trace else 0
        return seconds, peak, int(trainer.step)

    tracing = tracemalloc.is_tracing()
    if not tracing:
        tracemalloc.start()
    try:
        _, peak, steps = run(trace=True)
    finally:
        if not tracing:
            tracemalloc.stop()
    seconds = min(run(trace=False)[0] for _ in range(repeats))
    return {"peak": float(peak), "seconds": seconds, "steps": float(steps)}
