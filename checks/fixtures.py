"""Small deterministic models, data and instruments the checks share.

Everything here uses its own seeded Generator, never numpy's global RNG, so a student's code
cannot make a check pass or fail by seeding or consuming the global state.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tinytorch.core.activations import ReLU
from tinytorch.core.layers import Dropout, Linear
from tinytorch.core.optimizers import SGD, grad_array
from tinytorch.core.tensor import Tensor


def line_data(n: int = 32, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """x in [-1, 1] and y = 2x + 1, float32, shape (n, 1)."""
    x = np.random.default_rng(seed).uniform(-1, 1, size=(n, 1)).astype(np.float32)
    return x, (2 * x + 1).astype(np.float32)


def blobs(n: int = 60, classes: int = 3, features: int = 2, seed: int = 2, *,
          evenly: bool = False):
    """Well separated Gaussian blobs: inputs float32 (n, features), labels float32 (n,).

    The centers are drawn at random (scale 5), or with ``evenly`` (two features) spaced evenly
    on a circle of radius 5 at a random angle, so no two classes can land close together
    whatever the seed."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % classes
    if evenly:
        if features != 2:
            raise ValueError("evenly spaced centers lie on a circle: features must be 2")
        angles = rng.uniform(0, 2 * np.pi) + 2 * np.pi * np.arange(classes) / classes
        centers = 5.0 * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    else:
        centers = rng.normal(scale=5.0, size=(classes, features))
    x = centers[labels] + rng.normal(size=(n, features))
    return x.astype(np.float32), labels.astype(np.float32)


def batches(x: np.ndarray, y: np.ndarray, sizes: list[int]) -> list[tuple[Tensor, Tensor]]:
    """Consecutive batches of the given sizes, as a plain list (no DataLoader needed)."""
    out, start = [], 0
    for size in sizes:
        out.append((Tensor(x[start : start + size]), Tensor(y[start : start + size])))
        start += size
    return out


class LinearModel:
    """One Linear layer, duck-typed (no base class), with a seeded initialisation."""

    def __init__(self, n_in: int = 1, n_out: int = 1, seed: int = 0) -> None:
        self.layer = Linear(n_in, n_out, seed=seed)
        self.training = True

    def forward(self, x: Tensor) -> Tensor:
        return self.layer(x)

    def parameters(self) -> list[Tensor]:
        return self.layer.parameters()


class MLP:
    """Linear -> ReLU -> (Dropout) -> Linear, duck-typed, recording ``training`` seen in forward."""

    def __init__(self, n_in: int = 2, hidden: int = 8, n_out: int = 1, *, dropout: float = 0.0,
                 seed: int = 0) -> None:
        self.layer1 = Linear(n_in, hidden, seed=seed)
        self.relu = ReLU()
        self.dropout = Dropout(dropout, seed=seed + 1)
        self.layer2 = Linear(hidden, n_out, seed=seed + 2)
        self.training = True
        self.modes_seen: list[bool] = []

    def forward(self, x: Tensor) -> Tensor:
        self.modes_seen.append(self.training)
        return self.layer2(self.dropout(self.relu(self.layer1(x))))

    def parameters(self) -> list[Tensor]:
        return self.layer1.parameters() + self.layer2.parameters()


class SpySGD(SGD):
    """SGD that records, at every ``step()``, the learning rate and a copy of each gradient it
    was handed: what the optimizer saw is what the checks judge."""

    def __init__(self, params: Any, lr: float = 0.01, **kwargs: Any) -> None:
        super().__init__(params, lr=lr, **kwargs)
        self.seen_lr: list[float] = []
        self.seen_grads: list[list[np.ndarray | None]] = []

    def step(self) -> None:
        self.seen_lr.append(float(self.lr))
        self.seen_grads.append(
            [None if (g := grad_array(p)) is None else np.array(g, dtype=np.float64)
             for p in self.params]
        )
        super().step()


class GradientAuditSGD(SGD):
    """SGD that counts its steps and keeps, of the gradients it was handed, only the ones no
    step should see: missing, non-finite or all zero (the first few, with their step and
    parameter). A check that asks "did every step get a usable gradient?" needs nothing more,
    and a record of a run that trains for 50 steps stays the size of one step."""

    KEPT = 5

    def __init__(self, params: Any, lr: float = 0.01, **kwargs: Any) -> None:
        super().__init__(params, lr=lr, **kwargs)
        self.steps_seen = 0
        self.unusable: list[tuple[int, int, np.ndarray | None]] = []

    def step(self) -> None:
        for i, p in enumerate(self.params):
            g = grad_array(p)
            if len(self.unusable) < self.KEPT and (
                    g is None or not np.all(np.isfinite(g)) or not np.any(g != 0)):
                self.unusable.append((self.steps_seen, i, None if g is None else np.array(g)))
        self.steps_seen += 1
        super().step()


def global_norm(grads: list[np.ndarray | None]) -> float:
    """L2 norm over every gradient present, in float64."""
    return float(np.sqrt(sum(float(np.sum(np.square(g, dtype=np.float64)))
                             for g in grads if g is not None)))
