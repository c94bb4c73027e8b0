"""Checks of train/eval modes: audit tests 2.1 (the mode seen inside forward switches, nested
layers included) and 2.2 (evaluate records no graph and changes nothing: gradients, parameters,
optimizer state, random numbers; its loss is sample-weighted and its accuracy is by argmax).

"No graph" is known only from a log the model writes inside forward, which the student's code
can write too, and a graph leaves no trace in what evaluate returns or changes: 2.2 fails on it
in the notebook, and a trusted grade leaves it out and says so on the student's report ("not
graded (checked in your notebook, not in the grade): ...", ``checks.replay.ungraded``).

The mode is observed INSIDE forward (a flag read after the call proves nothing about what the
layers saw). Each check takes the student's ``Trainer`` and uses only its public API. A hidden
run (``seed > 0``) shifts every data and model seed and draws other batch sizes.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from checks.diagnose import (
    NOT_GRADED,
    Deviations,
    attempt,
    fail,
    finding,
    listed,
    located,
    require,
    unwritten,
)
from checks.fixtures import LinearModel, blobs, line_data
from checks.replay import graded, ungraded
from checks.seeds import shifted, unequal_sizes, variation
from tinytorch.core.activations import Sigmoid
from tinytorch.core.autograd import no_grad
from tinytorch.core.layers import Dropout, Linear
from tinytorch.core.losses import BinaryCrossEntropyLoss, CrossEntropyLoss, MSELoss
from tinytorch.core.optimizers import SGD, Adam, grad_array
from tinytorch.core.tensor import Tensor


# ----------------------------------------------------------------------------- helpers
def _close(a: Any, b: Any, rtol: float = 1e-5, atol: float = 1e-7) -> bool:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return a.shape == b.shape and bool(np.all(np.abs(a - b) <= atol + rtol * np.abs(b)))


def _batches(x: np.ndarray, y: np.ndarray, sizes: list[int]) -> list[tuple[Tensor, Tensor]]:
    bounds = np.cumsum([0, *sizes])
    return [(Tensor(x[a:b]), Tensor(y[a:b])) for a, b in zip(bounds, bounds[1:], strict=False)]


class _Probe:
    """A duck-typed layer (no base class) that records its own ``training`` flag when run."""

    def __init__(self) -> None:
        self.training = True
        self.seen: list[bool] = []

    def forward(self, x: Tensor) -> Tensor:
        self.seen.append(self.training)
        return x

    def parameters(self) -> list[Tensor]:
        return []


class _ModeModel:
    """Duck-typed Linear -> Dropout -> probe -> Linear, the probe nested in a list; records in
    forward its own flag, the Dropout's, and whether its output records a graph."""

    def __init__(self, n_in: int = 1, n_out: int = 1, p: float = 0.5, seed: int = 0) -> None:
        self.first = Linear(n_in, 6, seed=seed)
        self.dropout = Dropout(p, seed=seed + 1)
        self.probe = _Probe()
        self.blocks = [self.probe, Linear(6, n_out, seed=seed + 2)]
        self.training = True
        self.seen: list[tuple[bool, bool, bool]] = []  # (model, dropout, probe)
        self.graph: list[bool] = []

    def forward(self, x: Tensor) -> Tensor:
        h = self.dropout(self.first(x))
        self.seen.append((bool(self.training), bool(self.dropout.training),
                          bool(self.probe.training)))
        for block in self.blocks:
            h = block.forward(h)
        self.graph.append(bool(h.requires_grad))
        return h

    def parameters(self) -> list[Tensor]:
        return self.first.parameters() + self.blocks[1].parameters()

    def set_all(self, mode: bool) -> None:
        self.training = self.dropout.training = self.probe.training = mode
        for layer in (self.first, self.blocks[1]):
            layer.training = mode


