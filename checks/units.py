"""Unit checks of the two functions students write on their own: ``CosineSchedule`` and
``clip_grad_norm`` (spec sections "CosineSchedule" and "clip_grad_norm").

Expected values are computed here, independently, with ``math.cos`` and float64 numpy; every
comparison allows a relative error of 1e-5 (PyTorch's eps of 1e-6 in the clip factor is fine).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from checks.diagnose import Deviations, attempt, fail, located, require, unwritten
from checks.seeds import shifted, variation
from tinytorch.core.tensor import Tensor

RTOL = 1e-5


def _close(a: float, b: float, rtol: float = RTOL, atol: float = 1e-12) -> bool:
    return math.isfinite(a) and abs(a - b) <= atol + rtol * abs(b)


# ============================================================================ CosineSchedule
def _cosine(epoch: float, max_lr: float, min_lr: float, total: int) -> float:
    """The spec's formula, clamped at min_lr from total_epochs on."""
    if epoch >= total:
        return min_lr
    return min_lr + (max_lr - min_lr) * (1 + math.cos(math.pi * epoch / total)) / 2


def _unclamped(epoch: float, max_lr: float, min_lr: float, total: int) -> float:
    return min_lr + (max_lr - min_lr) * (1 + math.cos(math.pi * epoch / total)) / 2


def _matches(observed: list[float], expected: list[float]) -> bool:
    return all(
        isinstance(o, int | float) and _close(float(o), e, atol=1e-9)
        for o, e in zip(observed, expected, strict=True)
    )


def _cosine_bug(epochs: list[int], observed: list[Any], max_lr: float, min_lr: float,
                total: int) -> str:
    """Name the classic schedule bug that explains ``observed``."""
    def formula(f: Callable[[int], float]) -> list[float]:
        return [f(e) for e in epochs]

    candidates = [
        (formula(lambda e: _unclamped(e, max_lr, min_lr, total)),
         "the cosine is not clamped after total_epochs: for epoch >= total_epochs return min_lr "
         "(PyTorch's CosineAnnealingLR rises again there; this schedule must not)"),
        (formula(lambda e: _cosine(e + 1, max_lr, min_lr, total)),
         "off by one: get_lr(e) returns the rate of epoch e + 1 (epochs are 0-based: "
         "get_lr(0) must be max_lr)"),
        (formula(lambda e: _cosine(e, max_lr, min_lr, total - 1)),
         "the cosine runs over total_epochs - 1 epochs: divide by total_epochs"),
        (formula(lambda e: _cosine(e, min_lr, max_lr, total) if e < total else min_lr),
         "the schedule is upside down: it rises from min_lr to max_lr (use 1 + cos, not 1 - cos, "
         "or swap max_lr and min_lr)"),
        (formula(lambda e: max_lr if e >= total else _cosine(e, min_lr, max_lr, total)),
         "the schedule is upside down: it rises from min_lr to max_lr (use 1 + cos, not 1 - cos)"),
        (formula(lambda e: min_lr + (max_lr - min_lr) * (1 + math.cos(math.pi * min(e, total)
                                                                     / total))),
         "the factor 1/2 is missing: (1 + cos) runs from 2 to 0, so divide it by 2"),
        (formula(lambda e: max_lr - (max_lr - min_lr) * (1 - math.cos(math.pi * min(e, total)
                                                                     / total))),
         "the factor 1/2 is missing: (1 - cos) runs from 0 to 2, so divide it by 2"),
        (formula(lambda e: min_lr + (max_lr - min_lr) * (1 + math.cos(min(e, total) / total))
                 / 2),
         "the angle lacks pi: cos(pi * epoch / total_epochs), in radians"),
        (formula(lambda e: (max_lr - min_lr) * (1 + math.cos(math.pi * min(e, total) / total))
                 / 2),
         "min_lr is not added: lr = min_lr + (max_lr - min_lr) * (1 + cos(...)) / 2"),
        (formula(lambda e: max_lr * (1 + math.cos(math.pi * min(e, total) / total)) / 2),
         "the schedule decays to 0 instead of min_lr: "
         "lr = min_lr + (max_lr - min_lr) * (1 + cos(...)) / 2"),
    ]
    numeric = [o if isinstance(o, int | float) else float("nan") for o in observed]
    for values, bug in candidates:
        clamped = [min_lr if e >= total else max(min_lr, v) for e, v in zip(epochs, values,
                                                                             strict=True)]
        if _matches(numeric, values) or _matches(numeric, clamped):
            return bug
    if all(_close(float(o), numeric[0], atol=1e-12) for o in numeric):
        return "get_lr returns the same rate for every epoch: it must depend on the epoch argument"
    return "get_lr does not follow min_lr + (max_lr - min_lr) * (1 + cos(pi * epoch / total)) / 2"


