"""Module 03: layers, the building blocks with parameters.

``Module`` finds parameters and sub-layers by looking at its attributes, so a model is just an
object that holds layers. ``train()`` and ``eval()`` set ``.training`` on every sub-layer, which is
what makes ``Dropout`` act differently while training and while evaluating.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from tinytorch.core.tensor import DTYPE, Tensor


def _children(value: Any) -> Iterator[Any]:
    """Sub-layers and tensors held in an attribute, looking inside lists, tuples and dicts."""
    if isinstance(value, list | tuple):
        for item in value:
            yield from _children(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _children(item)
    else:
        yield value


def modules(root: Any) -> Iterator[Any]:
    """``root`` and every layer reachable through its attributes (lists, tuples and dicts
    included), depth first, each once. Works for any object, so duck-typed models that merely
    hold layers (no base class) are walked too."""
    seen: set[int] = set()
    stack: list[Any] = [root]
    while stack:
        item = stack.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        yield item
        attributes = vars(item).values() if hasattr(item, "__dict__") else ()
        children = [
            child
            for value in attributes
            for child in _children(value)
            if hasattr(child, "forward") and not isinstance(child, Tensor | type)
        ]
        stack.extend(reversed(children))


def set_training(root: Any, mode: bool) -> None:
    """Set ``training`` on ``root`` and on every layer inside it (Dropout reads it)."""
    for module in modules(root):
        module.training = mode


def rng_owners(root: Any) -> list[Any]:
    """Layers inside ``root`` that draw random numbers (they hold a numpy Generator ``rng``)."""
    return [m for m in modules(root) if isinstance(getattr(m, "rng", None), np.random.Generator)]


class Module:
    """Base class for layers and models: callable, with parameters() and train()/eval()."""

    training: bool = True

    def __call__(self, x: Tensor) -> Tensor:
        return self.forward(x)

    def forward(self, x: Tensor) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__} must define forward(x)")

    def modules(self) -> Iterator[Any]:
        return modules(self)

    def parameters(self) -> list[Tensor]:
        """Every tensor with requires_grad held by this module or its sub-layers, in definition
        order, each once (a shared layer is counted once)."""
        params: list[Tensor] = []
        seen: set[int] = set()
        for value in vars(self).values():
            for child in _children(value):
                if isinstance(child, Tensor):
                    found = [child] if child.requires_grad else []
                elif hasattr(child, "parameters") and callable(child.parameters):
                    found = list(child.parameters())
                else:
                    continue
                for p in found:
                    if id(p) not in seen:
                        seen.add(id(p))
                        params.append(p)
        return params

    def train(self, mode: bool = True) -> Module:
        """Set ``training`` on this module and every sub-layer."""
        set_training(self, mode)
        return self

    def eval(self) -> Module:
        return self.train(False)


def _rng(seed: int | np.random.Generator | None) -> Any:
    """A Generator for ``seed``; with no seed, numpy's global RNG, so np.random.seed(n) makes
    model initialisation reproducible as students expect."""
    if seed is None:
        return np.random
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


class Linear(Module):
    """y = x @ weight + bias, with ``weight`` of shape (in_features, out_features).

    Initialised like PyTorch's default: uniform in +-1/sqrt(in_features) for weight and bias, so
    the output's scale does not grow with the layer's width.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        *,
        seed: int | np.random.Generator | None = None,
    ) -> None:
        for name, value in (("in_features", in_features), ("out_features", out_features)):
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value <= 0:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        self.in_features, self.out_features = int(in_features), int(out_features)
        rng = _rng(seed)
        bound = 1.0 / np.sqrt(in_features)
        w = rng.uniform(-bound, bound, size=(in_features, out_features))
        self.weight = Tensor(w.astype(DTYPE), requires_grad=True)
        self.bias = (
            Tensor(rng.uniform(-bound, bound, size=out_features).astype(DTYPE), requires_grad=True)
            if bias
            else None
        )

    @property
    def weights(self) -> Tensor:
        """Alias of ``weight`` (the name TinyTorch's tests use)."""
        return self.weight

    def forward(self, x: Tensor) -> Tensor:
        """One graph node, like PyTorch's F.linear: for a batch X (N, in) and upstream gradient G,
        dL/dX = G @ W.T (only when X needs it), dL/dW = X.T @ G, dL/db = G summed over the batch.
        """
        shape = x.data.shape
        if len(shape) != 2 or shape[1] != self.in_features:
            raise ValueError(
                f"Linear({self.in_features}, {self.out_features}) expects inputs of shape "
                f"(batch, {self.in_features}); got shape {x.shape}"
            )
        weight, bias, inputs = self.weight, self.bias, x.data
        out = inputs @ weight.data
        if bias is not None:
            out += bias.data

        def backward(g: np.ndarray) -> tuple:
            grads = (
                g @ weight.data.T if x.requires_grad else None,
                inputs.T @ g if weight.requires_grad else None,
            )
            if bias is None:
                return grads
            return (*grads, g.sum(axis=0) if bias.requires_grad else None)

        return Tensor._make(out, (x, weight) if bias is None else (x, weight, bias), backward)

    def __repr__(self) -> str:
        return f"Linear({self.in_features}, {self.out_features}, bias={self.bias is not None})"


class Dropout(Module):
    """Inverted dropout: while training, zero each input with probability ``p`` and scale the rest
    by 1/(1-p) so the expected activation is unchanged; while evaluating, do nothing."""

    def __init__(self, p: float = 0.5, *, seed: int | None = None) -> None:
        if not 0.0 <= p < 1.0:
            raise ValueError(f"p must be in [0, 1), got {p!r}")
        self.p = float(p)
        self.rng = np.random.default_rng(seed)

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = (self.rng.random(x.shape) >= self.p).astype(DTYPE) / (1.0 - self.p)
        return x * keep

    def __repr__(self) -> str:
        return f"Dropout(p={self.p})"


class Sequential(Module):
    """Apply layers one after another."""

    def __init__(self, *layers: Any) -> None:
        self.layers = list(layers)

    def forward(self, x: Tensor) -> Tensor:
        for layer in self.layers:
            x = layer(x)
        return x

    def __getitem__(self, index: int) -> Any:
        return self.layers[index]

    def __len__(self) -> int:
        return len(self.layers)

    def __repr__(self) -> str:
        inner = ", ".join(repr(layer) for layer in self.layers)
        return f"Sequential({inner})"