class _Probabilities:
    """Linear(2, 1) -> Sigmoid, duck-typed: probabilities for BinaryCrossEntropyLoss."""

    def __init__(self, seed: int) -> None:
        self.layer = Linear(2, 1, seed=seed)
        self.sigmoid = Sigmoid()
        self.training = True

    def forward(self, x: Tensor) -> Tensor:
        return self.sigmoid(self.layer(x))

    def parameters(self) -> list[Tensor]:
        return self.layer.parameters()


def _run(what: str, call: Any, *args: Any, **kwargs: Any) -> Any:
    return attempt(what, "it to run without an error",
                   f"{what.split()[0]} crashed on valid batches (the error and your line are "
                   "above)", call, *args, **kwargs)


def _evaluate_regression(trainer: Any, data: list[tuple[Tensor, Tensor]]) -> Any:
    """evaluate with MSELoss, where no sample is classified: a division by zero there is a
    count kept only for classification samples (the accuracy's, or the loss's divisor) that a
    regression loss leaves at 0, so the message says that rather than only "crashed"."""
    try:
        return trainer.evaluate(data)
    except ZeroDivisionError as error:
        fail("evaluate with MSELoss (a regression loss: no sample is classified)",
             "it to run without an error", f"ZeroDivisionError: {error}{located(error)}",
             "evaluate divided by a count of classified samples, which is 0 for a regression "
             "loss: divide the loss by the number of samples evaluated, whatever the loss, and "
             "return None as the accuracy when no sample was classified")
    except Exception as error:  # noqa: BLE001 - any other crash is shown as it is
        unwritten(error)
        fail("evaluate", "it to run without an error",
             f"{type(error).__name__}: {error}{located(error)}",
             "evaluate crashed on valid batches (the error and your line are above)")


def _averages(per_batch: list[float], sizes: list[int]) -> list[float]:
    """The two means a student's evaluate may return: sample-weighted, and batches as equals."""
    return [float(np.dot(per_batch, sizes) / sum(sizes)), float(np.mean(per_batch))]


def _masks_drawn(before: dict, after: dict, p: float, sizes: list[int]) -> int | None:
    """How many of the batches' Dropout masks (batches of ``sizes``, width 6, in order) take
    a generator from ``before`` to ``after``; None when no number of them does."""
    replica = Dropout(p)
    replica.rng.bit_generator.state = before
    for drawn in range(len(sizes) + 1):
        if replica.rng.bit_generator.state == after:
            return drawn
        if drawn < len(sizes):
            replica.forward(Tensor(np.zeros((sizes[drawn], 6), np.float32)))
    return None


def _losses_in_each_mode(model: _ModeModel, data: list[tuple[Tensor, Tensor]], drawn: dict
                         ) -> tuple[list[float], list[float]]:
    """Each batch's MSE with the model in eval mode, and in training mode with its Dropout
    drawing from the generator state ``drawn``: tinytorch's own forward, here. The model is
    left as it was found (flags, generator, logs), so the check goes on unchanged."""
    kept = (model.training, model.dropout.training, model.probe.training,
            [layer.training for layer in (model.first, model.blocks[1])],
            list(model.seen), list(model.graph), model.dropout.rng.bit_generator.state)

    def losses() -> list[float]:
        with no_grad():
            return [float(np.mean((model.forward(xb).data.astype(np.float64) - yb.data) ** 2))
                    for xb, yb in data]

    try:
        model.set_all(False)
        idle = losses()
        model.set_all(True)
        model.dropout.rng.bit_generator.state = drawn
        active = losses()
    finally:
        model.training, model.dropout.training, model.probe.training = kept[:3]
        model.first.training, model.blocks[1].training = kept[3]
        model.seen, model.graph = kept[4], kept[5]
        model.dropout.rng.bit_generator.state = kept[6]
    return idle, active


