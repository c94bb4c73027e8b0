"""Module 07 -- Training

clip_grad_norm: I compute the global norm over all gradients (float64, so no overflow) and if it
is too big I scale every gradient by max_norm / norm. The norm from before is returned.

Trainer: standard loop; accumulation by backward(loss * n) and dividing by the samples of the
window at the step; checkpoints with write_checkpoint / read_checkpoint.
"""
import math

import numpy as np

from tinytorch.core.autograd import no_grad
from tinytorch.core.checkpoint import read_checkpoint, write_checkpoint
from tinytorch.core.layers import rng_owners, set_training
from tinytorch.core.losses import BinaryCrossEntropyLoss, CrossEntropyLoss
from tinytorch.core.tensor import Tensor


def _number(x):
    return isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, bool)


def _rate_ok(x):
    return _number(x) and math.isfinite(x) and x >= 0


def _int_ok(x, low):
    return isinstance(x, (int, np.integer)) and not isinstance(x, bool) and x >= low


def _as_tensor(x):
    return x if isinstance(x, Tensor) else Tensor(x)


def _grad_arrays(params):
    out = []
    for p in params:
        if p.grad is not None:
            out.append(p.grad.data if isinstance(p.grad, Tensor) else p.grad)
    return out


class CosineSchedule:
    def __init__(self, max_lr=0.1, min_lr=0.01, total_epochs=100):
        if not _rate_ok(max_lr) or not _rate_ok(min_lr) or min_lr > max_lr:
            raise ValueError(f"need 0 <= min_lr <= max_lr, finite: {min_lr!r}, {max_lr!r}")
        if not _int_ok(total_epochs, 1):
            raise ValueError(f"total_epochs must be an int >= 1: {total_epochs!r}")
        self.max_lr, self.min_lr, self.total_epochs = float(max_lr), float(min_lr), int(total_epochs)

    def get_lr(self, epoch):
        if not _rate_ok(epoch):
            raise ValueError(f"epoch must be a finite number >= 0: {epoch!r}")
        if epoch >= self.total_epochs:
            return self.min_lr
        return self.min_lr + (self.max_lr - self.min_lr) * (
            1 + math.cos(math.pi * epoch / self.total_epochs)) / 2


def clip_grad_norm(parameters, max_norm=1.0):
    if not _rate_ok(max_norm):
        raise ValueError(f"max_norm must be a finite number >= 0: {max_norm!r}")
    grads = _grad_arrays(list(parameters))
    total_norm = math.sqrt(sum(float(np.sum(g.astype(np.float64) ** 2)) for g in grads))
    if math.isfinite(total_norm) and total_norm > max_norm:
        scale = max_norm / (total_norm + 1e-6)
        for g in grads:
            g = g * scale
    return total_norm


