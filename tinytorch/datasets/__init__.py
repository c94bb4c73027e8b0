"""Small real data sets that ship with tinytorch, so a course runs with no network.

``load_digits()``: 1,797 handwritten digits as 8x8 grey images (the test set of the UCI "Optical
Recognition of Handwritten Digits" data, E. Alpaydin and C. Kaynak, 1998; CC BY 4.0; see
``DIGITS.md`` beside this file).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

DIGITS_FILE = Path(__file__).with_name("digits.csv.gz")


def load_digits() -> tuple[np.ndarray, np.ndarray]:
    """Return ``(images, labels)``: images float32 of shape (1797, 64) scaled to [0, 1] (pixels
    count 0..16 dark cells of a 4x4 block, row by row), labels float32 class indices 0..9."""
    table = np.loadtxt(DIGITS_FILE, delimiter=",", dtype=np.float32)
    return table[:, :64] / np.float32(16.0), table[:, 64].copy()


def split(
    x: np.ndarray, y: np.ndarray, test_fraction: float = 0.2, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A seeded shuffle, then ``(x_train, y_train, x_test, y_test)``."""
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be between 0 and 1, got {test_fraction!r}")
    if len(x) != len(y):
        raise ValueError(f"x and y must have the same length, got {len(x)} and {len(y)}")
    order = np.random.default_rng(seed).permutation(len(x))
    n_test = round(len(x) * test_fraction)
    test, train = order[:n_test], order[n_test:]
    return x[train], y[train], x[test], y[test]
