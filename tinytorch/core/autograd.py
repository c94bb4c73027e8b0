"""Module 05: the whole of reverse-mode automatic differentiation, on one screen.

Every Tensor produced by an operation remembers the tensors it came from (``_parents``) and a
function (``_backward``) that turns the gradient of its output into the gradients of its parents.
``backward`` walks that graph once in reverse topological order. Only leaves (tensors created by
the user, such as parameters) keep a ``.grad``; gradients ADD into it until someone clears it,
which is exactly why a training loop must call ``optimizer.zero_grad()``.

After a backward pass the graph is freed, so a loss kept alive by the caller does not keep every
activation of the step alive with it (the memory benchmark relies on this).
"""

from __future__ import annotations

import contextlib
import operator
from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from tinytorch.core.tensor import Tensor

_grad_enabled = True
_creation_order = operator.attrgetter("_order")


def is_grad_enabled() -> bool:
    """True unless running inside ``no_grad()``."""
    return _grad_enabled


@contextlib.contextmanager
def no_grad() -> Iterator[None]:
    """Record no graph inside the block: evaluation is cheaper and cannot touch ``.grad``."""
    global _grad_enabled
    previous, _grad_enabled = _grad_enabled, False
    try:
        yield
    finally:
        _grad_enabled = previous


def _graph_freed(_grad: np.ndarray) -> tuple:
    raise RuntimeError(
        "backward() was called twice through the same graph; its buffers were freed after the "
        "first call. Recompute the forward pass before calling backward() again."
    )


def _reachable(root: Tensor) -> list[Tensor]:
    """``root`` and every tensor requiring grad that it was computed from (a loop, not
    recursion: deep graphs must not hit Python's recursion limit)."""
    nodes, stack, seen = [], [root], {id(root)}
    while stack:
        node = stack.pop()
        nodes.append(node)
        for parent in node._parents:
            if parent.requires_grad:
                key = id(parent)
                if key not in seen:
                    seen.add(key)
                    stack.append(parent)
    return nodes


def backward(root: Tensor, gradient: np.ndarray) -> None:
    """Propagate ``gradient`` (d out / d root) from ``root`` to every leaf that requires grad."""
    make_tensor = type(root)._make
    # A tensor is always created after the tensors it is computed from, so visiting newest
    # first reaches each node only after every node that uses it has passed its gradient on.
    order = sorted(_reachable(root), key=_creation_order, reverse=True)
    grads: dict[int, np.ndarray] = {id(root): gradient}
    owned: set[int] = set()  # arrays already handed to a leaf in this pass
    for node in order:
        grad = grads.pop(id(node), None)
        if grad is None:
            continue
        node_backward = node._backward
        if node_backward is None:  # a leaf: accumulate, never overwrite
            if node.grad is None:
                # The leaf may keep a freshly computed array. A view, a read-only broadcast or an
                # array another leaf already holds (``a + b`` hands both the same one) is copied,
                # so scaling one gradient in place (clipping) can never change another.
                if grad.base is not None or not grad.flags.writeable or id(grad) in owned:
                    grad = np.array(grad, dtype=np.float32)
                owned.add(id(grad))
                node.grad = make_tensor(grad)
            else:
                # .grad holds a Tensor, or an ndarray someone assigned by hand
                existing = getattr(node.grad, "data", node.grad)
                node.grad = make_tensor(existing + grad)
            continue
        parents, parent_grads = node._parents, node_backward(grad)
        node._parents, node._backward = (), _graph_freed
        for parent, parent_grad in zip(parents, parent_grads, strict=True):
            if parent_grad is None or not parent.requires_grad:
                continue
            key = id(parent)
            earlier = grads.get(key)
            grads[key] = parent_grad if earlier is None else earlier + parent_grad
