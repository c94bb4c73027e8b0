"""The memory budget: the prediction's components against the measured peak, with the batch and
the rest of the gap as bars of their own, each the size the numbers say."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest

from tinytorch.core.training import Trainer, training_memory
from tinytorch.datasets import load_digits
from tinytorch.viz.memory_budget import BATCH, REST, budget, draw_memory_budget, plot_memory_budget

PARTS = {"parameters": 4000, "gradients": 4000, "optimizer_state": 8000, "activations": 2000,
         "total": 18000}


def _bars(fig) -> dict[str, float]:
    ax = fig.axes[0]
    return {bars.get_label().split(":")[0]: bars.patches[0].get_width() * 1024
            for bars in ax.containers}


def test_the_gap_is_split_into_the_batch_and_the_rest() -> None:
    assert budget(PARTS, peak=30000, batch_bytes=2500) == {
        "predicted total": 18000.0, BATCH: 2500.0, REST: 9500.0}


def test_each_bar_is_its_number() -> None:
    fig = draw_memory_budget(PARTS, peak=30000, batch_bytes=2500)
    try:
        bars = _bars(fig)
        for name in ("parameters", "gradients", "optimizer state", "activations"):
            assert bars[name] == pytest.approx(PARTS[name.replace(" ", "_")])
        assert bars["predicted total"] == pytest.approx(18000)
        assert bars[BATCH] == pytest.approx(2500) and bars[REST] == pytest.approx(9500)
    finally:
        plt.close(fig)


def test_a_real_epoch_leaves_a_gap_the_bars_account_for() -> None:
    images, labels = load_digits()
    x, y = images[:256].astype(np.float32), labels[:256]
    fig = plot_memory_budget(Trainer, training_memory, x, y)
    try:
        bars = _bars(fig)
        predicted = sum(bars[n] for n in ("parameters", "gradients", "optimizer state",
                                          "activations"))
        peak = bars["predicted total"] + bars[BATCH] + bars[REST]
        assert bars[BATCH] == x[:32].nbytes + y[:32].nbytes
        assert predicted == pytest.approx(bars["predicted total"])
        assert peak > predicted  # the peak holds more than a step keeps
        assert f"{peak / 1024:,.1f} KiB" in fig.axes[0].get_title()
    finally:
        plt.close(fig)
