"""Module 06: SGD (momentum, weight decay), Adam and AdamW: several steps against hand-written
numpy formulas (torch.optim's documented algorithms, no torch needed) and against torch.optim
itself where installed; argument checks; ``lr``, ``step_count``, ``zero_grad``; float32
parameters; and ``state_dict`` / ``load_state_dict``."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tinytorch.core.optimizers import SGD, Adam, AdamW
from tinytorch.core.tensor import Tensor

KINDS = {"SGD": SGD, "Adam": Adam, "AdamW": AdamW}
SHAPES = [(3, 2), (2,), (1,)]

# (id, kind, keyword arguments): every branch of every update rule.
CONFIGS = [
    ("sgd", "SGD", {"lr": 0.1}),
    ("sgd_momentum", "SGD", {"lr": 0.1, "momentum": 0.9}),
    ("sgd_weight_decay", "SGD", {"lr": 0.1, "weight_decay": 0.2}),
    ("sgd_momentum_weight_decay", "SGD", {"lr": 0.05, "momentum": 0.8, "weight_decay": 0.1}),
    ("adam", "Adam", {"lr": 0.05}),
    ("adam_all_args", "Adam",
     {"lr": 0.02, "betas": (0.8, 0.95), "eps": 1e-3, "weight_decay": 0.1}),
    ("adamw", "AdamW", {"lr": 0.05}),
    ("adamw_all_args", "AdamW",
     {"lr": 0.02, "betas": (0.85, 0.99), "eps": 1e-4, "weight_decay": 0.3}),
]  # fmt: skip
IDS = [c[0] for c in CONFIGS]
DEFAULTS = {
    "SGD": {"lr": 0.01, "momentum": 0.0, "weight_decay": 0.0},
    "Adam": {"lr": 0.001, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.0},
    "AdamW": {"lr": 0.001, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.01},
}


def _init(seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.normal(size=s).astype(np.float32) for s in SHAPES]


def _grads(step: int, values: list[np.ndarray]) -> list[np.ndarray]:
    """A gradient that depends on the step and on the current parameter (as a real loss's
    does), so a wrong update also changes every later gradient."""
    rng = np.random.default_rng(1000 + step)
    return [
        np.asarray(0.5 * np.asarray(v, dtype=np.float64) + rng.normal(size=np.shape(v)),
                   dtype=np.float32)
        for v in values
    ]  # fmt: skip


def _params(seed: int = 0) -> list[Tensor]:
    return [Tensor(a, requires_grad=True) for a in _init(seed)]


def _run(opt, params: list[Tensor], steps: int, first: int = 0) -> list[np.ndarray]:
    for k in range(first, first + steps):
        for p, g in zip(params, _grads(k, [p.data for p in params]), strict=True):
            p.grad = Tensor(g)
        opt.step()
    return [p.data.copy() for p in params]


# ----------------------------------------------------------------------------- numpy reference
class _Reference:
    """torch.optim's update rules, written out in float64 numpy (one state per parameter)."""

    def __init__(self, kind: str, values: list[np.ndarray], **kwargs) -> None:
        hyper = {**DEFAULTS[kind], **kwargs}
        self.kind, self.hyper = kind, hyper
        self.values = [np.asarray(v, dtype=np.float64).copy() for v in values]
        self.state: list[dict] = [{} for _ in values]

    def step(self, grads: list[np.ndarray | None], lr: float | None = None) -> None:
        h = self.hyper
        lr = h["lr"] if lr is None else lr
        for i, g in enumerate(grads):
            if g is None:
                continue
            p, s = self.values[i], self.state[i]
            g = np.asarray(g, dtype=np.float64)
            if self.kind == "SGD":
                d = g + h["weight_decay"] * p
                if h["momentum"]:
                    s["buf"] = d.copy() if "buf" not in s else h["momentum"] * s["buf"] + d
                    d = s["buf"]
                self.values[i] = p - lr * d
                continue
            b1, b2 = h["betas"]
            if self.kind == "AdamW":
                p = p * (1 - lr * h["weight_decay"])
            else:
                g = g + h["weight_decay"] * p
            t = s["t"] = s.get("t", 0) + 1
            s["m"] = b1 * s.get("m", 0.0) + (1 - b1) * g
            s["v"] = b2 * s.get("v", 0.0) + (1 - b2) * g * g
            m_hat = s["m"] / (1 - b1**t)
            v_hat = s["v"] / (1 - b2**t)
            self.values[i] = p - lr * m_hat / (np.sqrt(v_hat) + h["eps"])


