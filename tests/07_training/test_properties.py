"""Property tests (hypothesis) for ``CosineSchedule`` and ``clip_grad_norm``.

Derandomized (the same examples on every run) and without an example database, so the suite is
deterministic and writes nothing. Expected values are computed independently: the cosine
formula with ``math``, gradient norms in float64 numpy.

Magnitudes: float32 gradients are drawn with scales from 1e-15 to 1e30 and float64 ones from
1e-150 to 1e150. Below ~1e-19 the squares of float32 values underflow, and both this library and
torch.nn.utils.clip_grad_norm_ then return a norm of 0 (or a few % off): the spec asks for no
float32 *overflow* only, so float32 scales stay where squares are normal numbers. Scales above
~1.8e19 make float32 squares overflow; the norm must still be right, which is checked here with
numpy's overflow warning silenced, because whether an overflow WARNING escapes is a separate
requirement tested in test_gradient_clipping.py.
"""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from tinytorch.core.tensor import Tensor
from tinytorch.core.training import CosineSchedule, clip_grad_norm

PROPERTY_SETTINGS = settings(max_examples=100, deadline=None, derandomize=True, database=None)
EPS = 1e-6  # clip factor max_norm / (norm + EPS), as in PyTorch (allowed by the spec)


def cosine(epoch: float, max_lr: float, min_lr: float, total: int) -> float:
    if epoch >= total:
        return min_lr
    return min_lr + (max_lr - min_lr) * (1 + math.cos(math.pi * epoch / total)) / 2


# ============================================================================ CosineSchedule
@st.composite
def schedules(draw):
    max_lr = draw(st.floats(min_value=0.0, max_value=10.0, allow_subnormal=False))
    min_lr = draw(st.floats(min_value=0.0, max_value=max_lr, allow_subnormal=False))
    total = draw(st.integers(min_value=1, max_value=10_000))
    return max_lr, min_lr, total


epochs = st.one_of(
    st.integers(min_value=0, max_value=30_000),
    st.floats(min_value=0.0, max_value=30_000.0, allow_subnormal=False),
)


@PROPERTY_SETTINGS
@given(schedules(), epochs)
def test_schedule_within_bounds_matches_formula_and_is_a_python_float(params, epoch):
    """lr(e) lies in [min_lr, max_lr], equals the cosine formula (clamped after total_epochs)
    to rounding, and is a Python float."""
    max_lr, min_lr, total = params
    lr = CosineSchedule(max_lr, min_lr, total).get_lr(epoch)
    assert isinstance(lr, float)
    assert min_lr <= lr <= max_lr
    expected = cosine(epoch, max_lr, min_lr, total)
    assert math.isclose(lr, expected, rel_tol=1e-9, abs_tol=1e-15 * max(max_lr, 1e-300))


@PROPERTY_SETTINGS
@given(schedules(), st.integers(min_value=0, max_value=30_000), st.integers(1, 500))
def test_schedule_is_non_increasing_without_warmup(params, epoch, gap):
    """Without warmup, a later epoch never gets a larger rate (integer epochs, and a
    fractional epoch between them)."""
    max_lr, min_lr, total = params
    schedule = CosineSchedule(max_lr, min_lr, total)
    a, b = schedule.get_lr(epoch), schedule.get_lr(epoch + gap)
    middle = schedule.get_lr(epoch + gap / 2)
    assert a >= middle >= b
    assert schedule.get_lr(epoch) >= schedule.get_lr(epoch + 1)


@PROPERTY_SETTINGS
@given(schedules(), st.integers(min_value=0, max_value=10**9))
def test_schedule_endpoints_exact_and_clamped_after_total(params, extra):
    """get_lr(0) is exactly max_lr; every epoch >= total_epochs gives exactly min_lr."""
    max_lr, min_lr, total = params
    schedule = CosineSchedule(max_lr, min_lr, total)
    assert schedule.get_lr(0) == max_lr
    assert schedule.get_lr(total) == min_lr
    assert schedule.get_lr(total + extra) == min_lr
    assert schedule.get_lr(total + extra + 0.5) == min_lr


@PROPERTY_SETTINGS
@given(schedules(), st.data())
def test_warmup_ramps_up_then_follows_the_shifted_cosine(params, data):
    """With warmup_epochs=w: rates of epochs < w are max_lr * (e + 1) / (w + 1) (increasing,
    below max_lr), epoch w is max_lr, later epochs follow the cosine over total - w epochs."""
    max_lr, min_lr, total = params
    if total < 2:
        total = 2
    w = data.draw(st.integers(min_value=1, max_value=total - 1), label="warmup")
    e = data.draw(st.integers(min_value=0, max_value=2 * total), label="epoch")
    schedule = CosineSchedule(max_lr, min_lr, total, warmup_epochs=w)
    lr = schedule.get_lr(e)
    assert isinstance(lr, float) and lr <= max_lr
    if e < w:
        assert math.isclose(lr, max_lr * (e + 1) / (w + 1), rel_tol=1e-12, abs_tol=1e-300)
        assert lr <= schedule.get_lr(e + 1)
    else:
        expected = cosine(e - w, max_lr, min_lr, total - w)
        assert math.isclose(lr, expected, rel_tol=1e-9, abs_tol=1e-15 * max(max_lr, 1e-300))
    assert schedule.get_lr(w) == max_lr