def _judge_evaluate_loss(model: _ModeModel, data: list[tuple[Tensor, Tensor]],
                         sizes: list[int], result: Any, drawn: dict) -> None:
    """The mode inside evaluate, judged by a second consequence the student's code cannot
    rewind: the loss it returned. A Dropout left in training mode scales and zeroes the
    activations, so the loss is the one the masks of its generator (as it was before
    evaluate) give, not the eval-mode one; a generator put back afterwards hides the draws,
    not the numbers. Averaged by samples or per batch alike (2.2 judges the averaging)."""
    try:
        loss = float(result[0])
    except (TypeError, ValueError, IndexError, KeyError):
        return  # 2.2 judges what evaluate returns
    idle, active = _losses_in_each_mode(model, data, drawn)
    if any(_close(loss, a) for a in _averages(active, sizes)) and not any(
            _close(loss, a) for a in _averages(idle, sizes)):
        fail("evaluate's loss on 3 batches",
             f"{_averages(idle, sizes)[0]:.6g} (the model in eval mode)",
             f"{loss:.6g} (the loss with Dropout active)",
             "the model was in training mode during evaluate's forward passes: call "
             "self._set_mode(False) before the loop (and leave the Dropout's random generator "
             "alone)")


def _mode_trainer(Trainer: Any, seed: int = 0) -> tuple[Any, _ModeModel]:  # noqa: N803
    model = _ModeModel(seed=seed)
    return Trainer(model, SGD(model.parameters(), lr=0.05), MSELoss()), model


# ----------------------------------------------------------------------------- 2.1
def check_mode_switching(Trainer: Any, *, seed: int = 0) -> None:  # noqa: N803
    """2.1: training mode inside train_epoch's forward, eval mode inside evaluate's, on the model
    and on every nested layer; evaluate leaves eval mode, train_epoch switches back."""
    sizes = [4, 4, 4] if seed == 0 else unequal_sizes(variation(seed, 21), 3, 1, 8)
    x, y = line_data(sum(sizes), seed=shifted(12, seed))
    data = _batches(x, y, sizes)
    trainer, model = _mode_trainer(Trainer, seed=shifted(3, seed))
    model.set_all(False)  # as after an earlier evaluate: train_epoch must switch on

    def judge(phase: str, wanted: bool, drawn_before: dict) -> None:
        """The mode inside forward, judged by its consequence: a Dropout in training mode
        draws one mask per forward pass from its generator, in eval mode none. The flags the
        model logs inside forward only word the message (the student's code can write them);
        the flags after the call are the trainer's own doing."""
        seen = model.seen
        model.seen = []
        drawn = model.dropout.rng.bit_generator.state
        masks = _masks_drawn(drawn_before, drawn, model.dropout.p, sizes)
        if phase.startswith("evaluate"):
            fix = "call self._set_mode(False) before the loop (it sets every layer's flag)"
        else:
            fix = ("train_epoch must switch back: call self._set_mode(True) at its start, "
                   "since evaluate leaves the model in eval mode")
        wanted_masks = 3 if wanted else 0
        if masks != wanted_masks:
            observed = ("a change no Dropout forward explains" if masks is None else
                        f"{masks} mask(s) drawn")
            top = [s[0] for s in seen if isinstance(s, tuple | list) and s]
            if masks == 3 - wanted_masks and top and all(v == wanted for v in top):
                bug = (f"the model's own flag was {wanted} but its Dropout's was not: nested "
                       f"layers kept training={not wanted}; set the flag on every sublayer: "
                       f"{fix}")
            elif masks == 3 - wanted_masks:
                bug = f"the model was in {'eval' if wanted else 'training'} mode: {fix}"
            else:
                bug = (f"the Dropout inside forward must be in {'training' if wanted else 'eval'} "
                       f"mode for every one of the 3 batches (one forward pass per batch): {fix}")
            fail(f"the Dropout's random draws during {phase} of 3 batches (a Dropout in "
                 "training mode draws one mask per forward pass, in eval mode none)",
                 f"{wanted_masks} mask(s) drawn", observed, bug)
        after = {"the model": model.training, "its Dropout": model.dropout.training,
                 "a duck-typed layer held in a list inside it": model.probe.training}
        for name, value in after.items():
            if bool(value) is not wanted or not isinstance(value, bool | np.bool_):
                fail(f"the training flag of {name} after {phase}", wanted, value,
                     f"only some flags were switched; {name} kept training={value!r}: set the "
                     f"flag on every sublayer (lists included): {fix}")

    def flag(after: str, wanted: bool, setter: str) -> None:
        observed = getattr(trainer, "training_mode", "missing")
        require(observed is wanted, f"trainer.training_mode after {after}", wanted, observed,
                f"{after} must set self.training_mode = {wanted} ({setter}), so the trainer "
                "knows and saves the mode its model is in")

    def state() -> dict:
        return model.dropout.rng.bit_generator.state

    before = state()
    _run("train_epoch", trainer.train_epoch, data)
    judge("train_epoch (model was left in eval mode)", True, before)
    flag("train_epoch", True, "self._set_mode(True) does both")
    before = state()
    result = _evaluate_regression(trainer, data)
    after = (model.training, model.dropout.training, model.probe.training)
    inside = [tuple(s) for s in model.seen if isinstance(s, tuple | list)]
    if after == (True, True, True) and inside and all(s == (False,) * 3 for s in inside) \
            and state() == before:
        fail("training flags (model, Dropout, nested layer) after evaluate returned",
             (False, False, False), after,
             "evaluate must leave the model in eval mode (train_epoch switches back); do not "
             "restore training mode at its end")
    judge("evaluate", False, before)
    _judge_evaluate_loss(model, data, sizes, result, before)
    flag("evaluate", False, "self._set_mode(False) sets it and the model's mode")
    before = state()
    _run("train_epoch after evaluate", trainer.train_epoch, data)
    judge("train_epoch after evaluate", True, before)


