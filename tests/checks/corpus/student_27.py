"""Module 07 - Training (CosineSchedule, clip_grad_norm, Trainer)

Design:
  * _Window counts the batches and samples waiting for the next optimizer step.
  * Optimizer in the checkpoint: its kind, hyper-parameters and step_count, plus the momentum
    buffers (the velocity is what SGD with momentum needs to continue smoothly).
  * File: write_checkpoint / read_checkpoint (npz + JSON meta, sha256, atomic rename).
"""
import math

import numpy as np

from tinytorch.core.autograd import no_grad
from tinytorch.core.checkpoint import read_checkpoint, write_checkpoint
from tinytorch.core.layers import rng_owners, set_training
from tinytorch.core.losses import BinaryCrossEntropyLoss, CrossEntropyLoss
from tinytorch.core.tensor import Tensor


def _valid_rate(x):
    return (isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, bool)
            and math.isfinite(x) and x >= 0)


def _valid_int(x, low):
    return isinstance(x, (int, np.integer)) and not isinstance(x, bool) and x >= low


def _array_of(grad):
    return grad.data if isinstance(grad, Tensor) else grad


class CosineSchedule:
    def __init__(self, max_lr=0.1, min_lr=0.01, total_epochs=100):
        if not _valid_rate(max_lr):
            raise ValueError(f"max_lr must be a finite number >= 0, got {max_lr!r}")
        if not _valid_rate(min_lr) or min_lr > max_lr:
            raise ValueError(f"min_lr must be in [0, max_lr], got {min_lr!r}")
        if not _valid_int(total_epochs, 1):
            raise ValueError(f"total_epochs must be an int >= 1, got {total_epochs!r}")
        self.max_lr = float(max_lr)
        self.min_lr = float(min_lr)
        self.total_epochs = int(total_epochs)

    def get_lr(self, epoch):
        if not _valid_rate(epoch):
            raise ValueError(f"epoch must be a finite number >= 0, got {epoch!r}")
        if epoch >= self.total_epochs:
            return self.min_lr
        return self.min_lr + 0.5 * (self.max_lr - self.min_lr) * (
            1.0 + math.cos(math.pi * epoch / self.total_epochs))


def clip_grad_norm(parameters, max_norm=1.0):
    if not _valid_rate(max_norm):
        raise ValueError(f"max_norm must be a finite number >= 0, got {max_norm!r}")
    arrays = [_array_of(p.grad) for p in list(parameters) if p.grad is not None]
    norm = math.sqrt(math.fsum(float(np.sum(a.astype(np.float64) ** 2)) for a in arrays))
    if math.isfinite(norm) and norm > max_norm:
        factor = max_norm / (norm + 1e-6)
        for a in arrays:
            a *= factor
    return norm


class _Window:
    """Batches and samples accumulated since the last optimizer step."""

    def __init__(self):
        self.batches = 0
        self.samples = 0

    def add(self, n):
        self.batches += 1
        self.samples += n

    def reset(self):
        self.batches = 0
        self.samples = 0


