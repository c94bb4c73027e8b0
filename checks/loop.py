"""Checks of the training loop itself: audit tests 1.1 (a complete loop), 1.2 (gradients are
cleared), 1.3 (accumulation equals a big batch), and two contract checks: a NaN/inf loss stops
training before its window is applied, and a bad ``accumulation_steps`` is refused.

Each check takes the student's ``Trainer`` and uses only its public API: ``train_epoch``,
``epoch``, ``step`` and ``history['train_loss']``. What the optimizer was handed is observed
through ``SpySGD``; expected gradients are computed here from fresh, identically seeded models.
A hidden run (``seed > 0``) shifts every data and model seed and draws other batch sizes, sample
counts and learning rates (see ``checks.seeds``).
"""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np

from checks.diagnose import Deviations, attempt, fail, listed, require, unwritten
from checks.fixtures import (
    NOT_CLEARED,
    TRACE_LR,
    LinearModel,
    SpySGD,
    batches,
    global_norm,
    line_data,
    stale_gradient,
)
from checks.seeds import shifted, unequal_sizes, variation
from tinytorch.core.losses import MSELoss
from tinytorch.core.optimizers import grad_array
from tinytorch.core.tensor import Tensor

RTOL, ATOL = 1e-5, 1e-7


# ----------------------------------------------------------------------------- helpers
def _close(a: Any, b: Any, rtol: float = RTOL, atol: float = ATOL) -> bool:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return a.shape == b.shape and bool(np.all(np.abs(a - b) <= atol + rtol * np.abs(b)))


def _grads_close(seen: list[Any], expected: list[np.ndarray]) -> bool:
    """Every gradient as expected, to a tolerance on the scale of the largest one: a component
    that is a near-cancelling sum of float32 terms (a bias's mean residual) carries their
    rounding error, far above its own ``RTOL``, so it is judged on the scale of those terms."""
    if len(seen) != len(expected):
        return False
    scale = max((float(np.max(np.abs(e))) for e in expected if np.size(e)), default=0.0)
    return all(g is not None and _close(g, e, atol=ATOL + RTOL * scale)
               for g, e in zip(seen, expected, strict=True))


def _params(model: Any) -> list[np.ndarray]:
    return [np.array(p.data, dtype=np.float64) for p in model.parameters()]


def _params_close(a: list[np.ndarray], b: list[np.ndarray], rtol: float = RTOL) -> bool:
    pairs = zip(a, b, strict=False)
    return len(a) == len(b) and all(_close(x, y, rtol=rtol, atol=1e-6) for x, y in pairs)


def _fmt(grads: list[Any]) -> str:
    return "[" + ", ".join(
        "None" if g is None else np.array2string(np.asarray(g).ravel(), precision=5)
        for g in grads
    ) + "]"


def _mean_loss_grads(seed: int, x: np.ndarray, y: np.ndarray,
                     at: list[np.ndarray] | None = None) -> list[np.ndarray]:
    """Gradient of MSE (mean over the samples of x) for a fresh LinearModel(seed), at its
    initial weights or at the weights ``at`` (a step's, as the optimizer's replay gives them)."""
    model = LinearModel(seed=seed)
    for p, w in zip(model.parameters(), at or [], strict=False):
        p.data = np.array(w, dtype=p.data.dtype)
    MSELoss()(model.forward(Tensor(x)), Tensor(y)).backward()
    return [np.array(grad_array(p), dtype=np.float64) for p in model.parameters()]


def _mean_loss(model: Any, x: np.ndarray, y: np.ndarray) -> float:
    out = np.asarray(model.forward(Tensor(x)).data, dtype=np.float64)
    return float(np.mean((out - y.astype(np.float64)) ** 2))


def _spy_trainer(trainer_cls: Any, seed: int = 0, lr: float = TRACE_LR) -> tuple[Any, Any, SpySGD]:
    model = LinearModel(seed=seed)
    optimizer = SpySGD(model.parameters(), lr=lr)
    return trainer_cls(model, optimizer, MSELoss()), model, optimizer


def _require_lr(optimizer: SpySGD, lr: float, what: str) -> None:
    """The checks run without a scheduler: every step must use the optimizer's own lr."""
    wrong = [v for v in optimizer.seen_lr if v != lr]
    require(not wrong, f"optimizer.lr at each step of {what} (no scheduler)", lr,
            optimizer.seen_lr, "train_epoch changed optimizer.lr although there is no "
            "scheduler: only set the lr from scheduler.get_lr(epoch) when a scheduler is given")


