"""Audit 5.1, 5.2 and 7.1 to 7.3: training through the Trainer learns, records its history, and
works with every architecture, loss and optimizer of the course.

Losses are measured here with the model's own ``forward`` and the loss function, never read
back from the Trainer being judged. A hidden run (``seed > 0``) shifts every data and model seed
and draws other learning rates, batch sizes, schedules and hidden widths.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np

from checks.diagnose import Deviations, attempt, fail, require
from checks.fixtures import (
    MLP,
    NOT_CLEARED,
    GradientAuditSGD,
    LinearModel,
    SpySGD,
    batches,
    blobs,
    line_data,
    stale_gradient,
)
from checks.replay import settled_after
from checks.seeds import shifted, variation
from tinytorch.core.activations import ReLU, Sigmoid, Tanh
from tinytorch.core.layers import Linear, Sequential
from tinytorch.core.losses import BinaryCrossEntropyLoss, CrossEntropyLoss, MSELoss
from tinytorch.core.optimizers import SGD, Adam, AdamW
from tinytorch.core.tensor import Tensor


# ------------------------------------------------------------------ helpers
def _loss_of(model: Any, loss_fn: Any, x: np.ndarray, y: np.ndarray) -> float:
    """The loss of the whole data set under the model's current parameters."""
    return float(np.asarray(loss_fn(model.forward(Tensor(x)), Tensor(y)).data).reshape(-1)[0])


def _params(model: Any) -> list[np.ndarray]:
    return [np.array(p.data, copy=True) for p in model.parameters()]


def _train(trainer: Any, data: Any, epochs: int, what: str) -> list[float]:
    """Run ``epochs`` epochs; a crash or a non-finite loss is reported as such. Only the
    returned losses are read until the last epoch ends, so a graded run records the state
    the epochs changed once, after them (``settled_after``)."""
    losses = []
    with settled_after(trainer):
        for epoch in range(epochs):
            loss = attempt(f"{what}: train_epoch raised at epoch {epoch}", "training runs",
                           "train_epoch crashes on this setup; read the traceback's last line "
                           "of your code", trainer.train_epoch, data)
            require(loss is not None and math.isfinite(float(loss)),
                    f"{what}: train_epoch returned a non-finite or missing loss at epoch "
                    f"{epoch}", "a finite float (the epoch's mean loss)", loss,
                    "train_epoch must return the epoch's sample-weighted mean loss; a NaN means "
                    "the updates diverged (gradients never cleared, or the step goes uphill)")
            losses.append(float(loss))
    return losses


def _learns(model: Any, optimizer: Any, loss_fn: Any, x: np.ndarray, y: np.ndarray,
            data: Any, epochs: int, what: str, *, Trainer: Any, ratio: float) -> Any:
    """Train and require the loss to fall below ``ratio`` times its initial value."""
    before = _params(model)
    initial = _loss_of(model, loss_fn, x, y)
    trainer = Trainer(model, optimizer, loss_fn)
    _train(trainer, data, epochs, what)
    after = _params(model)
    moved = [not np.array_equal(a, b) for a, b in zip(before, after, strict=True)]
    require(any(moved), f"{what}: no parameter changed after {epochs} epochs",
            "the optimizer updates the parameters", "every parameter is exactly as initialised",
            "train_epoch never calls optimizer.step() (or clears the gradients before it)")
    final = _loss_of(model, loss_fn, x, y)
    require(math.isfinite(final) and final < ratio * initial,
            f"{what}: the loss did not fall enough in {epochs} epochs",
            f"final loss < {ratio} x initial loss {initial:.4g}", f"final loss {final:.4g}",
            "the loop does not learn: check the order forward -> loss -> backward -> step -> "
            "zero_grad, that gradients are cleared every step, and that the step goes downhill")
    return trainer


#: How many times a hidden case may be drawn again before the first draw is used anyway, how
#: far apart the draws' RNG seeds are, and the margin the library's own loop must reach over the
#: criterion (a correct Trainer does the same arithmetic, up to rounding).
REDRAWS, REDRAW_SHIFT, MARGIN = 10, 7919, 0.8


