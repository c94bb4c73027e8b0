"""Shared fixtures of the tinytorch.viz tests: a headless matplotlib, a recorder in place of
IPython's display, and a tiny regression to train."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")  # the tests draw into memory; tinytorch.viz never picks a backend itself

import IPython.display  # noqa: E402

from tinytorch.core.layers import Linear  # noqa: E402
from tinytorch.core.losses import MSELoss  # noqa: E402
from tinytorch.core.optimizers import SGD  # noqa: E402
from tinytorch.core.training import Trainer  # noqa: E402
from tinytorch.data import DataLoader, TensorDataset  # noqa: E402

CLIP = 8.0  # the data below has gradient norms from about 4 to 15


class Shown:
    """What reached IPython's display: each display call and each update of its handle."""

    def __init__(self) -> None:
        self.displayed: list[Any] = []
        self.updated: list[Any] = []

    def display(self, *objs: Any, display_id: Any = None, **kwargs: Any) -> Any:
        self.displayed.extend(objs)
        shown = self

        class Handle:
            def update(self, obj: Any) -> None:
                shown.updated.append(obj)

        return Handle() if display_id else None


@pytest.fixture(autouse=True)
def not_grading(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test starts outside nbgrader; the headless tests set the variable themselves."""
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)


@pytest.fixture
def shown(monkeypatch: pytest.MonkeyPatch) -> Shown:
    recorder = Shown()
    monkeypatch.setattr(IPython.display, "display", recorder.display)
    return recorder


@pytest.fixture
def make_run() -> Callable[..., tuple[Trainer, DataLoader, DataLoader]]:
    """A Linear(3, 1) regression: 40 samples in 5 batches of 8, clipping at CLIP."""

    def make(callbacks: Any = (), clip: float | None = CLIP) -> tuple[Any, Any, Any]:
        rng = np.random.default_rng(0)
        x = rng.normal(size=(40, 3)).astype(np.float32)
        y = (x @ np.array([[2.0], [-1.0], [0.5]]) + 3.0).astype(np.float32)
        model = Linear(3, 1, seed=0)
        trainer = Trainer(model, SGD(model.parameters(), lr=0.1), MSELoss(),
                          grad_clip_norm=clip, callbacks=callbacks)
        train = DataLoader(TensorDataset(x, y), batch_size=8, shuffle=True, seed=1)
        test = DataLoader(TensorDataset(x[:16], y[:16]), batch_size=16)
        return trainer, train, test

    return make


def _line(fig: Any, label: str) -> Any:
    found = [ln for ax in fig.axes for ln in ax.get_lines() if ln.get_label() == label]
    assert len(found) == 1, f"{len(found)} lines labelled {label!r}"
    return found[0]


@pytest.fixture
def line() -> Callable[[Any, str], Any]:
    """``line(fig, label)``: the one line of ``fig`` with that legend label."""
    return _line