def _run(what: str, call: Any, *args: Any, **kwargs: Any) -> Any:
    """Run a call the check expects to succeed; an exception becomes a diagnosed failure."""
    return attempt(what, "it to run without an error",
                   "train_epoch crashed on a plain list of (inputs, targets) Tensor batches",
                   call, *args, **kwargs)


# ----------------------------------------------------------------------------- 1.1

def check_complete_loop(Trainer: Any, *, seed: int = 0) -> None:  # noqa: N803 - student's class
    """1.1: forward, loss, backward and step all happen; the loss falls; history and counters."""
    sizes, lr, batch, n_batches = [5, 20, 7], 0.1, 8, 4
    if seed:
        vary = variation(seed, 11)
        sizes = unequal_sizes(vary, 3, 2, 20)
        lr = round(float(vary.uniform(0.08, 0.15)), 3)
        batch, n_batches = int(vary.integers(6, 11)), int(vary.integers(3, 6))
    # Part 1, lr = 2**-20 (TRACE_LR): the weights move by about 1e-6 of their size, so the
    # epoch's loss is known to far below the tolerance, and every step leaves a trace.
    x, y = line_data(sum(sizes), seed=shifted(5, seed))
    trainer, model, optimizer = _spy_trainer(Trainer, seed=shifted(1, seed), lr=TRACE_LR)
    expected = _mean_loss(model, x, y)
    data = batches(x, y, sizes)
    returned = _run(f"train_epoch (lr=2**-20, batches of {listed(sizes)})",
                    trainer.train_epoch, data)
    _require_lr(optimizer, TRACE_LR, "train_epoch (lr=2**-20)")
    require(len(optimizer.seen_grads) > 0, "optimizer steps in one epoch of 3 batches", 3, 0,
            "optimizer.step() is never called in train_epoch")
    require(any(g is not None for g in optimizer.seen_grads[0]),
            "gradients handed to optimizer.step()", "a gradient for every parameter",
            _fmt(optimizer.seen_grads[0]),
            "loss.backward() is not called before optimizer.step()")
    require(len(optimizer.seen_grads) == 3, "optimizer steps in one epoch of 3 batches "
            "(accumulation_steps=1)", 3, len(optimizer.seen_grads),
            "with accumulation_steps=1 the optimizer must step once after every batch")
    try:
        value = float(returned)
    except (TypeError, ValueError):
        fail("train_epoch's return value", "the epoch's mean loss as a float", repr(returned),
             "train_epoch must return the epoch's sample-weighted mean loss")
    if not _close(value, expected):
        per_batch = [_mean_loss(model, xb.data, yb.data) for xb, yb in data]
        if _close(value, np.mean(per_batch)):
            bug = ("the batch losses were averaged as equals; weight each batch's loss by its "
                   "number of samples (loss_sum += loss * n; divide by the total samples)")
        elif _close(value, per_batch[-1]):
            bug = "the last batch's loss was returned instead of the epoch's mean"
        elif _close(value, sum(per_batch)):
            bug = "the batch losses were summed but never divided by the number of samples"
        else:
            bug = "the returned loss is not the mean over every sample of the epoch"
        fail(f"train_epoch's returned loss with batches of {listed(sizes)} (lr=2**-20, "
             "weights nearly fixed)",
             f"{expected:.6g} (sample-weighted mean)", f"{value:.6g}", bug)
    history = trainer.history.get("train_loss") if isinstance(trainer.history, dict) else None
    require(isinstance(history, list) and len(history) == 1,
            "history['train_loss'] after one epoch", "a list with 1 entry",
            repr(history), "append the epoch's mean loss to history['train_loss'] once per epoch")
    require(_close(history[0], value), "history['train_loss'][-1]", f"{value:.6g} (returned)",
            f"{history[0]!r}", "record the same value train_epoch returns")

    # Part 1b: the same epoch from a generator of batches, which has no len().
    trainer, model, optimizer = _spy_trainer(Trainer, seed=shifted(1, seed), lr=TRACE_LR)
    what = (f"train_epoch(a generator of batches (no len()), accumulation_steps=2), batches "
            f"of {listed(sizes)}")
    returned = attempt(what, "it to run without an error",
                       "train_epoch must work with any iterable of batches, a generator too: "
                       "do not call len(dataloader) or index it; count batches as you go",
                       trainer.train_epoch, (batch for batch in data), accumulation_steps=2)
    if len(optimizer.seen_grads) != 2 or not _close(float(returned), expected):
        listed_trainer, _, listed_optimizer = _spy_trainer(Trainer, seed=shifted(1, seed))
        listed_loss = _run("train_epoch(a list of batches, accumulation_steps=2)",
                           listed_trainer.train_epoch, data, accumulation_steps=2)
        same = (len(listed_optimizer.seen_grads) == len(optimizer.seen_grads)
                and _close(float(listed_loss), float(returned)))
        bug = ("a list of the same batches gives the same result, so the generator is not the "
               "cause: with 3 batches and accumulation_steps=2 the optimizer steps twice (the "
               "partial last window steps too; see 1.3)" if same else
               "a generator can be read only once: iterate the batches once, counting them as "
               "they come")
        fail(what, f"2 optimizer steps and the loss {expected:.6g}, as with a list",
             f"{len(optimizer.seen_grads)} steps, loss {returned!r}", bug)

    # Part 2, lr = 0.1 (0.08 to 0.15 in a hidden run): the weights must move and the loss must
    # fall epoch after epoch.
    x, y = line_data(batch * n_batches, seed=shifted(6, seed))
    trainer, model, optimizer = _spy_trainer(Trainer, seed=shifted(2, seed), lr=lr)
    start = _params(model)
    data = batches(x, y, [batch] * n_batches)
    losses = [float(_run(f"train_epoch, epoch {e}", trainer.train_epoch, data))
              for e in range(6)]
    moved = [not _close(a, b, rtol=0, atol=0) for a, b in zip(_params(model), start, strict=False)]
    require(all(moved), f"parameters after 6 epochs at lr={lr}", "every parameter changed",
            f"changed: {moved}", "optimizer.step() is not applied to model.parameters() (was the "
            "optimizer built on the same parameters the model uses?)")
    falling = all(b < a for a, b in zip(losses, losses[1:], strict=False))
    require(falling and losses[-1] < 0.5 * losses[0],
            f"epoch losses on y = 2x + 1 (seeded, lr={lr}, batches of {batch})",
            "strictly decreasing, the last below half the first",
            [round(v, 5) for v in losses],
            "the loop does not descend the gradient: check forward -> loss -> backward -> step "
            "-> zero_grad order and that the gradient is of the batch's mean loss")
    require(trainer.epoch == 6, "trainer.epoch after 6 calls of train_epoch", 6, trainer.epoch,
            "increment self.epoch by one at the end of every train_epoch")
    require(len(trainer.history["train_loss"]) == 6 and _close(trainer.history["train_loss"],
            losses), "history['train_loss'] after 6 epochs", "the 6 returned losses",
            trainer.history["train_loss"], "append exactly one entry per epoch")
    require(trainer.step == 6 * n_batches, f"trainer.step after 6 epochs of {n_batches} batches",
            6 * n_batches, trainer.step, "count one step per optimizer.step() in self.step")


