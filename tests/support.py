"""Shared test helpers: the audit's duck-typed model, small data sets and a numerical gradient.

Import as ``from support import ...`` (pytest puts ``tests/`` on the path, see pyproject.toml).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from tinytorch.core.activations import ReLU
from tinytorch.core.layers import Linear
from tinytorch.core.tensor import Tensor
from tinytorch.data import DataLoader, TensorDataset

AUDIT_NUMBERS = (
    "1.1", "1.2", "1.3", "2.1", "2.2", "3.1", "3.2", "4.1", "4.2",
    "5.1", "5.2", "6.1", "6.2", "7.1", "7.2", "7.3",
)


class SimpleModel:
    """The audit's model: two Linear layers and a ReLU, no base class (duck-typed)."""

    def __init__(self, n_in: int = 2, hidden: int = 4, n_out: int = 1, seed: int = 0) -> None:
        self.layer1 = Linear(n_in, hidden, seed=seed)
        self.relu = ReLU()
        self.layer2 = Linear(hidden, n_out, seed=seed + 1)
        self.training = True

    def forward(self, x: Tensor) -> Tensor:
        return self.layer2(self.relu(self.layer1(x)))

    def parameters(self) -> list[Tensor]:
        return self.layer1.parameters() + self.layer2.parameters()


def line_data(n: int = 64, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """x in [-1, 1], y = 2x + 1 (the audit's test 5.1 problem), float32, shape (n, 1)."""
    x = np.random.default_rng(seed).uniform(-1, 1, size=(n, 1)).astype(np.float32)
    return x, (2 * x + 1).astype(np.float32)


def blobs(n: int = 90, classes: int = 3, features: int = 2, seed: int = 0):
    """Separable Gaussian blobs: inputs (n, features) float32 and integer labels as float32."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % classes
    centers = rng.normal(scale=4.0, size=(classes, features))
    x = centers[labels] + rng.normal(size=(n, features))
    return x.astype(np.float32), labels.astype(np.float32)


def loader(x: np.ndarray, y: np.ndarray, batch_size: int, shuffle: bool = False, seed: int = 0):
    return DataLoader(TensorDataset(x, y), batch_size=batch_size, shuffle=shuffle, seed=seed)


def numerical_grad(f: Callable[[], float], array: np.ndarray, eps: float = 1e-3) -> np.ndarray:
    """Central differences of the scalar ``f()`` with respect to ``array`` (changed in place and
    restored). Evaluated in float64 around float32 data, so use rtol ~1e-2 for comparisons."""
    grad = np.zeros(array.shape, dtype=np.float64)
    it = np.nditer(array, flags=["multi_index"])
    for _ in it:
        i = it.multi_index
        old = array[i].copy()
        array[i] = old + eps
        up = f()
        array[i] = old - eps
        down = f()
        array[i] = old
        grad[i] = (up - down) / (2 * eps)
    return grad
