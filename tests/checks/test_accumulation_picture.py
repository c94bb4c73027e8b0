"""The accumulation picture agrees with the checks: each accumulation bug the checks name leaves
the one-batch path, and the reference does not.

The picture (``tinytorch.viz.plot_accumulation``) runs two windows per epoch, the second
partial, so a gradient not cleared between optimizer steps, a window divided by its batches
instead of its samples, a dropped partial window and summed gradients each show as a distance;
the distances are read back from the figure, as a student reads them."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pytest
from mutants_loop_modes import MUTANTS
from variants import mutant_implementations, reference_implementations

from tinytorch.viz import accumulation

#: The accumulation bugs the checks name (1.2 and 1.3), each of which the picture must show.
SHOWN = ("no-zero-grad-between-steps", "accumulation-summed-not-averaged",
         "accumulation-divided-by-k", "partial-last-window-dropped")


def _largest_gap(trainer: type) -> float:
    fig = accumulation.plot_accumulation(trainer)
    try:
        return float(accumulation.distances(fig)[accumulation.accumulated_label(trainer)].max())
    finally:
        plt.close(fig)


def test_the_reference_follows_one_batch_per_window() -> None:
    assert _largest_gap(reference_implementations()["Trainer"]) < 1e-5


@pytest.mark.parametrize("name", SHOWN)
def test_each_accumulation_bug_leaves_the_one_batch_path(name: str) -> None:
    mutant = next(m for m in MUTANTS if m.name == name)
    gap = _largest_gap(mutant_implementations(mutant)["Trainer"])
    print(f"{name}: largest distance {gap:.3g}")
    assert gap > 0.05, f"{name}: the picture shows a largest distance of {gap:.3g} only"
