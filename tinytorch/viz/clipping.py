"""Gradient clipping at work: the gradient norms of each step before and after
``clip_grad_norm`` (or a Trainer's ``grad_clip_norm``), against ``max_norm``."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from tinytorch.core.layers import Linear
from tinytorch.core.losses import MSELoss
from tinytorch.core.optimizers import SGD
from tinytorch.core.tensor import Tensor
from tinytorch.core.training import clip_grad_norm
from tinytorch.data import DataLoader, TensorDataset
from tinytorch.viz.figures import (
    _flat_params,
    _global_norm,
    _integer_ticks,
    _new_figure,
    _unless_headless,
)

if TYPE_CHECKING:
    from matplotlib.figure import Figure


@_unless_headless
def plot_clipping(
    implementation: Callable[..., Any] | type = clip_grad_norm,
    *,
    max_norm: float = 1.0,
    steps: int = 20,
    lr: float = 0.01,
    seed: int = 0,
) -> Figure:
    """Per-step gradient norms before and after clipping, on a regression with big inputs (the
    gradients are thousands of times max_norm: without clipping these steps would diverge).

    ``implementation`` is a clip function ``f(parameters, max_norm)`` (norms are measured
    around the call) or a Trainer class (built with ``grad_clip_norm=max_norm``; before is its
    ``history["grad_norm"]``, after is the length of the SGD update divided by lr, i.e. the
    gradient the optimizer really applied).
    """
    rng = np.random.default_rng(seed)
    x = rng.normal(scale=50.0, size=(32, 4)).astype(np.float32)
    y = (x @ rng.normal(size=(4, 1)) + 5.0).astype(np.float32)
    model = Linear(4, 1, seed=seed)
    params = model.parameters()
    optimizer, loss_fn = SGD(params, lr=lr), MSELoss()
    before, after = [], []
    if inspect.isclass(implementation):
        trainer = implementation(model, optimizer, loss_fn, grad_clip_norm=max_norm)
        data = DataLoader(TensorDataset(x, y), batch_size=len(x))  # one step per epoch
        for _ in range(steps):
            start = _flat_params(params)
            trainer.train_epoch(data)
            after.append(float(np.linalg.norm(_flat_params(params) - start)) / lr)
        before = list(trainer.history["grad_norm"])
        name = implementation.__name__
    else:
        for _ in range(steps):
            optimizer.zero_grad()
            loss_fn(model(Tensor(x)), Tensor(y)).backward()
            before.append(_global_norm(params))
            implementation(params, max_norm)
            after.append(_global_norm(params))
            optimizer.step()
        name = getattr(implementation, "__name__", "clip")
    k = np.arange(1, steps + 1)
    fig = _new_figure(figsize=(6, 3.5))
    ax = fig.add_subplot()
    ax.plot(k[: len(before)], before, "o-", color="firebrick", label="before clipping")
    ax.plot(k, after, "o-", color="C0", label="after clipping")
    ax.axhline(max_norm, color="grey", linestyle="--", label=f"max_norm = {max_norm:g}")
    ax.set_yscale("log")
    _integer_ticks(ax)
    ax.set(title=f"{name}: gradient norms around clipping", xlabel="optimizer step",
           ylabel="gradient norm (log scale)")
    ax.legend()
    return fig
