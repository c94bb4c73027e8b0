"""Audit priorities 3 and 4: the learning-rate schedule and gradient clipping inside the Trainer.

What the optimizer saw is what is judged: the lr and the gradients handed to every
``optimizer.step()`` (SpySGD, whose records are believed only as far as the weights bear them
out), compared with the schedule and with the true gradient of the window's mean loss at the
weights the replayed steps had, computed here in float64 numpy. A hidden run
(``seed > 0``) shifts every data and model seed and draws other schedules, learning rates,
batch sizes and (for 4.2) a clip threshold above every gradient of the run.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from checks.diagnose import LIKELY_BUG, fail, likely, require, unwritten
from checks.fixtures import (
    NOT_CLEARED,
    LinearModel,
    SpySGD,
    batches,
    global_norm,
    line_data,
    stale_gradient,
)
from checks.seeds import shifted, unequal_sizes, variation
from tinytorch.core.losses import MSELoss
from tinytorch.core.tensor import Tensor

INITIAL_LR = 0.5  # the optimizer's own lr: no schedule value, so "never applied" shows


def _close(a: float, b: float, rtol: float = 1e-5, atol: float = 1e-12) -> bool:
    return math.isfinite(a) and abs(a - b) <= atol + rtol * abs(b)


def _train(trainer: Any, data: Any, what: str, **kwargs: Any) -> float:
    try:
        return trainer.train_epoch(data, **kwargs)
    except Exception as error:  # noqa: BLE001 - reported to the student as a failure
        unwritten(error)
        bug = "train_epoch raised on a valid setup"
        if getattr(trainer, "scheduler", "?") is None and isinstance(error, AttributeError):
            bug = ("train_epoch uses the scheduler although it is None: guard it with "
                   "`if self.scheduler is not None:` (the scheduler is optional)")
        fail(what, "an epoch of training", f"{type(error).__name__}: {error}", bug)


def _fmt(values: list[float]) -> str:
    return "[" + ", ".join(f"{v:.6g}" for v in values) + "]"


# ============================================================================ audit 3.1
def _per_epoch(values: list[float], per_epoch: int) -> list[list[float]]:
    return [values[i : i + per_epoch] for i in range(0, len(values), per_epoch)]


def _schedule_bug(epoch_lrs: list[list[float]], get_lr: Callable[[int], float]) -> str:
    """Name the classic bug behind lrs that are not get_lr(epoch) in every batch."""
    n = len(epoch_lrs)
    firsts = [e[0] for e in epoch_lrs]

    def same(observed: list[float], expected: list[float]) -> bool:
        return len(observed) == len(expected) and all(
            _close(o, x) for o, x in zip(observed, expected, strict=True))

    if all(_close(v, INITIAL_LR) for e in epoch_lrs for v in e):
        return ("the optimizer's lr never changed, so the schedule is computed but not applied: "
                "set self.optimizer.lr = self.scheduler.get_lr(self.epoch)")
    if same(firsts, [get_lr(e + 1) for e in range(n)]):
        return ("lr of epoch 0 is get_lr(1): the lr is set after the epoch instead of before its "
                "first batch (or the epoch counter is advanced first); set optimizer.lr = "
                "get_lr(self.epoch) at the start of train_epoch, and increment epoch at its end")
    if same(firsts, [INITIAL_LR] + [get_lr(e) for e in range(1, n)]):
        return ("epoch 0 trained with the optimizer's initial lr, later epochs with get_lr(epoch): "
                "the lr is set after each epoch for the next one, so the first epoch never gets "
                "its rate; set it at the start of train_epoch, before the first batch")
    if same(firsts, [INITIAL_LR] + [get_lr(e - 1) for e in range(1, n)]):
        return ("epoch e trained with get_lr(e - 1) (epoch 0 with the optimizer's initial lr): "
                "the lr is set after the epoch instead of before its first batch")
    if all(same(e[1:], [get_lr(i)] * (len(e) - 1)) for i, e in enumerate(epoch_lrs)):
        return ("only the first batch of each epoch used the wrong lr: the lr is set after the "
                "first batch instead of before it")
    flat = [v for e in epoch_lrs for v in e]
    if same(flat, [get_lr(s) for s in range(len(flat))]) or same(
            flat, [get_lr(s + 1) for s in range(len(flat))]):
        return ("the lr changes at every batch: get_lr was called with the step or batch count; "
                "call get_lr(self.epoch) once per epoch")
    return ("each epoch must train with scheduler.get_lr(epoch), set on the optimizer before the "
            "epoch's first batch")


def check_scheduler_updates_lr(Trainer: Any, CosineSchedule: Any, *, seed: int = 0) -> None:
    """Audit 3.1: with CosineSchedule(0.1, 0.01, total_epochs=6) and 7 epochs, every batch of
    epoch e steps the optimizer with get_lr(e), from epoch 0 on; the rates
    decrease and end at min_lr; history['learning_rates'] holds them. A hidden run uses another
    schedule (max_lr below INITIAL_LR) and other batch sizes."""
    max_lr, min_lr, total, sizes = 0.1, 0.01, 6, [4, 4, 4]
    if seed:
        vary = variation(seed, 31)
        max_lr = round(float(vary.uniform(0.05, 0.3)), 3)
        min_lr = round(max_lr * float(vary.uniform(0.05, 0.5)), 4)
        total, sizes = int(vary.integers(3, 9)), unequal_sizes(vary, 3, 1, 8)
    schedule = CosineSchedule(max_lr=max_lr, min_lr=min_lr, total_epochs=total)
    model = LinearModel(seed=shifted(3, seed))
    opt = SpySGD(model.parameters(), lr=INITIAL_LR)
    trainer = Trainer(model, opt, MSELoss(), scheduler=schedule)
    x, y = line_data(n=sum(sizes), seed=shifted(4, seed))
    data = batches(x, y, sizes)
    epochs = total + 1
    for epoch in range(epochs):
        _train(trainer, data, f"Trainer.train_epoch() (epoch {epoch}) with a CosineSchedule")

    reference = CosineSchedule(max_lr=max_lr, min_lr=min_lr, total_epochs=total)
    expected = [float(reference.get_lr(e)) for e in range(epochs)]
    what = (f"lr seen by optimizer.step() in each of {epochs} epochs with "
            f"CosineSchedule(max_lr={max_lr}, min_lr={min_lr}, total_epochs={total}), "
            f"optimizer created with lr={INITIAL_LR}")
    seen = opt.seen_lr
    require(len(seen) == 3 * epochs, what, f"{3 * epochs} optimizer steps (3 batches/epoch)",
            f"{len(seen)} steps", "train_epoch must take one optimizer step per batch")
    by_epoch = _per_epoch(seen, 3)
    ok = all(_close(v, expected[e]) for e, vs in enumerate(by_epoch) for v in vs)
    if not ok:
        fail(f"{what}: the lr of each step, per epoch",
             f"get_lr(epoch) = {_fmt(expected)} in every batch",
             "; ".join(_fmt(vs) for vs in by_epoch),
             _schedule_bug(by_epoch, lambda e: float(reference.get_lr(e))))
    decreasing = all(expected[i + 1] < expected[i] for i in range(len(expected) - 1))
    require(decreasing and _close(expected[-1], min_lr),
            f"{what}: the schedule's rates", f"decreasing from {max_lr} to {min_lr}",
            _fmt(expected), "CosineSchedule.get_lr does not decrease from max_lr to min_lr "
            "(see the 'cosine' check)")
    recorded = list(trainer.history.get("learning_rates", []))
    require(len(recorded) == epochs and all(
                _close(float(r), x) for r, x in zip(recorded, expected, strict=True)),
            "history['learning_rates'] after training", _fmt(expected),
            repr(recorded), "record the lr each epoch actually trained with (read it after "
            "setting it, before the first batch), one entry per epoch")


# ============================================================================ audit 3.2
def check_training_without_scheduler(Trainer: Any, *, seed: int = 0) -> None:
    """Audit 3.2: scheduler=None: every batch runs with the optimizer's own lr, unchanged, and
    the loss on y = 2x + 1 still falls. A hidden run uses another lr and batch size."""
    lr, batch = 0.3, 8
    if seed:
        vary = variation(seed, 32)
        lr, batch = round(float(vary.uniform(0.2, 0.4)), 3), int(vary.integers(6, 11))
    model = LinearModel(seed=shifted(5, seed))
    opt = SpySGD(model.parameters(), lr=lr)
    trainer = Trainer(model, opt, MSELoss(), scheduler=None)
    x, y = line_data(n=4 * batch, seed=shifted(6, seed))
    data = batches(x, y, [batch] * 4)
    epochs = 8
    losses = [_train(trainer, data, f"Trainer.train_epoch() (epoch {e}) with scheduler=None")
              for e in range(epochs)]
    what = f"lr during {epochs} epochs with scheduler=None and an optimizer created with lr={lr}"
    seen = opt.seen_lr
    if not seen or not all(v == lr for v in seen) or float(opt.lr) != lr:
        bug = ("without a scheduler the trainer must leave optimizer.lr alone (the user's lr is "
               "the rate); only set it when self.scheduler is not None")
        if not seen:
            bug = "train_epoch never called optimizer.step()"
        fail(what, f"{lr} in every batch", f"steps: {_fmt(seen[:8])}..., "
             f"optimizer.lr after: {opt.lr}", bug)
    recorded = list(trainer.history.get("learning_rates", []))
    require(len(recorded) == epochs and all(float(r) == lr for r in recorded),
            f"{what}: history['learning_rates']", f"[{lr}] * {epochs}", repr(recorded),
            "record the lr each epoch trained with, also when there is no scheduler")
    first, last = float(losses[0]), float(losses[-1])
    require(math.isfinite(last) and last < 0.25 * first,
            f"{what}: train_epoch's loss, first and last epoch",
            f"last < 1/4 of first ({first:.4g})", f"{last:.4g} (all: {_fmt(losses)})",
            "training without a scheduler does not learn: the update must use optimizer.lr "
            "as it is")


# ============================================================================ audit 4.1 / 4.2
def _big_data(n: int, seed: int, target: float = 1000.0) -> tuple[np.ndarray, np.ndarray]:
    """Inputs of scale 100 and targets of 1000: MSE gradients of norm ~1e4 (at least
    2 * target, the bias's)."""
    rng = np.random.default_rng(seed)
    x = (100 * rng.normal(size=(n, 2))).astype(np.float32)
    return x, np.full((n, 1), target, np.float32)


def _mse_grads(params: list[np.ndarray], x: np.ndarray, y: np.ndarray) -> list[np.ndarray]:
    """Gradient of mean((x @ w + b - y) ** 2) in float64."""
    w, b = params
    x64, y64 = x.astype(np.float64), y.astype(np.float64)
    r = x64 @ w + b - y64
    return [2.0 / r.size * x64.T @ r, 2.0 / r.size * r.sum(axis=0)]


def _allclose(a: list[Any], b: list[np.ndarray], rtol: float, atol: float) -> bool:
    if len(a) != len(b) or any(g is None for g in a):
        return False
    return all(g.shape == t.shape and bool(np.all(np.abs(g - t) <= atol + rtol * np.abs(t)))
               for g, t in zip(a, b, strict=True))


def _clip_run(Trainer: Any, sizes: list[int], accumulation_steps: int, clip: float | None,
              x: np.ndarray, y: np.ndarray, lr: float, epochs: int = 2,
              model_seed: int = 1) -> Any:
    model = LinearModel(n_in=2, seed=model_seed)
    opt = SpySGD(model.parameters(), lr=lr)
    trainer = Trainer(model, opt, MSELoss(), grad_clip_norm=clip)
    for e in range(epochs):
        _train(trainer, batches(x, y, sizes),
               f"Trainer.train_epoch(accumulation_steps={accumulation_steps}) (epoch {e}) with "
               f"grad_clip_norm={clip}", accumulation_steps=accumulation_steps)
    return model, opt


def _windows(sizes: list[int], k: int) -> list[tuple[int, int]]:
    bounds = np.cumsum([0, *sizes]).tolist()
    return [(bounds[i], bounds[min(i + k, len(sizes))]) for i in range(0, len(sizes), k)]


def _judge_clipped(opt: Any, windows: list[tuple[int, int]], x: np.ndarray, y: np.ndarray,
                   what: str, k: int) -> None:
    require(len(opt.seen_grads) == len(windows), what,
            f"{len(windows)} optimizer steps (windows {windows})",
            f"{len(opt.seen_grads)} steps",
            "train_epoch must step once per window of accumulation_steps batches, plus once "
            "for a partial last window")
    for i, ((a, c), grads, params) in enumerate(
            zip(windows, opt.seen_grads, opt.seen_params, strict=True)):
        true = _mse_grads(params, x[a:c], y[a:c])
        true_norm = global_norm(true)
        if any(g is None for g in grads):
            fail(f"{what}, step {i}", "a gradient for every parameter", "a gradient of None",
                 "clipping must scale the gradients, not remove them")
        norm = global_norm(grads)
        per_param = [global_norm([g]) for g in grads]
        where = f"{what}, step {i} (samples {a}:{c}): the norm of the gradient given to step()"
        if norm > 1 + 1e-5:
            if _close(norm, true_norm, rtol=1e-3):
                bug = (f"the gradient reaching optimizer.step() is not clipped (its norm is still "
                       f"{norm:.1f}): call clip_grad_norm(params, grad_clip_norm) after backward "
                       "and BEFORE optimizer.step(), on the gradients the optimizer reads")
            elif all(n <= 1 + 1e-5 for n in per_param):
                bug = ("each parameter was clipped to max_norm separately; clip by the global "
                       "norm (one factor for all gradients)")
            else:
                bug = "the gradient must be scaled so that its global norm is grad_clip_norm"
            fail(where, "<= 1 (grad_clip_norm=1)", f"{norm:.6g} (unclipped: {true_norm:.6g})",
                 bug)
        if norm < 1 - 1e-4:
            bug = (f"the step got a gradient of norm {norm:.4g}, shorter than 1: clipping ran "
                   "before the gradient was complete (on each batch's gradient, or before "
                   "averaging the window's summed gradient); clip once per optimizer step, on "
                   "the accumulated and averaged gradient, right before optimizer.step()")
            fail(where, f"1 (the true gradient has norm {true_norm:.6g} > 1)", f"{norm:.6g}", bug)
        unit = [t / true_norm for t in true]
        if not _allclose(grads, unit, rtol=1e-4, atol=1e-6):
            if k > 1:
                bug = ("with accumulation_steps=2 the step did not get the window's gradient "
                       "scaled to norm 1: clip once per optimizer step, on the gradient "
                       "accumulated over every batch of the window (and averaged), not on each "
                       "batch's gradient")
            else:
                bug = ("clipping changed the gradient's direction: multiply every gradient by "
                       "the same factor grad_clip_norm / total_norm")
            fail(f"{what}, step {i} (samples {a}:{c}): the gradient given to step()",
                 f"the true gradient / its norm: {[u.reshape(-1).round(6) for u in unit]}",
                 f"{[np.asarray(g).reshape(-1).round(6) for g in grads]}", bug)


def _rediagnose(message: str, likely_bug: str) -> str:
    """``message`` with its likely bug replaced: the evidence isolated another cause."""
    starts = list(LIKELY_BUG.finditer(message))
    kept = message[:starts[-1].start()].rstrip("\n") if starts else message
    return f"{kept}\n{likely(likely_bug)}"


def _own_clip_fails(clip_grad_norm: Any, grads: list[np.ndarray]) -> str | None:
    """Run the student's clip_grad_norm on ``grads`` (float32 Tensor gradients, as the trainer
    has them) with max_norm 1: what is wrong with the result, or None when it clips right."""
    params = []
    for g in grads:
        p = Tensor(np.zeros(g.shape, np.float32), requires_grad=True)
        p.grad = Tensor(g.astype(np.float32))
        params.append(p)
    try:
        clip_grad_norm(params, 1.0)
    except Exception as error:  # noqa: BLE001 - the student's function, reported below
        unwritten(error)
        return f"it raises {type(error).__name__}: {error}"
    after = [np.asarray(p.grad.data if isinstance(p.grad, Tensor) else p.grad, np.float64)
             for p in params]
    norm = global_norm(after)
    unit = [g / global_norm(grads) for g in grads]
    if not _close(norm, 1.0, rtol=1e-4) or not _allclose(after, unit, rtol=1e-4, atol=1e-6):
        return f"it leaves them with global norm {norm:.6g} instead of 1"
    return None


def _unclipped_is_wrong(Trainer: Any, sizes: list[int], k: int, x: np.ndarray, y: np.ndarray,
                        lr: float, model_seed: int) -> str | None:
    """With clipping off, is the gradient reaching step() the window's mean-loss gradient?
    What is off, or None."""
    _, opt = _clip_run(Trainer, sizes, k, None, x, y, lr=lr, epochs=1, model_seed=model_seed)
    for (a, c), grads, params in zip(_windows(sizes, k), opt.seen_grads, opt.seen_params,
                                     strict=False):
        true = _mse_grads(params, x[a:c], y[a:c])
        if _allclose(grads, true, rtol=1e-4, atol=1e-6):
            continue
        if any(g is None for g in grads):
            return "some gradient is None at the step"
        ratio = global_norm(grads) / global_norm(true)
        unit = [t / global_norm(true) for t in true]
        direction = _allclose([g / global_norm(grads) for g in grads], unit, 1e-4, 1e-6)
        shape = (f"{ratio:.3g}x the true gradient" if direction else
                 "a gradient of another direction (batches weighted as equals instead of by "
                 "their samples?)")
        return f"for samples {a}:{c} the step got {shape}"
    return None


def check_clipping_prevents_explosion(Trainer: Any, clip_grad_norm: Any, *,  # noqa: N803
                                      seed: int = 0) -> None:
    """Audit 4.1: grad_clip_norm=1 with gradients of norm ~1e4: every gradient handed to
    optimizer.step() has global norm 1 and the direction of the true gradient; with
    accumulation_steps=2 (batches 1, 3 | 2, 2 | 1) clipping acts once per step on the
    window's accumulated gradient. A hidden run uses other batch sizes (windows of unequal
    batches).

    Before blaming the trainer's clipping, a failure is explained by what it rests on: the
    student's own ``clip_grad_norm`` run on the same gradients, then the accumulated gradient
    with clipping off (the accumulation checks' subject)."""
    sizes, plain, target, lr = [1, 3, 2, 2, 1], [3, 3, 3], 1000.0, 0.01
    if seed:
        vary = variation(seed, 41)
        sizes = unequal_sizes(vary, 5, 1, 4)
        third = sum(sizes) // 3
        plain = [third, third, sum(sizes) - 2 * third]
        # Gradients of norm > 2e6: a clipped gradient of norm 1 left over from the step before
        # (zero_grad missing, which 1.2 names) stays below the direction's tolerance. An lr
        # of 1e-5 keeps even unclipped steps stable (no overflow), so a trainer that does not
        # clip is told so rather than crashing.
        target, lr = float(int(vary.integers(1, 10)) * 10 ** 6), 1e-5
    x, y = _big_data(n=sum(sizes), seed=shifted(5, seed), target=target)
    model_seed = shifted(1, seed)
    label = f"of {plain[0]}" if len(set(plain)) == 1 else f"{plain}"
    for batch_sizes, k, name in ((plain, 1, label), (sizes, 2, f"{sizes}")):
        _, opt = _clip_run(Trainer, batch_sizes, k, 1.0, x, y, lr=lr, model_seed=model_seed)
        try:
            _judge_clipped(opt, _windows(batch_sizes, k) * 2, x, y,
                           f"grad_clip_norm=1, batches {name}, accumulation_steps={k}", k)
        except AssertionError as failure:
            a, c = _windows(batch_sizes, k)[0]
            params = [np.array(p.data, np.float64)
                      for p in LinearModel(n_in=2, seed=model_seed).parameters()]
            own = _own_clip_fails(clip_grad_norm, _mse_grads(params, x[a:c], y[a:c]))
            if own is not None:
                raise AssertionError(_rediagnose(str(failure), (
                    f"your clip_grad_norm does not clip these gradients: run on the first "
                    f"window's true gradient with max_norm=1, {own}; fix it first (see the "
                    "'clip' check); the trainer's use of it may well be right"))) from None
            wrong = _unclipped_is_wrong(Trainer, batch_sizes, k, x, y, lr, model_seed)
            if wrong is not None:
                raise AssertionError(_rediagnose(str(failure), (
                    f"even with clipping off the gradient reaching step() is wrong ({wrong}): "
                    "the accumulated gradient must be that of the window's mean loss, weighted "
                    "by samples (see the accumulation checks 1.3), so clipping acts on a wrong "
                    "gradient; fix accumulation first"))) from None
            raise


def _true_norms(model_seed: int, sizes: list[int], k: int, x: np.ndarray, y: np.ndarray,
                lr: float, epochs: int) -> list[float]:
    """The norm of each window's mean-loss gradient along a correct run (plain SGD, float64)."""
    params = [np.array(p.data, dtype=np.float64)
              for p in LinearModel(n_in=2, seed=model_seed).parameters()]
    norms = []
    for a, c in _windows(sizes, k) * epochs:
        grads = _mse_grads(params, x[a:c], y[a:c])
        norms.append(global_norm(grads))
        params = [p - lr * g for p, g in zip(params, grads, strict=True)]
    return norms


def check_small_gradients_unchanged(Trainer: Any, *, seed: int = 0) -> None:
    """Audit 4.2: grad_clip_norm=10 with gradients of norm between 1 and 10: every gradient
    handed to optimizer.step() (with accumulation) is bit for bit that of the same run without
    clipping, and the true gradient of its window. A hidden run uses other data, batch sizes
    and lr, and a threshold 1.5 to 2.5 times the largest gradient norm of a correct run (so
    below the summed gradient of its window, of 4 samples or more)."""
    rng = np.random.default_rng(shifted(7, seed))
    sizes, k, clip, lr, slope = [3, 3, 2, 2], 2, 10.0, 0.05, [[2.0], [-3.0]]
    if seed:
        vary = variation(seed, 42)
        # equal batches in a window, as at seed 0: dividing by k instead of by the window's
        # samples is then right here (the accumulation checks 1.3 and 4.1 catch it)
        first, second = int(vary.integers(2, 5)), int(vary.integers(2, 5))
        sizes, lr = [first, first, second, second], round(float(vary.uniform(0.03, 0.08)), 3)
        slope = [[float(vary.choice([-1, 1]) * vary.uniform(1.5, 4.0))] for _ in range(2)]
    x = rng.normal(size=(sum(sizes), 2)).astype(np.float32)
    y = (x @ np.array(slope, np.float32) + 1.5).astype(np.float32)
    model_seed = shifted(1, seed)
    if seed:  # above every gradient, below every window's summed gradient at the largest one
        largest = max(_true_norms(model_seed, sizes, k, x, y, lr, 3))
        clip = round(largest * float(vary.uniform(1.5, 2.5)), 2)
    _, plain = _clip_run(Trainer, sizes, k, None, x, y, lr=lr, epochs=3, model_seed=model_seed)
    _, clipped = _clip_run(Trainer, sizes, k, clip, x, y, lr=lr, epochs=3, model_seed=model_seed)
    what = (f"grad_clip_norm={clip}, batches {sizes}, accumulation_steps={k}: the gradients "
            "given to optimizer.step()")
    windows = _windows(sizes, k) * 3
    require(len(clipped.seen_grads) == len(plain.seen_grads) == len(windows), what,
            f"{len(windows)} optimizer steps with and without clipping",
            f"{len(clipped.seen_grads)} with, {len(plain.seen_grads)} without",
            "turning clipping on must not change how many steps train_epoch takes")
    for i, ((a, c), g_clip, g_plain, params) in enumerate(zip(
            windows, clipped.seen_grads, plain.seen_grads, clipped.seen_params, strict=True)):
        true = _mse_grads(params, x[a:c], y[a:c])
        true_norm = global_norm(true)
        same = len(g_clip) == len(g_plain) and all(
            p is not None and q is not None and p.tobytes() == q.tobytes()
            for p, q in zip(g_clip, g_plain, strict=True))
        if same:
            continue
        norm, plain_norm = global_norm(g_clip), global_norm(g_plain)
        if plain_norm > clip and not _allclose(g_plain, true, rtol=1e-4, atol=1e-6):
            bug = (f"even without clipping the gradient reaching step() has norm "
                   f"{plain_norm:.4g}, while the window's mean-loss gradient has {true_norm:.4g}: "
                   "the accumulated gradients are not averaged over the window's samples (see "
                   "the accumulation checks), so clipping acted on an inflated gradient")
        elif _close(norm, 1.0, rtol=1e-4):
            bug = (f"the gradient was clipped to norm 1 although grad_clip_norm={clip}: the "
                   "trainer calls clip_grad_norm with its default max_norm; pass "
                   "self.grad_clip_norm")
        elif _close(norm, clip / (c - a), rtol=1e-4):
            bug = (f"the gradient reaching step() has norm {clip} / {c - a} (the window's "
                   "samples): clipping ran on the window's summed gradient before it was "
                   "averaged; clip once per step, on the averaged gradient, right before "
                   "optimizer.step()")
        elif _close(norm, clip, rtol=1e-4):
            bug = (f"a gradient of norm {true_norm:.4g} was scaled UP to {clip}: only scale when "
                   "the norm exceeds grad_clip_norm")
        else:
            bug = (f"gradients below grad_clip_norm={clip} must reach optimizer.step() unchanged, "
                   "bit for bit: clipping only acts when the global norm exceeds the threshold")
        fail(f"{what}, step {i} (samples {a}:{c}, true norm {true_norm:.4g})",
             f"unchanged: {[g.reshape(-1).round(6) for g in g_plain if g is not None]}",
             f"{[g.reshape(-1).round(6) for g in g_clip if g is not None]} (norm {norm:.6g})",
             bug)
    for i, ((a, c), g_clip, params) in enumerate(
            zip(windows, clipped.seen_grads, clipped.seen_params, strict=True)):
        true = _mse_grads(params, x[a:c], y[a:c])
        if not _allclose(g_clip, true, rtol=1e-4, atol=1e-6):
            previous = clipped.seen_grads[i - 1] if i else None
            fail(f"{what}, step {i} (samples {a}:{c})",
                 f"the window's gradient {[t.reshape(-1).round(6) for t in true]}",
                 f"{[np.asarray(g).reshape(-1).round(6) for g in g_clip]}",
                 NOT_CLEARED if stale_gradient(g_clip, true, previous) else
                 "the gradient at the step is not that of the window's mean loss, with or "
                 "without clipping (see the accumulation checks)")


CHECKS: dict[str, Callable[..., None]] = {
    "3.1": check_scheduler_updates_lr,
    "3.2": check_training_without_scheduler,
    "4.1": check_clipping_prevents_explosion,
    "4.2": check_small_gradients_unchanged,
}