# ----------------------------------------------------------------------------- 2.2
#: Why "evaluate records no graph" costs no point, said alike in the notebook and on the report.
_GRAPH_UNSEEN = ("a graph leaves nothing in what evaluate returns or changes that the grader "
                 "could recompute; it still costs memory and time")


def _judge_graph(Trainer: Any, log: Any, batches: int) -> None:  # noqa: N803
    """Whether evaluate's forward passes recorded a graph. Only the model's own log says so
    (``requires_grad`` of each output, written inside ``forward``): an instrument the student's
    code can write, and a graph leaves no consequence in evaluate's results. So in the notebook
    a graph fails the check (the student's feedback), and in a trusted grade it is a note on
    the student's report, never a lost point (``checks.replay.graded``, ``ungraded``)."""
    try:
        seen = [bool(v) for v in log]
    except Exception:  # noqa: BLE001 - a log replaced by something else: shown as it is
        seen = []
    what = "requires_grad of the model's outputs inside evaluate's forward"
    bug = "a graph was recorded during evaluate: wrap the loop in no_grad()"
    if not graded(Trainer):
        require(bool(seen) and not any(seen), what, [False] * batches, log,
                f"{bug} (checked in your notebook, not graded: {_GRAPH_UNSEEN})")
    elif any(seen):
        ungraded(Trainer, f"{NOT_GRADED}: "
                          f"{finding(what, [False] * batches, seen, f'{bug} ({_GRAPH_UNSEEN})')}")