# ----------------------------------------------------------------------------- 1.2
def _ratio(a: list[Any], b: list[Any]) -> float:
    na, nb = global_norm(a), global_norm(b)
    return na / nb if nb else math.inf


def check_gradients_cleared(Trainer: Any, *, seed: int = 0) -> None:  # noqa: N803
    """1.2: the same batch gives the same gradient at every step, window and epoch."""
    n, stale = 4, 100.0
    if seed:
        vary = variation(seed, 12)
        n, stale = int(vary.integers(2, 9)), float(vary.integers(20, 200))
    x, y = line_data(n, seed=shifted(7, seed))
    model_seed = shifted(3, seed)
    expected = _mean_loss_grads(model_seed, x, y)

    # Stale gradients left on the parameters before the epoch must not be used.
    trainer, model, optimizer = _spy_trainer(Trainer, seed=model_seed, lr=TRACE_LR)
    for p in model.parameters():
        p.grad = np.full(p.data.shape, stale, dtype=p.data.dtype)
    data = batches(np.concatenate([x] * 3), np.concatenate([y] * 3), [n] * 3)
    _run("train_epoch on 3 identical batches", trainer.train_epoch, data)
    _require_lr(optimizer, TRACE_LR, "train_epoch (lr=2**-20)")
    seen, at = optimizer.seen_grads, optimizer.seen_params
    require(len(seen) == 3, "optimizer steps for 3 batches (accumulation_steps=1)", 3, len(seen),
            "step once per batch when accumulation_steps=1")
    if not _grads_close(seen[0], expected):
        fail(f"gradient at the first step, after a stale .grad of {stale:g} was left on every "
             "parameter",
             _fmt(expected), _fmt(seen[0]),
             "train_epoch does not start from cleared gradients: call optimizer.zero_grad() "
             "before the first batch")
    for i in (1, 2):
        expected = _mean_loss_grads(model_seed, x, y, at[i])
        if not _grads_close(seen[i], expected):
            ratio = _ratio(seen[i], seen[0])
            fail(f"gradient at step {i + 1} for a batch identical to step 1's (lr=2**-20)",
                 f"{_fmt(expected)} (same as step 1)", f"{_fmt(seen[i])}",
                 f"gradients on step {i + 1} are {ratio:.1f}x step 1, so zero_grad() is not "
                 "called between steps (gradients are not cleared between optimizer steps): "
                 "clear the gradients after every optimizer.step()")

    # Across windows (k=2) and across epochs.
    trainer, model, optimizer = _spy_trainer(Trainer, seed=model_seed, lr=TRACE_LR)
    data = batches(np.concatenate([x] * 4), np.concatenate([y] * 4), [n] * 4)
    for epoch in range(2):
        _run(f"train_epoch(accumulation_steps=2), epoch {epoch}",
             trainer.train_epoch, data, accumulation_steps=2)
    _require_lr(optimizer, TRACE_LR, "train_epoch (lr=2**-20)")
    seen, at = optimizer.seen_grads, optimizer.seen_params
    require(len(seen) == 4, "optimizer steps in 2 epochs of 4 batches with accumulation_steps=2",
            4, len(seen), "step once every accumulation_steps batches")
    # what step 1 got, carried along the (tiny) drift of the weights: a window gradient off
    # by a constant factor (the accumulation checks' subject) is consistent here
    first = _mean_loss_grads(model_seed, x, y, at[0])
    factor = global_norm(seen[0]) / global_norm(first) if global_norm(first) else 1.0
    for i, grads in enumerate(seen[1:], start=1):
        drifted = [factor * g for g in _mean_loss_grads(model_seed, x, y, at[i])]
        if not _grads_close(grads, drifted):
            ratio = _ratio(grads, seen[0])
            where = "across epochs" if i == 2 else "between windows"
            fail(f"gradient at step {i + 1} (epoch {i // 2}, window {i % 2}) of identical "
                 "batches with accumulation_steps=2 (lr=2**-20)", f"{_fmt(seen[0])} (as step 1)",
                 _fmt(grads), f"gradients on step {i + 1} are {ratio:.1f}x step 1, so they "
                 f"leak {where} (gradients are not cleared between optimizer steps): "
                 "zero_grad() is not called after every optimizer step")


