"""Module 02: activations, the non-linearities between layers.

Each is a stateless callable object so it can sit in a ``Sequential`` next to layers; the math and
its gradient live on ``Tensor`` (``relu``, ``sigmoid``, ``tanh``, ``softmax``).
"""

from __future__ import annotations

from tinytorch.core.tensor import Tensor


class Activation:
    """Base class: ``act(x)`` is ``act.forward(x)``. Activations have no parameters."""

    training = True

    def __call__(self, x: Tensor) -> Tensor:
        return self.forward(x)

    def forward(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    def parameters(self) -> list[Tensor]:
        return []

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class ReLU(Activation):
    """max(0, x): gradient 1 where x > 0, else 0."""

    def forward(self, x: Tensor) -> Tensor:
        return x.relu()


class Sigmoid(Activation):
    """1 / (1 + exp(-x)), computed without overflow for large |x|."""

    def forward(self, x: Tensor) -> Tensor:
        return x.sigmoid()


class Tanh(Activation):
    def forward(self, x: Tensor) -> Tensor:
        return x.tanh()


class Softmax(Activation):
    """exp(x) / sum(exp(x)) along ``axis``, shifted by the maximum for stability."""

    def __init__(self, axis: int = -1) -> None:
        self.axis = axis

    def forward(self, x: Tensor) -> Tensor:
        return x.softmax(axis=self.axis)
