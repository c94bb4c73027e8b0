"""Autograd across modules: layers (Module 03), activations (02) and losses (04) composed into
the graphs a training step differentiates, with the optimizer's zero_grad (06) around them.

Every parameter's gradient is compared with central differences of the same forward pass
(``numerical_grad``), and the simplest ones with formulas written out here.
"""

from __future__ import annotations

import numpy as np
import pytest
from support import SimpleModel, blobs, numerical_grad

from tinytorch.core.activations import ReLU, Sigmoid, Softmax, Tanh
from tinytorch.core.autograd import no_grad
from tinytorch.core.layers import Dropout, Linear, Sequential
from tinytorch.core.losses import BinaryCrossEntropyLoss, CrossEntropyLoss, MSELoss
from tinytorch.core.optimizers import SGD
from tinytorch.core.tensor import Tensor

RNG = np.random.default_rng(1)
X = RNG.normal(size=(6, 3)).astype(np.float32)
Y_REG = RNG.normal(size=(6, 2)).astype(np.float32)
Y_CLASS = np.array([0, 1, 2, 1, 0, 2], dtype=np.float32)


def _loss_value(model, loss_fn, x, y) -> float:
    return float(loss_fn(model.forward(Tensor(x)), Tensor(y)).data)


def _assert_matches_numerical(model, loss_fn, x, y, *, rtol=2e-2, atol=1e-3) -> None:
    """Backward once; every parameter's gradient equals the numerical one (and is non-zero)."""
    params = list(model.parameters())
    for p in params:
        p.grad = None
    loss_fn(model.forward(Tensor(x)), Tensor(y)).backward()
    for i, p in enumerate(params):
        assert p.grad is not None, f"parameter {i} got no gradient"
        grad = p.grad.data
        assert grad.shape == p.data.shape and grad.dtype == np.float32
        assert np.any(grad != 0), f"parameter {i} has an all-zero gradient"
        expected = numerical_grad(lambda: _loss_value(model, loss_fn, x, y), p.data)
        np.testing.assert_allclose(grad, expected, rtol=rtol, atol=atol, err_msg=f"param {i}")


GRAPHS = {
    "linear_relu_linear_mse": (
        lambda: Sequential(Linear(3, 5, seed=0), ReLU(), Linear(5, 2, seed=1)),
        MSELoss, Y_REG,
    ),
    "audit_simple_model_mse": (lambda: SimpleModel(3, 5, 2), MSELoss, Y_REG),
    "sigmoid_tanh_cross_entropy": (
        lambda: Sequential(Linear(3, 5, seed=0), Sigmoid(), Linear(5, 4, seed=1), Tanh(),
                           Linear(4, 3, seed=2)),
        CrossEntropyLoss, Y_CLASS,
    ),
    "sigmoid_output_binary_cross_entropy": (
        lambda: Sequential(Linear(3, 4, seed=0), Tanh(), Linear(4, 1, seed=1), Sigmoid()),
        BinaryCrossEntropyLoss, (Y_CLASS > 0).astype(np.float32).reshape(-1, 1),
    ),
    "softmax_then_mse": (
        lambda: Sequential(Linear(3, 4, seed=0), ReLU(), Linear(4, 2, seed=1), Softmax()),
        MSELoss, np.abs(Y_REG) / np.abs(Y_REG).sum(axis=1, keepdims=True),
    ),
}


@pytest.mark.parametrize("name", list(GRAPHS))
def test_every_parameter_gradient_matches_numerical(name):
    """Linear->ReLU->Linear->MSE, the audit's duck-typed model, Sigmoid/Tanh stacks with
    cross-entropy, a Sigmoid output with binary cross-entropy, a Softmax layer: after one
    backward, each weight and bias has the gradient central differences give."""
    make_model, loss_cls, y = GRAPHS[name]
    _assert_matches_numerical(make_model(), loss_cls(), X, y)


