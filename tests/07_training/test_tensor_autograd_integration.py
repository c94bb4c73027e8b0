"""Tensor operations and their gradients: the autograd that the training loop stands on.

There is no separate Variable class in this library: a Tensor with ``requires_grad=True`` is the
variable. Each operation's gradient is checked against a formula written out here in numpy and
against central differences; non-scalar results are reduced with a fixed, uneven weighting so a
transposed or mis-broadcast gradient cannot pass by symmetry.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from support import numerical_grad

from tinytorch.core.autograd import no_grad
from tinytorch.core.tensor import Tensor

RNG = np.random.default_rng(0)


def _array(*shape: int, low: float = -2.0, high: float = 2.0) -> np.ndarray:
    return RNG.uniform(low, high, size=shape).astype(np.float32)


def _weighted(out: Tensor, weights: np.ndarray) -> Tensor:
    """A scalar from ``out`` with upstream gradient ``weights`` (not all ones)."""
    return (out * Tensor(weights)).sum()


def _check(fn: Callable[..., Tensor], *arrays: np.ndarray, rtol=1e-2, atol=1e-3):
    """Autograd gradients of sum(fn(*inputs) * W) against numerical ones; returns them."""
    inputs = [Tensor(a.copy(), requires_grad=True) for a in arrays]
    out = fn(*inputs)
    weights = np.linspace(0.5, 1.5, out.data.size, dtype=np.float32).reshape(out.shape)
    _weighted(out, weights).backward()
    grads = []
    for i, t in enumerate(inputs):
        assert t.grad is not None, f"input {i} got no gradient"
        grad = t.grad.data
        assert grad.shape == t.data.shape and grad.dtype == np.float32

        def scalar() -> float:
            return float(_weighted(fn(*inputs), weights).data)

        np.testing.assert_allclose(grad, numerical_grad(scalar, t.data), rtol=rtol, atol=atol,
                                   err_msg=f"input {i}")
        grads.append((grad, weights))
    return grads


# ------------------------------------------------------------------ elementwise and reductions
UNARY = {
    # name: (operation, input, d out / d x written by hand, as a function of x)
    "relu": (lambda t: t.relu(), _array(3, 4), lambda x: (x > 0).astype(np.float64)),
    "sigmoid": (lambda t: t.sigmoid(), _array(3, 4),
                lambda x: np.exp(-x) / (1 + np.exp(-x)) ** 2),
    "tanh": (lambda t: t.tanh(), _array(3, 4), lambda x: 1 - np.tanh(x) ** 2),
    "exp": (lambda t: t.exp(), _array(3, 4), np.exp),
    "log": (lambda t: t.log(), _array(3, 4, low=0.5, high=3.0), lambda x: 1 / x),
    "neg": (lambda t: -t, _array(3, 4), lambda x: -np.ones_like(x)),
    "square": (lambda t: t**2, _array(3, 4), lambda x: 2 * x),
    "cube_root_power": (lambda t: t ** (1 / 3), _array(3, 4, low=0.5, high=3.0),
                        lambda x: x ** (-2 / 3) / 3),
}


@pytest.mark.parametrize("name", list(UNARY))
def test_elementwise_gradients(name):
    """relu, sigmoid, tanh, exp, log, negation and powers: the gradient is the upstream
    gradient times the derivative (written by hand) at each element."""
    op, x, derivative = UNARY[name]
    if name == "relu":
        x = np.where(np.abs(x) < 0.05, 0.5, x).astype(np.float32)  # keep away from the kink
    [(grad, weights)] = _check(op, x)
    np.testing.assert_allclose(grad, weights * derivative(x.astype(np.float64)), rtol=1e-5,
                               atol=1e-6)


def test_sum_mean_and_axis_reductions():
    """sum and mean, over everything and along an axis (with and without keepdims), spread
    the upstream gradient back over the reduced elements (divided by the count for mean)."""
    x = _array(3, 4)
    for op in (
        lambda t: t.sum(),
        lambda t: t.mean(),
        lambda t: t.sum(axis=0),
        lambda t: t.mean(axis=1),
        lambda t: t.sum(axis=1, keepdims=True),
    ):
        _check(op, x)
    t = Tensor(x, requires_grad=True)
    t.mean().backward()
    assert np.array_equal(t.grad.data, np.full((3, 4), 1 / 12, dtype=np.float32))


def test_shape_operations_route_gradients_back():
    """reshape, transpose and indexing move gradients back to where each element came from;
    an element indexed twice gets both contributions."""
    x = _array(3, 4)
    _check(lambda t: t.reshape(4, 3), x)
    _check(lambda t: t.transpose(), x)
    _check(lambda t: t.T, x)
    _check(lambda t: t[1:, ::2], x)
    t = Tensor(x, requires_grad=True)
    (t[np.array([0, 0, 2])].sum()).backward()
    expected = np.zeros((3, 4), dtype=np.float32)
    expected[0] = 2
    expected[2] = 1
    assert np.array_equal(t.grad.data, expected)


def test_softmax_gradient():
    """softmax along the last axis: the Jacobian-vector product y * (g - sum(g * y))."""
    x = _array(4, 5)
    [(grad, g)] = _check(lambda t: t.softmax(axis=-1), x)
    y = np.exp(x - x.max(axis=1, keepdims=True))
    y /= y.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(grad, y * (g - (g * y).sum(axis=1, keepdims=True)), atol=1e-6)


# ------------------------------------------------------------------ binary ops, broadcasting
BINARY_SHAPES = [((3, 4), (3, 4)), ((3, 4), (4,)), ((3, 1), (1, 4)), ((3, 4), ()), ((4,), (3, 4))]


@pytest.mark.parametrize("shapes", BINARY_SHAPES, ids=str)
@pytest.mark.parametrize("op", ["add", "sub", "mul", "div"])
def test_binary_gradients_are_reduced_to_each_operands_shape(op, shapes):
    """a + b, a - b, a * b, a / b with broadcasting: each operand's gradient has its own shape
    (summed over the broadcast axes) and matches the numerical gradient."""
    a_shape, b_shape = shapes
    a = _array(*a_shape)
    b = _array(*b_shape, low=0.5, high=2.0) if op == "div" else _array(*b_shape)
    fn = {
        "add": lambda s, t: s + t,
        "sub": lambda s, t: s - t,
        "mul": lambda s, t: s * t,
        "div": lambda s, t: s / t,
    }[op]
    _check(fn, a, b)


def test_add_and_mul_gradients_by_hand():
    """d(a * b)/da = b and d(a + b)/db = 1, summed over the broadcast rows for the (4,) operand."""
    a, b = _array(3, 4), _array(4)
    ta, tb = Tensor(a, requires_grad=True), Tensor(b, requires_grad=True)
    ((ta * tb).sum() + (ta + tb).sum()).backward()
    np.testing.assert_allclose(ta.grad.data, np.broadcast_to(b, (3, 4)) + 1, rtol=1e-6)
    np.testing.assert_allclose(tb.grad.data, a.sum(axis=0) + 3, rtol=1e-6)


def test_matmul_gradients():
    """(A @ B): dA = G @ B^T and dB = A^T @ G, checked by hand and numerically."""
    a, b = _array(3, 5), _array(5, 2)
    [(grad_a, g), (grad_b, _)] = _check(lambda s, t: s @ t, a, b)
    np.testing.assert_allclose(grad_a, g @ b.T, rtol=1e-5)
    np.testing.assert_allclose(grad_b, a.T @ g, rtol=1e-5)


def test_operators_with_numbers_and_arrays_on_either_side():
    """Python numbers and numpy arrays on the left of an operator still give Tensors that
    carry gradients (2 - x, 1 / x, array * x, array @ x)."""
    x = _array(2, 2, low=0.5, high=2.0)
    m = _array(2, 2)
    for fn in (lambda t: 2 - t, lambda t: 1 / t, lambda t: m * t, lambda t: m @ t,
               lambda t: 3 + t, lambda t: 0.5 * t):
        out = fn(Tensor(x, requires_grad=True))
        assert isinstance(out, Tensor)
        _check(fn, x)


# ------------------------------------------------------------------ the graph
def test_requires_grad_propagates_only_from_leaves_that_need_it():
    """A result requires grad iff an input does; constants never get a gradient; no_grad()
    records nothing."""
    p = Tensor(_array(2, 2), requires_grad=True)
    c = Tensor(_array(2, 2))
    assert (p * c).requires_grad and (c + p).requires_grad
    assert not (c * c).requires_grad
    ((p * c).sum()).backward()
    assert c.grad is None and p.grad is not None
    with no_grad():
        inside = p * c + p
    assert not inside.requires_grad
    with pytest.raises(RuntimeError):
        inside.sum().backward()


def test_a_tensor_used_twice_gets_both_contributions():
    """Diamond graph z = x * x + x * y + x: dz/dx = 2x + y + 1 and dz/dy = x."""
    x, y = _array(3), _array(3)
    tx, ty = Tensor(x, requires_grad=True), Tensor(y, requires_grad=True)
    (tx * tx + tx * ty + tx).sum().backward()
    np.testing.assert_allclose(tx.grad.data, 2 * x + y + 1, rtol=1e-6)
    np.testing.assert_allclose(ty.grad.data, x, rtol=1e-6)


def test_gradients_add_up_over_backward_calls_until_cleared():
    """Two backward passes (separate graphs) add into .grad; clearing it starts again from 0."""
    x = _array(3)
    t = Tensor(x, requires_grad=True)
    (t * t).sum().backward()
    (t * 3).sum().backward()
    np.testing.assert_allclose(t.grad.data, 2 * x + 3, rtol=1e-6)
    t.zero_grad()
    assert t.grad is None
    (t * 3).sum().backward()
    np.testing.assert_allclose(t.grad.data, np.full(3, 3.0))


def test_only_leaves_keep_gradients_and_the_graph_is_used_once():
    """Intermediate results keep no .grad; backward through the same graph twice is an error
    (its buffers were freed) rather than a silent double count."""
    t = Tensor(_array(3), requires_grad=True)
    hidden = t.exp()
    loss = (hidden * 2).sum()
    loss.backward()
    assert hidden.grad is None
    with pytest.raises(RuntimeError, match="twice"):
        loss.backward()


def test_backward_of_a_non_scalar_needs_its_gradient():
    """A non-scalar output needs an explicit upstream gradient, which is then used as given."""
    x = _array(2, 3)
    t = Tensor(x, requires_grad=True)
    out = t * t
    with pytest.raises(RuntimeError, match="scalar"):
        out.backward()
    g = _array(2, 3)
    out.backward(g)
    np.testing.assert_allclose(t.grad.data, 2 * x * g, rtol=1e-6)


def test_detach_stops_the_gradient():
    """detach() gives the same values with no history: nothing flows back through it."""
    x = _array(3)
    t = Tensor(x, requires_grad=True)
    (t * t.detach()).sum().backward()
    np.testing.assert_allclose(t.grad.data, x, rtol=1e-6)  # not 2x


def test_saturated_sigmoid_and_a_long_chain_stay_finite():
    """sigmoid at +-100 raises no overflow warning (warnings are errors here) and has finite
    gradients; a chain of 3,000 operations backpropagates without hitting the recursion limit."""
    t = Tensor(np.array([-100.0, 0.0, 100.0], dtype=np.float32), requires_grad=True)
    t.sigmoid().sum().backward()
    np.testing.assert_allclose(t.grad.data, [0.0, 0.25, 0.0], atol=1e-12)
    u = Tensor(np.array([1.0], dtype=np.float32), requires_grad=True)
    out = u
    for _ in range(3000):
        out = out * 1.0 + 0.0
    out.sum().backward()
    assert np.array_equal(u.grad.data, [1.0])