def _loss_bug(loss: float, per_batch: list[float], active: list[float],
              sizes: list[int]) -> str:
    """The likely bug behind a wrong regression (MSELoss) loss from evaluate, read from the
    number alone. Dropout is named only when the number bears it out: it is the loss the
    Dropout's masks give (a training-mode forward from the generator as evaluate found it),
    averaged either way. A loss of 0, inf or nan, or the undivided sum of loss x batch size, is
    the mark of a count of samples kept only for classification losses (for the accuracy),
    which a regression loss leaves at 0: used as the divisor, or as the guard around it."""
    total = float(np.dot(per_batch, sizes))
    divide = ("add every batch's loss times its number of samples, whatever the loss, and "
              "divide by the number of samples evaluated")
    if any(_close(loss, a) for a in _averages(active, sizes)):
        return ("the loss was computed with Dropout active: the model was not in eval mode "
                "during evaluate's forward passes")
    if loss == 0.0:
        return ("evaluate returned a loss of 0.0 for a regression loss (MSELoss): the sum of "
                "each batch's loss times its samples was divided by the number of "
                "classification samples (0 here, so the loss was set to 0), or only "
                "classification losses were added up: " + divide)
    if not math.isfinite(loss):
        return (f"evaluate returned a loss of {loss} for a regression loss (MSELoss): the sum "
                "of each batch's loss times its samples was divided by the number of "
                "classification samples, 0 here: " + divide)
    if _close(loss, total):
        return ("evaluate returned the sum of each batch's loss times its samples, not "
                "divided: the division was skipped where no sample is classified (a "
                "regression loss, MSELoss): " + divide)
    if _close(loss, float(np.mean(per_batch))):
        return "the batch losses were averaged as equals: weight each by its number of samples"
    return "the loss is not the mean over every sample of the evaluated data"


def _same_numbers(a: Any, b: Any) -> bool:
    """Two results of evaluate are the same numbers: close where finite, and the same inf or
    nan where not (a loss of inf from both a list and a generator is no difference)."""
    try:
        x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    except (TypeError, ValueError):
        return False
    if x.shape != y.shape:
        return False
    odd = ~np.isfinite(x) | ~np.isfinite(y)
    return bool(np.array_equal(x[odd], y[odd], equal_nan=True)) and _close(x[~odd], y[~odd])


def _grads(model: Any) -> list[np.ndarray | None]:
    return [None if (g := grad_array(p)) is None else np.array(g, copy=True)
            for p in model.parameters()]