def test_linear_layer_gradients_by_hand():
    """y = x W + b with upstream gradient G: dW = x^T G, db = sum of G over the batch (the
    bias was broadcast over the rows), dx = G W^T."""
    layer = Linear(3, 2, seed=0)
    x = Tensor(X, requires_grad=True)
    g = RNG.normal(size=(6, 2)).astype(np.float32)
    (layer(x) * Tensor(g)).sum().backward()
    np.testing.assert_allclose(layer.weight.grad.data, X.T @ g, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(layer.bias.grad.data, g.sum(axis=0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(x.grad.data, g @ layer.weight.data.T, rtol=1e-5, atol=1e-6)


def test_mse_gradient_reaches_the_bias_as_twice_the_mean_residual():
    """For Linear + MSELoss over N samples and one output, d loss / d b = 2 mean(pred - y)."""
    layer = Linear(3, 1, seed=2)
    y = Y_REG[:, :1]
    pred = layer(Tensor(X))
    MSELoss()(pred, Tensor(y)).backward()
    residual = X @ layer.weight.data + layer.bias.data - y
    np.testing.assert_allclose(layer.bias.grad.data, [2 * residual.mean()], rtol=1e-5)
    np.testing.assert_allclose(layer.weight.grad.data, 2 * X.T @ residual / 6, rtol=1e-5)


def test_cross_entropy_gradient_is_softmax_minus_one_hot_over_n():
    """CrossEntropyLoss on logits = x W + b: dW = x^T (softmax - one_hot) / N."""
    layer = Linear(3, 3, seed=3)
    CrossEntropyLoss()(layer(Tensor(X)), Tensor(Y_CLASS)).backward()
    logits = X @ layer.weight.data + layer.bias.data
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    p[np.arange(6), Y_CLASS.astype(int)] -= 1
    np.testing.assert_allclose(layer.weight.grad.data, X.T @ p / 6, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(layer.bias.grad.data, p.sum(axis=0) / 6, rtol=1e-4, atol=1e-6)


def test_a_layer_applied_twice_gets_the_sum_of_both_uses():
    """Weight tying: the same Linear(3, 3) applied twice; its gradient covers both uses."""
    shared = Linear(3, 3, seed=4)

    class Tied:
        training = True

        def forward(self, x):
            return shared(shared(x).tanh())

        def parameters(self):
            return shared.parameters()

    _assert_matches_numerical(Tied(), MSELoss(), X, Y_REG[:, :1].repeat(3, axis=1))


def test_dropout_in_training_mode_backpropagates_through_its_mask():
    """With Dropout training, gradients flow only through kept units (scaled by 1/(1-p)): equal
    to the numerical gradient of the same mask (the RNG rewound before each forward). In eval
    mode Dropout is the identity, so gradients equal those of the model without it."""
    first, second = Linear(3, 8, seed=5), Linear(8, 2, seed=6)
    dropout = Dropout(0.5, seed=7)
    model = Sequential(first, ReLU(), dropout, second)
    start = dropout.rng.bit_generator.state

    class SameMask:
        training = True

        def forward(self, x):
            dropout.rng.bit_generator.state = start
            return model.forward(x)

        def parameters(self):
            return model.parameters()

    _assert_matches_numerical(SameMask(), MSELoss(), X, Y_REG)

    model.eval()
    without = Sequential(first, ReLU(), second)
    for p in model.parameters():
        p.grad = None
    MSELoss()(model(Tensor(X)), Tensor(Y_REG)).backward()
    with_dropout = [p.grad.data.copy() for p in model.parameters()]
    for p in model.parameters():
        p.grad = None
    MSELoss()(without(Tensor(X)), Tensor(Y_REG)).backward()
    for a, p in zip(with_dropout, without.parameters(), strict=True):
        assert np.array_equal(a, p.grad.data)


def test_gradients_accumulate_across_batches_until_zero_grad():
    """Two backward passes over two halves of a batch add their gradients (what gradient
    accumulation relies on); the optimizer's zero_grad clears every parameter's .grad."""
    model = Sequential(Linear(3, 4, seed=0), Tanh(), Linear(4, 2, seed=1))
    optimizer = SGD(model.parameters(), lr=0.1)
    loss_fn = MSELoss()
    for part in (slice(0, 3), slice(3, 6)):
        (loss_fn(model(Tensor(X[part])), Tensor(Y_REG[part])) * 0.5).backward()
    accumulated = [p.grad.data.copy() for p in model.parameters()]
    optimizer.zero_grad()
    assert all(p.grad is None for p in model.parameters())
    loss_fn(model(Tensor(X)), Tensor(Y_REG)).backward()
    for a, p in zip(accumulated, model.parameters(), strict=True):
        np.testing.assert_allclose(a, p.grad.data, rtol=1e-5, atol=1e-7)


def test_no_grad_forward_records_nothing_and_touches_no_gradient():
    """A forward pass under no_grad (how evaluation runs) builds no graph: its loss cannot be
    backpropagated and existing gradients stay exactly as they were."""
    model = Sequential(Linear(3, 4, seed=0), ReLU(), Linear(4, 2, seed=1))
    MSELoss()(model(Tensor(X)), Tensor(Y_REG)).backward()
    before = [p.grad.data.copy() for p in model.parameters()]
    with no_grad():
        loss = MSELoss()(model(Tensor(X)), Tensor(Y_REG))
    assert not loss.requires_grad
    with pytest.raises(RuntimeError):
        loss.backward()
    for b, p in zip(before, model.parameters(), strict=True):
        assert np.array_equal(b, p.grad.data)


def test_one_manual_training_step_lowers_the_loss():
    """Forward, loss, backward, step, zero_grad by hand (the five lines a Trainer wraps) on a
    classification problem: every step with a small lr lowers the full-batch loss."""
    x, y = blobs(n=60, classes=3, seed=5)
    model = Sequential(Linear(2, 8, seed=0), ReLU(), Linear(8, 3, seed=1))
    optimizer = SGD(model.parameters(), lr=0.05)
    loss_fn = CrossEntropyLoss()
    losses = []
    for _ in range(10):
        loss = loss_fn(model(Tensor(x)), Tensor(y))
        losses.append(float(loss.data))
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    assert all(b < a for a, b in zip(losses, losses[1:], strict=False)), losses