def _number(value: Any) -> Any:
    """A returned rate as a Python float when it holds one number (np.float32, a 0-d array or
    Tensor too: their type is judged apart), else as returned."""
    try:
        return float(np.asarray(value.data if isinstance(value, Tensor) else value))
    except (TypeError, ValueError):
        return value


def _get_lrs(CosineSchedule: Any, settings: dict[str, Any], epochs: list[int]) -> list[Any]:
    schedule = CosineSchedule(**settings)
    out = []
    for e in epochs:
        out.append(attempt(f"CosineSchedule({settings}).get_lr({e}) raised", "a float",
                           "get_lr must accept every epoch >= 0, including epochs past "
                           "total_epochs (it returns min_lr there)", schedule.get_lr, e))
    return out


def _expect_value_error(make: Callable[[], Any], what: str, bug: str) -> None:
    try:
        make()
    except ValueError:
        return
    except Exception as error:  # noqa: BLE001
        unwritten(error)
        fail(what, "ValueError", f"{type(error).__name__}: {error}",
             f"{bug}; raise ValueError (not {type(error).__name__})")
    fail(what, "ValueError", "no error", bug)


def _cosine_settings(seed: int) -> tuple[list[tuple[float, float, int]],
                                           tuple[float, float, int, int, int]]:
    """The schedules whose values are checked, and (max_lr, min_lr, total_epochs, a negative
    total_epochs, a negative epoch) for the argument checks. Seed 0: the visible run's fixed
    values; a hidden run draws others (a decaying schedule, one down to 0, a constant one)."""
    if seed == 0:
        return [(0.1, 0.01, 10), (1.0, 0.0, 7), (0.5, 0.5, 4)], (0.1, 0.01, 10, -3, -1)
    rng = variation(seed, 1)
    top = round(float(rng.uniform(0.05, 2.0)), 4)
    # total_epochs >= 5: with 3, a missing 1/2 and a cosine over total_epochs - 1 give the same
    # values at every integer epoch, so the bug could not be named
    cases = [
        (top, round(top * float(rng.uniform(0.02, 0.5)), 5), int(rng.integers(5, 25))),
        (round(float(rng.uniform(0.05, 2.0)), 4), 0.0, int(rng.integers(5, 25))),
    ]
    flat = round(float(rng.uniform(0.01, 1.0)), 3)
    cases.append((flat, flat, int(rng.integers(2, 12))))
    hi = round(float(rng.uniform(0.05, 1.0)), 3)
    lo = round(hi * float(rng.uniform(0.05, 0.9)), 4)
    return cases, (hi, lo, int(rng.integers(2, 50)), -int(rng.integers(1, 10)),
                   -int(rng.integers(1, 5)))


