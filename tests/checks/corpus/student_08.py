"""Module 07 -- Training.

Accumulation trick I used: keep p.grad equal to the running MEAN gradient of the window so far.
Before a new batch of n samples (m already in the window) scale the grads by m/(m+n), then
backprop loss * n/(m+n). At the end of the window p.grad is exactly the big-batch gradient.

Checkpoints: one pickle with everything (simplest way to save nested dicts + arrays).
"""
import math
import os
import pickle
from pathlib import Path

import numpy as np

from tinytorch.core.autograd import no_grad
from tinytorch.core.layers import rng_owners, set_training
from tinytorch.core.losses import BinaryCrossEntropyLoss, CrossEntropyLoss
from tinytorch.core.tensor import Tensor


def _number_ok(x, allow_zero=True):
    if isinstance(x, bool) or not isinstance(x, (int, float, np.integer, np.floating)):
        return False
    return math.isfinite(x) and (x >= 0 if allow_zero else x > 0)


class CosineSchedule:
    def __init__(self, max_lr=0.1, min_lr=0.01, total_epochs=100):
        if not _number_ok(max_lr):
            raise ValueError(f"bad max_lr {max_lr!r}")
        if not _number_ok(min_lr) or min_lr > max_lr:
            raise ValueError(f"bad min_lr {min_lr!r} (must be finite, >= 0 and <= max_lr)")
        if isinstance(total_epochs, bool) or not isinstance(total_epochs, int) or total_epochs <= 0:
            raise ValueError(f"bad total_epochs {total_epochs!r}")
        self.max_lr = float(max_lr)
        self.min_lr = float(min_lr)
        self.total_epochs = total_epochs

    def get_lr(self, epoch):
        if not _number_ok(epoch):
            raise ValueError(f"bad epoch {epoch!r}")
        if epoch >= self.total_epochs:
            return self.min_lr
        amplitude = self.max_lr - self.min_lr
        return self.min_lr + amplitude * (1.0 + math.cos(epoch / self.total_epochs * math.pi)) / 2.0


def clip_grad_norm(parameters, max_norm=1.0):
    if not _number_ok(max_norm):
        raise ValueError(f"bad max_norm {max_norm!r}")
    arrays = []
    for p in parameters:
        if isinstance(p.grad, Tensor):
            arrays.append(p.grad.data)
        elif p.grad is not None:
            arrays.append(p.grad)
    norm = math.sqrt(sum(np.vdot(a.astype(np.float64), a.astype(np.float64)) for a in arrays))
    if norm > max_norm and norm != float("inf"):
        k = max_norm / (norm + 1e-6)
        for a in arrays:
            a *= k
    return norm


