"""Module 01: Tensor, a float32 numpy array that can remember how it was computed.

Each operation below is three lines of math: the forward result, and a ``backward`` closure that
maps the output's gradient to each input's gradient. The graph walk itself lives in
``tinytorch.core.autograd``. Gradients of broadcast operands are summed back to the operand's
shape (``_unbroadcast``), the step students most often get wrong when writing autograd by hand.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from tinytorch.core import autograd

DTYPE = np.float32
# Every tensor gets the next number when it is created; autograd uses it as a topological order.
_creation_counter = itertools.count()
ArrayLike = Any  # anything np.asarray accepts, or a Tensor


def _as_array(value: ArrayLike) -> np.ndarray:
    """float32 view or copy of ``value`` (a Tensor, an ndarray, a number or a nested list)."""
    if isinstance(value, Tensor):
        return value.data
    array = np.asarray(value)
    return array if array.dtype == DTYPE else array.astype(DTYPE)


def _unbroadcast(grad: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum ``grad`` over the axes that broadcasting added or stretched, back to ``shape``."""
    if grad.shape == shape:
        return grad
    extra = grad.ndim - len(shape)
    axes = tuple(range(extra)) + tuple(
        i + extra for i, size in enumerate(shape) if size == 1 and grad.shape[i + extra] != 1
    )
    return grad.sum(axis=axes, keepdims=False).reshape(shape) if axes else grad.reshape(shape)