def _run_reference(ref: _Reference, steps: int, first: int = 0) -> list[np.ndarray]:
    for k in range(first, first + steps):
        ref.step(_grads(k, ref.values))
    return ref.values


@pytest.mark.parametrize(("name", "kind", "kwargs"), CONFIGS, ids=IDS)
def test_steps_match_numpy_formulas(name, kind, kwargs) -> None:
    """Six steps equal torch.optim's formulas written out in numpy: catches a missing bias
    correction, momentum applied as lr*g accumulation, coupled vs decoupled weight decay mixed
    up, eps inside the square root, and any other deviation from the documented updates."""
    params = _params()
    got = _run(KINDS[kind](params, **kwargs), params, steps=6)
    expected = _run_reference(_Reference(kind, _init(), **kwargs), steps=6)
    for g, e in zip(got, expected, strict=True):
        assert g.dtype == np.float32
        np.testing.assert_allclose(g, e, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("kind", list(KINDS))
def test_default_hyperparameters(kind) -> None:
    """Defaults are the spec's (SGD lr=0.01; Adam lr=1e-3, betas (0.9, 0.999), eps=1e-8; AdamW
    also weight_decay=0.01): checked by stepping, so a wrong default shows up in the values."""
    params = _params()
    got = _run(KINDS[kind](params), params, steps=3)
    expected = _run_reference(_Reference(kind, _init()), steps=3)
    for g, e in zip(got, expected, strict=True):
        np.testing.assert_allclose(g, e, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(("name", "kind", "kwargs"), CONFIGS, ids=IDS)
def test_steps_match_torch(name, kind, kwargs) -> None:
    """Six steps from the same start with the same gradient function match torch.optim."""
    torch = pytest.importorskip("torch")
    params = _params()
    got = _run(KINDS[kind](params, **kwargs), params, steps=6)

    tparams = [torch.tensor(a, requires_grad=True) for a in _init()]
    topt = getattr(torch.optim, kind)(tparams, **kwargs)
    for k in range(6):
        grads = _grads(k, [t.detach().numpy() for t in tparams])
        for t, g in zip(tparams, grads, strict=True):
            t.grad = torch.from_numpy(g)
        topt.step()
    for g, t in zip(got, tparams, strict=True):
        np.testing.assert_allclose(g, t.detach().numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(("name", "kind", "kwargs"), CONFIGS, ids=IDS)
def test_zero_dim_parameter_follows_the_formulas(name, kind, kwargs) -> None:
    """A 0-d parameter (a learnable scalar such as a temperature) follows the same update rules
    as any other: catches state buffers that become numpy scalars, so in-place updates like
    ``buf *= momentum`` rebind a local name and the stored momentum never changes."""
    start = np.array(0.8, dtype=np.float32)
    p = Tensor(start.copy(), requires_grad=True)
    got = _run(KINDS[kind]([p], **kwargs), [p], steps=5)
    expected = _run_reference(_Reference(kind, [start], **kwargs), steps=5)
    assert p.shape == () and p.data.dtype == np.float32
    np.testing.assert_allclose(got[0], expected[0], rtol=1e-4, atol=1e-5)


# ----------------------------------------------------------------------------- construction
@pytest.mark.parametrize("kind", list(KINDS))
def test_params_may_be_a_generator(kind) -> None:
    """A generator of parameters (what ``model.parameters()`` may return) is read once and every
    parameter is updated: catches iterating ``params`` twice, which sees an exhausted generator
    and silently updates nothing."""
    params = _params()
    opt = KINDS[kind]((p for p in params), lr=0.1)
    got = _run(opt, params, steps=2)
    expected = _run_reference(_Reference(kind, _init(), lr=0.1), steps=2)
    for g, e, start in zip(got, expected, _init(), strict=True):
        assert not np.array_equal(g, start)
        np.testing.assert_allclose(g, e, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("empty", [[], (), "generator"])
def test_empty_params_raise(kind, empty) -> None:
    """No parameters raises ValueError (PyTorch does too): catches an optimizer over an empty
    generator that trains nothing without complaint."""
    params = (p for p in []) if empty == "generator" else empty
    with pytest.raises(ValueError):
        KINDS[kind](params)


BAD_ARGS = [
    ("SGD", {"lr": -0.1}, "lr"),
    ("SGD", {"lr": float("nan")}, "lr"),
    ("SGD", {"lr": float("inf")}, "lr"),
    ("SGD", {"momentum": -0.5}, "momentum"),
    ("SGD", {"momentum": 1.5}, "momentum"),
    ("SGD", {"weight_decay": -1.0}, "weight_decay"),
    ("Adam", {"lr": -1e-3}, "lr"),
    ("Adam", {"betas": (1.0, 0.999)}, "betas"),
    ("Adam", {"betas": (-0.1, 0.999)}, "betas"),
    ("Adam", {"betas": (0.9, 1.5)}, "betas"),
    ("Adam", {"betas": (0.9,)}, "betas"),
    ("Adam", {"eps": -1e-8}, "eps"),
    ("Adam", {"eps": float("nan")}, "eps"),
    ("AdamW", {"lr": float("nan")}, "lr"),
    ("AdamW", {"betas": (0.9, 1.0)}, "betas"),
    ("AdamW", {"eps": -1.0}, "eps"),
    ("AdamW", {"weight_decay": -0.01}, "weight_decay"),
]


@pytest.mark.parametrize(
    ("kind", "kwargs", "name"), BAD_ARGS, ids=[f"{k}-{n}-{a[n]}" for k, a, n in BAD_ARGS]
)
def test_bad_hyperparameters_raise_naming_argument(kind, kwargs, name) -> None:
    """Negative or non-finite rates, momentum or betas outside [0, 1) and negative eps raise
    ValueError naming the argument: catches typos (lr=-0.1, betas=(0.999, 0.9)...) that would
    otherwise diverge silently."""
    with pytest.raises(ValueError, match=name):
        KINDS[kind](_params(), **kwargs)


# ----------------------------------------------------------------------------- behaviour
@pytest.mark.parametrize("kind", list(KINDS))
def test_zero_grad_sets_grads_to_none(kind) -> None:
    """zero_grad() sets every ``.grad`` to None (PyTorch's default): catches a zero_grad that
    leaves old gradients to add into the next backward."""
    params = _params()
    opt = KINDS[kind](params)
    for p in params:
        p.grad = Tensor(np.ones(p.shape, dtype=np.float32))
    opt.zero_grad()
    assert [p.grad for p in params] == [None] * len(params)


@pytest.mark.parametrize("kind", list(KINDS))
def test_parameters_without_grad_are_skipped(kind) -> None:
    """A parameter with ``grad is None`` is not changed (no weight decay, no momentum carried on)
    and its per-parameter state does not advance, so its first real step equals a fresh
    optimizer's first step (as torch.optim): catches updates and Adam step counts applied to
    parameters that did not take part in the loss."""
    kwargs = {"lr": 0.1, "weight_decay": 0.1} | ({"momentum": 0.9} if kind == "SGD" else {})
    params = _params()
    frozen_start = params[1].data.copy()
    opt = KINDS[kind](params, **kwargs)
    ref = _Reference(kind, _init(), **kwargs)
    for k in range(3):
        grads = _grads(k, [p.data for p in params])
        if k < 2:
            grads[1] = None  # params[1] has no gradient in the first two steps
        for p, g in zip(params, grads, strict=True):
            p.grad = None if g is None else Tensor(g)
        opt.step()
        ref.step(grads)
        if k < 2:
            np.testing.assert_array_equal(params[1].data, frozen_start)
    for p, e in zip(params, ref.values, strict=True):
        np.testing.assert_allclose(p.data, e, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(("name", "kind", "kwargs"), CONFIGS, ids=IDS)
def test_parameters_stay_float32(name, kind, kwargs) -> None:
    """With an np.float64 lr and a float64 ndarray assigned to ``.grad`` by hand, parameters stay
    float32 and the update uses that gradient: catches parameters silently promoted to float64
    and a ``.grad`` that must be a Tensor."""
    kwargs = dict(kwargs, lr=np.float64(kwargs["lr"]))
    params = _params()
    opt = KINDS[kind](params, **kwargs)
    ref = _Reference(kind, _init(), **kwargs)
    for k in range(3):
        grads = [g.astype(np.float64) for g in _grads(k, [p.data for p in params])]
        for p, g in zip(params, grads, strict=True):
            p.grad = g
        opt.step()
        ref.step(grads)
    for p, e in zip(params, ref.values, strict=True):
        assert isinstance(p.data, np.ndarray) and p.data.dtype == np.float32
        np.testing.assert_allclose(p.data, e, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(("name", "kind", "kwargs"), CONFIGS, ids=IDS)
def test_lr_attribute_change_affects_next_step(name, kind, kwargs) -> None:
    """``opt.lr`` is public and read at every step (a scheduler sets it): catches an lr copied at
    construction, which would make every schedule a no-op."""
    params = _params()
    opt = KINDS[kind](params, **kwargs)
    assert opt.lr == kwargs["lr"]
    ref = _Reference(kind, _init(), **kwargs)
    for k, lr in enumerate([kwargs["lr"], 0.5 * kwargs["lr"], 3.0 * kwargs["lr"]]):
        opt.lr = lr
        grads = _grads(k, [p.data for p in params])
        for p, g in zip(params, grads, strict=True):
            p.grad = Tensor(g)
        opt.step()
        ref.step(grads, lr=lr)
    for p, e in zip(params, ref.values, strict=True):
        np.testing.assert_allclose(p.data, e, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("kind", list(KINDS))
def test_lr_zero_leaves_parameters_unchanged(kind) -> None:
    """Setting ``lr = 0`` freezes the parameters (weight decay included)."""
    params = _params()
    opt = KINDS[kind](params, lr=0.1, weight_decay=0.1)
    _run(opt, params, steps=2)
    before = [p.data.copy() for p in params]
    opt.lr = 0.0
    after = _run(opt, params, steps=1, first=2)
    for b, a in zip(before, after, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("kind", list(KINDS))
def test_step_count_counts_steps(kind) -> None:
    """``step_count`` starts at 0 and counts step() calls: catches a counter that is missing or
    never advanced (Adam's bias correction and checkpoints depend on it)."""
    params = _params()
    opt = KINDS[kind](params)
    assert opt.step_count == 0
    _run(opt, params, steps=4)
    assert opt.step_count == 4


# ----------------------------------------------------------------------------- state_dict
def _snapshot(opt, params: list[Tensor]) -> tuple:
    return (opt.state_dict(), [p.data.copy() for p in params], opt.lr, opt.step_count)


def _assert_same(a, b) -> None:
    """Deep equality for nested dicts, lists, tuples, ndarrays and numbers."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys()
        for key in a:
            _assert_same(a[key], b[key])
    elif isinstance(a, list | tuple):
        assert isinstance(b, list | tuple) and len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            _assert_same(x, y)
    elif isinstance(a, np.ndarray):
        np.testing.assert_array_equal(a, b)
    else:
        assert a == b or (isinstance(a, float) and math.isnan(a) and math.isnan(b))


@pytest.mark.parametrize(("name", "kind", "kwargs"), CONFIGS, ids=IDS)
def test_state_dict_round_trip_gives_identical_next_steps(name, kind, kwargs) -> None:
    """A fresh optimizer (built with other hyper-parameters) loaded from a state_dict takes
    exactly the reference optimizer's next steps: catches momentum buffers or Adam moments left
    out of the state, a step count reset (bias correction restarts), saved hyper-parameters
    that do not win, and buffers shared (not copied) between the two optimizers."""
    params = _params()
    reference = KINDS[kind](params, **kwargs)
    _run(reference, params, steps=3)
    state = reference.state_dict()

    copies = [Tensor(p.data.copy(), requires_grad=True) for p in params]
    fresh = KINDS[kind](copies, lr=0.7)
    fresh.load_state_dict(state)
    assert fresh.lr == reference.lr
    assert fresh.step_count == reference.step_count == 3

    ref_after = _run(reference, params, steps=3, first=3)
    fresh_after = _run(fresh, copies, steps=3, first=3)
    for r, f in zip(ref_after, fresh_after, strict=True):
        np.testing.assert_array_equal(f, r)
    assert fresh.step_count == reference.step_count == 6


@pytest.mark.parametrize(("name", "kind", "kwargs"), CONFIGS, ids=IDS)
def test_state_dict_is_a_snapshot(name, kind, kwargs) -> None:
    """A state_dict taken before more steps still restores the earlier state: catches a
    state_dict holding live references to buffers that later steps mutate in place."""
    params = _params()
    opt = KINDS[kind](params, **kwargs)
    _run(opt, params, steps=2)
    state = opt.state_dict()
    saved_values = [p.data.copy() for p in params]
    continued = _run(opt, params, steps=2, first=2)

    copies = [Tensor(v.copy(), requires_grad=True) for v in saved_values]
    fresh = KINDS[kind](copies, **kwargs)
    fresh.load_state_dict(state)
    for c, e in zip(_run(fresh, copies, steps=2, first=2), continued, strict=True):
        np.testing.assert_array_equal(c, e)


def _stepped(kind: str, shapes=None, steps: int = 2):
    kwargs = {"lr": 0.1, "momentum": 0.9} if kind == "SGD" else {"lr": 0.1}
    values = _init() if shapes is None else [np.ones(s, dtype=np.float32) for s in shapes]
    params = [Tensor(v, requires_grad=True) for v in values]
    opt = KINDS[kind](params, **kwargs)
    _run(opt, params, steps=steps)
    return opt, params


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("problem", ["wrong_kind", "wrong_shapes", "wrong_count"])
def test_load_state_dict_rejects_mismatch_and_changes_nothing(kind, problem) -> None:
    """A state from another optimizer kind, from parameters of other shapes, or for another number
    of parameters raises ValueError and leaves hyper-parameters, buffers, step count and
    parameters exactly as they were: catches a partial load that corrupts a run on resume."""
    opt, params = _stepped(kind)
    before = _snapshot(opt, params)
    if problem == "wrong_kind":
        other_kind = {"SGD": "Adam", "Adam": "AdamW", "AdamW": "SGD"}[kind]
        other, _ = _stepped(other_kind)
    elif problem == "wrong_shapes":
        other, _ = _stepped(kind, shapes=[(2, 3), (4,), (2,)], steps=3)
    else:
        other, _ = _stepped(kind, shapes=SHAPES[:2], steps=3)
    with pytest.raises(ValueError):
        opt.load_state_dict(other.state_dict())
    _assert_same(_snapshot(opt, params), before)
