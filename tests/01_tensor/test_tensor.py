"""Module 01: Tensor construction, every operator's forward value against numpy, and every
operator's gradient against central differences (broadcast operands included), plus the rules
of ``backward()``.

Each gradient check backpropagates a fixed random upstream gradient ``W`` through one operation
and compares every input's ``.grad`` with the numerical gradient of ``sum(op(inputs) * W)``. A
random ``W`` (rather than ``sum()``) keeps errors that a plain sum would hide, for example a
softmax or a transpose whose gradient is summed the wrong way.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from support import numerical_grad

from tinytorch.core.tensor import Tensor

RTOL, ATOL = 1e-2, 1e-3  # central differences evaluated around float32 data


def _array(shape: tuple[int, ...], low: float = -1.0, high: float = 1.0, seed: int = 0):
    return np.random.default_rng(seed).uniform(low, high, size=shape).astype(np.float32)


# A fixed float64 constant for the "Tensor (op) ndarray" and "ndarray (op) Tensor" cases.
C43 = np.random.default_rng(42).uniform(0.5, 1.5, size=(4, 3))
MASK = np.array([True, False, True, True])

# (id, op on Tensors, the same op on float64 ndarrays or None if the same lambda works,
#  input specs: (shape, low, high) per input)
POS = (0.5, 2.0)  # a domain away from zero for division, log, fractional and negative powers
CASES: list[tuple[str, Callable, Callable | None, list[tuple]]] = [
    ("add", lambda a, b: a + b, None, [((4, 3),), ((4, 3),)]),
    ("add_bias_row", lambda a, b: a + b, None, [((4, 3),), ((3,),)]),
    ("add_row_first", lambda a, b: a + b, None, [((3,),), ((4, 3),)]),
    ("add_column", lambda a, b: a + b, None, [((4, 1),), ((4, 3),)]),
    ("add_outer", lambda a, b: a + b, None, [((4, 1),), ((1, 3),)]),
    ("add_scalar_tensor", lambda a, b: a + b, None, [((),), ((4, 3),)]),
    ("add_number", lambda a: a + 2.5, None, [((4, 3),)]),
    ("radd_number", lambda a: 2.5 + a, None, [((4, 3),)]),
    ("add_ndarray", lambda a: a + C43, None, [((4, 3),)]),
    ("radd_ndarray", lambda a: C43 + a, None, [((4, 3),)]),
    ("radd_ndarray_broadcast", lambda a: C43 + a, None, [((3,),)]),
    ("sub", lambda a, b: a - b, None, [((4, 3),), ((4, 3),)]),
    ("sub_bias_row", lambda a, b: a - b, None, [((4, 3),), ((3,),)]),
    ("sub_column_first", lambda a, b: a - b, None, [((4, 1),), ((4, 3),)]),
    ("sub_scalar_tensor", lambda a, b: a - b, None, [((4, 3),), ((),)]),
    ("sub_number", lambda a: a - 1.5, None, [((4, 3),)]),
    ("rsub_number", lambda a: 1.5 - a, None, [((4, 3),)]),
    ("rsub_ndarray", lambda a: C43 - a, None, [((4, 3),)]),
    ("rsub_ndarray_broadcast", lambda a: C43 - a, None, [((4, 1),)]),
    ("mul", lambda a, b: a * b, None, [((4, 3),), ((4, 3),)]),
    ("mul_column", lambda a, b: a * b, None, [((4, 1),), ((4, 3),)]),
    ("mul_row", lambda a, b: a * b, None, [((4, 3),), ((3,),)]),
    ("mul_outer", lambda a, b: a * b, None, [((4, 1),), ((1, 3),)]),
    ("mul_scalar_tensor", lambda a, b: a * b, None, [((),), ((4, 3),)]),
    ("mul_self", lambda a: a * a, None, [((4, 3),)]),
    ("mul_number", lambda a: a * -3.0, None, [((4, 3),)]),
    ("rmul_number", lambda a: -3.0 * a, None, [((4, 3),)]),
    ("rmul_ndarray", lambda a: C43 * a, None, [((4, 3),)]),
    ("rmul_ndarray_broadcast", lambda a: C43 * a, None, [((4, 1),)]),
    ("div", lambda a, b: a / b, None, [((4, 3),), ((4, 3), *POS)]),
    ("div_row", lambda a, b: a / b, None, [((4, 3),), ((3,), *POS)]),
    ("div_column_numerator", lambda a, b: a / b, None, [((4, 1),), ((4, 3), *POS)]),
    ("div_scalar_tensor", lambda a, b: a / b, None, [((4, 3),), ((), *POS)]),
    ("div_number", lambda a: a / 4.0, None, [((4, 3),)]),
    ("rdiv_number", lambda a: 2.0 / a, None, [((4, 3), *POS)]),
    ("rdiv_ndarray", lambda a: C43 / a, None, [((4, 3), *POS)]),
    ("rdiv_ndarray_broadcast", lambda a: C43 / a, None, [((3,), *POS)]),
    ("neg", lambda a: -a, None, [((4, 3),)]),
    ("pow_2", lambda a: a**2, None, [((4, 3),)]),
    ("pow_3", lambda a: a**3, None, [((4, 3),)]),
    ("pow_half", lambda a: a**0.5, None, [((4, 3), *POS)]),
    ("pow_minus_one", lambda a: a**-1, None, [((4, 3), *POS)]),
    ("pow_minus_1_5", lambda a: a**-1.5, None, [((4, 3), *POS)]),
    ("matmul", lambda a, b: a @ b, None, [((4, 3),), ((3, 2),)]),
    ("matmul_method", lambda a, b: a.matmul(b), np.matmul, [((4, 3),), ((3, 2),)]),
    ("matmul_ndarray_right", lambda a: a @ C43.T, None, [((2, 3),)]),
    ("rmatmul_ndarray", lambda a: C43 @ a, None, [((3, 2),)]),
    ("sum_all", lambda a: a.sum(), None, [((4, 3),)]),
    ("sum_axis0", lambda a: a.sum(axis=0), None, [((4, 3),)]),
    ("sum_axis1", lambda a: a.sum(axis=1), None, [((4, 3),)]),
    ("sum_axis_neg", lambda a: a.sum(axis=-1), None, [((2, 3, 4),)]),
    ("sum_axis_tuple", lambda a: a.sum(axis=(0, 2)), None, [((2, 3, 4),)]),
    ("sum_keepdims0", lambda a: a.sum(axis=0, keepdims=True), None, [((4, 3),)]),
    ("sum_keepdims1", lambda a: a.sum(axis=1, keepdims=True), None, [((4, 3),)]),
    ("sum_all_keepdims", lambda a: a.sum(keepdims=True), None, [((4, 3),)]),
    ("mean_all", lambda a: a.mean(), None, [((4, 3),)]),
    ("mean_axis0", lambda a: a.mean(axis=0), None, [((4, 3),)]),
    ("mean_axis1", lambda a: a.mean(axis=1), None, [((4, 3),)]),
    ("mean_axis_tuple", lambda a: a.mean(axis=(0, 2)), None, [((2, 3, 4),)]),
    ("mean_keepdims0", lambda a: a.mean(axis=0, keepdims=True), None, [((4, 3),)]),
    ("mean_keepdims1", lambda a: a.mean(axis=1, keepdims=True), None, [((4, 3),)]),
    ("reshape_tuple", lambda a: a.reshape((3, 4)), None, [((4, 3),)]),
    ("reshape_varargs", lambda a: a.reshape(2, 6), None, [((4, 3),)]),
    ("reshape_flat", lambda a: a.reshape(-1), None, [((4, 3),)]),
    ("reshape_infer", lambda a: a.reshape(-1, 2), None, [((4, 3),)]),
    ("transpose_2d", lambda a: a.transpose(), None, [((4, 3),)]),
    ("transpose_T", lambda a: a.T, None, [((4, 3),)]),
    ("transpose_axes_102", lambda a: a.transpose(1, 0, 2), None, [((2, 3, 4),)]),
    ("transpose_axes_201", lambda a: a.transpose(2, 0, 1), None, [((2, 3, 4),)]),
    ("exp", lambda a: a.exp(), np.exp, [((4, 3),)]),
    ("log", lambda a: a.log(), np.log, [((4, 3), *POS)]),
    ("getitem_row", lambda a: a[1], None, [((4, 3),)]),
    ("getitem_element", lambda a: a[2, 1], None, [((4, 3),)]),
    ("getitem_slice", lambda a: a[1:3], None, [((4, 3),)]),
    ("getitem_column", lambda a: a[:, 1], None, [((4, 3),)]),
    ("getitem_repeated_rows", lambda a: a[[0, 2, 0, 0]], None, [((4, 3),)]),
    ("getitem_pairs", lambda a: a[[0, 1, 1], [2, 0, 0]], None, [((4, 3),)]),
    ("getitem_mask", lambda a: a[MASK], None, [((4, 3),)]),
    ("chain", lambda a, b: ((a * b + 1.0) / (b * b + 1.0)).sum(axis=0), None,
     [((4, 3),), ((3,),)]),
]  # fmt: skip


def _inputs(specs: list[tuple], seed: int = 0) -> list[np.ndarray]:
    arrays = []
    for i, spec in enumerate(specs):
        shape, low, high = spec if len(spec) == 3 else (spec[0], -1.0, 1.0)
        arrays.append(_array(shape, low, high, seed=seed + i))
    return arrays


@pytest.mark.parametrize(("name", "op", "np_op", "specs"), CASES, ids=[c[0] for c in CASES])
def test_forward_matches_numpy(name, op, np_op, specs) -> None:
    """Each operator's value (and float32 dtype) equals numpy's on the same data: catches wrong
    math, a reflected operator with its operands swapped, and float64 leaking into results."""
    arrays = _inputs(specs)
    out = op(*[Tensor(a) for a in arrays])
    expected = (np_op or op)(*[a.astype(np.float64) for a in arrays])
    assert isinstance(out, Tensor), f"{name} returned {type(out).__name__}, not a Tensor"
    assert out.dtype == np.float32
    assert out.shape == np.shape(expected)
    np.testing.assert_allclose(np.asarray(out.data), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(("name", "op", "np_op", "specs"), CASES, ids=[c[0] for c in CASES])
def test_gradient_matches_numerical(name, op, np_op, specs) -> None:
    """Backpropagated gradients equal central differences and have each operand's own shape:
    catches wrong derivative formulas and broadcast gradients not summed back to the operand."""
    arrays = _inputs(specs)
    tensors = [Tensor(a, requires_grad=True) for a in arrays]
    out = op(*tensors)
    upstream = np.random.default_rng(7).normal(size=out.shape)
    out.backward(upstream)

    def f() -> float:
        return float(np.sum(np.asarray(op(*tensors).data, dtype=np.float64) * upstream))

    for i, t in enumerate(tensors):
        assert t.grad is not None, f"{name}: input {i} got no gradient"
        grad = np.asarray(t.grad.data)
        assert grad.shape == t.shape, f"{name}: input {i} grad {grad.shape} vs shape {t.shape}"
        assert grad.dtype == np.float32
        np.testing.assert_allclose(
            grad, numerical_grad(f, t.data), rtol=RTOL, atol=ATOL, err_msg=f"{name} input {i}"
        )


def test_linear_layer_gradients_closed_form() -> None:
    """The gradients every Linear layer relies on, to float32 precision: d(A @ B) is (G B^T,
    A^T G), and a (3,) bias added to (4, 3) gets G's column sums: catches small scale errors
    (say a stray factor of 1.01) that the numerical check's 1e-2 tolerance cannot see."""
    a, b, bias = _array((4, 3), seed=1), _array((3, 2), seed=2), _array((2,), seed=3)
    g = _array((4, 2), seed=4)
    ta, tb, tbias = (Tensor(v, requires_grad=True) for v in (a, b, bias))
    (ta @ tb + tbias).backward(g)
    a64, b64, g64 = (v.astype(np.float64) for v in (a, b, g))
    np.testing.assert_allclose(ta.grad.data, g64 @ b64.T, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(tb.grad.data, a64.T @ g64, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(tbias.grad.data, g64.sum(axis=0), rtol=1e-5, atol=1e-6)


# ----------------------------------------------------------------------------- construction
@pytest.mark.parametrize(
    "value",
    [
        [1, 2, 3],
        [[1.5, -2.0], [3.0, 4.25]],
        7,
        2.5,
        np.float64(1.0 / 3.0),
        np.arange(6, dtype=np.int64).reshape(2, 3),
        np.linspace(0, 1, 5, dtype=np.float64),
        np.array([True, False]),
    ],
    ids=["int_list", "nested_float_list", "int", "float", "np_float64", "int_array",
         "float64_array", "bool_array"],
)  # fmt: skip
def test_construction_is_always_float32(value) -> None:
    """Whatever it is built from, a Tensor holds float32 data with the input's values and shape:
    catches int or float64 storage leaking into the float32 pipeline."""
    t = Tensor(value)
    expected = np.asarray(value).astype(np.float32)
    assert isinstance(t.data, np.ndarray)
    assert t.data.dtype == np.float32
    assert t.dtype == np.float32
    assert t.shape == expected.shape
    np.testing.assert_array_equal(t.data, expected)
    assert t.requires_grad is False
    assert t.grad is None


def test_requires_grad_flag_and_propagation() -> None:
    """requires_grad is stored, and an operation's result requires grad exactly when an input
    does: catches graphs recorded for constants or lost for parameters."""
    p = Tensor([1.0, 2.0], requires_grad=True)
    c = Tensor([3.0, 4.0])
    assert p.requires_grad is True
    assert (p * c).requires_grad is True
    assert (c * p).requires_grad is True
    assert (c * c).requires_grad is False
    assert (c + 1.0).requires_grad is False


def test_results_of_scalar_reductions_hold_ndarrays() -> None:
    """The spec says ``.data`` is a float32 ndarray; a full reduction or an op on 0-d tensors must
    not leave a numpy scalar (np.float32) there, which breaks ``data[...] = v`` and
    ``isinstance(t.data, np.ndarray)`` checks."""
    x = Tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    results = {
        "sum()": x.sum(),
        "mean()": x.mean(),
        "0-d * 0-d": Tensor(2.0) * Tensor(3.0),
        "x[0, 0]": x[0, 0],
    }
    not_arrays = {
        name: type(r.data).__name__
        for name, r in results.items()
        if not isinstance(r.data, np.ndarray)
    }
    assert not not_arrays, f".data is not an ndarray for {not_arrays}"
    for r in results.values():
        assert r.data.dtype == np.float32
        assert r.shape == ()


# ----------------------------------------------------------------------------- __array__
def test_numpy_functions_accept_a_tensor() -> None:
    """``__array__`` lets numpy functions take a Tensor directly: catches a missing or broken
    ``__array__`` (wrong dtype, object arrays, ignored dtype argument)."""
    data = _array((3, 4), seed=3)
    t = Tensor(data)
    plain = np.asarray(t)
    assert isinstance(plain, np.ndarray) and plain.dtype == np.float32
    np.testing.assert_array_equal(plain, data)
    assert np.asarray(t, dtype=np.float64).dtype == np.float64
    np.testing.assert_array_equal(np.exp(t), np.exp(data))
    np.testing.assert_array_equal(np.maximum(t, 0), np.maximum(data, 0))
    np.testing.assert_array_equal(np.concatenate([t, t]), np.concatenate([data, data]))
    np.testing.assert_array_equal(np.transpose(t), data.T)
    np.testing.assert_array_equal(np.reshape(t, -1), data.reshape(-1))
    assert np.max(t) == data.max()
    assert np.argmax(t) == np.argmax(data)
    assert np.allclose(t, data)


@pytest.mark.parametrize("func", [np.sum, np.mean, np.max, np.min, np.sqrt, np.abs, np.square,
                                  np.linalg.norm, np.argmax, np.isfinite])
def test_numpy_functions_take_a_tensor_as_its_array(func: Callable[..., Any]) -> None:
    """The spec: ``np.sum(t)`` works as on ``t.data``. Catches numpy dispatching ``np.sum(t)``
    to ``t.sum(axis=None, dtype=None, out=None)`` (a TypeError) or ``np.mean`` to ``t.mean``."""
    data = np.array([[1.0, 4.0], [9.0, 2.0]], np.float32)
    expected = func(data)
    observed = func(Tensor(data))
    assert not isinstance(observed, Tensor)
    np.testing.assert_array_equal(observed, expected)
    assert np.asarray(observed).dtype == np.asarray(expected).dtype


def test_numpy_functions_unwrap_tensors_inside_lists_and_keywords() -> None:
    a, b = Tensor([1.0, 2.0]), Tensor([3.0])
    np.testing.assert_array_equal(np.concatenate([a, b]), [1.0, 2.0, 3.0])
    np.testing.assert_array_equal(np.sum(a, axis=0, keepdims=True), [3.0])
    np.testing.assert_array_equal(np.where(a.data > 1, a, b), [3.0, 2.0])


def test_array_copy_does_not_alias_the_tensor() -> None:
    """``np.array(t)`` (copy=True) returns a copy: catches ``__array__`` ignoring ``copy`` so that
    editing the copy would silently edit a parameter."""
    t = Tensor([1.0, 2.0, 3.0])
    copy = np.array(t, copy=True)
    copy[0] = 100.0
    assert t.data[0] == 1.0


# ----------------------------------------------------------------------------- backward()
def test_scalar_backward_needs_no_argument() -> None:
    """A scalar output's backward() seeds with 1: catches a required ``gradient`` argument or a
    wrong seed."""
    data = _array((2, 3), seed=1)
    x = Tensor(data, requires_grad=True)
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad.data, 2 * data, rtol=1e-6)
    assert isinstance(x.grad, Tensor)


def test_non_scalar_backward_without_gradient_raises() -> None:
    """backward() on a (2, 3) output with no gradient raises RuntimeError (as PyTorch): catches an
    implicit all-ones seed that silently differentiates the sum."""
    x = Tensor(_array((2, 3)), requires_grad=True)
    with pytest.raises(RuntimeError):
        (x * 2.0).backward()
    assert x.grad is None


def test_non_scalar_backward_with_gradient() -> None:
    """backward(gradient) uses the given upstream gradient: catches ignoring the argument."""
    x = Tensor(_array((2, 3)), requires_grad=True)
    g = _array((2, 3), seed=5)
    (x * 3.0).backward(g)
    np.testing.assert_allclose(x.grad.data, 3.0 * g, rtol=1e-6)


def test_gradients_add_across_backward_calls() -> None:
    """Two backward passes add into ``.grad`` until it is cleared: catches overwriting, which
    would make a missing ``zero_grad()`` harmless and gradient accumulation impossible."""
    data = _array((3,), seed=2)
    x = Tensor(data, requires_grad=True)
    (x * x).sum().backward()
    first = x.grad.data.copy()
    np.testing.assert_allclose(first, 2 * data, rtol=1e-6)
    (x * 3.0).sum().backward()
    np.testing.assert_allclose(x.grad.data, 2 * data + 3.0, rtol=1e-6)


def test_second_backward_through_same_graph_raises() -> None:
    """The graph is freed after one backward; a second call raises RuntimeError instead of
    silently returning wrong (or doubled) gradients."""
    x = Tensor(_array((3,)), requires_grad=True)
    loss = (x * x).sum()
    loss.backward()
    before = x.grad.data.copy()
    with pytest.raises(RuntimeError):
        loss.backward()
    np.testing.assert_array_equal(x.grad.data, before)


def test_backward_on_tensor_without_grad_raises() -> None:
    """backward() on a constant or on a result computed only from constants raises RuntimeError:
    catches a silent no-op that hides a forgotten ``requires_grad=True``."""
    c = Tensor(_array((3,)))
    with pytest.raises(RuntimeError):
        c.sum().backward()
    with pytest.raises(RuntimeError):
        Tensor(2.0).backward()


def test_grad_set_to_plain_ndarray_is_accumulated_into() -> None:
    """A ``.grad`` someone set to a plain (float64) ndarray is added to, not replaced, and the
    result is a float32 Tensor: catches ``.grad.data`` on an ndarray crashing or overwriting."""
    data = _array((2, 2), seed=4)
    x = Tensor(data, requires_grad=True)
    x.grad = np.full((2, 2), 0.5, dtype=np.float64)
    (x * 3.0).sum().backward()
    assert isinstance(x.grad, Tensor)
    assert x.grad.data.dtype == np.float32
    np.testing.assert_allclose(x.grad.data, np.full((2, 2), 3.5), rtol=1e-6)


def test_constant_operand_gets_no_grad() -> None:
    """Only tensors that require grad receive ``.grad``: catches gradients written into inputs or
    constants (wasted memory, and surprises when they are reused)."""
    x = Tensor(_array((2, 2)), requires_grad=True)
    c = Tensor(_array((2, 2), seed=9))
    (x * c + c).sum().backward()
    assert c.grad is None
    np.testing.assert_allclose(x.grad.data, c.data, rtol=1e-6)


def test_tensor_copies_the_callers_array() -> None:
    """Like torch.tensor: an optimizer updating a parameter in place must not write into the
    array it was built from (a student's dataset or initial weights)."""
    source = np.ones(3, dtype=np.float32)
    p = Tensor(source, requires_grad=True)
    p.data -= 0.5
    np.testing.assert_array_equal(source, np.ones(3, dtype=np.float32))


def test_backward_gradient_must_match_the_output_shape() -> None:
    """A (3,) gradient for a (2, 3) output is a caller's mistake; broadcasting it silently would
    double the gradient of every parameter."""
    x = Tensor(np.ones((2, 3)), requires_grad=True)
    y = x * 2.0
    with pytest.raises(RuntimeError, match=r"shape \(3,\).*\(2, 3\)"):
        y.backward(np.ones(3))
    assert x.grad is None