class Trainer:
    def __init__(self, model, optimizer, loss_fn, scheduler=None, grad_clip_norm=None,
                 callbacks=()):
        if grad_clip_norm is not None and not _number_ok(grad_clip_norm, allow_zero=False):
            raise ValueError(f"bad grad_clip_norm {grad_clip_norm!r}")
        self.model = model
        self.optimizer = optimizer
        self.loss_fn = loss_fn
        self.scheduler = scheduler
        self.grad_clip_norm = grad_clip_norm
        self.epoch = 0
        self.step = 0
        self.training_mode = True
        self.history = {"train_loss": [], "eval_loss": [], "eval_accuracy": [],
                        "learning_rates": [], "grad_norm": []}
        self._seed = None
        self._seed_pending = False
        self.callbacks = list(callbacks)

    def _emit(self, event, **info):
        for callback in self.callbacks:
            handler = getattr(callback, event, None)
            if handler is not None:
                handler(self, **info)

    def _grads(self, params):
        return [p.grad.data if isinstance(p.grad, Tensor) else p.grad
                for p in params if p.grad is not None]

    def _reset_grads(self, params):
        self.optimizer.zero_grad()
        for p in params:
            p.grad = None

    def train_epoch(self, dataloader, accumulation_steps=1):
        if type(accumulation_steps) is not int or accumulation_steps < 1:
            raise ValueError(f"accumulation_steps must be a positive int, got {accumulation_steps!r}")
        set_training(self.model, True)
        self.training_mode = True
        if self.scheduler is not None:
            self.optimizer.lr = self.scheduler.get_lr(self.epoch)
        if hasattr(dataloader, "set_epoch"):
            if self._seed_pending:
                dataloader.load_state_dict({"seed": self._seed, "epoch": self.epoch})
                self._seed_pending = False
            dataloader.set_epoch(self.epoch)
            self._seed = dataloader.state_dict()["seed"]
        params = list(self.model.parameters())
        self._reset_grads(params)
        self._emit("on_epoch_begin", epoch=self.epoch, lr=float(self.optimizer.lr))

        epoch_sum = 0.0
        epoch_n = 0
        m = 0          # samples already averaged into p.grad in this window
        batches = 0    # batches in this window
        for b, (x, y) in enumerate(dataloader):
            x = Tensor(x) if not isinstance(x, Tensor) else x
            y = Tensor(y) if not isinstance(y, Tensor) else y
            loss = self.loss_fn(self.model.forward(x), y)
            value = float(loss.data)
            if not math.isfinite(value):
                self._reset_grads(params)
                raise RuntimeError(f"loss is {value} (epoch {self.epoch}, batch {b})")
            n = len(y)
            for g in self._grads(params):
                g *= m / (m + n)
            (loss * (n / (m + n))).backward()
            m += n
            batches += 1
            epoch_sum += value * n
            epoch_n += n
            self.step += 1
            self._emit("on_batch_end", batch=b, loss=value, samples=n)
            if batches == accumulation_steps:
                self._update(params)
                m, batches = 0, 0
        if batches:
            self._update(params)

        mean_loss = epoch_sum / epoch_n
        self.history["train_loss"].append(mean_loss)
        self.history["learning_rates"].append(float(self.optimizer.lr))
        self.epoch += 1
        self._emit("on_epoch_end", loss=mean_loss)
        return mean_loss

    def _update(self, params):
        total = None
        if self.grad_clip_norm is not None:
            total = clip_grad_norm(params, self.grad_clip_norm)
            if not math.isfinite(total):
                self._reset_grads(params)
                raise RuntimeError(f"gradient norm {total} at epoch {self.epoch}")
            self.history["grad_norm"].append(total)
        self.optimizer.step()
        self._reset_grads(params)
        self._emit("on_step", grad_norm=total)

    def evaluate(self, dataloader):
        set_training(self.model, False)
        self.training_mode = False
        weighted, n_all, good, n_judged = 0.0, 0, 0, 0
        with no_grad():
            for x, y in dataloader:
                x = Tensor(x) if not isinstance(x, Tensor) else x
                y = Tensor(y) if not isinstance(y, Tensor) else y
                out = self.model.forward(x)
                weighted += float(self.loss_fn(out, y).data) * len(y)
                n_all += len(y)
                if isinstance(self.loss_fn, CrossEntropyLoss):
                    good += int(np.sum(out.data.argmax(1) == y.data.astype(int)))
                    n_judged += len(y)
                elif isinstance(self.loss_fn, BinaryCrossEntropyLoss):
                    good += int(np.sum((out.data >= 0.5).astype(float) == y.data))
                    n_judged += y.data.size
        result = (weighted / n_all, good / n_judged if n_judged else None)
        self.history["eval_loss"].append(result[0])
        self.history["eval_accuracy"].append(result[1])
        self._emit("on_evaluate_end", loss=result[0], accuracy=result[1])
        return result

    def save_checkpoint(self, path):
        path = Path(path)
        state = {
            "params": [p.data.copy() for p in self.model.parameters()],
            "optimizer": self.optimizer.state_dict(),
            "scheduler": None if self.scheduler is None else (
                self.scheduler.max_lr, self.scheduler.min_lr, self.scheduler.total_epochs),
            "grad_clip_norm": self.grad_clip_norm,
            "epoch": self.epoch,
            "step": self.step,
            "training_mode": self.training_mode,
            "history": self.history,
            "data_seed": self._seed,
            "rng_states": [m.rng.bit_generator.state for m in rng_owners(self.model)],
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "wb") as f:
            pickle.dump(state, f)
        os.replace(tmp, path)

    def load_checkpoint(self, path):
        try:
            with open(path, "rb") as f:
                state = pickle.load(f)
            params = list(self.model.parameters())
            if len(state["params"]) != len(params):
                raise ValueError("parameter count differs")
            for i, (saved, p) in enumerate(zip(state["params"], params)):
                if saved.shape != p.data.shape:
                    raise ValueError(f"parameter {i}: {saved.shape} vs {p.data.shape}")
            self.optimizer.check_state_dict(state["optimizer"])
            sched = None if state["scheduler"] is None else CosineSchedule(*state["scheduler"])
            owners = rng_owners(self.model)
            if len(owners) != len(state["rng_states"]):
                raise ValueError("Dropout layers differ")
        except Exception as e:
            raise ValueError(f"could not load checkpoint {path}: {e}") from e
        for saved, p in zip(state["params"], params):
            p.data[...] = saved
        self.optimizer.load_state_dict(state["optimizer"])
        for m, rs in zip(owners, state["rng_states"]):
            m.rng.bit_generator.state = rs
        self.scheduler = sched
        self.grad_clip_norm = state["grad_clip_norm"]
        self.epoch = state["epoch"]
        self.step = state["step"]
        self.history = {k: list(v) for k, v in state["history"].items()}
        self._seed, self._seed_pending = state["data_seed"], state["data_seed"] is not None
        set_training(self.model, state["training_mode"])
        self.training_mode = state["training_mode"]
        self._reset_grads(params)