# ----------------------------------------------------------------------------- 1.3
def check_accumulation(Trainer: Any, *, seed: int = 0) -> None:  # noqa: N803
    """1.3: a window of k batches steps with the gradient of one batch of all its samples."""
    sizes, k = [1, 3, 2, 2, 3], 2  # windows [1, 3], [2, 2], and a partial [3]
    small, lr = 2, 0.2  # end to end: batches of 2 x k=2 against batches of 4
    if seed:
        vary = variation(seed, 13)
        sizes = unequal_sizes(vary, 5, 1, 4)  # windows of unequal batches, and a partial one
        small, lr = int(vary.integers(2, 5)), round(float(vary.uniform(0.1, 0.3)), 3)
    model_seed = shifted(4, seed)
    x, y = line_data(sum(sizes), seed=shifted(8, seed))
    trainer, model, optimizer = _spy_trainer(Trainer, seed=model_seed, lr=TRACE_LR)
    data = batches(x, y, sizes)
    _run(f"train_epoch(batches of {listed(sizes)}, accumulation_steps=2)",
         trainer.train_epoch, data, accumulation_steps=k)
    _require_lr(optimizer, TRACE_LR, "train_epoch (lr=2**-20)")
    seen = optimizer.seen_grads
    n_steps = len(seen)
    found = Deviations()
    with found.part():
        if n_steps != 3:
            bug = {
                2: "the partial last window was dropped: after the loop, step once more if any "
                   "batch is still accumulated",
                5: "accumulation_steps is ignored: the optimizer steps after every batch",
            }.get(n_steps, "step once every accumulation_steps batches, plus once for a partial "
                           "last window")
            fail("optimizer steps for 5 batches with accumulation_steps=2",
                 "3 (= ceil(5 / 2))", n_steps, bug)

    bounds = np.cumsum([0, *sizes])
    at = optimizer.seen_params
    windows = [(0, 2), (2, 4), (4, 5)]
    with found.part():  # the windows that were stepped as windows (not per batch)
        for w, (first, last) in enumerate(windows if n_steps in (2, 3) else []):
            if w >= n_steps:
                break
            a, b = bounds[first], bounds[last]
            expected = _mean_loss_grads(model_seed, x[a:b], y[a:b], at[w])
            got = seen[w]
            if _grads_close(got, expected):
                continue
            members = [_mean_loss_grads(model_seed, x[c:d], y[c:d], at[w]) for c, d in
                       zip(bounds[first:last], bounds[first + 1:last + 1], strict=True)]
            summed = [sum(g) for g in zip(*members, strict=False)]
            by_count = [s / len(members) for s in summed]
            by_k = [s / k for s in summed]
            window = f"window {w} (batches of {list(sizes[first:last])})"
            if _grads_close(got, summed) and len(members) > 1:
                ratio = _ratio(got, expected)
                bug = (f"gradients were summed, not averaged ({ratio:.2f}x the window's mean-loss "
                       f"gradient here, the sum over its {len(members)} batches): weight each "
                       "batch by its samples and divide by the window's total samples")
            elif _grads_close(got, by_k) or _grads_close(got, by_count):
                bug = ("divided by k instead of by samples (unequal batches): each batch's "
                       "gradient must count in proportion to its samples, i.e. the window's "
                       "gradient is that of the mean loss over all its samples")
            elif _grads_close(got, members[-1]):
                bug = ("only the window's last batch reached the step: gradients were cleared "
                       "per batch")
            elif w > 0 and stale_gradient(got, expected, seen[w - 1]):
                bug = NOT_CLEARED
            else:
                bug = ("the accumulated gradient is not that of one batch holding the window's "
                       "samples")
            fail(f"gradient handed to the optimizer for {window}, accumulation_steps=2 "
                 "(lr=2**-20)", f"{_fmt(expected)} (one batch of its {b - a} samples)",
                 _fmt(got), bug)

    with found.part():  # a count that merely follows a dropped window is not a second bug
        counted = trainer.step
        if counted != 3 and counted != n_steps:
            bug = {5: "trainer.step counts batches: it must count optimizer steps (one per "
                      "optimizer.step(); 5 batches with accumulation_steps=2 make 3 steps)",
                   2: "trainer.step does not count the partial last window's step: every "
                      "optimizer.step() counts, the partial window's too"}.get(
                counted, "trainer.step must count optimizer steps, one per optimizer.step()")
            fail("trainer.step after 5 batches with accumulation_steps=2",
                 f"3 (the optimizer steps taken: {n_steps})", counted, bug)
    found.report()

    # End to end: batch 4 x k=1 against batch 2 x k=2 (2 to 4 in a hidden run), learning for
    # 3 epochs.
    big = 2 * small
    x, y = line_data(4 * small, seed=shifted(9, seed))
    runs = []
    for sizes, k in (([big, big], 1), ([small] * 4, 2)):
        trainer, model, optimizer = _spy_trainer(Trainer, seed=shifted(5, seed), lr=lr)
        data = batches(x, y, sizes)
        losses = [float(_run(f"train_epoch(batches of {sizes[0]}, accumulation_steps={k})",
                             trainer.train_epoch, data, accumulation_steps=k))
                  for _ in range(3)]
        runs.append((_params(model), losses, len(optimizer.seen_grads)))
    (big_p, big_l, big_n), (acc_p, acc_l, acc_n) = runs
    against = f"batch {small} x k=2 against batch {big} x k=1"
    require(acc_n == big_n, f"optimizer steps: {against}, 3 epochs",
            big_n, acc_n, "step once per window of accumulation_steps batches")
    require(_params_close(acc_p, big_p), f"parameters after 3 epochs: {against} (lr={lr})",
            [p.ravel().round(6).tolist() for p in big_p],
            [p.ravel().round(6).tolist() for p in acc_p],
            "accumulating k batches must give exactly the update of one big batch")
    require(_close(acc_l, big_l), f"epoch losses: {against}",
            big_l, acc_l, "the epoch's loss must be the sample-weighted mean, however batched")