class Tensor:
    """A float32 array with an optional gradient.

    ``requires_grad=True`` marks a leaf whose gradient ``backward()`` should compute; results of
    operations on such tensors record the graph (unless inside ``no_grad()``).
    """

    __array_priority__ = 1000  # make ndarray (op) Tensor call the Tensor's reflected operator

    def __init__(self, data: ArrayLike, requires_grad: bool = False) -> None:
        # A copy, as torch.tensor makes: an optimizer updating this tensor in place must not
        # change the caller's array.
        self.data: np.ndarray = np.array(_as_array(data), dtype=DTYPE)
        self.requires_grad: bool = bool(requires_grad)
        self.grad: Tensor | np.ndarray | None = None
        self._parents: tuple[Tensor, ...] = ()
        self._backward: Callable[[np.ndarray], tuple] | None = None
        self._order = next(_creation_counter)

    @classmethod
    def _make(
        cls,
        data: np.ndarray,
        parents: tuple[Tensor, ...] = (),
        backward: Callable[[np.ndarray], tuple] | None = None,
    ) -> Tensor:
        """Result of an operation: records the graph only when some parent needs a gradient.
        Takes ``data`` without copying it (the operation just computed it)."""
        out = cls.__new__(cls)
        # numpy reductions return scalars (np.float32), not arrays: keep .data an ndarray.
        is_ready = isinstance(data, np.ndarray) and data.dtype == DTYPE
        out.data = data if is_ready else np.asarray(data, dtype=DTYPE)
        out.grad = None
        # A loop, not any(generator): this runs for every operation of every step.
        recorded = False
        if autograd._grad_enabled:
            for parent in parents:
                if parent.requires_grad:
                    recorded = True
                    break
        out.requires_grad = recorded
        out._parents = parents if recorded else ()
        out._backward = backward if recorded else None
        out._order = next(_creation_counter)
        return out

    # ----------------------------------------------------------------------------- basics
    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def size(self) -> int:
        return self.data.size

    def __len__(self) -> int:
        return len(self.data)

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        if dtype is not None and dtype != self.data.dtype:
            return self.data.astype(dtype)
        return self.data.copy() if copy else self.data

    def __array_function__(self, func: Any, types: Any, args: Any, kwargs: Any) -> Any:
        """numpy functions see the array: ``np.sum(t)`` is ``np.sum(t.data)`` (numpy would
        otherwise call ``t.sum(axis=..., dtype=..., out=...)``, the autograd method). The result
        is plain numpy, outside the graph, like every numpy function of ``np.asarray(t)``."""
        return func(*_arrays(args), **_arrays(kwargs))

    def __repr__(self) -> str:
        flag = ", requires_grad=True" if self.requires_grad else ""
        return f"Tensor({np.array2string(self.data, precision=4)}{flag})"

    def numpy(self) -> np.ndarray:
        return self.data

    def item(self) -> float:
        return float(self.data)

    def detach(self) -> Tensor:
        """Same values, no history: gradients stop here."""
        return Tensor(self.data)

    def zero_grad(self) -> None:
        self.grad = None

    def backward(self, gradient: ArrayLike | None = None) -> None:
        """Accumulate d(self)/d(leaf) into every leaf's ``.grad``.

        A scalar needs no ``gradient``; any other shape must be given one of its own shape.
        """
        if not self.requires_grad:
            raise RuntimeError(
                "backward() on a tensor that does not require grad: no parameter it was computed "
                "from has requires_grad=True, or it was computed under no_grad()."
            )
        if gradient is None:
            if self.data.size != 1:
                raise RuntimeError(
                    f"backward() without a gradient needs a scalar output; got shape {self.shape}"
                )
            seed = np.ones_like(self.data)
        else:
            seed = np.array(_as_array(gradient), dtype=DTYPE)
            if seed.shape != self.shape:
                raise RuntimeError(
                    f"backward(gradient): gradient has shape {seed.shape}, the output has "
                    f"shape {self.shape}; they must match"
                )
        autograd.backward(self, seed)

    # ----------------------------------------------------------------------------- arithmetic
    def __add__(self, other: ArrayLike) -> Tensor:
        other = _lift(other)
        a_shape, b_shape = self.shape, other.shape
        return Tensor._make(
            self.data + other.data,
            (self, other),
            lambda g: (_unbroadcast(g, a_shape), _unbroadcast(g, b_shape)),
        )

    def __mul__(self, other: ArrayLike) -> Tensor:
        other = _lift(other)
        a, b = self, other
        return Tensor._make(
            a.data * b.data,
            (a, b),
            lambda g: (
                _unbroadcast(g * b.data, a.shape) if a.requires_grad else None,
                _unbroadcast(g * a.data, b.shape) if b.requires_grad else None,
            ),
        )

    def __truediv__(self, other: ArrayLike) -> Tensor:
        other = _lift(other)
        a, b = self, other
        return Tensor._make(
            a.data / b.data,
            (a, b),
            lambda g: (
                _unbroadcast(g / b.data, a.shape) if a.requires_grad else None,
                _unbroadcast(-g * a.data / (b.data * b.data), b.shape) if b.requires_grad else None,
            ),
        )

    def __neg__(self) -> Tensor:
        return Tensor._make(-self.data, (self,), lambda g: (-g,))

    def __sub__(self, other: ArrayLike) -> Tensor:
        return self + (-_lift(other))

    def __rsub__(self, other: ArrayLike) -> Tensor:
        return _lift(other) + (-self)

    def __rtruediv__(self, other: ArrayLike) -> Tensor:
        return _lift(other) / self

    __radd__ = __add__
    __rmul__ = __mul__

    def __pow__(self, exponent: float) -> Tensor:
        if isinstance(exponent, Tensor):
            raise TypeError("Tensor ** Tensor is not supported; the exponent must be a number")
        x = self.data
        return Tensor._make(x**exponent, (self,), lambda g: (g * exponent * x ** (exponent - 1),))

    def __matmul__(self, other: ArrayLike) -> Tensor:
        return self.matmul(other)

    def __rmatmul__(self, other: ArrayLike) -> Tensor:
        return _lift(other).matmul(self)

    def matmul(self, other: ArrayLike) -> Tensor:
        """Matrix product of 2-D operands (a batch of rows times a weight matrix)."""
        other = _lift(other)
        a, b = self, other
        if a.ndim != 2 or b.ndim != 2:
            raise ValueError(f"matmul needs 2-D operands; got shapes {a.shape} and {b.shape}")
        return Tensor._make(
            a.data @ b.data,
            (a, b),
            lambda g: (
                g @ b.data.T if a.requires_grad else None,
                a.data.T @ g if b.requires_grad else None,
            ),
        )

    # ----------------------------------------------------------------------------- reductions
    def sum(self, axis: int | tuple[int, ...] | None = None, keepdims: bool = False) -> Tensor:
        shape = self.shape

        def backward(g: np.ndarray) -> tuple:
            if axis is not None and not keepdims:
                g = np.expand_dims(g, axis)
            return (np.broadcast_to(g, shape),)

        return Tensor._make(np.sum(self.data, axis=axis, keepdims=keepdims), (self,), backward)

    def mean(self, axis: int | tuple[int, ...] | None = None, keepdims: bool = False) -> Tensor:
        total = self.sum(axis=axis, keepdims=keepdims)
        return total * (total.data.size / self.data.size) if self.data.size else total

    # ----------------------------------------------------------------------------- shape
    def reshape(self, *shape: int | Sequence[int]) -> Tensor:
        if len(shape) == 1 and isinstance(shape[0], tuple | list):
            shape = tuple(shape[0])
        original = self.shape
        return Tensor._make(self.data.reshape(shape), (self,), lambda g: (g.reshape(original),))

    def transpose(self, *axes: int) -> Tensor:
        """Reverse the axes (no arguments) or permute them; for 2-D this is the matrix transpose."""
        axes_arg = axes if axes else None
        inverse = None if axes_arg is None else tuple(np.argsort(axes_arg))
        return Tensor._make(
            np.transpose(self.data, axes_arg), (self,), lambda g: (np.transpose(g, inverse),)
        )

    @property
    def T(self) -> Tensor:
        return self.transpose()

    def __getitem__(self, index: Any) -> Tensor:
        shape = self.shape

        def backward(g: np.ndarray) -> tuple:
            full = np.zeros(shape, dtype=DTYPE)
            np.add.at(full, index, g)
            return (full,)

        return Tensor._make(np.asarray(self.data[index]), (self,), backward)

    # ----------------------------------------------------------------------------- elementwise
    def exp(self) -> Tensor:
        y = np.exp(self.data)
        return Tensor._make(y, (self,), lambda g: (g * y,))

    def log(self) -> Tensor:
        x = self.data
        return Tensor._make(np.log(x), (self,), lambda g: (g / x,))

    def relu(self) -> Tensor:
        positive = self.data > 0
        return Tensor._make(np.maximum(self.data, 0), (self,), lambda g: (g * positive,))

    def sigmoid(self) -> Tensor:
        x = self.data
        # exp of a non-positive number only: no overflow for large |x|.
        e = np.exp(-np.abs(x))
        y = np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(DTYPE)
        return Tensor._make(y, (self,), lambda g: (g * y * (1 - y),))

    def tanh(self) -> Tensor:
        y = np.tanh(self.data)
        return Tensor._make(y, (self,), lambda g: (g * (1 - y * y),))

    def softmax(self, axis: int = -1) -> Tensor:
        shifted = self.data - self.data.max(axis=axis, keepdims=True)
        e = np.exp(shifted)
        y = e / e.sum(axis=axis, keepdims=True)
        return Tensor._make(
            y, (self,), lambda g: (y * (g - (g * y).sum(axis=axis, keepdims=True)),)
        )


def _lift(value: ArrayLike) -> Tensor:
    """Wrap a number or array as a constant Tensor so operators accept both."""
    return value if isinstance(value, Tensor) else Tensor(value)


def _arrays(value: Any) -> Any:
    """``value`` with every Tensor in it (also inside lists, tuples and dicts) replaced by
    its array."""
    if isinstance(value, Tensor):
        return value.data
    if isinstance(value, list | tuple):
        return type(value)(_arrays(v) for v in value)
    if isinstance(value, dict):
        return {k: _arrays(v) for k, v in value.items()}
    return value