def _learnable(model: Any, make_optimizer: Callable[[Any], Any], loss_fn: Any, x: np.ndarray,
               y: np.ndarray, data: Any, epochs: int, ratio: float) -> bool:
    """Whether tinytorch's own loop (forward, loss, backward, step, zero_grad per batch) brings
    this model's loss below ``ratio`` x its initial value. Only library code runs here, the same
    in the sandbox and in the judge."""
    optimizer = make_optimizer(model.parameters())
    initial = _loss_of(model, loss_fn, x, y)
    for _ in range(epochs):
        for inputs, targets in data:
            loss_fn(model.forward(inputs), targets).backward()
            optimizer.step()
            optimizer.zero_grad()
    final = _loss_of(model, loss_fn, x, y)
    return math.isfinite(final) and final < ratio * initial


def _redraw(seed: int, build: Callable[[int], Any], make_optimizer: Callable[[Any], Any],
            loss_fn: Any, x: np.ndarray, y: np.ndarray, data: Any, epochs: int,
            ratio: float) -> int:
    """The first draw (0, 1, ...) of a hidden run's initial weights, ``build(draw)``, that the
    library's own loop learns to ``MARGIN`` x the criterion ``ratio`` the student's Trainer is
    held to. A few initialisations in a thousand leave a small ReLU network unable to halve its
    loss in the epochs a check allows; correct code must pass whatever seed grading draws. The
    visible run (``seed=0``) is always draw 0, and so is a hidden one where no draw learns."""
    if seed == 0:
        return 0
    return next((draw for draw in range(REDRAWS)
                 if _learnable(build(draw), make_optimizer, loss_fn, x, y, data, epochs,
                               MARGIN * ratio)), 0)