def _same(a: Any, b: Any) -> bool:
    """Bit-for-bit equality of nested optimizer state (dicts, lists, arrays, numbers)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=False))
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return np.array_equal(a, b)
    return a == b



def check_evaluate_is_pure(Trainer: Any, *, seed: int = 0) -> None:  # noqa: N803
    """2.2: evaluate records no graph, changes no gradient, parameter, optimizer state or random
    state; its loss is the sample-weighted mean and its accuracy is by argmax."""
    sizes, csizes = [2, 7, 3], [7, 20, 33]
    if seed:
        vary = variation(seed, 22)
        sizes, csizes = unequal_sizes(vary, 3, 1, 9), unequal_sizes(vary, 3, 5, 30)
    x, y = line_data(sum(sizes), seed=shifted(13, seed))
    data = _batches(x, y, sizes)
    model = _ModeModel(seed=shifted(5, seed))
    optimizer = Adam(model.parameters(), lr=0.01)
    trainer = Trainer(model, optimizer, MSELoss())
    _run("train_epoch", trainer.train_epoch, data)
    for p in model.parameters():  # a gradient a caller left: evaluate must not touch it
        p.grad = np.full(p.data.shape, 0.25, dtype=p.data.dtype)
    grads, params = _grads(model), [p.data.copy() for p in model.parameters()]
    opt_state, lr = optimizer.state_dict(), optimizer.lr
    rng_state = model.dropout.rng.bit_generator.state
    n_eval = len(trainer.history["eval_loss"])
    model.graph = []
    result = _evaluate_regression(trainer, data)

    found = Deviations()
    with found.part():
        _judge_graph(Trainer, model.graph, len(sizes))

    with found.part():
        after = _grads(model)
        for i, (g0, g1) in enumerate(zip(grads, after, strict=False)):
            if g1 is None or not np.array_equal(g0, g1):
                fail(f"parameter {i}'s .grad across evaluate", "unchanged", "changed",
                     "evaluate touched the gradients: never call backward() (or zero_grad()) there")

    with found.part():
        for i, (p0, p) in enumerate(zip(params, model.parameters(), strict=False)):
            require(np.array_equal(p0, p.data), f"parameter {i} across evaluate",
                    "unchanged, bit for bit", "changed",
                    "evaluate updated the weights: never call optimizer.step() there")

    with found.part():
        require(_same(optimizer.state_dict(), opt_state) and optimizer.lr == lr,
                "optimizer state (moments, step counts, lr) across evaluate", "unchanged",
                "changed", "evaluate must not touch the optimizer (no step(), no lr change)")

    with found.part():
        require(model.dropout.rng.bit_generator.state == rng_state,
                "the Dropout's random generator across evaluate", "not advanced",
                "random numbers were drawn",
                "evaluate ran Dropout in training mode: put every layer in eval mode before the "
                "forward passes, so evaluation consumes no randomness")

    # The loss: the sample-weighted mean, computed here in eval mode.
    with found.part():
        try:
            loss, _ = result
            loss = float(loss)
        except (TypeError, ValueError):
            fail("evaluate's return value", "(loss, accuracy)", repr(result),
                 "evaluate must return a (loss, accuracy) tuple")
        per_batch, active = _losses_in_each_mode(model, data, rng_state)
        expected = _averages(per_batch, sizes)[0]
        if not _close(loss, expected):
            fail(f"evaluate's loss with batches of {listed(sizes)}",
                 f"{expected:.6g} (sample-weighted)",
                 f"{loss:.6g}", _loss_bug(loss, per_batch, active, sizes))
        history = trainer.history["eval_loss"]
        require(len(history) == n_eval + 1 and _close(history[-1], loss),
                "history['eval_loss'] after one evaluate", f"one more entry, {loss:.6g}",
                history, "append evaluate's loss to history['eval_loss'] once per call")

    # Evaluating in between changes nothing about training (same weights, same dropout masks).
    with found.part():
        finals = []
        for with_eval in (True, False):
            model = _ModeModel(seed=shifted(6, seed), p=0.5)
            trainer = Trainer(model, SGD(model.parameters(), lr=0.1), MSELoss())
            _run("train_epoch", trainer.train_epoch, data)
            if with_eval:
                _run("evaluate", trainer.evaluate, data)
            else:
                model.set_all(False)  # the mode evaluate leaves, without evaluating
            _run("train_epoch after evaluate", trainer.train_epoch, data)
            finals.append([p.data.astype(np.float64) for p in model.parameters()])
        require(all(_close(a, b) for a, b in zip(*finals, strict=False)),
                "weights after train, evaluate, train against train, train (dropout 0.5, seeded)",
                "equal", "different", "evaluate changed what training does next: it consumed "
                "random numbers or touched gradients, weights or optimizer state")

    # Accuracy for CrossEntropyLoss: the fraction of argmax predictions equal to the label.
    with found.part():
        x, labels = blobs(sum(csizes), classes=3, features=2, seed=shifted(14, seed))
        cdata = _batches(x, labels, csizes)
        model = _partly_right(x, labels, csizes, seed)
        trainer = Trainer(model, SGD(model.parameters(), lr=0.1), CrossEntropyLoss())
        loss, accuracy = _evaluate_classes(trainer, cdata, csizes)
        with no_grad():
            logits = [model.forward(xb).data for xb, _ in cdata]
            losses = [float(CrossEntropyLoss()(Tensor(lg), yb).data) for lg, (_, yb) in
                      zip(logits, cdata, strict=False)]
        hits = [(lg.argmax(axis=1) == yb.data).astype(np.float64) for lg, (_, yb) in
                zip(logits, cdata, strict=False)]
        expected_acc = float(np.concatenate(hits).mean())
        if accuracy is None or not _close(accuracy, expected_acc, rtol=1e-6, atol=1e-9):
            if accuracy is not None and _close(accuracy, np.mean([h.mean() for h in hits])):
                bug = "the batch accuracies were averaged as equals: count correct samples overall"
            elif accuracy is not None and _close(accuracy, 100 * expected_acc):
                bug = "accuracy must be a fraction in [0, 1], not a percentage"
            else:
                bug = ("for CrossEntropyLoss accuracy is the fraction of samples whose argmax over "
                       "the logits (axis=1) equals the label")
            fail(f"evaluate's accuracy with CrossEntropyLoss (batches of {listed(csizes)})",
                 f"{expected_acc:.6g}", repr(accuracy), bug)
        expected = float(np.dot(losses, csizes) / sum(csizes))
        require(_close(loss, expected),
                f"evaluate's CrossEntropyLoss loss (batches of {listed(csizes)})",
                f"{expected:.6g} (sample-weighted)", f"{float(loss):.6g}",
                "weight each batch's loss by its number of samples")

    # The same evaluation from a generator of batches, which has no len(): its own part, so a
    # wrong accuracy above does not hide it.
    with found.part():
        x, labels = blobs(sum(csizes), classes=3, features=2, seed=shifted(14, seed))
        cdata = _batches(x, labels, csizes)
        what = "evaluate on a generator of batches (no len())"
        model = _partly_right(x, labels, csizes, seed)
        trainer = Trainer(model, SGD(model.parameters(), lr=0.1), CrossEntropyLoss())
        from_list = _run("evaluate with CrossEntropyLoss", trainer.evaluate, cdata)
        try:
            again = trainer.evaluate(batch for batch in cdata)
        except Exception as error:  # noqa: BLE001 - the student's crash, reported
            unwritten(error)
            text = str(error)[:1000]
            bug = ("do not call len(dataloader) (a generator has no len()): count the samples "
                   "as the batches come" if "len()" in text else
                   "evaluate must work with any iterable of batches, a generator too")
            fail(what, f"{from_list}, as with a list", f"{type(error).__name__}: {text}"
                 f"{located(error)}", bug)
        require(_same_numbers(again, from_list), what, f"{from_list}, as with a list", repr(again),
                "evaluate must work with any iterable of batches, a generator too: do not call "
                "len(dataloader); count samples as they come")

    # Accuracy for BinaryCrossEntropyLoss: probabilities on the right side of 0.5.
    with found.part():
        x, labels = blobs(sum(csizes), classes=2, features=2, seed=shifted(15, seed))
        targets = labels.reshape(-1, 1)
        bdata = _batches(x, targets, csizes)
        model = _Probabilities(seed=shifted(9, seed))
        # weights along the line between the class means: mostly right, so a wrong rule shows
        c0, c1 = x[labels == 0].mean(axis=0), x[labels == 1].mean(axis=0)
        model.layer.weight.data[...] = (c1 - c0).reshape(2, 1)
        # the threshold near the projections' 30th percentile, in the widest gap between two
        # of them there (no probability near 0.5): some samples of class 0 land on the wrong
        # side, so the accuracy is neither 1.0 nor what any constant rule gives
        ranked = np.sort((x @ (c1 - c0)).astype(np.float64))
        low, high = int(0.2 * len(ranked)), int(0.4 * len(ranked))
        gap = low + int(np.argmax(np.diff(ranked[low:high + 1])))
        model.layer.bias.data[...] = -float(ranked[gap] + ranked[gap + 1]) / 2
        trainer = Trainer(model, SGD(model.parameters(), lr=0.1), BinaryCrossEntropyLoss())
        _, accuracy = _run("evaluate with BinaryCrossEntropyLoss", trainer.evaluate, bdata)
        with no_grad():
            probs = [model.forward(xb).data for xb, _ in bdata]
        p = np.concatenate(probs)
        expected_acc = float(np.mean((p >= 0.5) == (targets >= 0.5)))
        if accuracy is None or not _close(accuracy, expected_acc, rtol=1e-6, atol=1e-9):
            per_batch = [float(np.mean((q >= 0.5) == (yb.data >= 0.5)))
                         for q, (_, yb) in zip(probs, bdata, strict=True)]
            zeros = float(np.mean(targets < 0.5))
            if accuracy is not None and _close(accuracy, 1.0) and expected_acc < 1.0:
                bug = ("an accuracy of 1.0 whatever the probabilities: the argmax over a single "
                       "probability column is always 0 (for predictions and targets alike); "
                       "predict class 1 where the probability is >= 0.5 and compare with the "
                       "targets")
            elif accuracy is not None and _close(accuracy, zeros):
                bug = ("every sample predicted as class 0: the argmax over a single "
                       "probability column is always 0; predict class 1 where the "
                       "probability is >= 0.5")
            elif accuracy is not None and _close(accuracy, np.mean(per_batch)):
                bug = ("the batch accuracies were averaged as equals: count the correct "
                       "samples over all batches and divide by all samples")
            else:
                bug = ("for BinaryCrossEntropyLoss accuracy is the fraction of samples whose "
                       "probability is on the right side of 0.5 (p >= 0.5 predicts class 1)")
            fail(f"evaluate's accuracy with BinaryCrossEntropyLoss (batches of "
                 f"{listed(csizes)})", f"{expected_acc:.6g}", repr(accuracy), bug)
    found.report()


def _partly_right(x: np.ndarray, labels: np.ndarray, sizes: list[int], seed: int) -> Any:
    """A 3-class linear model that is right on some samples and not on others, unevenly
    across the batches: the nearest-center rule, with class 0's score lowered so that about
    60 % of class 0 is predicted wrong (a check of accuracy then sees every counting slip:
    batches averaged as equals, a constant prediction, a percentage)."""
    model = LinearModel(2, 3, seed=shifted(8, seed))
    centers = np.stack([x[labels == k].mean(axis=0) for k in range(3)])
    weight = centers.T.astype(np.float32)
    bias = (-0.5 * np.sum(centers ** 2, axis=1)).astype(np.float32)
    # class 0's margins over the best other class; lowering its score by a value in the widest
    # gap between 50 % and 70 % of them turns that share of class 0 wrong, far from any tie
    scores = x.astype(np.float64) @ weight + bias
    zero = scores[labels == 0]
    margins = np.sort(zero[:, 0] - zero[:, 1:].max(axis=1))
    low, high = int(0.5 * len(margins)), max(int(0.7 * len(margins)), int(0.5 * len(margins)) + 1)
    gap = low + int(np.argmax(np.diff(margins[low:high + 1]))) if len(margins) > 2 else 0
    penalty = (margins[gap] + margins[min(gap + 1, len(margins) - 1)]) / 2
    bias = (bias - np.array([penalty, 0.0, 0.0])).astype(np.float32)
    model.layer.weight.data[...] = weight
    model.layer.bias.data[...] = bias
    return model


def _evaluate_classes(trainer: Any, data: list, sizes: list[int]) -> Any:
    """evaluate with CrossEntropyLoss; a crash about shapes names the argmax's axis (the
    usual cause), any other crash is shown as it is."""
    what = f"evaluate with CrossEntropyLoss (3 classes, batches of {listed(sizes)})"
    try:
        return trainer.evaluate(data)
    except Exception as error:  # noqa: BLE001 - the student's crash, reported
        unwritten(error)
        text = str(error)[:2000]
        if "broadcast" in text or "shape" in text:
            bug = ("the accuracy compared arrays of different lengths: take the argmax over "
                   "the classes, logits.argmax(axis=1) (one prediction per sample), not axis=0 "
                   "(one per class), and compare it with the labels")
        else:
            bug = "evaluate crashed on valid batches (the error and your line are above)"
        fail(what, "it to run without an error", f"{type(error).__name__}: {text}"
             f"{located(error)}", bug)

CHECKS = {
    "2.1": check_mode_switching,
    "2.2": check_evaluate_is_pure,
}
