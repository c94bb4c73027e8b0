"""Alternative solution: a while loop over an explicit iterator that runs the forward pass of
every batch in a window first and only then back-propagates each loss weighted by n_i / N.

The checkpoint is an uncompressed ``.npz`` (no pickle) whose metadata is UTF-8 JSON in a uint8
array, guarded by a SHA-256 digest; it is written to a temporary file and renamed into place.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import os
import tempfile
from pathlib import Path

import numpy as np

from tinytorch.core.autograd import no_grad
from tinytorch.core.layers import rng_owners, set_training
from tinytorch.core.losses import BinaryCrossEntropyLoss, CrossEntropyLoss
from tinytorch.core.tensor import Tensor


class TrainingDivergedError(FloatingPointError):
    """The loss (or the clipped gradient norm) was NaN or inf; that window was not applied."""


class CheckpointError(ValueError):
    """A checkpoint file that is missing, damaged, tampered with or made for another model."""


def _real(value) -> bool:
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool)


def _whole(value) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


class CosineSchedule:
    """lr(e) = min_lr + (max_lr - min_lr) * (1 + cos(pi * e / T)) / 2, held at min_lr for e >= T.

    Unlike torch's CosineAnnealingLR the rate never rises again after T epochs. With
    ``warmup_epochs = w`` the first w epochs ramp up as max_lr * (e + 1) / (w + 1) and the cosine
    runs over the T - w epochs after them."""

    def __init__(self, max_lr=0.1, min_lr=0.01, total_epochs=100, warmup_epochs=0):
        for name, rate in (("max_lr", max_lr), ("min_lr", min_lr)):
            if not _real(rate) or not math.isfinite(rate) or rate < 0:
                raise ValueError(f"{name} must be a finite, non-negative number; got {rate!r}")
        if min_lr > max_lr:
            raise ValueError(f"min_lr={min_lr!r} is larger than max_lr={max_lr!r}")
        if not _whole(total_epochs) or total_epochs < 1:
            raise ValueError(f"total_epochs must be a positive integer; got {total_epochs!r}")
        self.max_lr, self.min_lr = float(max_lr), float(min_lr)
        self.total_epochs = int(total_epochs)
        if not _whole(warmup_epochs) or not 0 <= warmup_epochs < total_epochs:
            raise ValueError(f"warmup_epochs must be an integer in [0, total_epochs); got "
                             f"{warmup_epochs!r}")
        self.warmup_epochs = int(warmup_epochs)

    def get_lr(self, epoch) -> float:
        if not _real(epoch) or not math.isfinite(epoch) or epoch < 0:
            raise ValueError(f"epoch must be a finite number >= 0; got {epoch!r}")
        if epoch >= self.total_epochs:
            return self.min_lr
        warm = self.warmup_epochs
        if epoch < warm:
            return self.max_lr * (epoch + 1) / (warm + 1)
        if epoch == warm:
            return self.max_lr  # the formula gives min + (max - min), which can round off max
        cosine = math.cos(math.pi * (epoch - warm) / (self.total_epochs - warm))
        lr = self.min_lr + (self.max_lr - self.min_lr) * (1 + cosine) / 2
        return float(min(self.max_lr, max(self.min_lr, lr)))


def _grad_of(p):
    g = getattr(p, "grad", None)
    if g is None:
        return None
    return g.data if isinstance(g, Tensor) else g


def clip_grad_norm(parameters, max_norm=1.0) -> float:
    """Scale every gradient by one factor so the global L2 norm is at most ``max_norm``.

    Returns the norm before clipping. Norms are taken per tensor in float64 (no overflow for
    gradients near 3e20). A NaN or inf norm is returned unchanged and no gradient is touched:
    the caller has to skip that step (the Trainer raises TrainingDivergedError)."""
    if not _real(max_norm) or not math.isfinite(max_norm) or max_norm < 0:
        raise ValueError(f"max_norm must be a finite number >= 0; got {max_norm!r}")
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    grads = []
    for p in parameters:  # read once: a generator works too
        g = _grad_of(p)
        if g is not None:
            grads.append(g)
    per_tensor = [float(np.linalg.norm(np.asarray(g, dtype=np.float64).ravel())) for g in grads]
    total = math.sqrt(sum(n * n for n in per_tensor))
    if math.isfinite(total) and total > max_norm:
        factor = max_norm / (total + 1e-6)
        for g in grads:
            g *= factor  # in place: dtype and container stay as they were
    return total


class Trainer:
    """Training loop with exact gradient accumulation, clipping, evaluation and checkpoints.

    evaluate() reports accuracy by argmax for CrossEntropyLoss, by a 0.5 threshold for
    BinaryCrossEntropyLoss, and None for any other loss (regression has no accuracy)."""

    def __init__(self, model, optimizer, loss_fn, scheduler=None, grad_clip_norm=None, *,
                 callbacks=()):
        if grad_clip_norm is not None and (
            not _real(grad_clip_norm) or not math.isfinite(grad_clip_norm) or grad_clip_norm <= 0
        ):
            raise ValueError(f"grad_clip_norm must be a finite number > 0; got {grad_clip_norm!r}")
        self.model, self.optimizer, self.loss_fn = model, optimizer, loss_fn
        self.scheduler = scheduler
        self.grad_clip_norm = None if grad_clip_norm is None else float(grad_clip_norm)
        self.epoch = self.step = 0
        self.training_mode = True
        names = ("train_loss", "eval_loss", "eval_accuracy", "learning_rates", "grad_norm")
        self.history = {name: [] for name in names}
        self.data_seed = None  # seed of the last shuffling DataLoader trained on
        self.pending_seed = None  # seed from a checkpoint, handed to the next DataLoader
        self.callbacks = list(callbacks)

    def _emit(self, event, **info):
        """Call ``event`` on every callback that defines it (the trainer first)."""
        for callback in self.callbacks:
            handler = getattr(callback, event, None)
            if handler is not None:
                handler(self, **info)

    def _mode(self, training):
        set_training(self.model, training)
        self.training_mode = training

    def _clear(self, params):
        self.optimizer.zero_grad()
        for p in params:
            p.grad = None

    def train_epoch(self, dataloader, accumulation_steps=1) -> float:
        if not _whole(accumulation_steps) or accumulation_steps < 1:
            raise ValueError(
                f"accumulation_steps must be a positive integer; got {accumulation_steps!r}"
            )
        self._mode(True)
        if self.scheduler is not None:
            self.optimizer.lr = self.scheduler.get_lr(self.epoch)
        lr = float(self.optimizer.lr)
        if self.pending_seed is not None and hasattr(dataloader, "load_state_dict"):
            dataloader.load_state_dict({"seed": self.pending_seed, "epoch": self.epoch})
            self.pending_seed = None
        elif hasattr(dataloader, "set_epoch"):
            dataloader.set_epoch(self.epoch)
        if hasattr(dataloader, "state_dict"):
            self.data_seed = int(dataloader.state_dict()["seed"])
        params = list(self.model.parameters())
        self._clear(params)
        self._emit("on_epoch_begin", epoch=self.epoch, lr=lr)

        seen = []  # (loss value, samples) of every batch of the epoch
        batches = iter(dataloader)
        index, finished = 0, False
        while not finished:
            window = []  # (batch index, loss tensor, its value, samples): graphs kept alive
            # until the window's backward
            while len(window) < accumulation_steps:
                try:
                    inputs, targets = next(batches)
                except StopIteration:
                    finished = True
                    break
                inputs = inputs if isinstance(inputs, Tensor) else Tensor(inputs)
                targets = targets if isinstance(targets, Tensor) else Tensor(targets)
                loss = self.loss_fn(self.model.forward(inputs), targets)
                value = float(np.asarray(loss.data).reshape(-1)[0])
                if not math.isfinite(value):
                    self._clear(params)
                    raise TrainingDivergedError(
                        f"non-finite loss ({value}) at epoch {self.epoch}, batch {index}; this "
                        "window was not applied and the gradients were cleared"
                    )
                n = targets.shape[0] if targets.ndim else 1
                window.append((index, loss, value, n))
                seen.append((value, n))
                index += 1
            if window:
                self._apply(window, params)
        if not seen:
            raise ValueError("the dataloader produced no batches")
        total = sum(n for _, n in seen)
        mean = math.fsum(v * n for v, n in seen) / total
        self.history["train_loss"].append(mean)
        self.history["learning_rates"].append(lr)
        self.epoch += 1
        self._emit("on_epoch_end", loss=mean)
        return mean

    def _apply(self, window, params):
        """Backward each loss with weight n_i / N (the window's mean), clip once, step, clear."""
        window_total = sum(n for *_, n in window)
        for index, loss, value, n in window:
            loss.backward(n / window_total)
            self._emit("on_batch_end", batch=index, loss=value, samples=n)
        norm = None
        if self.grad_clip_norm is not None:
            norm = clip_grad_norm(params, self.grad_clip_norm)
            if not math.isfinite(norm):
                self._clear(params)
                raise TrainingDivergedError(
                    f"gradient norm is {norm} at epoch {self.epoch}, step {self.step}; "
                    "the update was skipped and the gradients were cleared"
                )
            self.history["grad_norm"].append(norm)
        self.optimizer.step()
        self._clear(params)
        self.step += 1
        self._emit("on_step", grad_norm=norm)

    def evaluate(self, dataloader):
        self._mode(False)
        weighted, count, correct, judged = 0.0, 0, 0, 0
        with no_grad():
            for inputs, targets in dataloader:
                inputs = inputs if isinstance(inputs, Tensor) else Tensor(inputs)
                targets = targets if isinstance(targets, Tensor) else Tensor(targets)
                out = self.model.forward(inputs)
                n = targets.shape[0] if targets.ndim else 1
                weighted += float(np.asarray(self.loss_fn(out, targets).data).reshape(-1)[0]) * n
                count += n
                if isinstance(self.loss_fn, CrossEntropyLoss):
                    labels = targets.data.reshape(-1)
                    correct += int((np.argmax(out.data, axis=1) == labels).sum())
                    judged += labels.size
                elif isinstance(self.loss_fn, BinaryCrossEntropyLoss):
                    correct += int(((out.data >= 0.5) == (targets.data >= 0.5)).sum())
                    judged += targets.data.size
        if count == 0:
            raise ValueError("the dataloader produced no batches")
        loss, accuracy = weighted / count, (correct / judged if judged else None)
        self.history["eval_loss"].append(loss)
        self.history["eval_accuracy"].append(accuracy)
        self._emit("on_evaluate_end", loss=loss, accuracy=accuracy)
        return loss, accuracy

    # ------------------------------------------------------------------ checkpoints
    def save_checkpoint(self, path):
        path = Path(path)
        params = list(self.model.parameters())
        opt = self.optimizer.state_dict()
        arrays = {f"param{i}": np.asarray(p.data) for i, p in enumerate(params)}
        steps = []
        for i, state in enumerate(opt["state"]):
            steps.append(state.get("step"))
            for key, value in state.items():
                if key != "step":
                    arrays[f"buffer{i}.{key}"] = np.asarray(value)
        sched = self.scheduler
        meta = {
            "optimizer": {k: opt[k] for k in ("kind", "hyperparameters", "step_count")},
            "param_steps": steps,
            "scheduler": None if sched is None else {
                "kind": type(sched).__name__,
                **{k: getattr(sched, k, None) for k in ("max_lr", "min_lr", "total_epochs")},
                "warmup_epochs": getattr(sched, "warmup_epochs", 0),
            },
            "grad_clip_norm": self.grad_clip_norm, "epoch": self.epoch, "step": self.step,
            "training_mode": self.training_mode, "history": self.history,
            "data_seed": self.data_seed,
            "rng": [owner.rng.bit_generator.state for owner in rng_owners(self.model)],
        }
        meta["digest"] = _digest(arrays, meta)
        arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez(f, **arrays)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.remove(tmp)
            raise
        return path

    def load_checkpoint(self, path):
        try:
            with open(path, "rb") as f, np.load(f, allow_pickle=False) as npz:
                arrays = {k: npz[k] for k in npz.files}
            meta = json.loads(arrays.pop("meta").tobytes().decode())
            if meta.pop("digest") != _digest(arrays, meta):
                raise ValueError("its SHA-256 digest does not match: modified or damaged")
            apply = self._validate(arrays, meta)
        except Exception as error:
            raise CheckpointError(f"cannot load checkpoint {str(path)!r}: {error}") from error
        apply()

    def _validate(self, arrays, meta):
        """Check everything in the file; return a function that applies it."""
        params = list(self.model.parameters())
        values = [arrays[f"param{i}"] for i in range(len(params))]
        if len([k for k in arrays if k.startswith("param")]) != len(params):
            raise ValueError("the file holds a different number of parameters")
        for i, (p, v) in enumerate(zip(params, values, strict=True)):
            if v.shape != p.data.shape:
                raise ValueError(f"parameter {i} is {v.shape} in the file, {p.data.shape} here")
        steps = meta["param_steps"]
        if len(steps) != len(params):
            raise ValueError("optimizer state is for another number of parameters")
        states = [{} if s is None else {"step": s} for s in steps]
        for key, value in arrays.items():
            if key.startswith("buffer"):
                index, name = key[len("buffer"):].split(".", 1)
                states[int(index)][name] = value
        opt_state = {**meta["optimizer"], "state": states}
        self.optimizer.check_state_dict(opt_state)
        saved = meta["scheduler"]
        if saved is None:
            scheduler = None
        elif saved["kind"] == "CosineSchedule":
            scheduler = CosineSchedule(
                saved["max_lr"], saved["min_lr"], saved["total_epochs"], saved["warmup_epochs"]
            )
        elif type(self.scheduler).__name__ == saved["kind"]:
            scheduler = self.scheduler
        else:
            raise ValueError(f"it was saved with a {saved['kind']} scheduler")
        clip = meta["grad_clip_norm"]
        if clip is not None and (not _real(clip) or not math.isfinite(clip) or clip <= 0):
            raise ValueError(f"bad grad_clip_norm {clip!r}")
        epoch, step, mode = meta["epoch"], meta["step"], meta["training_mode"]
        if not (_whole(epoch) and _whole(step) and epoch >= 0 and step >= 0):
            raise ValueError("epoch and step must be integers >= 0")
        if not isinstance(mode, bool):
            raise ValueError("training_mode must be a bool")
        history = meta["history"]
        if not isinstance(history, dict) or not all(isinstance(v, list) for v in history.values()):
            raise ValueError("history must be a dict of lists")
        seed = meta["data_seed"]
        if seed is not None and (not _whole(seed) or seed < 0):
            raise ValueError("bad data seed")
        owners = rng_owners(self.model)
        if len(meta["rng"]) != len(owners):
            raise ValueError("the model has another number of random layers")
        for owner, state in zip(owners, meta["rng"], strict=True):
            type(owner.rng.bit_generator)().state = state  # raises if it does not fit

        def apply():
            for p, v in zip(params, values, strict=True):
                p.data[...] = v
            self.optimizer.load_state_dict(opt_state)
            for owner, state in zip(owners, meta["rng"], strict=True):
                owner.rng.bit_generator.state = state
            self.scheduler = scheduler
            self.grad_clip_norm = None if clip is None else float(clip)
            self.epoch, self.step = int(epoch), int(step)
            self.history = copy.deepcopy(history)
            self.data_seed = self.pending_seed = seed
            self._mode(mode)
            self._clear(params)

        return apply


def _digest(arrays, meta) -> str:
    h = hashlib.sha256(json.dumps(meta, sort_keys=True).encode())
    for key in sorted(arrays):
        a = np.ascontiguousarray(arrays[key])
        h.update(f"{key}:{a.dtype.str}:{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def training_memory(model, optimizer, batch_size) -> dict:
    """Walks the layers recursively itself (no ``modules``): Sequential's list, then a
    duck-typed model's attributes in the order they were set."""
    from tinytorch.core.activations import ReLU, Sigmoid, Softmax, Tanh
    from tinytorch.core.layers import Dropout, Linear, Sequential
    from tinytorch.core.optimizers import SGD, Adam

    if not _whole(batch_size) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")

    def layers(obj):
        if isinstance(obj, Sequential):
            for inner in obj.layers:
                yield from layers(inner)
        elif isinstance(obj, Linear | ReLU | Sigmoid | Tanh | Softmax | Dropout):
            yield obj
        else:
            for value in vars(obj).values():
                if hasattr(value, "forward"):
                    yield from layers(value)

    params = sum(p.data.nbytes for p in model.parameters())
    if isinstance(optimizer, Adam):
        buffers = 2
    elif isinstance(optimizer, SGD) and optimizer.momentum:
        buffers = 1
    else:
        buffers = 0
    per_row, width = 0, 0
    for layer in layers(model):
        if isinstance(layer, Linear):
            width = layer.out_features
            per_row += 4 * width
        elif isinstance(layer, ReLU):
            per_row += 5 * width
        elif isinstance(layer, Dropout):
            per_row += 8 * width if layer.p > 0 else 0
        else:
            per_row += 4 * width
    out = {"parameters": params, "gradients": params,
           "optimizer_state": buffers * sum(p.data.nbytes for p in optimizer.params),
           "activations": per_row * batch_size}
    out["total"] = sum(out.values())
    return out
