"""Module 07 - Training. (evaluation will be next week's cell, the training part is done)

Checkpoint: np.savez with positional arrays (arr_0, arr_1, ...); arr_0 is the JSON "index"
that says what every other array is, and a sha256 over all of it is stored in the index.
"""
import hashlib
import json
import math
import os
import tempfile
from pathlib import Path

import numpy as np

from tinytorch.core.layers import rng_owners, set_training
from tinytorch.core.tensor import Tensor


def _rate_ok(r):
    return not isinstance(r, bool) and isinstance(r, (int, float, np.number)) and math.isfinite(r) \
        and r >= 0


def _tensorize(v):
    return v if isinstance(v, Tensor) else Tensor(v)


class CosineSchedule:
    def __init__(self, max_lr=0.1, min_lr=0.01, total_epochs=100):
        if not _rate_ok(max_lr):
            raise ValueError("max_lr must be a finite number >= 0")
        if not _rate_ok(min_lr):
            raise ValueError("min_lr must be a finite number >= 0")
        if min_lr > max_lr:
            raise ValueError("min_lr must not be greater than max_lr")
        if isinstance(total_epochs, bool) or not isinstance(total_epochs, int) or total_epochs <= 0:
            raise ValueError("total_epochs must be a positive integer")
        self.max_lr, self.min_lr, self.total_epochs = float(max_lr), float(min_lr), total_epochs

    def get_lr(self, epoch):
        if not _rate_ok(epoch):
            raise ValueError("epoch must be >= 0")
        if epoch >= self.total_epochs:
            return self.min_lr
        theta = math.pi * epoch / self.total_epochs
        return self.min_lr + (self.max_lr - self.min_lr) * (1 + math.cos(theta)) / 2


def clip_grad_norm(parameters, max_norm=1.0):
    if not _rate_ok(max_norm):
        raise ValueError("max_norm must be a finite number >= 0")
    params = [p for p in parameters if p.grad is not None]
    sq = 0.0
    for p in params:
        g = p.grad.data if isinstance(p.grad, Tensor) else p.grad
        sq += float(np.sum(np.asarray(g, dtype=np.float64) ** 2))
    total = math.sqrt(sq)
    if math.isfinite(total) and total > max_norm:
        scale = max_norm / (total + 1e-6)
        for p in params:
            p.data *= scale
    return total