class Trainer:
    def __init__(self, model, optimizer, loss_fn, scheduler=None, grad_clip_norm=None, *,
                 callbacks=()):
        if grad_clip_norm is not None and not (_valid_rate(grad_clip_norm) and grad_clip_norm > 0):
            raise ValueError(f"grad_clip_norm must be None or > 0, got {grad_clip_norm!r}")
        self.model = model
        self.optimizer = optimizer
        self.loss_fn = loss_fn
        self.scheduler = scheduler
        self.grad_clip_norm = grad_clip_norm
        self.callbacks = list(callbacks)
        self.epoch = 0
        self.step = 0
        self.training_mode = True
        self.history = {"train_loss": [], "eval_loss": [], "eval_accuracy": [],
                        "learning_rates": [], "grad_norm": []}
        self.loader_seed = None
        self._resume_seed = None

    def _emit(self, event, **info):
        for callback in self.callbacks:
            handler = getattr(callback, event, None)
            if handler is not None:
                handler(self, **info)

    def _set_mode(self, training):
        set_training(self.model, training)
        self.training_mode = training

    def _clear_grads(self, params):
        self.optimizer.zero_grad()
        for p in params:
            p.grad = None

    def _data_order(self, dataloader):
        if self._resume_seed is not None and hasattr(dataloader, "load_state_dict"):
            dataloader.load_state_dict({"seed": self._resume_seed, "epoch": self.epoch})
            self._resume_seed = None
        elif hasattr(dataloader, "set_epoch"):
            dataloader.set_epoch(self.epoch)
        if hasattr(dataloader, "state_dict"):
            self.loader_seed = int(dataloader.state_dict()["seed"])

    def train_epoch(self, dataloader, accumulation_steps=1):
        if not _valid_int(accumulation_steps, 1):
            raise ValueError(f"accumulation_steps must be an int >= 1, got {accumulation_steps!r}")
        self._set_mode(True)
        if self.scheduler is not None:
            self.optimizer.lr = self.scheduler.get_lr(self.epoch)
        lr = float(self.optimizer.lr)
        self._data_order(dataloader)
        params = list(self.model.parameters())
        self._clear_grads(params)
        self._emit("on_epoch_begin", epoch=self.epoch, lr=lr)

        window = _Window()
        loss_sum, count = 0.0, 0
        for batch, (x, y) in enumerate(dataloader):
            x = x if isinstance(x, Tensor) else Tensor(x)
            y = y if isinstance(y, Tensor) else Tensor(y)
            loss = self.loss_fn(self.model.forward(x), y)
            value = float(np.asarray(loss.data).reshape(-1)[0])
            if not math.isfinite(value):
                self._clear_grads(params)
                raise FloatingPointError(
                    f"the loss is {value} at epoch {self.epoch}, batch {batch}; window dropped")
            n = y.shape[0] if y.ndim else 1
            loss.backward(float(n))
            loss_sum += value * n
            count += n
            window.add(n)
            self._emit("on_batch_end", batch=batch, loss=value, samples=n)
            if window.batches == accumulation_steps:
                self._optimizer_step(params, window.samples)
                window.reset()
        if window.batches:
            self._optimizer_step(params, window.samples)
        if count == 0:
            raise ValueError("the dataloader yielded no batches")
        mean = loss_sum / count
        self.history["train_loss"].append(mean)
        self.history["learning_rates"].append(lr)
        self.epoch += 1
        self._emit("on_epoch_end", loss=mean)
        return mean

    def _optimizer_step(self, params, samples):
        for p in params:
            if p.grad is not None:
                g = _array_of(p.grad)
                g /= samples
        norm = None
        if self.grad_clip_norm is not None:
            norm = clip_grad_norm(params, self.grad_clip_norm)
            if not math.isfinite(norm):
                self._clear_grads(params)
                raise FloatingPointError(f"the gradient norm is {norm} at epoch {self.epoch}")
            self.history["grad_norm"].append(norm)
        self.optimizer.step()
        self._clear_grads(params)
        self.step += 1
        self._emit("on_step", grad_norm=norm)

    def evaluate(self, dataloader):
        self._set_mode(False)
        loss_sum, count, right, judged = 0.0, 0, 0, 0
        with no_grad():
            for x, y in dataloader:
                x = x if isinstance(x, Tensor) else Tensor(x)
                y = y if isinstance(y, Tensor) else Tensor(y)
                out = self.model.forward(x)
                n = y.shape[0] if y.ndim else 1
                loss_sum += float(np.asarray(self.loss_fn(out, y).data).reshape(-1)[0]) * n
                count += n
                if isinstance(self.loss_fn, CrossEntropyLoss):
                    labels = y.data.reshape(-1)
                    right += int(np.sum(out.data.argmax(axis=1) == labels))
                    judged += labels.size
                elif isinstance(self.loss_fn, BinaryCrossEntropyLoss):
                    right += int(np.sum((out.data >= 0.5) == (y.data >= 0.5)))
                    judged += y.data.size
        if count == 0:
            raise ValueError("the dataloader yielded no batches")
        loss = loss_sum / count
        accuracy = right / judged if judged else None
        self.history["eval_loss"].append(loss)
        self.history["eval_accuracy"].append(accuracy)
        self._emit("on_evaluate_end", loss=loss, accuracy=accuracy)
        return loss, accuracy

    # ------------------------------------------------------------------ checkpoints
    def save_checkpoint(self, path):
        params = list(self.model.parameters())
        sd = self.optimizer.state_dict()
        arrays = {f"param/{i}": p.data for i, p in enumerate(params)}
        for i, st in enumerate(sd["state"]):
            if "momentum_buffer" in st:
                arrays[f"momentum/{i}"] = st["momentum_buffer"]
        s = self.scheduler
        meta = {
            "shapes": [list(p.data.shape) for p in params],
            "optimizer": {"kind": sd["kind"], "hyperparameters": sd["hyperparameters"],
                          "step_count": sd["step_count"]},
            "scheduler": None if s is None else {"max_lr": s.max_lr, "min_lr": s.min_lr,
                                                 "total_epochs": s.total_epochs},
            "grad_clip_norm": self.grad_clip_norm,
            "epoch": self.epoch,
            "step": self.step,
            "training_mode": self.training_mode,
            "history": self.history,
            "loader_seed": self.loader_seed,
            "rng_states": [m.rng.bit_generator.state for m in rng_owners(self.model)],
        }
        return write_checkpoint(path, arrays, meta)

    def load_checkpoint(self, path):
        arrays, meta = read_checkpoint(path)
        try:
            restore = self._validate(arrays, meta)
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            raise ValueError(f"checkpoint {path} does not fit this trainer: {err}") from err
        restore()

    def _validate(self, arrays, meta):
        params = list(self.model.parameters())
        if len(meta["shapes"]) != len(params):
            raise ValueError(f"{len(meta['shapes'])} parameters saved, the model has {len(params)}")
        values = []
        for i, p in enumerate(params):
            v = arrays[f"param/{i}"]
            if v.shape != p.data.shape:
                raise ValueError(f"parameter {i}: {v.shape} in the file, {p.data.shape} here")
            values.append(v)
        per_param = [{} for _ in params]
        for i in range(len(params)):
            if f"momentum/{i}" in arrays:
                per_param[i]["momentum_buffer"] = arrays[f"momentum/{i}"]
        opt_state = dict(meta["optimizer"], state=per_param)
        self.optimizer.check_state_dict(opt_state)
        sched = None if meta["scheduler"] is None else CosineSchedule(**meta["scheduler"])
        clip = meta["grad_clip_norm"]
        if clip is not None and not (_valid_rate(clip) and clip > 0):
            raise ValueError(f"grad_clip_norm {clip!r}")
        if not (_valid_int(meta["epoch"], 0) and _valid_int(meta["step"], 0)):
            raise ValueError("epoch and step must be ints >= 0")
        if not isinstance(meta["training_mode"], bool):
            raise ValueError("training_mode must be a bool")
        seed = meta["loader_seed"]
        if seed is not None and not _valid_int(seed, 0):
            raise ValueError(f"loader seed {seed!r}")
        owners = rng_owners(self.model)
        if len(owners) != len(meta["rng_states"]):
            raise ValueError("the model has a different number of Dropout layers")
        for m, st in zip(owners, meta["rng_states"]):
            type(m.rng.bit_generator)().state = st
        history = {k: list(v) for k, v in meta["history"].items()}

        def restore():
            for p, v in zip(params, values):
                p.data[...] = v
            self.optimizer.load_state_dict(opt_state)
            for m, st in zip(owners, meta["rng_states"]):
                m.rng.bit_generator.state = st
            self.scheduler = sched
            self.grad_clip_norm = clip
            self.epoch, self.step, self.history = meta["epoch"], meta["step"], history
            self.loader_seed = self._resume_seed = seed
            self._set_mode(meta["training_mode"])
            self._clear_grads(params)

        return restore
