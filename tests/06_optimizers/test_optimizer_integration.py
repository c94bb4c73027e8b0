"""Optimizers driving real models through a manual training loop (forward, loss, backward, step,
zero_grad). These are the optimizer integration tests the audit found misfiled among the
Module 07 training tests (its ``test_progressive_integration.py``); they need no Trainer."""

from __future__ import annotations

import numpy as np
import pytest
from support import SimpleModel, blobs, line_data

from tinytorch.core.activations import ReLU
from tinytorch.core.layers import Linear, Sequential
from tinytorch.core.losses import CrossEntropyLoss, MSELoss
from tinytorch.core.optimizers import SGD, Adam, AdamW
from tinytorch.core.tensor import Tensor

OPTIMIZERS = [
    ("sgd", SGD, {"lr": 0.1}),
    ("sgd_momentum", SGD, {"lr": 0.05, "momentum": 0.9}),
    ("adam", Adam, {"lr": 0.05}),
    ("adamw", AdamW, {"lr": 0.05, "weight_decay": 0.01}),
]
IDS = [o[0] for o in OPTIMIZERS]


def _train(model, opt, loss_fn, x: np.ndarray, y: np.ndarray, epochs: int, batch: int) -> list:
    """The five-line loop; returns the full-data loss before training and after each epoch."""
    xs, ys = Tensor(x), Tensor(y)
    losses = [float(loss_fn(model.forward(xs), ys).data)]
    for _ in range(epochs):
        for start in range(0, len(x), batch):
            xb, yb = Tensor(x[start : start + batch]), Tensor(y[start : start + batch])
            loss = loss_fn(model.forward(xb), yb)
            loss.backward()
            opt.step()
            opt.zero_grad()
        losses.append(float(loss_fn(model.forward(xs), ys).data))
    return losses


@pytest.mark.parametrize(("name", "cls", "kwargs"), OPTIMIZERS, ids=IDS)
def test_optimizer_fits_linear_regression(name, cls, kwargs) -> None:
    """Each optimizer drives Linear(1, 1) on y = 2x + 1 to a small loss and close to the true
    weight and bias: catches updates with the wrong sign (loss grows), updates that never reach
    the layer's parameters, and gradients left to accumulate between steps."""
    x, y = line_data(n=64, seed=0)
    model = Linear(1, 1, seed=0)
    opt = cls(model.parameters(), **kwargs)
    losses = _train(model, opt, MSELoss(), x, y, epochs=40, batch=16)
    assert all(np.isfinite(losses))
    assert losses[-1] < 1e-3 * losses[0], f"{name}: loss {losses[0]:.4f} -> {losses[-1]:.4f}"
    np.testing.assert_allclose(float(model.weight.data[0, 0]), 2.0, atol=0.05)
    np.testing.assert_allclose(float(model.bias.data[0]), 1.0, atol=0.05)


@pytest.mark.parametrize(("name", "cls", "kwargs"), OPTIMIZERS, ids=IDS)
def test_optimizer_trains_duck_typed_model(name, cls, kwargs) -> None:
    """The audit's SimpleModel (no base class, two Linear layers and a ReLU) trained through its
    ``parameters()`` lowers the loss: catches optimizers that need a Module, and gradients that do
    not reach the first layer."""
    x, y = line_data(n=64, seed=1)
    model = SimpleModel(n_in=1, hidden=8, n_out=1, seed=0)
    first_layer = model.layer1.weight.data.copy()
    opt = cls(model.parameters(), **kwargs)
    losses = _train(model, opt, MSELoss(), x, y, epochs=30, batch=16)
    assert losses[-1] < 0.05 * losses[0], f"{name}: loss {losses[0]:.4f} -> {losses[-1]:.4f}"
    assert not np.array_equal(model.layer1.weight.data, first_layer)


@pytest.mark.parametrize(("name", "cls", "kwargs"), OPTIMIZERS, ids=IDS)
def test_optimizer_trains_classifier(name, cls, kwargs) -> None:
    """A Sequential MLP with CrossEntropyLoss on separable blobs reaches high accuracy: catches
    an optimizer that only works for a single layer or for regression losses."""
    x, labels = blobs(n=90, classes=3, seed=2)  # nearest-centroid accuracy 1.0
    model = Sequential(Linear(2, 16, seed=0), ReLU(), Linear(16, 3, seed=1))
    opt = cls(model.parameters(), **kwargs)
    losses = _train(model, opt, CrossEntropyLoss(), x, labels, epochs=30, batch=30)
    accuracy = float(np.mean(model(Tensor(x)).data.argmax(axis=1) == labels))
    assert losses[-1] < 0.2 * losses[0]
    assert accuracy > 0.95, f"{name}: accuracy {accuracy:.2f}"


def test_loss_decreases_every_epoch_with_small_sgd_steps() -> None:
    """Full-batch gradient descent with a small step on a convex problem lowers the loss every
    epoch: catches a step in the gradient's direction, or a step that ignores the gradient."""
    x, y = line_data(n=32, seed=2)
    model = Linear(1, 1, seed=3)
    opt = SGD(model.parameters(), lr=0.05)
    losses = _train(model, opt, MSELoss(), x, y, epochs=15, batch=32)
    assert all(b < a for a, b in zip(losses, losses[1:], strict=False))


def test_missing_zero_grad_changes_training() -> None:
    """Without zero_grad the second step uses the sum of both gradients, so the parameters differ
    from the cleared loop's: catches an optimizer or backward that clears gradients by itself
    (hiding the bug students must learn to avoid)."""
    x, y = line_data(n=16, seed=4)
    results = []
    for clear in (True, False):
        model = Linear(1, 1, seed=5)
        opt = SGD(model.parameters(), lr=0.1)
        for _ in range(2):
            MSELoss()(model(Tensor(x)), Tensor(y)).backward()
            opt.step()
            if clear:
                opt.zero_grad()
        results.append(model.weight.data.copy())
    assert not np.allclose(results[0], results[1])
