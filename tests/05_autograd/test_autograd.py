"""Module 05: the graph machinery: ``no_grad``, gradients summed over every path, deep graphs
without recursion, and the graph freed after ``backward()``."""

from __future__ import annotations

import sys
import weakref

import numpy as np
import pytest

from tinytorch.core import autograd
from tinytorch.core.autograd import is_grad_enabled, no_grad
from tinytorch.core.tensor import Tensor


def _param(shape=(3,), seed: int = 0) -> Tensor:
    data = np.random.default_rng(seed).uniform(-1, 1, size=shape).astype(np.float32)
    return Tensor(data, requires_grad=True)


def test_grad_enabled_by_default() -> None:
    """Outside ``no_grad`` graphs are recorded: catches a global flag left False at import or by
    an earlier test."""
    assert is_grad_enabled() is True
    x = _param()
    y = x * 2.0
    assert y.requires_grad is True
    assert len(y._parents) > 0


def test_no_grad_records_no_graph() -> None:
    """Inside ``no_grad`` results do not require grad, hold no parents and cannot be
    backpropagated: catches evaluation code that still builds (and keeps alive) a graph."""
    x = _param()
    with no_grad():
        assert is_grad_enabled() is False
        y = (x * 3.0 + 1.0).sum()
        z = x.exp()
        w = x.reshape(1, 3) @ Tensor(np.ones((3, 2), dtype=np.float32))
    for result in (y, z, w):
        assert result.requires_grad is False
        assert result._parents == ()
    np.testing.assert_allclose(np.asarray(y.data), float((x.data * 3.0 + 1.0).sum()), rtol=1e-6)
    with pytest.raises(RuntimeError):
        y.backward()
    assert x.grad is None


def test_no_grad_nests_and_restores() -> None:
    """Leaving an inner ``no_grad`` keeps the outer one in force; leaving the outer one restores
    recording: catches a context manager that re-enables instead of restoring."""
    with no_grad():
        with no_grad():
            assert is_grad_enabled() is False
        assert is_grad_enabled() is False
        assert (_param() * 2.0).requires_grad is False
    assert is_grad_enabled() is True
    assert (_param() * 2.0).requires_grad is True


def test_no_grad_restores_after_exception() -> None:
    """An exception inside ``no_grad`` still restores recording: catches a missing ``finally``
    that would silently disable autograd for the rest of the program."""
    with pytest.raises(ZeroDivisionError):
        with no_grad():
            _ = 1 / 0
    assert is_grad_enabled() is True
    x = _param()
    (x * 2.0).sum().backward()
    np.testing.assert_allclose(x.grad.data, 2.0)


def test_no_grad_is_importable_from_autograd_module() -> None:
    """The spec names ``tinytorch.core.autograd.no_grad``; the module attribute is the same
    context manager used above (catches a renamed or duplicated flag)."""
    assert autograd.no_grad is no_grad
    with autograd.no_grad():
        assert autograd.is_grad_enabled() is False


def test_diamond_graph_sums_gradients_of_every_path() -> None:
    """x reaches the output directly and through b: d(sum(a + a*3*a))/dx must combine every path,
    each node's gradient complete before it propagates: catches overwritten (not summed)
    gradients and a wrong processing order."""
    data = np.array([0.5, -1.0, 2.0], dtype=np.float32)
    x = Tensor(data, requires_grad=True)
    a = x * 2.0  # used three times below
    b = a * 3.0
    c = a + b * a  # = 2x + 12 x^2
    c.sum().backward()
    np.testing.assert_allclose(x.grad.data, 2.0 + 24.0 * data, rtol=1e-6)


def test_same_tensor_as_both_operands() -> None:
    """``x * x`` and ``x + x`` list x twice as a parent; both contributions count: catches a
    parent dictionary keyed so that the second overwrites the first."""
    data = np.array([1.5, -2.0], dtype=np.float32)
    x = Tensor(data, requires_grad=True)
    (x * x + x + x).sum().backward()
    np.testing.assert_allclose(x.grad.data, 2 * data + 2.0, rtol=1e-6)


def test_deep_chain_does_not_hit_recursion_limit() -> None:
    """A chain of 3000 operations (deeper than the default recursion limit) backpropagates: catches
    a recursive graph walk that raises RecursionError on long unrolled computations."""
    depth = 3000
    assert depth > sys.getrecursionlimit() // 2
    x = Tensor(np.array([1.0, 2.0], dtype=np.float32), requires_grad=True)
    y = x
    for _ in range(depth):
        y = y * 1.0001
    y.sum().backward()
    np.testing.assert_allclose(x.grad.data, 1.0001**depth, rtol=1e-3)


def test_graph_is_freed_after_backward() -> None:
    """After backward the loss no longer holds its parents, so an intermediate activation the
    caller dropped is garbage: catches graphs (and every activation) kept alive by a stored
    loss, which grows memory every training step."""
    x = _param((4, 3))
    hidden = (x * 2.0).exp()
    ref = weakref.ref(hidden)
    loss = (hidden * hidden).sum()
    del hidden
    assert ref() is not None, "the graph should keep the activation alive before backward"
    loss.backward()
    assert loss._parents == ()
    assert ref() is None, "an activation survived backward(): the graph was not freed"
    assert x.grad is not None


def test_leaf_keeps_its_grad_and_is_not_freed() -> None:
    """Freeing the graph must not clear leaves: parameters keep ``.grad`` and can be used in a new
    forward pass whose gradient adds to it."""
    x = _param((2,))
    (x * 2.0).sum().backward()
    (x * 2.0).sum().backward()
    np.testing.assert_allclose(x.grad.data, 4.0)
    assert x.requires_grad is True
