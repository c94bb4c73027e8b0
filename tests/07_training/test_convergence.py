"""Audit 5.1 and 5.2: training through the Trainer actually learns, and its history is right.

Expected values are computed here with plain numpy (the loss of a line, gradient descent by
hand, argmax accuracy), never read back from the Trainer being tested.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from support import blobs, line_data, loader

from tinytorch.core.layers import Linear
from tinytorch.core.losses import CrossEntropyLoss, MSELoss
from tinytorch.core.optimizers import SGD
from tinytorch.core.training import CosineSchedule, Trainer


def _line_mse(w: float, b: float, x: np.ndarray, y: np.ndarray) -> float:
    """Mean squared error of the line w * x + b, in float64."""
    x64, y64 = x.astype(np.float64), y.astype(np.float64)
    return float(np.mean((w * x64 + b - y64) ** 2))


def _wb(layer: Linear) -> tuple[float, float]:
    return float(layer.weight.data[0, 0]), float(layer.bias.data[0])


# ------------------------------------------------------------------ 5.1: convergence
@pytest.mark.audit("5.1")
def test_linear_regression_learns_the_line():
    """Audit 5.1: y = 2x + 1, Linear(1, 1), SGD, shuffled batches of 16, 100 epochs: the epoch
    loss falls (almost) every epoch, ends below a tenth of the initial loss (in fact near zero),
    and the layer learns weight 2 and bias 1."""
    x, y = line_data(64)
    layer = Linear(1, 1, seed=0)
    initial_loss = _line_mse(*_wb(layer), x, y)
    assert initial_loss > 1.0, "the starting point should be far from the line"
    trainer = Trainer(layer, SGD(layer.parameters(), lr=0.05), MSELoss())
    data = loader(x, y, batch_size=16, shuffle=True, seed=3)

    losses = [trainer.train_epoch(data) for _ in range(100)]

    assert trainer.history["train_loss"] == losses
    falls = np.diff(losses) < 0
    assert falls.mean() >= 0.9, f"loss fell in only {falls.mean():.0%} of epochs"
    for k in range(len(losses) - 5):  # never a sustained rise, until float32's resolution
        if losses[k] > 1e-9:
            assert losses[k + 5] < losses[k], f"loss at epoch {k + 5} is not below epoch {k}'s"
    assert losses[-1] < 0.1 * initial_loss
    w, b = _wb(layer)
    assert w == pytest.approx(2.0, abs=1e-3)
    assert b == pytest.approx(1.0, abs=1e-3)
    assert _line_mse(w, b, x, y) < 1e-6


@pytest.mark.audit("5.1")
def test_full_batch_training_is_exactly_gradient_descent():
    """Audit 5.1: with one batch per epoch, each epoch is one gradient-descent step; the weights
    and the recorded losses follow plain numpy gradient descent on the MSE, epoch by epoch."""
    x, y = line_data(32, seed=1)
    layer = Linear(1, 1, seed=4)
    w, b = (float(v) for v in _wb(layer))
    lr = 0.3
    trainer = Trainer(layer, SGD(layer.parameters(), lr=lr), MSELoss())
    data = loader(x, y, batch_size=32)
    x64, y64 = x[:, 0].astype(np.float64), y[:, 0].astype(np.float64)
    for epoch in range(40):
        expected_loss = _line_mse(w, b, x, y)
        residual = w * x64 + b - y64
        w, b = w - lr * 2 * np.mean(residual * x64), b - lr * 2 * np.mean(residual)
        loss = trainer.train_epoch(data)
        assert loss == pytest.approx(expected_loss, rel=1e-4, abs=1e-7), f"epoch {epoch}"
        assert _wb(layer) == pytest.approx((w, b), rel=1e-5, abs=1e-6), f"epoch {epoch}"
    assert (w, b) == pytest.approx((2.0, 1.0), abs=0.01)


@pytest.mark.audit("5.1")
def test_classification_reaches_high_accuracy():
    """Audit 5.1: three Gaussian blobs, a linear classifier, CrossEntropyLoss and SGD: accuracy
    goes from chance to at least 95 % (checked by numpy argmax as well as by evaluate), and the
    evaluation loss falls below a quarter of the initial one."""
    x, y = blobs(n=90, classes=3, seed=5)
    layer = Linear(2, 3, seed=0)

    def numpy_accuracy() -> float:
        logits = x @ layer.weight.data + layer.bias.data
        return float(np.mean(np.argmax(logits, axis=1) == y))

    trainer = Trainer(layer, SGD(layer.parameters(), lr=0.1), CrossEntropyLoss())
    test_data = loader(x, y, batch_size=32)
    initial_loss, initial_accuracy = trainer.evaluate(test_data)
    assert initial_accuracy == pytest.approx(numpy_accuracy())
    assert initial_accuracy < 0.7

    train_data = loader(x, y, batch_size=16, shuffle=True, seed=0)
    for _ in range(30):
        trainer.train_epoch(train_data)
    loss, accuracy = trainer.evaluate(test_data)

    assert accuracy == pytest.approx(numpy_accuracy())
    assert accuracy >= 0.95
    assert loss < 0.25 * initial_loss


# ------------------------------------------------------------------ 5.2: history
def _trainer(scheduler=None, lr=0.05, n=23):
    x, y = line_data(n, seed=2)
    layer = Linear(1, 1, seed=0)
    trainer = Trainer(layer, SGD(layer.parameters(), lr=lr), MSELoss(), scheduler=scheduler)
    return trainer, layer, loader(x, y, batch_size=5, shuffle=True, seed=1), loader(x, y, 8), x, y


@pytest.mark.audit("5.2")
def test_history_lengths_without_a_schedule():
    """Audit 5.2: after 5 epochs and 3 evaluate calls: 5 train losses, 5 learning rates (all the
    constant lr), 3 eval losses; every value finite; epoch is 5."""
    trainer, _, train_data, test_data, _, _ = _trainer()
    returned = []
    for epoch in range(5):
        returned.append(trainer.train_epoch(train_data))
        if epoch % 2 == 0:
            trainer.evaluate(test_data)

    history = trainer.history
    assert len(history["train_loss"]) == 5
    assert len(history["learning_rates"]) == 5
    assert len(history["eval_loss"]) == 3
    assert history["train_loss"] == returned
    assert history["learning_rates"] == [0.05] * 5
    assert trainer.epoch == 5
    values = history["train_loss"] + history["eval_loss"] + history["learning_rates"]
    assert all(math.isfinite(v) for v in values)
    assert history["train_loss"][-1] < history["train_loss"][0]


@pytest.mark.audit("5.2")
def test_history_lengths_and_rates_with_a_cosine_schedule():
    """Audit 5.2: with CosineSchedule(0.1, 0.01, 5), 5 epochs record 5 rates: the cosine formula
    at epochs 0..4 (by hand), starting at max_lr and strictly decreasing; eval_loss grows by one
    per evaluate call, including calls before any training."""
    scheduler = CosineSchedule(max_lr=0.1, min_lr=0.01, total_epochs=5)
    trainer, _, train_data, test_data, _, _ = _trainer(scheduler=scheduler)
    trainer.evaluate(test_data)
    assert len(trainer.history["eval_loss"]) == 1 and trainer.history["train_loss"] == []
    for _ in range(5):
        trainer.train_epoch(train_data)
        trainer.evaluate(test_data)

    expected = [0.01 + 0.09 * (1 + math.cos(math.pi * e / 5)) / 2 for e in range(5)]
    rates = trainer.history["learning_rates"]
    assert len(rates) == 5
    assert rates == pytest.approx(expected, rel=1e-12)
    assert rates[0] == 0.1
    assert all(a > b for a, b in zip(rates, rates[1:], strict=False))
    assert len(trainer.history["train_loss"]) == 5
    assert len(trainer.history["eval_loss"]) == 6
    assert all(math.isfinite(v) for v in trainer.history["train_loss"] + rates)
    assert all(math.isfinite(v) for v in trainer.history["eval_loss"])


@pytest.mark.audit("5.2")
@pytest.mark.parametrize("accumulation_steps", [1, 2])
def test_recorded_losses_are_the_epoch_means_over_all_samples(accumulation_steps):
    """Audit 5.2: with lr = 0 the weights never move, so every recorded train loss and eval loss
    must equal the MSE over the whole data set (numpy, by hand), although 23 samples come in
    unequal batches (5, 5, 5, 5, 3) and, with accumulation, unequal windows."""
    trainer, layer, train_data, test_data, x, y = _trainer(lr=0.0)
    expected = _line_mse(*_wb(layer), x, y)
    for _ in range(3):
        trainer.train_epoch(train_data, accumulation_steps=accumulation_steps)
    trainer.evaluate(test_data)
    assert trainer.history["train_loss"] == pytest.approx([expected] * 3, rel=1e-6)
    assert trainer.history["eval_loss"] == pytest.approx([expected], rel=1e-6)
    assert trainer.history["learning_rates"] == [0.0] * 3