# ============================================================================ clip_grad_norm
@st.composite
def gradient_sets(draw):
    """1-4 gradients of random shapes, one dtype and scale each (the scale spans many orders of
    magnitude), stored as ndarray or Tensor (float32 only: a Tensor holds float32)."""
    seed = draw(st.integers(min_value=0, max_value=2**32 - 1))
    rng = np.random.default_rng(seed)
    count = draw(st.integers(min_value=1, max_value=4))
    grads = []
    for i in range(count):
        shape = tuple(draw(st.lists(st.integers(1, 6), min_size=1, max_size=3), label=f"s{i}"))
        dtype = draw(st.sampled_from(["float32", "float64", "tensor"]), label=f"d{i}")
        if dtype == "float64":
            exponent = draw(st.integers(min_value=-150, max_value=150), label=f"e{i}")
        else:
            exponent = draw(st.integers(min_value=-15, max_value=30), label=f"e{i}")
        values = rng.normal(size=shape) * 10.0**exponent
        if dtype == "float64":
            grads.append(values)
        elif dtype == "float32":
            grads.append(values.astype(np.float32))
        else:
            grads.append(Tensor(values.astype(np.float32)))
    return grads


def _array(grad) -> np.ndarray:
    return grad.data if isinstance(grad, Tensor) else grad


def _norm64(grads) -> float:
    """Float64 L2 norm, pre-scaled by the largest magnitude so that it cannot overflow."""
    arrays = [np.asarray(_array(g), dtype=np.float64) for g in grads]
    top = max(float(np.max(np.abs(a))) for a in arrays)
    if top == 0:
        return 0.0
    return top * math.sqrt(sum(float(np.sum((a / top) ** 2)) for a in arrays))


def _params(grads) -> list[Tensor]:
    params = []
    for g in grads:
        p = Tensor(np.zeros(np.shape(_array(g)), np.float32), requires_grad=True)
        p.grad = g
        params.append(p)
    return params


def _clip(params, max_norm: float) -> float:
    with np.errstate(over="ignore"):  # see the module docstring
        return clip_grad_norm(params, max_norm)


@PROPERTY_SETTINGS
@given(gradient_sets(), st.floats(min_value=-3.0, max_value=1.0))
def test_clip_returns_the_float64_norm_and_caps_it(grads, log_ratio):
    """The returned value is the float64 global norm (a Python float); above max_norm the new
    norm is max_norm (times norm / (norm + 1e-6), PyTorch's eps); below it every bit stays
    (within 1e-5 of max_norm float32 rounding may decide either way); every gradient keeps its
    container, dtype and identity."""
    originals = [np.array(_array(g), copy=True) for g in grads]
    norm = _norm64(originals)
    max_norm = norm * 10.0**log_ratio
    params = _params(grads)

    result = _clip(params, max_norm)

    assert isinstance(result, float)
    assert math.isclose(result, norm, rel_tol=1e-5)
    for p, g, original in zip(params, grads, originals, strict=True):
        assert p.grad is g and _array(g).dtype == original.dtype
    new_norm = _norm64(grads)
    assert new_norm <= max_norm * (1 + 1e-5) or new_norm == norm
    if norm > max_norm * (1 + 1e-5):
        lower = max_norm * norm / (norm + EPS)
        assert lower * (1 - 1e-5) <= new_norm <= max_norm * (1 + 1e-5)
    elif norm < max_norm * (1 - 1e-5):  # (in between, rounding may decide either way)
        for g, original in zip(grads, originals, strict=True):
            assert _array(g).tobytes() == original.tobytes()


@PROPERTY_SETTINGS
@given(gradient_sets(), st.floats(min_value=-3.0, max_value=-0.01))
def test_clip_preserves_direction(grads, log_ratio):
    """Clipping multiplies every gradient by one common positive factor."""
    originals = [np.array(_array(g), dtype=np.float64) for g in grads]
    norm = _norm64(originals)
    params = _params(grads)
    _clip(params, norm * 10.0**log_ratio)
    factor = _norm64(grads) / norm
    assert 0 < factor < 1
    for g, original in zip(grads, originals, strict=True):
        np.testing.assert_allclose(_array(g), original * factor, rtol=1e-5, atol=0)


@PROPERTY_SETTINGS
@given(gradient_sets(), st.floats(min_value=-3.0, max_value=1.0))
def test_clip_is_idempotent(grads, log_ratio):
    """Clipping twice with the same max_norm changes nothing more than rounding: the second
    call returns the first call's resulting norm and moves no value by more than 1e-5."""
    norm = _norm64(grads)
    max_norm = norm * 10.0**log_ratio
    params = _params(grads)
    _clip(params, max_norm)
    once = [np.array(_array(g), dtype=np.float64) for g in grads]
    second = _clip(params, max_norm)
    assert math.isclose(second, _norm64(once), rel_tol=1e-5)
    for g, first in zip(grads, once, strict=True):
        np.testing.assert_allclose(_array(g), first, rtol=1e-5, atol=0)