class Trainer:
    def __init__(self, model, optimizer, loss_fn, scheduler=None, grad_clip_norm=None,
                 callbacks=()):
        if grad_clip_norm is not None and (not _rate_ok(grad_clip_norm) or grad_clip_norm == 0):
            raise ValueError("grad_clip_norm must be a positive number or None")
        self.model = model
        self.optimizer = optimizer
        self.loss_fn = loss_fn
        self.scheduler = scheduler
        self.grad_clip_norm = grad_clip_norm
        self.epoch = 0
        self.step = 0
        self.training_mode = True
        self.history = {"train_loss": [], "eval_loss": [], "learning_rates": [], "grad_norm": []}
        self._seed = None
        self._resuming = False
        self.callbacks = list(callbacks)

    def _emit(self, event, **info):
        for callback in self.callbacks:
            handler = getattr(callback, event, None)
            if handler is not None:
                handler(self, **info)

    def _grads_to_none(self):
        self.optimizer.zero_grad()
        for p in self.model.parameters():
            p.grad = None

    def train_epoch(self, dataloader, accumulation_steps=1):
        if isinstance(accumulation_steps, bool) or not isinstance(accumulation_steps, int) \
                or accumulation_steps < 1:
            raise ValueError("accumulation_steps must be a positive integer")
        set_training(self.model, True)
        self.training_mode = True
        if self.scheduler is not None:
            self.optimizer.lr = self.scheduler.get_lr(self.epoch)
        lr = float(self.optimizer.lr)
        if hasattr(dataloader, "set_epoch"):
            if self._resuming:
                dataloader.load_state_dict({"seed": self._seed, "epoch": self.epoch})
                self._resuming = False
            else:
                dataloader.set_epoch(self.epoch)
            self._seed = dataloader.state_dict()["seed"]
        self._grads_to_none()
        self._emit("on_epoch_begin", epoch=self.epoch, lr=lr)

        loss_acc, count, k_batches, k_samples = 0.0, 0, 0, 0
        for b, (xb, yb) in enumerate(dataloader):
            xb, yb = _tensorize(xb), _tensorize(yb)
            loss = self.loss_fn(self.model.forward(xb), yb)
            lval = float(loss.data)
            if not math.isfinite(lval):
                self._grads_to_none()
                raise FloatingPointError(f"loss {lval} at epoch {self.epoch}, batch {b}")
            size = len(yb)
            (loss * size).backward()
            loss_acc, count = loss_acc + lval * size, count + size
            self._emit("on_batch_end", batch=b, loss=lval, samples=size)
            k_batches, k_samples = k_batches + 1, k_samples + size
            if k_batches == accumulation_steps:
                self._step(k_samples)
                k_batches = k_samples = 0
        if k_batches:
            self._step(k_samples)
        result = loss_acc / count
        self.history["train_loss"].append(result)
        self.history["learning_rates"].append(lr)
        self.epoch += 1
        self._emit("on_epoch_end", loss=result)
        return result

    def _step(self, n):
        params = list(self.model.parameters())
        for p in params:
            if p.grad is not None:
                g = p.grad.data if isinstance(p.grad, Tensor) else p.grad
                g /= n
        total = None
        if self.grad_clip_norm is not None:
            total = clip_grad_norm(params, self.grad_clip_norm)
            if not math.isfinite(total):
                self._grads_to_none()
                raise FloatingPointError(f"gradient norm {total} at epoch {self.epoch}")
            self.history["grad_norm"].append(total)
        self.optimizer.step()
        self._grads_to_none()
        self.step += 1
        self._emit("on_step", grad_norm=total)

    def save_checkpoint(self, path):
        path = Path(path)
        sd = self.optimizer.state_dict()
        arrays, names = [], []
        for i, p in enumerate(self.model.parameters()):
            arrays.append(p.data)
            names.append(["param", i, None])
        for i, st in enumerate(sd["state"]):
            for key, val in st.items():
                if isinstance(val, np.ndarray):
                    arrays.append(val)
                    names.append(["opt", i, key])
        s = self.scheduler
        index = {
            "names": names,
            "optimizer": {"kind": sd["kind"], "hyperparameters": sd["hyperparameters"],
                          "step_count": sd["step_count"],
                          "steps": [st.get("step") for st in sd["state"]]},
            "scheduler": None if s is None else [s.max_lr, s.min_lr, s.total_epochs],
            "grad_clip_norm": self.grad_clip_norm, "epoch": self.epoch, "step": self.step,
            "training_mode": self.training_mode, "history": self.history, "seed": self._seed,
            "rngs": [m.rng.bit_generator.state for m in rng_owners(self.model)],
        }
        h = hashlib.sha256(json.dumps(index, sort_keys=True).encode())
        for a in arrays:
            h.update(np.ascontiguousarray(a).tobytes())
        index["sha256"] = h.hexdigest()
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix="." + path.name)
        with os.fdopen(fd, "wb") as f:
            np.savez(f, np.frombuffer(json.dumps(index).encode(), np.uint8), *arrays)
        os.replace(tmp, path)

    def load_checkpoint(self, path):
        try:
            with open(path, "rb") as f, np.load(f, allow_pickle=False) as z:
                index = json.loads(z["arr_0"].tobytes().decode())
                arrays = [z[f"arr_{i + 1}"] for i in range(len(index["names"]))]
            sha = index.pop("sha256")
            h = hashlib.sha256(json.dumps(index, sort_keys=True).encode())
            for a in arrays:
                h.update(np.ascontiguousarray(a).tobytes())
            if h.hexdigest() != sha:
                raise ValueError("sha256 mismatch")
            params = list(self.model.parameters())
            weights = [a for a, (kind, _, _) in zip(arrays, index["names"]) if kind == "param"]
            if len(weights) != len(params) or any(w.shape != p.data.shape
                                                   for w, p in zip(weights, params)):
                raise ValueError("the checkpoint's parameters do not fit this model")
            o = index["optimizer"]
            slots = [{} if s is None else {"step": s} for s in o["steps"]]
            for a, (kind, i, key) in zip(arrays, index["names"]):
                if kind == "opt":
                    slots[i][key] = a
            opt_sd = {"kind": o["kind"], "hyperparameters": o["hyperparameters"],
                      "step_count": o["step_count"], "state": slots}
            self.optimizer.check_state_dict(opt_sd)
            sched = None if index["scheduler"] is None else CosineSchedule(*index["scheduler"])
            owners = rng_owners(self.model)
            if len(owners) != len(index["rngs"]):
                raise ValueError("Dropout layers differ")
            for m, st in zip(owners, index["rngs"]):
                type(m.rng.bit_generator)().state = st
        except Exception as e:
            raise ValueError(f"cannot load {path}: {e}") from e
        for w, p in zip(weights, params):
            p.data[...] = w
        self.optimizer.load_state_dict(opt_sd)
        for m, st in zip(owners, index["rngs"]):
            m.rng.bit_generator.state = st
        self.scheduler, self.grad_clip_norm = sched, index["grad_clip_norm"]
        self.epoch, self.step = index["epoch"], index["step"]
        self.history = {k: list(v) for k, v in index["history"].items()}
        self._seed, self._resuming = index["seed"], index["seed"] is not None
        set_training(self.model, index["training_mode"])
        self.training_mode = index["training_mode"]
        self._grads_to_none()