class Trainer:
    def __init__(self, model, optimizer, loss_fn, scheduler=None, grad_clip_norm=None, *,
                 callbacks=()):
        if grad_clip_norm is not None and not (_rate_ok(grad_clip_norm) and grad_clip_norm > 0):
            raise ValueError(f"grad_clip_norm must be None or > 0: {grad_clip_norm!r}")
        self.model, self.optimizer, self.loss_fn = model, optimizer, loss_fn
        self.scheduler, self.grad_clip_norm = scheduler, grad_clip_norm
        self.callbacks = list(callbacks)
        self.epoch, self.step, self.training_mode = 0, 0, True
        self.history = {"train_loss": [], "eval_loss": [], "eval_accuracy": [],
                        "learning_rates": [], "grad_norm": []}
        self._seed, self._seed_pending = None, None

    def _emit(self, event, **info):
        for callback in self.callbacks:
            handler = getattr(callback, event, None)
            if handler is not None:
                handler(self, **info)

    def _mode(self, training):
        set_training(self.model, training)
        self.training_mode = training

    def _zero(self, params):
        self.optimizer.zero_grad()
        for p in params:
            p.grad = None

    def train_epoch(self, dataloader, accumulation_steps=1):
        if not _int_ok(accumulation_steps, 1):
            raise ValueError(f"accumulation_steps must be an int >= 1: {accumulation_steps!r}")
        self._mode(True)
        if self.scheduler is not None:
            self.optimizer.lr = self.scheduler.get_lr(self.epoch)
        lr = float(self.optimizer.lr)
        if self._seed_pending is not None and hasattr(dataloader, "load_state_dict"):
            dataloader.load_state_dict({"seed": self._seed_pending, "epoch": self.epoch})
            self._seed_pending = None
        elif hasattr(dataloader, "set_epoch"):
            dataloader.set_epoch(self.epoch)
        if hasattr(dataloader, "state_dict"):
            self._seed = int(dataloader.state_dict()["seed"])
        params = list(self.model.parameters())
        self._zero(params)
        self._emit("on_epoch_begin", epoch=self.epoch, lr=lr)
        total, count, window, window_n = 0.0, 0, 0, 0
        for i, (x, y) in enumerate(dataloader):
            x, y = _as_tensor(x), _as_tensor(y)
            loss = self.loss_fn(self.model.forward(x), y)
            value = float(np.asarray(loss.data).reshape(-1)[0])
            if not math.isfinite(value):
                self._zero(params)
                raise FloatingPointError(f"loss {value} at epoch {self.epoch}, batch {i}")
            n = y.shape[0] if y.ndim else 1
            (loss * float(n)).backward()
            total += value * n
            count += n
            window += 1
            window_n += n
            self._emit("on_batch_end", batch=i, loss=value, samples=n)
            if window == accumulation_steps:
                self._optimizer_step(params, window_n)
                window, window_n = 0, 0
        if window:
            self._optimizer_step(params, window_n)
        if count == 0:
            raise ValueError("no batches")
        mean = total / count
        self.history["train_loss"].append(mean)
        self.history["learning_rates"].append(lr)
        self.epoch += 1
        self._emit("on_epoch_end", loss=mean)
        return mean

    def _optimizer_step(self, params, samples):
        for g in _grad_arrays(params):
            g /= samples
        norm = None
        if self.grad_clip_norm is not None:
            norm = clip_grad_norm(params, self.grad_clip_norm)
            if not math.isfinite(norm):
                self._zero(params)
                raise FloatingPointError(f"gradient norm {norm} at epoch {self.epoch}")
            self.history["grad_norm"].append(norm)
        self.optimizer.step()
        self._zero(params)
        self.step += 1
        self._emit("on_step", grad_norm=norm)

    def evaluate(self, dataloader):
        self._mode(False)
        total, count, right, judged = 0.0, 0, 0, 0
        with no_grad():
            for x, y in dataloader:
                x, y = _as_tensor(x), _as_tensor(y)
                out = self.model.forward(x)
                n = y.shape[0] if y.ndim else 1
                total += float(np.asarray(self.loss_fn(out, y).data).reshape(-1)[0]) * n
                count += n
                if isinstance(self.loss_fn, CrossEntropyLoss):
                    labels = y.data.reshape(-1)
                    right += int(np.sum(np.argmax(out.data, axis=1) == labels))
                    judged += labels.size
                elif isinstance(self.loss_fn, BinaryCrossEntropyLoss):
                    right += int(np.sum((out.data >= 0.5) == (y.data >= 0.5)))
                    judged += y.data.size
        if count == 0:
            raise ValueError("no batches")
        loss, acc = total / count, (right / judged if judged else None)
        self.history["eval_loss"].append(loss)
        self.history["eval_accuracy"].append(acc)
        self._emit("on_evaluate_end", loss=loss, accuracy=acc)
        return loss, acc

    def save_checkpoint(self, path):
        params = list(self.model.parameters())
        sd = self.optimizer.state_dict()
        arrays = {f"model/{i}": p.data for i, p in enumerate(params)}
        for i, st in enumerate(sd["state"]):
            for name, value in st.items():
                if isinstance(value, np.ndarray):
                    arrays[f"optimizer/{i}/{name}"] = value
        s = self.scheduler
        meta = {
            "shapes": [list(p.data.shape) for p in params],
            "optimizer": {"kind": sd["kind"], "hyperparameters": sd["hyperparameters"],
                          "step_count": sd["step_count"],
                          "param_steps": [st.get("step") for st in sd["state"]]},
            "scheduler": None if s is None else {"max_lr": s.max_lr, "min_lr": s.min_lr,
                                                 "total_epochs": s.total_epochs},
            "grad_clip_norm": self.grad_clip_norm, "epoch": self.epoch, "step": self.step,
            "training_mode": self.training_mode, "history": self.history,
            "seed": self._seed,
            "rng_state": [m.rng.bit_generator.state for m in rng_owners(self.model)],
        }
        return write_checkpoint(path, arrays, meta)

    def load_checkpoint(self, path):
        arrays, meta = read_checkpoint(path)
        try:
            apply = self._plan(arrays, meta)
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            raise ValueError(f"checkpoint {path} does not fit this trainer: {err}") from err
        apply()

    def _plan(self, arrays, meta):
        params = list(self.model.parameters())
        if len(meta["shapes"]) != len(params):
            raise ValueError("number of parameters differs")
        values = [arrays[f"model/{i}"] for i in range(len(params))]
        for i, (v, p) in enumerate(zip(values, params)):
            if v.shape != p.data.shape:
                raise ValueError(f"parameter {i}: {v.shape} vs {p.data.shape}")
        o = meta["optimizer"]
        buffers = [{} if st is None else {"step": st} for st in o["param_steps"]]
        for name, value in arrays.items():
            if name.startswith("optimizer/"):
                _, i, key = name.split("/")
                buffers[int(i)][key] = value
        opt_sd = {"kind": o["kind"], "hyperparameters": o["hyperparameters"],
                  "step_count": o["step_count"], "state": buffers}
        self.optimizer.check_state_dict(opt_sd)
        sched = None if meta["scheduler"] is None else CosineSchedule(**meta["scheduler"])
        clip = meta["grad_clip_norm"]
        if clip is not None and not (_rate_ok(clip) and clip > 0):
            raise ValueError("bad grad_clip_norm")
        if not (_int_ok(meta["epoch"], 0) and _int_ok(meta["step"], 0)):
            raise ValueError("bad epoch/step")
        if not isinstance(meta["training_mode"], bool):
            raise ValueError("bad training_mode")
        if meta["seed"] is not None and not _int_ok(meta["seed"], 0):
            raise ValueError("bad seed")
        owners = rng_owners(self.model)
        if len(owners) != len(meta["rng_state"]):
            raise ValueError("number of Dropout layers differs")
        for m, st in zip(owners, meta["rng_state"]):
            type(m.rng.bit_generator)().state = st
        history = {k: list(v) for k, v in meta["history"].items()}

        def apply():
            for p, v in zip(params, values):
                p.data[...] = v
            self.optimizer.load_state_dict(opt_sd)
            for m, st in zip(owners, meta["rng_state"]):
                m.rng.bit_generator.state = st
            self.scheduler, self.grad_clip_norm = sched, clip
            self.epoch, self.step, self.history = meta["epoch"], meta["step"], history
            self._seed = self._seed_pending = meta["seed"]
            self._mode(meta["training_mode"])
            self._zero(params)

        return apply