# ------------------------------------------------------------------ 5.1
def check_convergence(Trainer: Any, *, seed: int = 0) -> None:
    """5.1: y = 2x + 1 with a Linear(1, 1): w -> 2, b -> 1, final loss < 0.1 x initial. A hidden
    run uses another lr and batch size."""
    lr, batch = 0.3, 4
    if seed:
        vary = variation(seed, 51)
        lr, batch = round(float(vary.uniform(0.2, 0.4)), 3), int(vary.choice([4, 8]))
    x, y = line_data(32, seed=shifted(0, seed))
    model = LinearModel(1, 1, seed=shifted(0, seed))
    loss_fn = MSELoss()
    initial = _loss_of(model, loss_fn, x, y)
    trainer = Trainer(model, SGD(model.parameters(), lr=lr), loss_fn)
    losses = _train(trainer, batches(x, y, [batch] * (32 // batch)), 25, "y = 2x + 1")
    final = _loss_of(model, loss_fn, x, y)
    w = float(model.layer.weight.data.reshape(-1)[0])
    b = float(model.layer.bias.data.reshape(-1)[0])
    if w == float(_params(LinearModel(1, 1, seed=shifted(0, seed)))[0].reshape(-1)[0]):
        fail("y = 2x + 1: the weight never changed", "w moves towards 2", f"w = {w}",
             "train_epoch never calls optimizer.step(), or steps with no gradient")
    require(math.isfinite(final) and final < 0.1 * initial,
            "y = 2x + 1: the loss did not fall below a tenth of its initial value in 25 epochs",
            f"< {0.1 * initial:.4g}",
            f"{final:.4g} (epoch losses {[round(v, 4) for v in losses[:5]]} ... {losses[-1]:.4g})",
            "training does not learn: gradients not cleared between steps (they add up), "
            "backward not called, or the update goes uphill")
    require(abs(w - 2.0) < 0.05 and abs(b - 1.0) < 0.05,
            "y = 2x + 1: the learned line is wrong", "w ~ 2.0 and b ~ 1.0",
            f"w = {w:.4f}, b = {b:.4f}",
            "the loop converges to the wrong line: gradients are scaled wrongly, or some "
            "batches are skipped or counted twice")
    tail = losses[-10:]
    require(tail[-1] <= tail[0] + 1e-6, "y = 2x + 1: the epoch loss is rising at the end",
            "the recorded loss keeps falling (or stays at ~0)", f"last epochs {tail}",
            "train_epoch returns a loss that is not the epoch's mean loss, or the learning "
            "rate grows")


# ------------------------------------------------------------------ 5.2
def check_history(Trainer: Any, CosineSchedule: Any, *, seed: int = 0) -> None:
    """5.2: train_loss and learning_rates hold one entry per epoch, eval_loss one per evaluate,
    all finite, equal to what train_epoch and evaluate returned and to the epoch's LR. A hidden
    run uses another lr, schedule and batch size."""
    lr, top, bottom, total, batch = 0.05, 0.1, 0.01, 5, 8
    if seed:
        vary = variation(seed, 52)
        lr, top = round(float(vary.uniform(0.02, 0.1)), 3), round(float(vary.uniform(0.05, 0.2)), 3)
        bottom = round(top * float(vary.uniform(0.05, 0.5)), 4)
        total, batch = int(vary.integers(3, 9)), int(vary.integers(4, 11))
    x, y = line_data(3 * batch, seed=shifted(1, seed))
    data = batches(x, y, [batch] * 3)
    for scheduled in (False, True):
        model = LinearModel(1, 1, seed=shifted(1, seed))
        schedule = (CosineSchedule(max_lr=top, min_lr=bottom, total_epochs=total) if scheduled
                    else None)
        trainer = Trainer(model, SGD(model.parameters(), lr=lr), MSELoss(), scheduler=schedule)
        label = "with a CosineSchedule" if scheduled else "without a scheduler"
        returned, evaluated = [], []
        for epoch in range(5):
            returned.extend(_train(trainer, data, 1, f"history {label}"))
            if epoch % 2 == 0:
                evaluated.append(float(trainer.evaluate(data)[0]))
        history = trainer.history
        for key, wanted in (("train_loss", 5), ("learning_rates", 5), ("eval_loss", 3)):
            require(isinstance(history, dict) and key in history,
                    f"history {label}: trainer.history has no {key!r}",
                    "keys train_loss, eval_loss, learning_rates",
                    sorted(history) if isinstance(history, dict) else history,
                    f"create history[{key!r}] = [] in __init__")
            got = len(history[key])
            if got != wanted:
                per = "evaluate call" if key == "eval_loss" else "epoch"
                bug = (f"history[{key!r}] is never appended to" if got == 0 else
                       f"history[{key!r}] is appended {'more' if got > wanted else 'less'} "
                       f"than once per {per} (per batch or per step instead?)")
                if key == "learning_rates" and got == 0:
                    bug = "learning_rates is not recorded: append the epoch's LR in train_epoch"
                fail(f"history {label}: wrong number of {key!r} entries after 5 epochs and 3 "
                     "evaluate calls", f"{wanted} (one per {per})", got, bug)
            values = [float(v) for v in history[key]]
            require(all(math.isfinite(v) for v in values),
                    f"history {label}: {key!r} holds a non-finite value", "finite numbers",
                    values, "a NaN/inf was recorded: the loss diverged or an undefined value "
                    "was appended")
        close = [math.isclose(float(a), b, rel_tol=1e-9, abs_tol=1e-12)
                 for a, b in zip(history["train_loss"], returned, strict=True)]
        require(all(close), f"history {label}: train_loss differs from what train_epoch returned",
                returned, list(history["train_loss"]),
                "append the same epoch mean loss that train_epoch returns (not the last batch's)")
        close = [math.isclose(float(a), b, rel_tol=1e-9, abs_tol=1e-12)
                 for a, b in zip(history["eval_loss"], evaluated, strict=True)]
        require(all(close), f"history {label}: eval_loss differs from what evaluate returned",
                evaluated, list(history["eval_loss"]),
                "append the same loss that evaluate returns")
        expected = [schedule.get_lr(e) for e in range(5)] if scheduled else [lr] * 5
        close = [math.isclose(float(a), b, rel_tol=1e-9)
                 for a, b in zip(history["learning_rates"], expected, strict=True)]
        require(all(close), f"history {label}: learning_rates is not the LR of each epoch",
                expected, list(history["learning_rates"]),
                "record the learning rate the epoch trained with (set from the scheduler "
                "before the first batch), once per epoch")


    _judge_run_records(Trainer, seed)


class _Events:
    """A callback the check hands the trainer (``callbacks=[events]``): it logs every event of
    the loop with its fields. Its log is the student's to write like anything handed over, so
    each entry is judged against what the check recomputes: the steps the optimizer's replay
    bears out, and the losses and gradient norms at the weights of those steps."""

    def __init__(self) -> None:
        self.log: list[list[Any]] = []

    def on_epoch_begin(self, trainer: Any, epoch: Any, lr: Any) -> None:
        self.log.append(["on_epoch_begin", epoch, lr])

    def on_batch_end(self, trainer: Any, batch: Any, loss: Any, samples: Any) -> None:
        self.log.append(["on_batch_end", batch, loss, samples])

    def on_step(self, trainer: Any, grad_norm: Any) -> None:
        self.log.append(["on_step", grad_norm])

    def on_epoch_end(self, trainer: Any, loss: Any) -> None:
        self.log.append(["on_epoch_end", loss])

    def on_evaluate_end(self, trainer: Any, loss: Any, accuracy: Any) -> None:
        self.log.append(["on_evaluate_end", loss, accuracy])


_EVENT_FIX = {
    "on_epoch_begin": "self._emit('on_epoch_begin', epoch=self.epoch, lr=lr) once the epoch's "
                      "lr is set, before the first batch",
    "on_batch_end": "self._emit('on_batch_end', batch=batch, loss=value, samples=n) after each "
                    "batch's backward",
    "on_step": "self._emit('on_step', grad_norm=norm) after each optimizer step (norm: what "
               "clip_grad_norm returned, None without clipping)",
    "on_epoch_end": "self._emit('on_epoch_end', loss=mean_loss) after the last batch",
    "on_evaluate_end": "self._emit('on_evaluate_end', loss=loss, accuracy=accuracy) at the end "
                       "of evaluate",
}


def _number(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _judge_run_records(Trainer: Any, seed: int) -> None:  # noqa: N803
    """What a clipped run records besides its losses: history['grad_norm'] (the norm each step's
    averaged gradient had before clipping) and the loop's events, in order, with their fields.
    The run must first train: a trainer that moves no weight records nothing worth judging."""
    # a threshold above every norm of the run: what is recorded is this check's subject, how
    # clipping scales is 4.1's and the clip check's (a clipping bug then fails only those)
    clip, lr, batch, epochs = 50.0, 0.05, 6, 2
    if seed:
        vary = variation(seed, 53)
        clip, batch = float(vary.integers(40, 80)), int(vary.integers(4, 9))
    x, y = line_data(3 * batch, seed=shifted(2, seed))
    data = batches(x, y, [batch] * 3)
    model = LinearModel(1, 1, seed=shifted(3, seed))
    optimizer = SpySGD(model.parameters(), lr=lr)
    events = _Events()
    label = f"a run with grad_clip_norm={clip} and a callback ({epochs} epochs of 3 batches)"
    trainer = attempt(f"{label}: Trainer(..., callbacks=[events])", "a trainer",
                      "the constructor takes callbacks=[...] (the notebook's given constructor "
                      "does; keep it)", Trainer, model, optimizer, MSELoss(),
                      grad_clip_norm=clip, callbacks=[events])
    start = _params(model)
    returned = [float(v) for v in _train(trainer, data, epochs, label)]
    evaluated = attempt(f"{label}: evaluate", "(loss, accuracy)", "evaluate crashed on valid "
                        "batches", trainer.evaluate, data)
    moved = any(not np.array_equal(a, b) for a, b in zip(_params(model), start, strict=True))
    steps = optimizer.seen_grads
    require(moved and len(steps) == 3 * epochs, f"{label}: training",
            f"{3 * epochs} optimizer steps that move the weights",
            f"{len(steps)} steps, weights {'moved' if moved else 'unchanged'}",
            "train_epoch must train: forward, loss, backward and one optimizer step per batch")
    at = optimizer.seen_params
    norms, losses, grads = [], [], []
    for i, weights in enumerate(at):
        a = (i % 3) * batch
        w, b = weights
        r = x[a:a + batch].astype(np.float64) @ w + b - y[a:a + batch].astype(np.float64)
        grads.append([2 * x[a:a + batch].T.astype(np.float64) @ r / r.size,
                      np.array([2 * r.sum() / r.size])])
        norms.append(float(np.sqrt(np.sum(grads[-1][0] ** 2) + grads[-1][1][0] ** 2)))
        losses.append(float(np.mean(r ** 2)))
    # a norm that is off because the gradient is: the step before's left in .grad, the cause
    stale = any(i % 3 and stale_gradient(steps[i], grads[i], steps[i - 1])
                for i in range(1, len(steps)))

    found = Deviations()  # grad_norm and the events are independent: both are named
    with found.part():
        _judge_grad_norm(trainer, norms, label, NOT_CLEARED if stale else None)
    with found.part():
        _judge_events(events, returned, evaluated, losses, norms, lr, batch, epochs, label,
                      NOT_CLEARED if stale else None)
    found.report()


def _judge_grad_norm(trainer: Any, norms: list[float], label: str,
                     cause: str | None = None) -> None:
    history = trainer.history
    logged = history.get("grad_norm") if isinstance(history, dict) else None
    require(isinstance(logged, list), f"{label}: history['grad_norm']",
            "a list, one entry per optimizer step", repr(logged)[:200],
            "create history['grad_norm'] = [] in __init__ and append the norm clip_grad_norm "
            "returns at every optimizer step when grad_clip_norm is set")
    values = [_number(v) for v in logged]
    close = len(values) == len(norms) and all(
        v is not None and math.isclose(v, n, rel_tol=1e-4) for v, n in zip(values, norms,
                                                                           strict=True))
    if not close:
        if not values:
            bug = ("history['grad_norm'] is never appended to: append the norm clip_grad_norm "
                   "returns (before clipping) at every optimizer step")
        elif len(values) != len(norms):
            bug = (f"history['grad_norm'] has {len(values)} entries for {len(norms)} optimizer "
                   "steps: append once per step (not per batch or per epoch)")
        else:
            bug = cause or ("history['grad_norm'] must hold, for each step, the global norm of "
                            "the averaged gradient before clipping (what clip_grad_norm "
                            "returns)")
        fail(f"{label}: history['grad_norm']",
             f"{[round(n, 6) for n in norms]} (the norm of each step's gradient before clipping)",
             [round(v, 6) if v is not None else v for v in values], bug)



def _judge_events(events: _Events, returned: list[float], evaluated: Any, losses: list[float],
                  norms: list[float], lr: float, batch: int, epochs: int, label: str,
                  cause: str | None = None) -> None:
    expected: list[list[Any]] = []
    for e in range(epochs):
        expected.append(["on_epoch_begin", e, lr])
        for i in range(3):
            step = 3 * e + i
            expected += [["on_batch_end", i, losses[step], batch], ["on_step", norms[step]]]
        expected.append(["on_epoch_end", returned[e]])
    loss, accuracy = (evaluated if isinstance(evaluated, tuple | list) and len(evaluated) == 2
                      else (None, None))
    expected.append(["on_evaluate_end", _number(loss), accuracy])
    log = events.log if isinstance(events.log, list) else []
    names = [entry[0] if isinstance(entry, list) and entry else "?" for entry in log]
    wanted = [entry[0] for entry in expected]
    if names != wanted:
        missing = [n for n in _EVENT_FIX if n in wanted and n not in names]
        fix = (f"{missing[0]} never fired: call {_EVENT_FIX[missing[0]]}" if missing else
               "each event fires once per occurrence, in this order within an epoch: "
               "on_epoch_begin, then per batch on_batch_end and, when a window ends, on_step, "
               "then on_epoch_end; on_evaluate_end at the end of evaluate")
        fail(f"{label}: the loop's events, in order (a live view draws from them)",
             ", ".join(wanted[:9]) + ", ...", ", ".join(names[:9]) + (", ..." if names else
                                                                       "no event"), fix)
    for position, (got, want) in enumerate(zip(log, expected, strict=True)):
        ok = len(got) == len(want)
        for g, w in zip(got[1:], want[1:], strict=False):
            if w is None:
                ok = ok and g is None
            elif isinstance(w, int):
                ok = ok and isinstance(g, int | np.integer) and int(g) == w
            else:
                ok = ok and _number(g) is not None and math.isclose(_number(g), w, rel_tol=1e-5,
                                                                    abs_tol=1e-9)
        if not ok:
            name = want[0]
            fields = {"on_epoch_begin": "epoch, lr", "on_batch_end": "batch, loss, samples",
                      "on_step": "grad_norm", "on_epoch_end": "loss",
                      "on_evaluate_end": "loss, accuracy"}[name]
            fail(f"{label}: the fields of event {position} ({name}: {fields})",
                 [round(v, 6) if isinstance(v, float) else v for v in want[1:]],
                 [_number(v) if not isinstance(v, int | type(None)) else v for v in got[1:]],
                 cause if cause and name == "on_step" else
                 f"call {_EVENT_FIX[name]}: {_EVENT_FIELDS[name]}")


_EVENT_FIELDS = {
    "on_epoch_begin": "the epoch being trained (from 0) and the rate it trains with",
    "on_batch_end": "the batch's index from 0, its own loss (not a running mean) and its "
                    "number of samples",
    "on_step": "the norm clip_grad_norm returned for this step, before clipping",
    "on_epoch_end": "the epoch's mean loss, as train_epoch returns it",
    "on_evaluate_end": "the loss and accuracy evaluate returns",
}


# ------------------------------------------------------------------ 7.1
class _Squash:
    """Linear -> Sigmoid -> Linear -> Tanh... as a duck-typed model with two activations."""

    def __init__(self, seed: int) -> None:
        self.layer1 = Linear(2, 6, seed=seed)
        self.sigmoid = Sigmoid()
        self.layer2 = Linear(6, 6, seed=seed + 1)
        self.tanh = Tanh()
        self.layer3 = Linear(6, 1, seed=seed + 2)
        self.training = True

    def forward(self, x: Tensor) -> Tensor:
        return self.layer3(self.tanh(self.layer2(self.sigmoid(self.layer1(x)))))

    def parameters(self) -> list[Tensor]:
        return self.layer1.parameters() + self.layer2.parameters() + self.layer3.parameters()


def _plane(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, size=(32, 2)).astype(np.float32)
    y = (x @ np.array([[1.5], [-1.0]]) + 0.5).astype(np.float32)
    return x, y


def _hidden(seed: int, salt: int) -> int:
    """The hidden width of the MLPs: 8, or 6 to 12 in a hidden run."""
    return 8 if seed == 0 else int(variation(seed, salt).integers(6, 13))


def check_architectures(Trainer: Any, *, seed: int = 0) -> None:
    """7.1: a single Linear, an MLP with ReLU, Sigmoid/Tanh activations, and a Sequential."""
    x, y = _plane(shifted(5, seed))
    data = batches(x, y, [16, 16])
    h = _hidden(seed, 71)

    def at(k: int, draw: int) -> int:
        return shifted(k, seed) + REDRAW_SHIFT * draw

    # (name, the model of a draw, whether its ReLU units can all fall silent at some draws)
    models: list[tuple[str, Callable[[int], Any], bool]] = [
        ("single Linear (duck-typed model)", lambda d: LinearModel(2, 1, seed=at(3, d)), False),
        ("MLP Linear -> ReLU -> Linear", lambda d: MLP(2, h, 1, seed=at(3, d)), True),
        ("Linear -> Sigmoid -> Linear -> Tanh -> Linear", lambda d: _Squash(at(3, d)), False),
        ("Sequential(Linear, ReLU, Linear)",
         lambda d: Sequential(Linear(2, h, seed=at(4, d)), ReLU(), Linear(h, 1, seed=at(5, d))),
         True),
        ("a bare Linear layer as the model", lambda d: Linear(2, 1, seed=at(6, d)), False),
    ]

    adam = partial(Adam, lr=0.05)
    for name, build, relu in models:
        draw = _redraw(seed, build, adam, MSELoss(), x, y, data, 30, 0.5) if relu else 0
        model = build(draw)
        _learns(model, adam(model.parameters()), MSELoss(), x, y, data, 30, name,
                Trainer=Trainer, ratio=0.5)


# ------------------------------------------------------------------ 7.2
def check_losses(Trainer: Any, *, seed: int = 0) -> None:
    """7.2: MSELoss, CrossEntropyLoss and BinaryCrossEntropyLoss (after a Sigmoid) train, and
    every parameter receives a gradient at every step."""
    xr, yr = _plane(shifted(6, seed))
    # a hidden run spaces the classes evenly: random centers may land too close to learn
    xc, yc = blobs(60, classes=3, features=2, seed=shifted(2, seed), evenly=seed > 0)
    xb, labels = blobs(60, classes=2, features=2, seed=shifted(4, seed), evenly=seed > 0)
    yb = labels.reshape(-1, 1).astype(np.float32)
    h = _hidden(seed, 72)

    def at(k: int, draw: int) -> int:
        return shifted(k, seed) + REDRAW_SHIFT * draw

    cases: list[tuple[str, Callable[[int], Any], Any, np.ndarray, np.ndarray, float]] = [
        ("MSELoss (regression)", lambda d: MLP(2, h, 1, seed=at(7, d)), MSELoss(), xr, yr,
         0.05),
        ("CrossEntropyLoss (3 classes)", lambda d: MLP(2, h, 3, seed=at(8, d)),
         CrossEntropyLoss(), xc, yc, 0.05),
        ("BinaryCrossEntropyLoss after a Sigmoid",
         lambda d: Sequential(Linear(2, h, seed=at(9, d)), ReLU(), Linear(h, 1, seed=at(10, d)),
                              Sigmoid()),
         BinaryCrossEntropyLoss(), xb, yb, 0.1),
    ]
    for name, build, loss_fn, x, y, lr in cases:
        n = len(x)
        data = batches(x, y, [n // 2, n - n // 2])
        draw = _redraw(seed, build, partial(SGD, lr=lr, momentum=0.9), loss_fn, x, y, data, 25,
                       0.5)
        model = build(draw)
        optimizer = GradientAuditSGD(model.parameters(), lr=lr, momentum=0.9)
        _learns(model, optimizer, loss_fn, x, y, data, 25, name, Trainer=Trainer, ratio=0.5)
        require(optimizer.steps_seen == 50, f"{name}: wrong number of optimizer steps",
                "50 (2 batches x 25 epochs)", optimizer.steps_seen,
                "optimizer.step() must run once per batch (accumulation_steps=1)")
        for step, i, g in optimizer.unusable[:1]:
            fail(f"{name}: parameter {i} had no usable gradient at optimizer step {step}",
                 f"a finite gradient on every parameter at every step, non-zero in the first "
                 f"{GradientAuditSGD.ZERO_STEPS}",
                 "None" if g is None else g,
                 "backward was not called on this loss before step(), or the gradients "
                 "were cleared between backward and step")


# ------------------------------------------------------------------ 7.3
def check_optimizers(Trainer: Any, *, seed: int = 0) -> None:
    """7.3: SGD, SGD with momentum, Adam and AdamW drive the Trainer and learn y = 2x + 1."""
    x, y = line_data(32, seed=shifted(2, seed))
    data = batches(x, y, [16, 16])
    cases: list[tuple[str, Callable[[Any], Any], int]] = [
        ("SGD", lambda ps: SGD(ps, lr=0.3), 30),
        ("SGD with momentum 0.9", lambda ps: SGD(ps, lr=0.05, momentum=0.9), 30),
        ("Adam", lambda ps: Adam(ps, lr=0.1), 30),
        ("AdamW", lambda ps: AdamW(ps, lr=0.1, weight_decay=0.01), 30),
    ]
    for name, make, epochs in cases:
        model = LinearModel(1, 1, seed=shifted(2, seed))
        optimizer = make(model.parameters())
        trainer = _learns(model, optimizer, MSELoss(), x, y, data, epochs, f"{name} on y = 2x + 1",
                          Trainer=Trainer, ratio=0.1)
        require(optimizer.step_count == 2 * epochs,
                f"{name}: the optimizer stepped the wrong number of times",
                f"{2 * epochs} (2 batches x {epochs} epochs)", optimizer.step_count,
                "call optimizer.step() exactly once per batch")
        require(trainer.step == optimizer.step_count,
                f"{name}: trainer.step does not count the optimizer's steps",
                optimizer.step_count, trainer.step,
                "increment trainer.step once per optimizer.step()")


CHECKS: dict[str, Callable[..., None]] = {
    "5.1": check_convergence,
    "5.2": check_history,
    "7.1": check_architectures,
    "7.2": check_losses,
    "7.3": check_optimizers,
}