# ----------------------------------------------------------------------------- nan-loss
#: How much of a student's error message ``_names`` reads: the search tries each occurrence
#: of the word against the run of letters after it, quadratic in a pathological text.
MAX_NAMES_TEXT = 2000


def _names(message: str, word: str, index: int) -> bool:
    """The message names ``word`` with ``index`` (0-based) or ``index + 1`` (1-based)."""
    pattern = rf"{word}\w*[^0-9a-z]{{0,12}}(?:index[^0-9a-z]{{0,3}})?({index}|{index + 1})(?!\d)"
    return re.search(pattern, message[:MAX_NAMES_TEXT], flags=re.I) is not None


def _nan_cases(seed: int) -> tuple[int, list[tuple[float, int, int, int]]]:
    """The batch size, and (bad value, epoch, bad batch, accumulation_steps) of each case. The
    NaN case's bad batch is never the first of its window (the batches before it in the window
    must not be applied), nor in the first window (the windows before it must stand, so undoing
    the epoch shows)."""
    if seed == 0:
        return 2, [(np.nan, 2, 5, 2), (np.inf, 0, 0, 1)]
    vary = variation(seed, 14)
    k = int(vary.integers(2, 4))
    bad = int(vary.choice([b for b in range(k + 1, 8) if b % k]))
    cases = [(np.nan, int(vary.integers(0, 3)), bad, k),
             (np.inf, int(vary.integers(0, 3)), int(vary.integers(0, 8)), 1)]
    return int(vary.integers(1, 4)), cases


