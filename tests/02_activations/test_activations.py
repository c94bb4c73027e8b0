"""Module 02: ReLU, Sigmoid, Tanh and Softmax: values against numpy formulas, numerical
stability at extreme inputs, gradients against central differences, and ``act(x) ==
act.forward(x)``."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from support import numerical_grad

from tinytorch.core.activations import ReLU, Sigmoid, Softmax, Tanh
from tinytorch.core.tensor import Tensor

RTOL, ATOL = 1e-2, 1e-3


def _x(shape=(4, 5), seed: int = 0, scale: float = 2.0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-scale, scale, size=shape).astype(np.float32)


def _relu_input() -> np.ndarray:
    """Values at least 0.05 away from the kink, where central differences are exact."""
    x = _x()
    return np.where(np.abs(x) < 0.05, 0.5, x).astype(np.float32)


def _np_softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


REFERENCES = [
    ("relu", ReLU, lambda x: np.maximum(x, 0.0)),
    ("sigmoid", Sigmoid, lambda x: 1.0 / (1.0 + np.exp(-x))),
    ("tanh", Tanh, np.tanh),
    ("softmax", Softmax, _np_softmax),
]


@pytest.mark.parametrize(("name", "cls", "reference"), REFERENCES, ids=[r[0] for r in REFERENCES])
def test_forward_matches_numpy(name, cls, reference) -> None:
    """Each activation's output equals its textbook formula in float64, as float32 of the input's
    shape: catches wrong formulas (e.g. a sign error in sigmoid) and dtype leaks."""
    x = _relu_input()
    out = cls()(Tensor(x))
    assert isinstance(out, Tensor)
    assert out.shape == x.shape
    assert out.dtype == np.float32
    np.testing.assert_allclose(out.data, reference(x.astype(np.float64)), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(("name", "cls", "reference"), REFERENCES, ids=[r[0] for r in REFERENCES])
def test_call_equals_forward(name, cls, reference) -> None:
    """``act(x)`` is ``act.forward(x)``: catches a ``__call__`` that does something else (or is
    missing, so activations cannot sit in a Sequential)."""
    act = cls()
    x = Tensor(_x(seed=1))
    np.testing.assert_array_equal(act(x).data, act.forward(x).data)


@pytest.mark.parametrize(("name", "cls", "reference"), REFERENCES, ids=[r[0] for r in REFERENCES])
def test_gradient_matches_numerical(name, cls, reference) -> None:
    """Backpropagated gradient of sum(act(x) * W), random W, equals central differences: catches
    wrong derivatives, e.g. a softmax gradient that ignores the coupling between outputs (a plain
    sum would hide that, since softmax rows always sum to one)."""
    act = cls()
    x = Tensor(_relu_input(), requires_grad=True)
    upstream = np.random.default_rng(3).normal(size=x.shape)
    act(x).backward(upstream)

    def f() -> float:
        return float(np.sum(act(x).data.astype(np.float64) * upstream))

    assert x.grad is not None and x.grad.shape == x.shape
    np.testing.assert_allclose(x.grad.data, numerical_grad(f, x.data), rtol=RTOL, atol=ATOL)


def test_relu_gradient_is_a_mask() -> None:
    """ReLU passes the upstream gradient where x > 0 and blocks it where x < 0 (exactly)."""
    x = Tensor(np.array([-2.0, -0.5, 0.5, 3.0], dtype=np.float32), requires_grad=True)
    ReLU()(x).backward(np.array([1.0, 2.0, 3.0, 4.0], dtype=np.float32))
    np.testing.assert_array_equal(x.grad.data, [0.0, 0.0, 3.0, 4.0])


def test_sigmoid_is_stable_at_extremes() -> None:
    """Sigmoid at +-1000 (and +-100, +-88.8 where exp overflows float32) gives finite values in
    [0, 1] with no warnings, and a finite gradient: catches the naive 1/(1+exp(-x)) whose
    overflow warns (an error under pytest) or produces NaN."""
    x = Tensor(
        np.array([-1000.0, -100.0, -88.8, -20.0, 0.0, 20.0, 88.8, 100.0, 1000.0], np.float32),
        requires_grad=True,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = Sigmoid()(x)
        y.backward(np.ones(x.shape, dtype=np.float32))
    assert np.all(np.isfinite(y.data))
    assert np.all((y.data >= 0.0) & (y.data <= 1.0))
    np.testing.assert_allclose(y.data[[0, -1]], [0.0, 1.0], atol=1e-7)
    assert y.data[4] == 0.5
    assert np.all(np.diff(y.data) >= 0), "sigmoid must be non-decreasing"
    assert np.all(np.isfinite(x.grad.data))
    np.testing.assert_allclose(x.grad.data[4], 0.25, rtol=1e-6)


def test_tanh_saturates_without_warnings() -> None:
    """Tanh at +-1000 is +-1 with no warnings and zero gradient there."""
    x = Tensor(np.array([-1000.0, 1000.0], dtype=np.float32), requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = Tanh()(x)
        y.backward(np.ones(2, dtype=np.float32))
    np.testing.assert_array_equal(y.data, [-1.0, 1.0])
    np.testing.assert_array_equal(x.grad.data, [0.0, 0.0])


def test_softmax_rows_sum_to_one() -> None:
    """Every row of a softmax is a probability distribution: catches normalising over the wrong
    axis (columns) or not at all."""
    y = Softmax()(Tensor(_x((6, 4), seed=5, scale=5.0)))
    assert np.all(y.data > 0)
    np.testing.assert_allclose(y.data.sum(axis=1), np.ones(6), rtol=1e-6)


def test_softmax_axis_argument() -> None:
    """``Softmax(axis=0)`` normalises columns: catches an ignored axis argument."""
    x = _x((3, 4), seed=6)
    y = Softmax(axis=0)(Tensor(x))
    np.testing.assert_allclose(y.data, _np_softmax(x.astype(np.float64), axis=0), rtol=1e-5)
    np.testing.assert_allclose(y.data.sum(axis=0), np.ones(4), rtol=1e-6)


def test_softmax_is_stable_for_large_logits() -> None:
    """Logits near 1000 give the same probabilities as the same logits shifted to near 0, with no
    overflow warning: catches softmax without the max shift (exp(1000) = inf, then NaN)."""
    small = np.array([[0.0, 1.0, 2.0], [-3.0, 0.5, 0.0]], dtype=np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        big = Softmax()(Tensor(small + 1000.0)).data
        very_negative = Softmax()(Tensor(small - 1000.0)).data
    expected = _np_softmax(small.astype(np.float64))
    for y in (big, very_negative):
        assert np.all(np.isfinite(y))
        np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-6)
