"""The run seed every check takes: 0 for the visible run, a secret S > 0 for the hidden one.

``seed=0`` is the data the student sees (and debugs against); ``seed=S`` reruns the same check
on other data, so code written to pass the visible numbers alone does not pass the hidden run.
Each check turns the run seed into data with the two helpers here:

* ``shifted(k, seed)``: the fixed RNG seed ``k`` of the visible run (data or a model's
  initialisation) becomes ``k + 1000 * seed``; ``shifted(k, 0) == k``.
* ``variation(seed, salt)``: a seeded Generator for the other choices a hidden run varies
  (batch sizes, number of samples, layer widths, learning rates, hyper-parameters). Checks draw
  from it only when ``seed > 0``, so the visible run is exactly the original one. ``salt`` tells
  the checks' draws apart, so two checks do not vary in lockstep.

Never numpy's global RNG: a run is a pure function of its seed.
"""

from __future__ import annotations

import numpy as np

SHIFT = 1000


def validate(seed: object) -> int:
    """``seed`` if it is a non-negative int (not a bool), else ValueError naming ``seed``."""
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    return int(seed)


def shifted(k: int, seed: int) -> int:
    """The fixed RNG seed ``k`` of the visible run, moved for the run ``seed`` (same at 0)."""
    return k + SHIFT * seed


def variation(seed: int, salt: int) -> np.random.Generator:
    """A Generator for what a hidden run (``seed > 0``) varies besides the RNG seeds."""
    return np.random.default_rng([seed, salt])


def unequal_sizes(rng: np.random.Generator, count: int, low: int, high: int) -> list[int]:
    """``count`` batch sizes in [low, high], no two neighbours equal (so a bug that weights
    batches as equals, or divides by the number of batches, shows)."""
    sizes: list[int] = []
    while len(sizes) < count:
        size = int(rng.integers(low, high + 1))
        if not sizes or size != sizes[-1]:
            sizes.append(size)
    return sizes
