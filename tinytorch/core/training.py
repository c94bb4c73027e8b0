"""Module 07: Training. A learning-rate schedule, gradient clipping, and the Trainer that runs
the loop every model in this course learns with.

The loop itself is five lines (forward, loss, backward, step, zero_grad). What makes it a
trainer is everything around those lines that goes wrong silently when done carelessly:

* gradients ADD into ``.grad``: forget to clear them and every step uses the sum of all
  previous gradients;
* accumulating k small batches must give the update of one big batch, so each batch counts in
  proportion to its samples, not 1/k each (the last batch of an epoch is often smaller);
* clipping must see the whole accumulated gradient, once per optimizer step;
* the epoch's learning rate must be set before its first batch, not after;
* evaluation must not record a graph, touch a gradient, or consume randomness;
* a NaN loss must stop training before it reaches the weights;
* a checkpoint must hold everything the next step depends on (Adam's moments too), or resuming
  quietly trains a different model.

``CosineSchedule.get_lr``, ``clip_grad_norm``, the Trainer's loop, evaluation and checkpoints
and ``training_memory`` are written in the Module 07 notebook, one answer cell each; the rest
is given.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from tinytorch.core import activations as act
from tinytorch.core import layers as nn
from tinytorch.core import optimizers as optim
from tinytorch.core.autograd import no_grad
from tinytorch.core.checkpoint import CheckpointError, read_checkpoint, write_checkpoint
from tinytorch.core.layers import modules, rng_owners, set_training
from tinytorch.core.losses import BinaryCrossEntropyLoss, CrossEntropyLoss
from tinytorch.core.optimizers import Optimizer, grad_array
from tinytorch.core.tensor import Tensor


class TrainingDivergedError(FloatingPointError):
    """A loss or gradient norm became NaN or infinite; the offending update was not applied."""


class Model(Protocol):
    """What the Trainer needs of a model (no base class required)."""

    training: bool

    def forward(self, x: Tensor) -> Tensor: ...

    def parameters(self) -> Iterable[Tensor]: ...


def _is_number(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, int | float | np.integer | np.floating)


def _check_rate(name: str, value: Any) -> float:
    if not _is_number(value) or not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return float(value)


def _check_count(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        kind = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        raise ValueError(f"{name} must be {kind}, got {value!r}")
    return int(value)


# ============================================================================ CosineSchedule
class CosineSchedule:
    """Cosine annealing from ``max_lr`` down to ``min_lr`` over ``total_epochs``.

        lr(e) = min_lr + (max_lr - min_lr) * (1 + cos(pi * e / total_epochs)) / 2

    Large steps early explore; small steps late settle into a minimum. ``get_lr`` is a pure
    function of the epoch (no hidden counter), so a resumed run gets the same rates, and the
    rate stays at ``min_lr`` after ``total_epochs`` (PyTorch's CosineAnnealingLR would rise
    again). With ``warmup_epochs = w > 0`` the first w epochs ramp linearly up to ``max_lr``
    (max_lr * (e + 1) / (w + 1)) and the cosine runs over the remaining epochs.
    """

    def __init__(
        self,
        max_lr: float = 0.1,
        min_lr: float = 0.01,
        total_epochs: int = 100,
        warmup_epochs: int = 0,
    ) -> None:
        self.max_lr = _check_rate("max_lr", max_lr)
        self.min_lr = _check_rate("min_lr", min_lr)
        if self.min_lr > self.max_lr:
            raise ValueError(f"min_lr ({min_lr!r}) must not exceed max_lr ({max_lr!r})")
        self.total_epochs = _check_count("total_epochs", total_epochs, 1)
        self.warmup_epochs = _check_count("warmup_epochs", warmup_epochs, 0)
        if self.warmup_epochs >= self.total_epochs:
            raise ValueError(
                f"warmup_epochs ({warmup_epochs!r}) must be less than total_epochs "
                f"({total_epochs!r})"
            )

    def get_lr(self, epoch: float) -> float:
        """Learning rate for ``epoch`` (0-based; fractional epochs allowed), as a ``float``."""
        if not _is_number(epoch) or not math.isfinite(epoch) or epoch < 0:
            raise ValueError(f"epoch must be a finite number >= 0, got {epoch!r}")
        ### BEGIN SOLUTION
        if epoch >= self.total_epochs:
            return self.min_lr
        if epoch < self.warmup_epochs:
            return self.max_lr * (epoch + 1) / (self.warmup_epochs + 1)
        progress = (epoch - self.warmup_epochs) / (self.total_epochs - self.warmup_epochs)
        # max_lr - (max_lr - min_lr) * (1 - cos) / 2 is the formula above rearranged, so that
        # epoch 0 gives exactly max_lr; max() absorbs rounding just above min_lr.
        decay = (self.max_lr - self.min_lr) * (1.0 - math.cos(math.pi * progress)) / 2.0
        return max(self.min_lr, float(self.max_lr - decay))
        ### END SOLUTION

    def settings(self) -> dict[str, Any]:
        """Constructor arguments, for checkpoints."""
        return {
            "kind": type(self).__name__,
            "max_lr": self.max_lr,
            "min_lr": self.min_lr,
            "total_epochs": self.total_epochs,
            "warmup_epochs": self.warmup_epochs,
        }

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v}" for k, v in self.settings().items() if k != "kind")
        return f"CosineSchedule({args})"


# ============================================================================ clip_grad_norm
def clip_grad_norm(parameters: Iterable[Tensor], max_norm: float = 1.0) -> float:
    """Scale all gradients together so their global L2 norm is at most ``max_norm``.

        total_norm = sqrt(sum over parameters of sum(grad ** 2))
        if total_norm > max_norm: every grad *= max_norm / (total_norm + 1e-6)

    One factor for all gradients keeps the update's direction and only shortens it, which is
    what rescues a step that met a cliff in the loss surface. Returns the norm BEFORE clipping
    (log it: a norm that keeps growing is an early warning of divergence).

    Parameters without a gradient are skipped; ``parameters`` may be a generator (read once).
    Gradients are changed in place and keep their dtype and container (Tensor or ndarray);
    below the threshold they are left untouched, bit for bit. Squares that overflow or
    underflow float32 (gradients near 3e20 or 1e-25) are recomputed in float64, so the norm is
    right at every scale.

    A non-finite norm (a NaN or inf in some gradient) is returned as is and the gradients are
    left unchanged: no factor can repair them, so the caller must skip the step (the Trainer
    raises TrainingDivergedError).
    """
    if not _is_number(max_norm) or not math.isfinite(max_norm) or max_norm < 0:
        raise ValueError(f"max_norm must be a finite number >= 0, got {max_norm!r}")
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    ### BEGIN SOLUTION
    grads = [g for g in (grad_array(p) for p in parameters) if g is not None]
    squares = 0.0
    for g in grads:
        flat = g.reshape(-1)
        with np.errstate(over="ignore"):  # an overflow is caught just below
            square = float(np.dot(flat, flat))
        # float32 overflow (or a real inf/NaN), or squares that underflowed to 0: redo in float64
        if not math.isfinite(square) or (square == 0.0 and flat.any()):
            wide = flat.astype(np.float64)
            square = float(np.dot(wide, wide))
        squares += square
    total_norm = math.sqrt(squares)
    if total_norm > max_norm:  # False for NaN, so non-finite gradients are left alone
        if math.isfinite(total_norm):
            scale = max_norm / (total_norm + 1e-6)
            for g in grads:
                g *= scale
    return total_norm
    ### END SOLUTION


# ============================================================================ Trainer
class Trainer:
    """Runs epochs of training and evaluation, and saves and restores all of their state.

    Attributes: ``epoch`` (completed epochs), ``step`` (optimizer steps taken), ``training_mode``,
    and ``history``: ``train_loss`` and ``learning_rates`` (one entry per epoch), ``eval_loss``
    and ``eval_accuracy`` (one per ``evaluate``), ``grad_norm`` (the norm before clipping, one per
    optimizer step, when ``grad_clip_norm`` is set).

    ``callbacks`` are objects with any of these methods, called with the trainer first (the
    names of the loop's events, for live plots and logging): ``on_epoch_begin(trainer, epoch,
    lr)``, ``on_batch_end(trainer, batch, loss, samples)``, ``on_step(trainer, grad_norm)``,
    ``on_epoch_end(trainer, loss)``, ``on_evaluate_end(trainer, loss, accuracy)``.
    """

    def __init__(
        self,
        model: Model,
        optimizer: Optimizer,
        loss_fn: Any,
        scheduler: CosineSchedule | None = None,
        grad_clip_norm: float | None = None,
        *,
        callbacks: Iterable[Any] = (),
    ) -> None:
        for name in ("forward", "parameters"):
            if not callable(getattr(model, name, None)):
                raise ValueError(f"model must have a {name}() method; got {type(model).__name__}")
        if not callable(loss_fn):
            raise ValueError(f"loss_fn must be callable; got {type(loss_fn).__name__}")
        if scheduler is not None and not callable(getattr(scheduler, "get_lr", None)):
            raise ValueError("scheduler must have a get_lr(epoch) method, or be None")
        if grad_clip_norm is not None:
            if (
                not _is_number(grad_clip_norm)
                or not math.isfinite(grad_clip_norm)
                or grad_clip_norm <= 0
            ):
                raise ValueError(
                    f"grad_clip_norm must be a finite number > 0 or None, got {grad_clip_norm!r}"
                )
            grad_clip_norm = float(grad_clip_norm)
        self.model = model
        self.optimizer = optimizer
        self.loss_fn = loss_fn
        self.scheduler = scheduler
        self.grad_clip_norm = grad_clip_norm
        self.callbacks = list(callbacks)
        self.epoch = 0
        self.step = 0
        self.training_mode = True
        self.history: dict[str, list] = {
            "train_loss": [],
            "eval_loss": [],
            "eval_accuracy": [],
            "learning_rates": [],
            "grad_norm": [],
        }
        self._data_seed: int | None = None  # seed of the shuffling loader last trained on
        self._restored_data_seed: int | None = None  # from a checkpoint, for the next epoch

    # ------------------------------------------------------------------ helpers (given)
    def _emit(self, event: str, **info: Any) -> None:
        for callback in self.callbacks:
            handler = getattr(callback, event, None)
            if handler is not None:
                handler(self, **info)

    def _set_mode(self, training: bool) -> None:
        set_training(self.model, training)
        self.training_mode = training

    def _clear_grads(self, params: list[Tensor] | None = None) -> None:
        self.optimizer.zero_grad()
        for p in self.model.parameters() if params is None else params:
            p.grad = None

    def _start_data_order(self, dataloader: Any) -> None:
        """Make a shuffling loader replay the order of epoch ``self.epoch`` (see tinytorch.data)."""
        if self._restored_data_seed is not None and hasattr(dataloader, "load_state_dict"):
            dataloader.load_state_dict({"seed": self._restored_data_seed, "epoch": self.epoch})
            self._restored_data_seed = None
        elif hasattr(dataloader, "set_epoch"):
            dataloader.set_epoch(self.epoch)
        if hasattr(dataloader, "state_dict"):
            self._data_seed = int(dataloader.state_dict()["seed"])

    # ------------------------------------------------------------------ training
    def train_epoch(
        self, dataloader: Iterable[tuple[Any, Any]], accumulation_steps: int = 1
    ) -> float:
        """Train one epoch; return its sample-weighted mean loss.

        Before the first batch: training mode, the epoch's learning rate (from the scheduler,
        if there is one), the loader's order for this epoch, and cleared gradients, so nothing
        left from earlier reaches the first step.

        Every ``accumulation_steps`` batches (and after the last, possibly partial, window) the
        optimizer takes one step with the gradient of the mean loss over all samples in the
        window, exactly as if they had come in one batch.

        A non-finite loss raises TrainingDivergedError naming the epoch and the batch before
        its window reaches the optimizer. An epoch stopped that way is not completed: ``epoch``
        and ``history`` do not advance (the steps it already took do count in ``step``).
        """
        steps = _check_count("accumulation_steps", accumulation_steps, 1)
        ### BEGIN SOLUTION
        self._set_mode(True)
        if self.scheduler is not None:
            self.optimizer.lr = self.scheduler.get_lr(self.epoch)
        lr = float(self.optimizer.lr)
        self._start_data_order(dataloader)
        params = list(self.model.parameters())  # once per epoch: a generator is read once
        self._clear_grads(params)
        self._emit("on_epoch_begin", epoch=self.epoch, lr=lr)

        loss_sum, samples = 0.0, 0
        window_batches, window_samples = 0, 0
        for batch, (inputs, targets) in enumerate(dataloader):
            inputs, targets = _tensor(inputs), _tensor(targets)
            loss = self.loss_fn(self.model.forward(inputs), targets)
            value = _scalar(loss)
            if not math.isfinite(value):
                self._clear_grads(params)
                raise TrainingDivergedError(
                    f"loss is {value} at epoch {self.epoch}, batch {batch}: the update of the "
                    f"window holding this batch was not applied (the {self.step} earlier steps "
                    "stand) and gradients were cleared. Lower the learning rate, set "
                    "grad_clip_norm, or look for NaN/inf in the data."
                )
            n = len(targets) if targets.ndim else 1
            # d(sum of the batch's per-sample losses): the window is averaged at its step.
            loss.backward(float(n))
            loss_sum += value * n
            samples += n
            window_batches += 1
            window_samples += n
            self._emit("on_batch_end", batch=batch, loss=value, samples=n)
            if window_batches == steps:
                self._optimizer_step(params, window_samples)
                window_batches, window_samples = 0, 0
        if window_batches:  # the partial last window still counts
            self._optimizer_step(params, window_samples)
        if samples == 0:
            raise ValueError("dataloader yielded no batches")

        mean_loss = loss_sum / samples
        self.history["train_loss"].append(mean_loss)
        self.history["learning_rates"].append(lr)
        self.epoch += 1
        self._emit("on_epoch_end", loss=mean_loss)
        return mean_loss
        ### END SOLUTION

    def _optimizer_step(self, params: list[Tensor], window_samples: int) -> None:
        """Average the window's summed gradients, clip them once, step, clear them, and count
        the step: clipping sees exactly the gradient the optimizer uses, and clearing keeps it
        out of the next window."""
        ### BEGIN SOLUTION
        for p in params:
            g = grad_array(p)
            if g is not None:
                g *= 1.0 / window_samples
        norm = None
        if self.grad_clip_norm is not None:
            norm = clip_grad_norm(params, self.grad_clip_norm)
            if not math.isfinite(norm):
                self._clear_grads(params)
                raise TrainingDivergedError(
                    f"gradient norm is {norm} at epoch {self.epoch}, optimizer step {self.step}: "
                    "the update was not applied and gradients were cleared."
                )
            self.history["grad_norm"].append(norm)
        self.optimizer.step()
        self._clear_grads(params)
        self.step += 1
        self._emit("on_step", grad_norm=norm)
        ### END SOLUTION

    # ------------------------------------------------------------------ evaluation
    def evaluate(self, dataloader: Iterable[tuple[Any, Any]]) -> tuple[float, float | None]:
        """Return (sample-weighted mean loss, accuracy) without learning anything.

        The model is in eval mode for the forward passes and stays there (train_epoch switches
        back). No graph is recorded and no gradient, parameter, optimizer state or random
        number is touched, and the loader's order is left to training (a resumed run must see
        the batches the uninterrupted one saw). Accuracy is the fraction of argmax predictions
        equal to the class for CrossEntropyLoss, of probabilities on the right side of 0.5 for
        BinaryCrossEntropyLoss, and None for any other loss (for regression it is undefined).
        """
        ### BEGIN SOLUTION
        self._set_mode(False)
        loss_sum, samples, correct, judged = 0.0, 0, 0, 0
        with no_grad():
            for inputs, targets in dataloader:
                inputs, targets = _tensor(inputs), _tensor(targets)
                outputs = self.model.forward(inputs)
                n = len(targets) if targets.ndim else 1
                loss_sum += _scalar(self.loss_fn(outputs, targets)) * n
                samples += n
                right, total = _count_correct(self.loss_fn, outputs.data, targets.data)
                correct += right
                judged += total
        if samples == 0:
            raise ValueError("dataloader yielded no batches")
        loss = loss_sum / samples
        accuracy = correct / judged if judged else None
        self.history["eval_loss"].append(loss)
        self.history["eval_accuracy"].append(accuracy)
        self._emit("on_evaluate_end", loss=loss, accuracy=accuracy)
        return loss, accuracy
        ### END SOLUTION

    # ------------------------------------------------------------------ checkpoints
    def save_checkpoint(self, path: str | Path) -> Path:
        """Write everything a bit-exact resume needs to exactly ``path`` (atomically).

        The record is what ``_plan_restore`` reads. Arrays: ``model/{i}`` (parameter i's
        values) and ``optimizer/{i}/{name}`` (each ndarray of parameter i's optimizer state).
        JSON: ``model`` (``shapes``, ``rng_state``), ``optimizer`` (``kind``,
        ``hyperparameters``, ``step_count``, ``param_steps``), ``scheduler``,
        ``grad_clip_norm``, ``epoch``, ``step``, ``training_mode``, ``history`` and
        ``data_order`` (``seed``).
        """
        ### BEGIN SOLUTION
        params = list(self.model.parameters())
        arrays = {f"model/{i}": p.data for i, p in enumerate(params)}
        optimizer_state = self.optimizer.state_dict()
        for i, state in enumerate(optimizer_state["state"]):
            for name, value in state.items():
                if isinstance(value, np.ndarray):
                    arrays[f"optimizer/{i}/{name}"] = value
        meta = {
            "model": {
                "shapes": [list(p.data.shape) for p in params],
                "rng_state": [m.rng.bit_generator.state for m in rng_owners(self.model)],
            },
            "optimizer": {
                "kind": optimizer_state["kind"],
                "hyperparameters": optimizer_state["hyperparameters"],
                "step_count": optimizer_state["step_count"],
                "param_steps": [s.get("step") for s in optimizer_state["state"]],
            },
            "scheduler": _scheduler_settings(self.scheduler),
            "grad_clip_norm": self.grad_clip_norm,
            "epoch": self.epoch,
            "step": self.step,
            "training_mode": self.training_mode,
            "history": self.history,
            "data_order": {"seed": self._data_seed},
        }
        return write_checkpoint(path, arrays, meta)
        ### END SOLUTION

    def load_checkpoint(self, path: str | Path) -> None:
        """Restore a checkpoint. The whole file is validated first; if anything is wrong a
        CheckpointError names the file and the trainer, model and optimizer are unchanged.
        Settings saved in the file (optimizer hyper-parameters, schedule, clip norm) win over
        the ones this trainer was built with."""
        ### BEGIN SOLUTION
        arrays, meta = read_checkpoint(path)
        try:
            restore = self._plan_restore(arrays, meta)
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise CheckpointError(
                f"checkpoint {str(path)!r} does not fit this trainer: {error}"
            ) from error
        restore()
        ### END SOLUTION

    def _plan_restore(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> Any:
        """Validate a checkpoint completely; return a function that applies it and cannot fail."""
        params = list(self.model.parameters())
        shapes = [tuple(s) for s in meta["model"]["shapes"]]
        if len(shapes) != len(params):
            raise ValueError(f"it holds {len(shapes)} parameters, the model has {len(params)}")
        values = []
        for i, (p, shape) in enumerate(zip(params, shapes, strict=True)):
            value = arrays[f"model/{i}"]
            if value.shape != p.data.shape or shape != p.data.shape:
                raise ValueError(
                    f"parameter {i} has shape {value.shape} in the file, "
                    f"{p.data.shape} in the model"
                )
            values.append(value)

        saved = meta["optimizer"]
        steps = saved["param_steps"]
        if len(steps) != len(params):
            raise ValueError(f"optimizer state covers {len(steps)} parameters, not {len(params)}")
        buffers: list[dict[str, Any]] = [{} if s is None else {"step": s} for s in steps]
        for name, value in arrays.items():
            if name.startswith("optimizer/"):
                _, index, buffer = name.split("/")
                buffers[int(index)][buffer] = value
        optimizer_state = {
            "kind": saved["kind"],
            "hyperparameters": saved["hyperparameters"],
            "step_count": saved["step_count"],
            "state": buffers,
        }
        self.optimizer.check_state_dict(optimizer_state)

        scheduler = _restore_scheduler(meta["scheduler"], self.scheduler)
        clip = meta["grad_clip_norm"]
        if clip is not None and (not _is_number(clip) or not math.isfinite(clip) or clip <= 0):
            raise ValueError(f"grad_clip_norm {clip!r} is not a finite number > 0")
        epoch = _check_count("epoch", meta["epoch"], 0)
        step = _check_count("step", meta["step"], 0)
        training_mode = meta["training_mode"]
        if not isinstance(training_mode, bool):
            raise ValueError(f"training_mode must be true or false, got {training_mode!r}")
        history = meta["history"]
        if not isinstance(history, dict) or not all(isinstance(v, list) for v in history.values()):
            raise ValueError("history must map names to lists")
        data_seed = meta["data_order"]["seed"]
        if data_seed is not None:
            data_seed = _check_count("data_order.seed", data_seed, 0)
        owners = rng_owners(self.model)
        rng_states = meta["model"]["rng_state"]
        if len(rng_states) != len(owners):
            raise ValueError(
                f"it holds {len(rng_states)} random states, the model has {len(owners)}"
            )
        for owner, state in zip(owners, rng_states, strict=True):
            type(owner.rng.bit_generator)().state = state  # raises if the state does not fit

        def restore() -> None:
            for p, value in zip(params, values, strict=True):
                p.data[...] = value  # in place: the optimizer holds these same arrays
            self.optimizer.load_state_dict(optimizer_state)
            for owner, state in zip(owners, rng_states, strict=True):
                owner.rng.bit_generator.state = state
            self.scheduler = scheduler
            self.grad_clip_norm = None if clip is None else float(clip)
            self.epoch, self.step = epoch, step
            self.history = copy.deepcopy(history)
            self._data_seed = self._restored_data_seed = data_seed
            self._set_mode(training_mode)
            self._clear_grads()

        return restore


# ============================================================================ small helpers
def _tensor(value: Any) -> Tensor:
    return value if isinstance(value, Tensor) else Tensor(value)


def _scalar(loss: Any) -> float:
    """The value of a loss as a Python float; a loss must hold exactly one number."""
    data = np.asarray(loss.data if isinstance(loss, Tensor) else loss)
    if data.size != 1:
        raise ValueError(f"loss_fn must return a scalar; got shape {data.shape}")
    return float(data.reshape(-1)[0])


def _count_correct(loss_fn: Any, outputs: np.ndarray, targets: np.ndarray) -> tuple[int, int]:
    """(correct, judged) predictions of a batch, or (0, 0) where accuracy is undefined."""
    if isinstance(loss_fn, CrossEntropyLoss):
        labels = targets.reshape(-1)
        return int(np.sum(outputs.argmax(axis=1) == labels)), len(labels)
    if isinstance(loss_fn, BinaryCrossEntropyLoss):
        return int(np.sum((outputs >= 0.5) == (targets >= 0.5))), targets.size
    return 0, 0


def _scheduler_settings(scheduler: Any) -> dict[str, Any] | None:
    if scheduler is None:
        return None
    settings = getattr(scheduler, "settings", None)
    return settings() if callable(settings) else {"kind": type(scheduler).__name__}


def _restore_scheduler(settings: dict[str, Any] | None, current: Any) -> Any:
    """The schedule a checkpoint describes: rebuilt from its settings when they are given."""
    if settings is None:
        return None
    kind = settings["kind"]
    if kind == "CosineSchedule":
        return CosineSchedule(**{k: v for k, v in settings.items() if k != "kind"})
    if type(current).__name__ != kind:
        raise ValueError(f"it was saved with a {kind} scheduler, this trainer has {current!r}")
    return current


# ============================================================================ training_memory
def training_memory(model: Any, optimizer: Optimizer, batch_size: int) -> dict[str, int]:
    """Predict the bytes one training step keeps in memory, by component, before it runs.

    Every number in tinytorch is a float32: 4 bytes. Returns a dict of whole numbers of bytes:

    * ``parameters``: ``p.data.nbytes`` summed over ``model.parameters()``;
    * ``gradients``: backward gives every parameter a gradient of its own shape and dtype, so
      as many bytes as ``parameters``;
    * ``optimizer_state``: the arrays the optimizer keeps for each of its parameters
      (``optimizer.params``) once it has stepped, each the size of that parameter: none for
      plain SGD (``momentum == 0``), one (``momentum_buffer``) for SGD with momentum, two
      (``exp_avg`` and ``exp_avg_sq``) for Adam and AdamW (an AdamW is an Adam). Step counters
      are Python ints: 0 bytes. Predict it from the optimizer's kind and settings:
      ``optimizer.state`` is empty until the first step;
    * ``activations``: the arrays one forward pass of a batch of ``batch_size`` rows creates
      and the graph keeps until backward, layer by layer in the order ``modules(model)``
      yields them (the order they run in, for a Sequential and for the models the checks use),
      where ``width`` is the ``out_features`` of the last Linear before the layer:

      - Linear: its output, ``4 * batch_size * out_features``;
      - ReLU: its output and its mask (``x > 0``, 1 byte per number),
        ``5 * batch_size * width``;
      - Sigmoid, Tanh, Softmax: their output, which their backward reuses,
        ``4 * batch_size * width``;
      - Dropout with ``p > 0``: its mask and its output, ``8 * batch_size * width`` (a step
        runs in training mode); with ``p == 0`` it returns its input and keeps nothing;
      - anything else (a Sequential, the model object itself) keeps nothing of its own, and
        before the first Linear nothing needs a gradient, so nothing is kept (width 0).

      The input batch (the data loader holds it) and the loss are not counted;
    * ``total``: the sum of the four.
    """
    batch_size = _check_count("batch_size", batch_size, 1)
    ### BEGIN SOLUTION
    parameters = sum(p.data.nbytes for p in model.parameters())
    if isinstance(optimizer, optim.Adam):  # AdamW too
        buffers = 2
    elif isinstance(optimizer, optim.SGD):
        buffers = 1 if optimizer.momentum > 0 else 0
    else:
        raise ValueError(f"no memory rule for a {type(optimizer).__name__} optimizer")
    optimizer_state = buffers * sum(p.data.nbytes for p in optimizer.params)
    activations, width = 0, 0
    for layer in modules(model):
        if isinstance(layer, nn.Linear):
            width = layer.out_features
            activations += 4 * batch_size * width
        elif isinstance(layer, act.ReLU):
            activations += 5 * batch_size * width
        elif isinstance(layer, act.Sigmoid | act.Tanh | act.Softmax):
            activations += 4 * batch_size * width
        elif isinstance(layer, nn.Dropout) and layer.p > 0:
            activations += 8 * batch_size * width
    memory = {"parameters": parameters, "gradients": parameters,
              "optimizer_state": optimizer_state, "activations": activations}
    memory["total"] = sum(memory.values())
    return memory
    ### END SOLUTION
