"""Datasets and a DataLoader whose shuffling is a pure function of (seed, epoch).

Because the order of epoch ``e`` depends only on the seed and ``e``, a run resumed from a
checkpoint at epoch ``e`` sees exactly the batches the uninterrupted run would have seen: the
Trainer calls ``set_epoch`` before each epoch (as PyTorch's DistributedSampler asks), and the
checkpoint stores the seed.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from tinytorch.core.tensor import Tensor, _as_array


class TensorDataset:
    """Samples are the rows of equally long arrays: ``dataset[i] == (x[i], y[i])``."""

    def __init__(self, *tensors: Any) -> None:
        if not tensors:
            raise ValueError("TensorDataset needs at least one array")
        self.arrays = [_as_array(t) for t in tensors]
        lengths = {len(a) for a in self.arrays}
        if len(lengths) != 1:
            raise ValueError(
                f"all arrays must have the same first dimension, got {sorted(lengths)}"
            )

    def __len__(self) -> int:
        return len(self.arrays[0])

    def __getitem__(self, index: Any) -> tuple[np.ndarray, ...]:
        return tuple(a[index] for a in self.arrays)


def _check_positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


class DataLoader:
    """Batches of Tensors from a dataset, optionally shuffled, reproducibly.

    ``seed=None`` with ``shuffle=True`` draws a seed from the operating system once, so the
    order is still recorded (``state_dict()``) and can be replayed.
    """

    def __init__(
        self,
        dataset: Any,
        batch_size: int = 32,
        shuffle: bool = False,
        seed: int | None = None,
        drop_last: bool = False,
    ) -> None:
        if not hasattr(dataset, "__len__") or not hasattr(dataset, "__getitem__"):
            raise ValueError("dataset must support len() and indexing (see TensorDataset)")
        self.dataset = dataset
        self.batch_size = _check_positive_int("batch_size", batch_size)
        self.shuffle = bool(shuffle)
        if seed is None:
            seed = int(np.random.SeedSequence().entropy % 2**63)
        if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
        self.seed = int(seed)
        self.drop_last = bool(drop_last)
        self.epoch = 0

    def __len__(self) -> int:
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def set_epoch(self, epoch: int) -> None:
        """Choose which epoch's order the next iteration uses."""
        self.epoch = int(epoch)

    def order(self, epoch: int) -> np.ndarray:
        """Sample indices of ``epoch``: a permutation drawn from (seed, epoch) alone."""
        n = len(self.dataset)
        if not self.shuffle:
            return np.arange(n)
        return np.random.default_rng([self.seed, int(epoch)]).permutation(n)

    def __iter__(self) -> Iterator[tuple[Tensor, ...]]:
        indices = self.order(self.epoch)
        self.epoch += 1  # a plain loop over epochs still sees a new order each time
        stop = len(self) * self.batch_size
        for start in range(0, min(stop, len(indices)), self.batch_size):
            yield tuple(
                Tensor(column) for column in self._gather(indices[start : start + self.batch_size])
            )

    def _gather(self, indices: np.ndarray) -> list[np.ndarray]:
        if isinstance(self.dataset, TensorDataset):
            return [a[indices] for a in self.dataset.arrays]
        samples = [self.dataset[int(i)] for i in indices]
        return [np.stack(column) for column in zip(*samples, strict=True)]

    def state_dict(self) -> dict[str, int]:
        return {"seed": self.seed, "epoch": self.epoch}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.seed = int(state["seed"])
        self.epoch = int(state["epoch"])