def check_cosine_schedule(CosineSchedule: Any, *, seed: int = 0) -> None:
    """Formula values against math.cos; get_lr(0) == max_lr; min_lr from total_epochs on
    (clamped); a Python float; ValueError for bad arguments. A hidden run (``seed > 0``) uses
    other max_lr, min_lr and total_epochs."""
    cases, (hi, lo, top_total, negative_total, negative_epoch) = _cosine_settings(seed)
    found = Deviations()
    not_float: list[tuple[str, str]] = []  # the first non-float return, reported once
    for max_lr, min_lr, total in cases:
        with found.part():
            settings = {"max_lr": max_lr, "min_lr": min_lr, "total_epochs": total}
            epochs = [0, 1, total // 2, total - 1, total, total + 1, (3 * total) // 2, 2 * total]
            returned = _get_lrs(CosineSchedule, settings, epochs)
            for e, o in zip(epochs, returned, strict=True):
                if not isinstance(o, float) and not not_float:
                    not_float.append((f"CosineSchedule({settings}).get_lr({e}) returned a "
                                      f"{type(o).__name__}", repr(o)))
            observed = [_number(o) for o in returned]
            expected = [_cosine(e, max_lr, min_lr, total) for e in epochs]
            if not _matches(observed, expected):
                shown = ", ".join(f"{e}: {o:.6g}" for e, o in zip(epochs, observed, strict=True))
                want = ", ".join(f"{e}: {x:.6g}" for e, x in zip(epochs, expected, strict=True))
                fail(f"CosineSchedule({settings}).get_lr(epoch) for epochs {epochs}",
                     want, shown, _cosine_bug(epochs, observed, max_lr, min_lr, total))
            # exactly max_lr, for a float (another type's rounding is judged as its type)
            require(not isinstance(returned[0], float) or _close(observed[0], max_lr, rtol=1e-9),
                    f"get_lr(0) with {settings}", max_lr, observed[0],
                    "epoch 0 must train at max_lr")

    if not_float:
        with found.part():
            what, shown = not_float[0]
            fail(what, "a float (float or np.float64)", shown,
                 "convert the result with float(...) (np.float32, 0-d arrays and Tensors are "
                 "not float instances)")
    t = top_total
    bad = [
        ({"max_lr": lo, "min_lr": hi, "total_epochs": t}, "min_lr > max_lr"),
        ({"max_lr": -hi, "min_lr": 0.0, "total_epochs": t}, "a negative max_lr"),
        ({"max_lr": hi, "min_lr": -lo, "total_epochs": t}, "a negative min_lr"),
        ({"max_lr": float("nan"), "min_lr": lo, "total_epochs": t}, "max_lr = NaN"),
        ({"max_lr": hi, "min_lr": float("nan"), "total_epochs": t}, "min_lr = NaN"),
        ({"max_lr": float("inf"), "min_lr": lo, "total_epochs": t}, "max_lr = inf"),
        ({"max_lr": hi, "min_lr": lo, "total_epochs": 0}, "total_epochs = 0"),
        ({"max_lr": hi, "min_lr": lo, "total_epochs": negative_total}, "a negative total_epochs"),
    ]
    with found.part():
        accepted: list[tuple[str, str]] = []
        for settings, label in bad:
            try:
                _expect_value_error(
                    lambda s=settings: CosineSchedule(**s), f"CosineSchedule({settings}) ({label})",
                    f"the constructor accepts {label}: validate the arguments in __init__ "
                    "(NaN fails every comparison, so test math.isfinite explicitly)",
                )
            except AssertionError as error:
                accepted.append((label, str(error)))
        if len(accepted) == 1:
            raise AssertionError(accepted[0][1])
        if accepted:
            fail(f"CosineSchedule's argument checks: {len(accepted)} of {len(bad)} bad settings "
                 "accepted", "ValueError for each", ", ".join(label for label, _ in accepted),
                 "validate every argument in __init__ (NaN fails every comparison, so test "
                 "math.isfinite explicitly; total_epochs must be a positive int)")
    with found.part():
        schedule = CosineSchedule(max_lr=hi, min_lr=lo, total_epochs=t)
        _expect_value_error(lambda: schedule.get_lr(negative_epoch),
                            f"get_lr({negative_epoch}) (a negative epoch)",
                            "get_lr accepts a negative epoch: raise ValueError for epoch < 0")
    found.report()


# ============================================================================ clip_grad_norm
def _param(grad: Any, shape: tuple[int, ...] | None = None) -> Tensor:
    """A parameter whose .grad is ``grad`` (as given: Tensor, ndarray or None)."""
    if shape is None:
        shape = np.shape(grad.data if isinstance(grad, Tensor) else grad)
    # weights that are not zero, so scaling p.data instead of p.grad shows
    p = Tensor(np.linspace(-1.0, 2.0, int(np.prod(shape))).reshape(shape).astype(np.float32),
               requires_grad=True)
    p.grad = grad
    return p


def _grad(p: Tensor) -> np.ndarray | None:
    g = p.grad
    if g is None:
        return None
    return np.array(g.data if isinstance(g, Tensor) else g, copy=True)


def _norm(arrays: list[np.ndarray | None]) -> float:
    return math.sqrt(sum(float(np.sum(np.square(np.asarray(a, dtype=np.float64))))
                         for a in arrays if a is not None))


def _call(clip_grad_norm: Callable[..., Any], params: Any, max_norm: float, what: str) -> Any:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result = clip_grad_norm(params, max_norm)
        except Exception as error:  # noqa: BLE001
            unwritten(error)
            fail(what, "the pre-clip norm, as a float",
                 f"{type(error).__name__}: {error}{located(error)}",
                 "clip_grad_norm raised on valid input (parameters may hold Tensor or ndarray "
                 "gradients, or None: skip those)")
    if caught:
        fail(what, "no warnings", "; ".join(str(w.message) for w in caught),
             "the squares overflow or underflow: compute the norm in float64 "
             "(g.astype(np.float64)) so huge gradients (3e20) do not become inf")
    return result


def _scaled_the_wrong_thing(params: list[Tensor], weights: list[np.ndarray],
                            before: list[np.ndarray | None], what: str) -> None:
    """Fail when clip_grad_norm changed the weights, or scaled ndarray gradients but left the
    Tensor ones as they were: causes the norm checks would otherwise misname."""
    changed = [i for i, (p, w) in enumerate(zip(params, weights, strict=True))
               if p.data.tobytes() != w.tobytes()]
    require(not changed, f"{what}: the parameters' values (p.data)", "unchanged",
            f"parameters {changed} changed",
            "clip_grad_norm scaled the parameters' values (p.data): scale the gradients "
            "(p.grad) and never touch the weights")
    kept = {isinstance(p.grad, Tensor): [] for p in params}
    for p, old in zip(params, before, strict=True):
        if old is not None:
            kept[isinstance(p.grad, Tensor)].append(_grad(p).tobytes() == old.tobytes())
    if all(kept.get(True, [False])) and not any(kept.get(False, [True])):
        fail(f"{what}: the Tensor gradients afterwards", "scaled like the ndarray ones",
             "unchanged, while the ndarray gradients were scaled",
             "the Tensor gradient was left unscaled while the ndarray gradient was scaled: "
             "for a Tensor, scale its array in place (p.grad.data *= scale); `g *= scale` on a "
             "Tensor makes a new Tensor and leaves p.grad as it was")


def _float_result(result: Any, what: str) -> float:
    if not isinstance(result, float):
        fail(f"{what}: the value returned", "a float (the norm before clipping; np.float64 "
             "is one)", f"{type(result).__name__}: {result!r}",
             "return float(total_norm) (not np.float32, a 0-d array, a Tensor, or None)")
    return result


def _with_norm(rng: np.random.Generator, shape: tuple[int, ...], norm: float) -> np.ndarray:
    """A float64 gradient of the given shape whose L2 norm is ``norm``."""
    g = rng.normal(size=shape)
    return g * (norm / _norm([g]))


def _above_threshold_grads(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray,
                                               tuple[int, ...], float]:
    """g0 (float32, a Tensor's), g1 (float64 ndarray), g2 (float32, small on its own: clipping
    each parameter separately would skip it), the shape of a parameter without a gradient, and
    max_norm. A hidden run draws other shapes and scales, g0 and g1 each above max_norm."""
    rng = np.random.default_rng(shifted(11, seed))
    if seed == 0:
        g0 = (rng.normal(size=(3, 4)) * 8).astype(np.float32)
        g1 = rng.normal(size=(4,)) * 6  # float64 ndarray
        g2 = np.array([0.5, -0.25], np.float32)
        return g0, g1, g2, (2, 2), 5.0
    vary = variation(seed, 2)
    max_norm = round(float(vary.uniform(1.0, 8.0)), 2)
    shape0 = (int(vary.integers(1, 6)), int(vary.integers(2, 6)))
    shape1 = (int(vary.integers(2, 9)),)
    shape2 = (int(vary.integers(1, 4)),)
    g0 = _with_norm(rng, shape0, max_norm * float(vary.uniform(1.5, 4.0))).astype(np.float32)
    g1 = _with_norm(rng, shape1, max_norm * float(vary.uniform(1.5, 4.0)))
    g2 = _with_norm(rng, shape2, max_norm * float(vary.uniform(0.05, 0.3))).astype(np.float32)
    return g0, g1, g2, (int(vary.integers(1, 4)), int(vary.integers(1, 4))), max_norm


def _check_above_threshold(clip_grad_norm: Callable[..., Any], seed: int) -> None:
    g0, g1, g2, no_grad_shape, max_norm = _above_threshold_grads(seed)
    params = [_param(Tensor(g0)), _param(g1.copy()), _param(g2.copy()),
              _param(None, no_grad_shape)]
    originals = [g0.astype(np.float64), g1, g2.astype(np.float64), None]
    norm = _norm(originals)
    what = f"clip_grad_norm(parameters, max_norm={max_norm}) on gradients of global norm {norm:.4g}"
    weights, before = [p.data.copy() for p in params], [_grad(p) for p in params]
    result = _call(clip_grad_norm, params, max_norm, what)
    _scaled_the_wrong_thing(params, weights, before, what)
    result = _float_result(result, what)
    new = [_grad(p) for p in params]
    new_norm = _norm(new)

    if not _close(result, norm):
        if _close(result, max_norm, rtol=1e-4):
            bug = "returned the norm after clipping: return the norm computed BEFORE scaling"
        elif _close(result, norm ** 2, rtol=1e-4):
            bug = "returned the sum of squares: take its square root"
        elif _close(result, max(_norm([g]) for g in originals if g is not None), rtol=1e-4):
            bug = "returned one parameter's norm: sum the squares of ALL gradients, then sqrt"
        else:
            bug = "the returned norm is not sqrt(sum over parameters of sum(grad ** 2))"
        fail(f"{what}: the value returned", f"{norm:.6g} (the global norm before clipping)",
             f"{result:.6g}", bug)

    require(params[3].grad is None, f"{what}: the parameter whose grad is None", "grad None",
            repr(params[3].grad), "parameters without a gradient must be skipped, not given one")
    require(isinstance(params[0].grad, Tensor) and isinstance(params[1].grad, np.ndarray)
            and not isinstance(params[1].grad, Tensor),
            f"{what}: the gradients' containers", "Tensor stays Tensor, ndarray stays ndarray",
            f"{type(params[0].grad).__name__}, {type(params[1].grad).__name__}",
            "scale the gradient's array in place (g *= scale on p.grad.data or p.grad) instead "
            "of replacing p.grad with another kind of object")
    dtypes = [params[0].grad.data.dtype, params[1].grad.dtype, params[2].grad.dtype]
    require(dtypes == [np.float32, np.float64, np.float32], f"{what}: the gradients' dtypes",
            "float32, float64, float32", ", ".join(str(d) for d in dtypes),
            "scaling changed the dtype: multiply in place (g *= scale) to keep it")

    if not _close(new_norm, max_norm):
        per_param = [_norm([g]) for g in new[:3]]
        unchanged = all(a.tobytes() == b.tobytes() for a, b in
                        zip([g0, g1, g2], new[:3], strict=True))
        kept = [a.tobytes() == b.tobytes() for a, b in zip([g0, g1, g2], new[:3], strict=True)]
        if unchanged:
            bug = (f"the gradient norm after clipping is still {new_norm:.1f}, so the scaled "
                   "gradients were not written back (g = g * scale makes a new array; scale in "
                   "place: g *= scale)")
        elif kept[0] and not kept[1]:
            bug = ("the Tensor gradient was left unscaled while the ndarray gradient was scaled: "
                   "for a Tensor, scale its array in place (p.grad.data *= scale); `g *= scale` "
                   "on a Tensor makes a new Tensor and leaves p.grad as it was")
        elif all(_close(n, min(_norm([o]), max_norm), rtol=1e-4)
                 for n, o in zip(per_param, originals[:3], strict=True)):
            bug = ("each parameter was clipped to max_norm separately; clip by the global norm: "
                   "one factor max_norm / total_norm for all gradients")
        elif _close(new_norm, max_norm ** 2 / norm, rtol=1e-4):
            bug = "the gradients were scaled twice: multiply by max_norm / total_norm once"
        else:
            bug = "scale every gradient by max_norm / total_norm (the same factor for all)"
        fail(f"{what}: the global norm of the gradients afterwards", f"{max_norm:.6g}",
             f"{new_norm:.6g}", bug)
    scale = max_norm / norm
    for i, (o, n) in enumerate(zip(originals[:3], new[:3], strict=True)):
        ok = all(abs(float(a) - float(b)) <= 1e-7 + RTOL * abs(float(b))
                 for a, b in zip(n.reshape(-1), (o * scale).reshape(-1), strict=True))
        require(ok, f"{what}: gradient {i} afterwards", f"the original times {scale:.6g}",
                f"{n.reshape(-1)[:4]} (originally {o.reshape(-1)[:4]})",
                "every gradient must be multiplied by the same factor max_norm / total_norm: "
                "clipping shortens the update without changing its direction")


def _check_below_threshold(clip_grad_norm: Callable[..., Any], seed: int) -> None:
    rng = np.random.default_rng(shifted(12, seed))
    shape0, shape1, scale, no_grad_shape, room = (3, 4), (4,), 0.3, (3,), 0.0
    if seed:
        vary = variation(seed, 3)
        shape0 = (int(vary.integers(1, 6)), int(vary.integers(1, 6)))
        shape1, no_grad_shape = (int(vary.integers(1, 9)),), (int(vary.integers(1, 5)),)
        scale, room = float(vary.uniform(0.05, 1.0)), float(vary.uniform(1.5, 20.0))
    g0 = (rng.normal(size=shape0) * scale).astype(np.float32)
    g1 = rng.normal(size=shape1) * scale
    params = [_param(Tensor(g0)), _param(g1.copy()), _param(None, no_grad_shape)]
    norm = _norm([g0, g1])
    roomy = 10.0 if seed == 0 else math.ceil(norm * room * 100) / 100  # well above norm
    for max_norm in (roomy, norm * 1.001):
        what = (f"clip_grad_norm(parameters, max_norm={max_norm:.6g}) on gradients of global "
                f"norm {norm:.6g} (below the threshold)")
        before = [_grad(p).tobytes() for p in params[:2]]
        result = _float_result(_call(clip_grad_norm, params, max_norm, what), what)
        require(_close(result, norm), f"{what}: the value returned", f"{norm:.6g}",
                f"{result:.6g}", "return the global L2 norm of all gradients, even when "
                "nothing is clipped")
        after = [_grad(p).tobytes() for p in params[:2]]
        if after != before:
            new_norm = _norm([_grad(p) for p in params[:2]])
            fail(f"{what}: the gradients afterwards", "unchanged, bit for bit",
                 f"changed (global norm now {new_norm:.6g})",
                 "gradients below the threshold were scaled: only scale when total_norm > "
                 "max_norm (max_norm / total_norm > 1 would make them larger)")


def _check_generator(clip_grad_norm: Callable[..., Any], seed: int) -> None:
    factor, max_norm = 10, 1.0
    if seed:
        vary = variation(seed, 4)
        factor, max_norm = int(vary.integers(2, 30)), float(vary.integers(1, 5))
    g0 = np.array([[3.0, 4.0]], np.float32) * factor  # norm 5 * factor
    g1 = np.array([12.0], np.float32) * factor  # norm 12 * factor; global 13 * factor
    total = 13 * factor
    params = [_param(Tensor(g0)), _param(g1.copy())]
    what = (f"clip_grad_norm((p for p in params), max_norm={max_norm}) on gradients of global "
            f"norm {total}")
    weights, before = [p.data.copy() for p in params], [_grad(p) for p in params]
    result = _call(clip_grad_norm, (p for p in params), max_norm, what)
    _scaled_the_wrong_thing(params, weights, before, what)
    result = _float_result(result, what)
    require(_close(result, float(total)), f"{what}: the value returned", f"{total}",
            f"{result:.6g}",
            "a generator can be read only once: turn parameters into a list first")
    new_norm = _norm([_grad(p) for p in params])
    if not _close(new_norm, max_norm) and not _scales_a_list(clip_grad_norm):
        return  # a list is not scaled either: the cause is named above, not the generator
    require(_close(new_norm, max_norm), f"{what}: the global norm afterwards", f"{max_norm:g}",
            f"{new_norm:.6g}",
            "the generator was used up computing the norm, so nothing was scaled: "
            "make a list of the parameters (or of their gradients) first")


def _scales_a_list(clip_grad_norm: Callable[..., Any]) -> bool:
    """Whether ``clip_grad_norm`` brings a plain list of moderate float32 gradients (global norm
    13) to max_norm 1: when it does not, a later case's failure to scale is the same bug."""
    params = [_param(Tensor(np.array([[3.0, 4.0]], np.float32))),
              _param(np.array([12.0], np.float32))]
    try:
        clip_grad_norm(params, 1.0)
    except Exception as error:  # noqa: BLE001 - the student's function; judged elsewhere
        unwritten(error)
        return False
    return _close(_norm([_grad(p) for p in params]), 1.0, rtol=1e-4)


def _check_huge(clip_grad_norm: Callable[..., Any], seed: int) -> None:
    mantissa, exponent, count = 3, 20, 4  # entries of 3e20: their squares overflow float32
    if seed:
        vary = variation(seed, 5)
        mantissa, exponent = int(vary.integers(2, 10)), int(vary.integers(20, 23))
        count = int(vary.integers(2, 9))
    value = f"{mantissa}e{exponent}"
    square = mantissa * mantissa
    squared = (f"{square}e{2 * exponent}" if square < 10 else
               f"{square / 10:g}e{2 * exponent + 1}")
    g = np.full(count, float(value), np.float32)
    params = [_param(Tensor(g)), _param(g.copy())]
    norm = _norm([g, g])  # value * sqrt(2 * count)
    what = (f"clip_grad_norm(parameters, max_norm=1.0) on float32 gradients of {value} "
            f"(global norm {norm:.4g})")
    weights, before = [p.data.copy() for p in params], [_grad(p) for p in params]
    result = _call(clip_grad_norm, params, 1.0, what)
    _scaled_the_wrong_thing(params, weights, before, what)
    if isinstance(result, int | float) and not math.isfinite(float(result)):
        fail(f"{what}: the value returned", f"{norm:.6g}", repr(result),
             f"the squares overflowed float32 ({value} ** 2 = {squared} > 3.4e38): compute the "
             "norm in float64 (g.astype(np.float64)) or scale by the largest entry first")
    result = _float_result(result, what)
    require(_close(result, norm), f"{what}: the value returned", f"{norm:.6g}", f"{result:.6g}",
            "compute the squares in float64 so huge gradients do not overflow")
    new = [_grad(p) for p in params]
    new_norm = _norm(new)
    scaled = _close(new_norm, 1.0, rtol=1e-4) and all(np.all(np.isfinite(a)) for a in new)
    if not scaled and not _scales_a_list(clip_grad_norm):
        return  # moderate gradients are not scaled either: not an overflow, named above
    require(scaled, f"{what}: the global norm afterwards", "1", f"{new_norm:.6g}",
            "with a float64 norm, scaling by max_norm / total_norm brings huge gradients to "
            "max_norm")


def check_clip_grad_norm(clip_grad_norm: Callable[..., Any], *, seed: int = 0) -> None:
    """Pre-clip global L2 norm returned as a float; one factor for all gradients, in place;
    untouched below the threshold; None grads skipped; generators; Tensor and ndarray grads with
    their dtype kept; no overflow at 3e20; ValueError for a bad max_norm. A hidden run
    (``seed > 0``) uses other gradient shapes and scales, thresholds and huge values."""
    found = Deviations()
    for part in (_check_above_threshold, _check_below_threshold, _check_generator, _check_huge):
        with found.part():
            part(clip_grad_norm, seed)
    negative = -1.0 if seed == 0 else -round(float(variation(seed, 6).uniform(0.1, 10.0)), 2)
    with found.part():
        for max_norm in (negative, float("nan"), float("inf")):
            params = [_param(np.array([3.0, 4.0], np.float32))]
            _expect_value_error(
                lambda m=max_norm, ps=params: clip_grad_norm(ps, m),
                f"clip_grad_norm(parameters, max_norm={max_norm})",
                "a negative, NaN or infinite max_norm is accepted: raise ValueError "
                "(NaN fails every comparison, so test math.isfinite explicitly)",
            )
    found.report()


CHECKS: dict[str, Callable[..., None]] = {
    "cosine": check_cosine_schedule,
    "clip": check_clip_grad_norm,
}
