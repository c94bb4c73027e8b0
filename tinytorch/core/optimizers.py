"""Module 06: optimizers, which turn gradients into parameter updates.

The formulas follow ``torch.optim`` (SGD with momentum and weight decay, Adam, AdamW with
decoupled weight decay), so results can be checked against PyTorch. Updates happen in place:
the model and the optimizer share the same parameter arrays. Parameters stay float32 whatever
the dtype of the learning rate or of a gradient someone assigned by hand.

``state_dict()`` returns everything a resumed run needs to take the same next step: the
hyper-parameters, the step count and, per parameter, its buffers (momentum, Adam moments).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np

from tinytorch.core.tensor import DTYPE, Tensor


def grad_array(param: Tensor) -> np.ndarray | None:
    """The gradient of ``param`` as an ndarray, whether ``.grad`` holds a Tensor or an ndarray."""
    grad = param.grad
    if grad is None:
        return None
    return grad.data if isinstance(grad, Tensor) else np.asarray(grad)


def _check_rate(name: str, value: float, *, upper: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.floating | np.integer):
        raise ValueError(f"{name} must be a number, got {value!r}")
    value = float(value)
    if not math.isfinite(value) or value < 0 or (upper is not None and value >= upper):
        bound = f"[0, {upper})" if upper is not None else "a finite number >= 0"
        raise ValueError(f"{name} must be {bound}, got {value!r}")
    return value


class Optimizer:
    """Base class: holds the parameters, a public ``lr`` and ``step_count``.

    Subclasses name their hyper-parameters in ``hyper_names`` and their per-parameter buffers in
    ``buffer_names``; saving and loading state is then the same code for every optimizer.
    """

    hyper_names: tuple[str, ...] = ("lr",)
    buffer_names: tuple[str, ...] = ()

    def __init__(self, params: Iterable[Tensor], lr: float) -> None:
        self.params: list[Tensor] = list(params)  # a generator is read exactly once
        if not self.params:
            raise ValueError("params is empty: the optimizer has nothing to update")
        for i, p in enumerate(self.params):
            if not isinstance(p, Tensor):
                raise ValueError(f"params[{i}] is a {type(p).__name__}, expected a Tensor")
        self.lr = _check_rate("lr", lr)
        self.step_count = 0
        # One dict per parameter: its buffers (ndarrays) and its own step count.
        self.state: list[dict[str, Any]] = [{} for _ in self.params]
        self._scratch: dict[tuple[int, ...], np.ndarray] = {}  # reused temporaries, by shape

    def zero_grad(self) -> None:
        """Clear gradients (set them to None) so the next backward starts from zero."""
        for p in self.params:
            p.grad = None

    def step(self) -> None:
        """Update every parameter that has a gradient; parameters without one are skipped."""
        lr = float(self.lr)
        for p, state in zip(self.params, self.state, strict=True):
            g = p.grad  # grad_array(p), inlined: this loop runs for every parameter every step
            if g is None:
                continue
            g = g.data if isinstance(g, Tensor) else np.asarray(g)
            if g.shape != p.data.shape:
                raise ValueError(
                    f"gradient of shape {g.shape} does not match its parameter's {p.data.shape}"
                )
            state["step"] = state.get("step", 0) + 1
            self._update(p.data, g.astype(DTYPE, copy=False), state, lr)
        self.step_count += 1

    def _update(self, param: np.ndarray, grad: np.ndarray, state: dict, lr: float) -> None:
        raise NotImplementedError

    def _descend(self, param: np.ndarray, direction: np.ndarray, rate: float) -> None:
        """param -= rate * direction, in place and through a reused buffer: numpy has no fused
        ``param.add_(direction, alpha=-rate)``, and a fresh temporary the size of a weight
        matrix on every step costs page faults."""
        scratch = self._scratch.get(param.shape)
        if scratch is None:
            scratch = self._scratch[param.shape] = np.empty(param.shape, dtype=DTYPE)
        np.multiply(direction, rate, out=scratch)
        param -= scratch

    # ------------------------------------------------------------------ saving and loading
    def hyperparameters(self) -> dict[str, Any]:
        return {name: _jsonable(getattr(self, name)) for name in self.hyper_names}

    def state_dict(self) -> dict[str, Any]:
        """A copy of everything needed to resume: kind, hyper-parameters, counts and buffers."""
        return {
            "kind": type(self).__name__,
            "hyperparameters": self.hyperparameters(),
            "step_count": self.step_count,
            "state": [
                {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in s.items()}
                for s in self.state
            ],
        }

    def check_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Raise ValueError if ``state_dict`` does not fit this optimizer; change nothing."""
        kind = state_dict.get("kind")
        if kind != type(self).__name__:
            raise ValueError(f"state is for a {kind} optimizer, this is a {type(self).__name__}")
        hyper = state_dict.get("hyperparameters", {})
        missing = set(self.hyper_names) - set(hyper)
        if missing:
            raise ValueError(f"optimizer state lacks hyper-parameters {sorted(missing)}")
        type(self)(self.params, **hyper)  # the constructor validates every value
        step_count = state_dict.get("step_count")
        if isinstance(step_count, bool) or not isinstance(step_count, int) or step_count < 0:
            raise ValueError(f"optimizer step_count must be an integer >= 0, got {step_count!r}")
        states = state_dict.get("state")
        if not isinstance(states, list) or len(states) != len(self.params):
            count = len(states) if isinstance(states, list) else states
            raise ValueError(
                f"optimizer state has {count} parameter entries; this optimizer has "
                f"{len(self.params)} parameters"
            )
        for i, (p, s) in enumerate(zip(self.params, states, strict=True)):
            for name in self.buffer_names:
                if name in s and np.shape(s[name]) != p.data.shape:
                    raise ValueError(
                        f"optimizer buffer {name!r} of parameter {i} has shape "
                        f"{np.shape(s[name])}, the parameter has {p.data.shape}"
                    )
            unknown = set(s) - set(self.buffer_names) - {"step"}
            if unknown:
                raise ValueError(f"optimizer state of parameter {i} has unknown keys {unknown}")

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore a ``state_dict()``; validates everything before changing anything."""
        self.check_state_dict(state_dict)
        for name, value in state_dict["hyperparameters"].items():
            setattr(self, name, tuple(value) if isinstance(value, list) else value)
        self.step_count = int(state_dict["step_count"])
        self.state = [
            {
                k: (np.array(v, dtype=DTYPE) if k in self.buffer_names else int(v))
                for k, v in s.items()
            }
            for s in state_dict["state"]
        ]

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v}" for k, v in self.hyperparameters().items())
        return f"{type(self).__name__}({len(self.params)} params, {args})"


def _jsonable(value: Any) -> Any:
    return [float(v) for v in value] if isinstance(value, tuple | list) else float(value)


class SGD(Optimizer):
    """p -= lr * v, with v = momentum * v + (g + weight_decay * p) (v = g on the first step)."""

    hyper_names = ("lr", "momentum", "weight_decay")
    buffer_names = ("momentum_buffer",)

    def __init__(
        self,
        params: Iterable[Tensor],
        lr: float = 0.01,
        momentum: float = 0.0,
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__(params, lr)
        self.momentum = _check_rate("momentum", momentum, upper=1.0)
        self.weight_decay = _check_rate("weight_decay", weight_decay)

    def _update(self, param: np.ndarray, grad: np.ndarray, state: dict, lr: float) -> None:
        if self.weight_decay:
            grad = grad + self.weight_decay * param
        if self.momentum:
            buf = state.get("momentum_buffer")
            if buf is None:
                # np.array, not .copy(): for a 0-d parameter ``grad`` may be a numpy scalar,
                # and ``buf *= momentum`` on a scalar would rebind instead of update.
                buf = state["momentum_buffer"] = np.array(grad, dtype=DTYPE)
            else:
                buf *= self.momentum
                buf += grad
            grad = buf
        self._descend(param, grad, lr)


class Adam(Optimizer):
    """Adam with bias correction: p -= lr * m_hat / (sqrt(v_hat) + eps).

    ``weight_decay`` here is L2 (added to the gradient), as in ``torch.optim.Adam``.
    """

    hyper_names = ("lr", "betas", "eps", "weight_decay")
    buffer_names = ("exp_avg", "exp_avg_sq")
    decoupled_weight_decay = False

    def __init__(
        self,
        params: Iterable[Tensor],
        lr: float = 0.001,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__(params, lr)
        if not isinstance(betas, tuple | list) or len(betas) != 2:
            raise ValueError(f"betas must be a pair (beta1, beta2), got {betas!r}")
        self.betas = (
            _check_rate("betas[0]", betas[0], upper=1.0),
            _check_rate("betas[1]", betas[1], upper=1.0),
        )
        self.eps = _check_rate("eps", eps)
        self.weight_decay = _check_rate("weight_decay", weight_decay)

    def _update(self, param: np.ndarray, grad: np.ndarray, state: dict, lr: float) -> None:
        beta1, beta2 = self.betas
        if self.weight_decay:
            if self.decoupled_weight_decay:
                param *= 1.0 - lr * self.weight_decay
            else:
                grad = grad + self.weight_decay * param
        if "exp_avg" not in state:
            state["exp_avg"] = np.zeros_like(param)
            state["exp_avg_sq"] = np.zeros_like(param)
        m, v, t = state["exp_avg"], state["exp_avg_sq"], state["step"]
        m *= beta1
        m += (1.0 - beta1) * grad
        v *= beta2
        v += (1.0 - beta2) * (grad * grad)
        bias1, bias2 = 1.0 - beta1**t, 1.0 - beta2**t
        denom = np.sqrt(v) / math.sqrt(bias2) + self.eps
        self._descend(param, m / denom, lr / bias1)


class AdamW(Adam):
    """Adam with decoupled weight decay: p *= 1 - lr * weight_decay, then the Adam step."""

    decoupled_weight_decay = True

    def __init__(
        self,
        params: Iterable[Tensor],
        lr: float = 0.001,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.01,
    ) -> None:
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)
