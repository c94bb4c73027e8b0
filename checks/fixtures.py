"""Small deterministic models, data and instruments the checks share.

Everything here uses its own seeded Generator, never numpy's global RNG, so a student's code
cannot make a check pass or fail by seeding or consuming the global state.
"""

from __future__ import annotations

from typing import Any
from weakref import WeakKeyDictionary

import numpy as np

from checks.diagnose import fail
from tinytorch.core.activations import ReLU
from tinytorch.core.layers import Dropout, Linear
from tinytorch.core.optimizers import SGD, grad_array
from tinytorch.core.tensor import Tensor


def line_data(n: int = 32, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """x in [-1, 1] and y = 2x + 1, float32, shape (n, 1)."""
    x = np.random.default_rng(seed).uniform(-1, 1, size=(n, 1)).astype(np.float32)
    return x, (2 * x + 1).astype(np.float32)


def blobs(n: int = 60, classes: int = 3, features: int = 2, seed: int = 2, *,
          evenly: bool = False):
    """Well separated Gaussian blobs: inputs float32 (n, features), labels float32 (n,).

    The centers are drawn at random (scale 5), or with ``evenly`` (two features) spaced evenly
    on a circle of radius 5 at a random angle, so no two classes can land close together
    whatever the seed."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % classes
    if evenly:
        if features != 2:
            raise ValueError("evenly spaced centers lie on a circle: features must be 2")
        angles = rng.uniform(0, 2 * np.pi) + 2 * np.pi * np.arange(classes) / classes
        centers = 5.0 * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    else:
        centers = rng.normal(scale=5.0, size=(classes, features))
    x = centers[labels] + rng.normal(size=(n, features))
    return x.astype(np.float32), labels.astype(np.float32)


def batches(x: np.ndarray, y: np.ndarray, sizes: list[int]) -> list[tuple[Tensor, Tensor]]:
    """Consecutive batches of the given sizes, as a plain list (no DataLoader needed)."""
    out, start = [], 0
    for size in sizes:
        out.append((Tensor(x[start : start + size]), Tensor(y[start : start + size])))
        start += size
    return out


class LinearModel:
    """One Linear layer, duck-typed (no base class), with a seeded initialisation."""

    def __init__(self, n_in: int = 1, n_out: int = 1, seed: int = 0) -> None:
        self.layer = Linear(n_in, n_out, seed=seed)
        self.training = True

    def forward(self, x: Tensor) -> Tensor:
        return self.layer(x)

    def parameters(self) -> list[Tensor]:
        return self.layer.parameters()


class MLP:
    """Linear -> ReLU -> (Dropout) -> Linear, duck-typed."""

    def __init__(self, n_in: int = 2, hidden: int = 8, n_out: int = 1, *, dropout: float = 0.0,
                 seed: int = 0) -> None:
        self.layer1 = Linear(n_in, hidden, seed=seed)
        self.relu = ReLU()
        self.dropout = Dropout(dropout, seed=seed + 1)
        self.layer2 = Linear(hidden, n_out, seed=seed + 2)
        self.training = True

    def forward(self, x: Tensor) -> Tensor:
        return self.layer2(self.dropout(self.relu(self.layer1(x))))

    def parameters(self) -> list[Tensor]:
        return self.layer1.parameters() + self.layer2.parameters()


#: Each instrument's starting point, kept beside it rather than in it: a record carries an
#: object's attributes (the student's code may write them all), never this table.
_ORIGINS: WeakKeyDictionary[Any, tuple[list[Tensor], list[np.ndarray], dict[str, float]]] = \
    WeakKeyDictionary()

#: A learning rate for checks that compare gradients at (nearly) fixed weights: a power of two,
#: so ``lr * g`` is exact and a replayed step is bit for bit the real one; small enough that
#: the weights move by about 1e-6 of their size (gradients change less than any tolerance of
#: the checks, 1e-5), large enough that every step visibly moves them (by ~16 float32 units in
#: the last place): the consequence a judge verifies, where a step at lr = 0 would leave none.
TRACE_LR = 2.0 ** -20


class SpySGD(SGD):
    """SGD that keeps, at every ``step()``, the learning rate and a copy of each gradient it was
    handed: what the optimizer saw is what the checks judge.

    The student's code can write anything into an object it is handed, these logs included. So
    they are believed only as far as their consequence bears them out: reading ``seen_lr``,
    ``seen_grads`` or ``seen_params`` replays every logged step with tinytorch's own SGD, from
    the parameters and hyper-parameters this optimizer was built with (``_ORIGINS``), and the
    replay must end exactly at the parameters the model holds now. A log written without the
    steps, or steps taken besides the logged ones (weights changed outside ``step()``), fail
    with a message that says so. ``seen_params`` (the weights before each step) is the
    replay's own: never taken from the log."""

    def __init__(self, params: Any, lr: float = 0.01, **kwargs: Any) -> None:
        super().__init__(params, lr=lr, **kwargs)
        self.lr_log: list[float] = []
        self.grad_log: list[list[np.ndarray | None]] = []
        _ORIGINS[self] = (list(self.params), [np.array(p.data) for p in self.params],
                          {"momentum": self.momentum, "weight_decay": self.weight_decay})

    def step(self) -> None:
        self.lr_log.append(float(self.lr))
        self.grad_log.append([None if (g := grad_array(p)) is None else np.array(g)
                              for p in self.params])
        super().step()

    @property
    def seen_lr(self) -> list[float]:
        """The learning rate of every step, as the parameters bear it out."""
        self.replay()
        return [float(v) for v in self.lr_log]

    @property
    def seen_grads(self) -> list[list[np.ndarray | None]]:
        """The gradients (float64 copies) each step was handed, as the parameters bear out."""
        self.replay()
        return [[None if g is None else np.array(g, dtype=np.float64) for g in grads]
                for grads in self.grad_log]

    @property
    def seen_params(self) -> list[list[np.ndarray]]:
        """The parameters (float64) just before each step: the replay's, not a log's."""
        return self.replay()

    def replay(self) -> list[list[np.ndarray]]:
        """Replay the logged steps from this optimizer's start; return the weights before
        each one, or fail when the replay does not end at the weights held now."""
        tensors, start, settings = _ORIGINS[self]
        lrs, logged = list(self.lr_log), list(self.grad_log)
        replica = SGD([Tensor(np.array(p), requires_grad=True) for p in start], lr=0.0,
                      **settings)
        before: list[list[np.ndarray]] = []
        consistent = len(lrs) == len(logged)
        for lr, grads in zip(lrs, logged, strict=False):
            before.append([np.array(p.data, dtype=np.float64) for p in replica.params])
            if not _plain_step(replica, lr, grads):
                consistent = False
                break
        now = [p.data for p in tensors]
        if consistent and all(a.data.shape == b.shape and np.array_equal(a.data, b, equal_nan=True)
                              for a, b in zip(replica.params, now, strict=True)):
            return before
        gap = max((float(np.max(np.abs(a.data.astype(np.float64) - b)))
                   for a, b in zip(replica.params, now, strict=True)
                   if a.data.shape == b.shape and a.data.size), default=float("nan"))
        fail(f"the weights after the {len(lrs)} optimizer step(s) taken so far",
             "exactly what those steps give, replayed from the starting weights with the "
             "learning rates and gradients optimizer.step() received",
             "other weights" + (f" (largest difference {gap:.3g})" if consistent else
                                " (the optimizer's records of its steps do not fit together)"),
             "the weights changed other than through optimizer.step(): update them only by "
             "calling the optimizer's step() (no p.data -= ..., no second update, no writing "
             "into the optimizer's records)")


def _plain_step(optimizer: SGD, lr: Any, grads: Any) -> bool:
    """One step of ``optimizer`` with ``lr`` and ``grads`` (a logged step); False when the log
    cannot be a step (wrong count, shape or kind of values)."""
    if not isinstance(lr, float) or not isinstance(grads, list) or len(grads) != len(
            optimizer.params):
        return False
    for p, g in zip(optimizer.params, grads, strict=True):
        if g is not None and (not isinstance(g, np.ndarray) or g.shape != p.data.shape
                              or g.dtype.kind not in "biuf"):
            return False
        p.grad = g
    optimizer.lr = lr
    optimizer.step()
    return True


class GradientAuditSGD(SpySGD):
    """SpySGD that answers "did every step get a usable gradient?": its step count and the
    first few gradients no step should see (missing or non-finite at any step; all zero in the
    first ZERO_STEPS, before a model can fit its batch: a Sigmoid saturated under BCE or a
    silent ReLU layer then gives exactly zero), with their step and parameter, both from the
    replayed log."""

    KEPT = 5
    #: Steps in which an all-zero gradient means a bug (no backward, gradients cleared).
    ZERO_STEPS = 10

    @property
    def steps_seen(self) -> int:
        self.replay()
        return len(self.grad_log)

    @property
    def unusable(self) -> list[tuple[int, int, np.ndarray | None]]:
        found = []
        for step, grads in enumerate(self.seen_grads):
            for i, g in enumerate(grads):
                if len(found) < self.KEPT and (
                        g is None or not np.all(np.isfinite(g))
                        or (step < self.ZERO_STEPS and not np.any(g != 0))):
                    found.append((step, i, g))
        return found


#: The cause a stale gradient names, in every check that sees one (1.2, 1.3, 4.2, 5.2).
NOT_CLEARED = ("gradients are not cleared between optimizer steps: the previous step's "
               "gradient is still in .grad when the next window accumulates; clear the "
               "gradients after every optimizer.step()")


def stale_gradient(got: list[np.ndarray | None], expected: list[np.ndarray],
                   previous: list[np.ndarray | None] | None) -> bool:
    """Whether ``got`` is the ``expected`` gradient plus a positive multiple of ``previous``
    (the gradient the step before was given): what a gradient left in ``.grad`` after a step
    adds to the next window (scaled by whatever the window is divided by)."""
    if previous is None or any(g is None for g in (*got, *previous)) or \
            len(got) != len(expected) or len(previous) != len(expected):
        return False
    flat = [np.concatenate([np.asarray(a, dtype=np.float64).reshape(-1) for a in arrays])
            for arrays in (got, expected, previous)]
    if len({f.size for f in flat}) != 1:
        return False
    residual, before = flat[0] - flat[1], flat[2]
    size, scale = float(before @ before), float(np.linalg.norm(residual))
    if size == 0.0 or scale <= 1e-9 * (1.0 + float(np.linalg.norm(flat[1]))):
        return False
    factor = float(residual @ before) / size
    return factor > 0.0 and float(np.linalg.norm(residual - factor * before)) <= 1e-3 * scale


def global_norm(grads: list[np.ndarray | None]) -> float:
    """L2 norm over every gradient present, in float64."""
    return float(np.sqrt(sum(float(np.sum(np.square(g, dtype=np.float64)))
                             for g in grads if g is not None)))