def check_nan_loss(Trainer: Any, *, seed: int = 0) -> None:  # noqa: N803
    """A NaN/inf loss raises an error naming epoch and batch; its window is never applied, the
    earlier windows' updates stand, and gradients are cleared."""
    size, cases = _nan_cases(seed)
    x, y = line_data(8 * size, seed=shifted(10, seed))
    sizes = [size] * 8
    clean = batches(x, y, sizes)
    for bad_value, epoch, bad_batch, k in cases:
        y_bad = y.copy()
        y_bad[size * bad_batch] = bad_value  # first sample of batch ``bad_batch``
        poisoned = batches(x, y_bad, sizes)
        trainer, model, spy = _spy_trainer(Trainer, seed=shifted(6, seed), lr=0.1)
        twin, twin_model, _ = _spy_trainer(Trainer, seed=shifted(6, seed), lr=0.1)
        for e in range(epoch):
            _run(f"train_epoch, clean epoch {e}", trainer.train_epoch, clean, k)
            _run(f"train_epoch, clean epoch {e}", twin.train_epoch, clean, k)
        if epoch:  # the clean epochs trained: what "the bad window was not applied" rests on
            steps, full = len(spy.seen_grads), epoch * (len(sizes) // k)
            require(steps >= full, f"optimizer steps in {epoch} clean epoch(s) of "
                    f"{len(sizes)} batches, accumulation_steps={k}",
                    f"at least {full} (one per full window)", steps,
                    "train_epoch must train: one optimizer step per window of "
                    "accumulation_steps batches")
        applied_windows = bad_batch // k
        if applied_windows:  # the twin takes exactly the windows before the bad one
            _run("train_epoch on the clean batches before the bad window",
                 twin.train_epoch, clean[: applied_windows * k], k)
        expected = _params(twin_model)
        before = _params(model)
        what = f"train_epoch with a {bad_value} target in batch {bad_batch} of epoch {epoch}"
        try:
            trainer.train_epoch(poisoned, accumulation_steps=k)
        except Exception as error:  # noqa: BLE001 - any exception class is accepted
            unwritten(error)
            message = str(error)
        else:
            fail(what, "an error naming the epoch and the batch", "no error was raised",
                 f"a {bad_value} loss was not checked: test math.isfinite(loss) for every batch "
                 "and raise before backward()/step()")
        after = _params(model)
        if not all(np.all(np.isfinite(p)) for p in after):
            fail(f"parameters after {what}", "finite (the bad window is never applied)",
                 "NaN/inf in the weights", "the window holding the bad batch was applied: "
                 "check the loss before backward()/optimizer.step(), not after")
        require(_names(message, "epoch", epoch) and _names(message, "batch", bad_batch),
                f"the error message of {what}", f"names epoch {epoch} and batch {bad_batch}",
                repr(message), "say where training diverged, e.g. f'loss is {loss} at epoch "
                "{self.epoch}, batch {batch_index}'")
        if not _params_close(after, expected):
            if applied_windows and _params_close(after, before):
                bug = ("the earlier windows of the epoch were undone; only the window holding "
                       "the bad batch must be skipped")
            else:
                bug = ("the window holding the bad batch was (partly) applied: the batches "
                       "already accumulated in it must not reach optimizer.step()")
            fail(f"parameters after {what} (accumulation_steps={k})",
                 f"those after the {applied_windows} earlier window(s) only",
                 "different parameters", bug)
        leftover = [g for g in (grad_array(p) for p in model.parameters()) if g is not None]
        require(all(not np.any(g) for g in leftover),
                f"gradients after {what}", "cleared (None or zeros)", _fmt(leftover),
                "clear the gradients before raising, so a caller who lowers the learning rate "
                "and continues does not step with the bad window's gradients")


# ----------------------------------------------------------------------------- accumulation-args
def check_accumulation_args(Trainer: Any, *, seed: int = 0) -> None:  # noqa: N803
    """accumulation_steps that is not a positive integer raises ValueError and changes nothing."""
    sizes = [4, 4] if seed == 0 else unequal_sizes(variation(seed, 15), 2, 1, 8)
    x, y = line_data(sum(sizes), seed=shifted(11, seed))
    data = batches(x, y, sizes)
    trainer, model, optimizer = _spy_trainer(Trainer, seed=shifted(7, seed), lr=0.1)
    start = _params(model)
    _run("train_epoch, one clean epoch", trainer.train_epoch, data)
    # "nothing changed" says something only of a trainer that changes things when it may
    steps = len(optimizer.seen_grads)
    moved = not _params_close(_params(model), start, rtol=0)
    require(steps == len(sizes) and moved,
            f"one clean epoch of {len(sizes)} batches before the refused arguments",
            f"{len(sizes)} optimizer steps that move the weights",
            f"{steps} steps, weights {'moved' if moved else 'unchanged'}",
            "train_epoch must train (one optimizer step per batch with accumulation_steps=1) "
            "before refusing a bad accumulation_steps can be judged: that refusal must leave a "
            "working trainer unchanged")
    for bad in (0, -1, 1.5, True):
        before = _params(model)
        state = (trainer.epoch, trainer.step, len(trainer.history["train_loss"]),
                 optimizer.step_count, len(optimizer.seen_grads))
        what = f"train_epoch(loader, accumulation_steps={bad!r})"
        try:
            trainer.train_epoch(data, accumulation_steps=bad)
        except ValueError:
            pass
        except Exception as error:  # noqa: BLE001
            unwritten(error)
            fail(what, "ValueError before anything runs", f"{type(error).__name__}: {error}",
                 "validate accumulation_steps first: it must be an int >= 1 and not a bool "
                 "(isinstance(True, int) is True), else raise ValueError")
        else:
            fail(what, "ValueError", "no error", "accumulation_steps is not validated: it must "
                 "be an int >= 1 and not a bool (isinstance(True, int) is True); raise "
                 "ValueError otherwise")
        after = (trainer.epoch, trainer.step, len(trainer.history["train_loss"]),
                 optimizer.step_count, len(optimizer.seen_grads))
        unchanged = all(np.array_equal(a, b) for a, b in zip(_params(model), before, strict=False))
        require(unchanged and after == state, f"the trainer after {what} raised",
                "unchanged (epoch, step, history, optimizer, parameters)",
                f"(epoch, step, history length, optimizer steps) {state} -> {after}, "
                f"parameters unchanged: {unchanged}",
                "validate accumulation_steps before training on any batch")


CHECKS = {
    "1.1": check_complete_loop,
    "1.2": check_gradients_cleared,
    "1.3": check_accumulation,
    "nan-loss": check_nan_loss,
    "accumulation-args": check_accumulation_args,
}
