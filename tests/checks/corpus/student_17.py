"""Module 07: Training.

Student: I tested clip_grad_norm on numpy arrays in the notebook and it worked.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from tinytorch.core.autograd import no_grad
from tinytorch.core.layers import rng_owners, set_training
from tinytorch.core.losses import BinaryCrossEntropyLoss, CrossEntropyLoss
from tinytorch.core.tensor import Tensor


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _rate(value: Any) -> bool:
    return (isinstance(value, (int, float, np.floating, np.integer)) and not isinstance(value, bool)
            and math.isfinite(value) and value >= 0)


class CosineSchedule:
    """Cosine annealing between max_lr and min_lr over total_epochs (min_lr afterwards)."""

    def __init__(self, max_lr: float = 0.1, min_lr: float = 0.01, total_epochs: int = 100):
        if not _rate(max_lr):
            raise ValueError(f"max_lr must be a finite rate >= 0: {max_lr!r}")
        if not _rate(min_lr):
            raise ValueError(f"min_lr must be a finite rate >= 0: {min_lr!r}")
        if min_lr > max_lr:
            raise ValueError(f"min_lr ({min_lr!r}) must be <= max_lr ({max_lr!r})")
        if not _positive_int(total_epochs):
            raise ValueError(f"total_epochs must be a positive int: {total_epochs!r}")
        self.max_lr = float(max_lr)
        self.min_lr = float(min_lr)
        self.total_epochs = total_epochs

    def get_lr(self, epoch: float) -> float:
        """Learning rate of a (0-based) epoch."""
        if not _rate(epoch):
            raise ValueError(f"epoch must be >= 0: {epoch!r}")
        if epoch >= self.total_epochs:
            return self.min_lr
        span = self.max_lr - self.min_lr
        return self.min_lr + span * (1.0 + math.cos(math.pi * epoch / self.total_epochs)) / 2.0


def clip_grad_norm(parameters, max_norm: float = 1.0) -> float:
    """Global-norm clipping; returns the norm before clipping."""
    if not _rate(max_norm):
        raise ValueError(f"max_norm must be a finite number >= 0: {max_norm!r}")
    grads = [p.grad for p in parameters if p.grad is not None]
    total = math.sqrt(sum(float(np.sum(np.asarray(g, dtype=np.float64) ** 2)) for g in grads))
    if total > max_norm and math.isfinite(total):
        coef = max_norm / (total + 1e-6)
        for g in grads:
            g *= coef
    return total


class Trainer:
    """Trainer for any model with forward(), parameters() and a training flag."""

    def __init__(self, model, optimizer, loss_fn, scheduler=None, grad_clip_norm=None, *,
                 callbacks: tuple | list = ()):
        if grad_clip_norm is not None and (not _rate(grad_clip_norm) or grad_clip_norm == 0):
            raise ValueError(f"grad_clip_norm must be > 0: {grad_clip_norm!r}")
        self.model = model
        self.optimizer = optimizer
        self.loss_fn = loss_fn
        self.scheduler = scheduler
        self.grad_clip_norm = grad_clip_norm
        self.epoch: int = 0
        self.step: int = 0
        self.training_mode: bool = True
        self.history: dict[str, list] = {"train_loss": [], "eval_loss": [], "eval_accuracy": [],
                                         "learning_rates": [], "grad_norm": []}
        self._data_seed: int | None = None
        self._data_seed_to_apply: int | None = None
        self.callbacks: list[Any] = list(callbacks)

    def _emit(self, event: str, **info: Any) -> None:
        """Call `event` on each callback that defines it, with the trainer first."""
        for callback in self.callbacks:
            handler = getattr(callback, event, None)
            if handler is not None:
                handler(self, **info)

    # ------------------------------------------------------------ pieces of the loop
    def _forward(self, x, y) -> tuple[Tensor, float, int]:
        """Forward pass; returns (loss tensor, its value, batch size)."""
        x = x if isinstance(x, Tensor) else Tensor(x)
        y = y if isinstance(y, Tensor) else Tensor(y)
        loss = self.loss_fn(self.model.forward(x), y)
        return loss, float(loss.data), len(y)

    def _zero_grad(self) -> None:
        self.optimizer.zero_grad()
        for p in self.model.parameters():
            p.grad = None

    def _optimizer_step(self, window_samples: int) -> None:
        """Average the summed window gradient, clip, step, clear."""
        params = list(self.model.parameters())
        for p in params:
            if p.grad is not None:
                p.grad = Tensor(np.asarray(p.grad, dtype=np.float32) / window_samples)
        norm: float | None = None
        if self.grad_clip_norm is not None:
            norm = clip_grad_norm(params, self.grad_clip_norm)
            if not math.isfinite(norm):
                self._zero_grad()
                raise FloatingPointError(f"gradient norm {norm} at epoch {self.epoch}")
            self.history["grad_norm"].append(norm)
        self.optimizer.step()
        self._zero_grad()
        self.step += 1
        self._emit("on_step", grad_norm=norm)

    def _prepare_data(self, dataloader) -> None:
        if self._data_seed_to_apply is not None and hasattr(dataloader, "load_state_dict"):
            dataloader.load_state_dict({"seed": self._data_seed_to_apply, "epoch": self.epoch})
            self._data_seed_to_apply = None
        elif hasattr(dataloader, "set_epoch"):
            dataloader.set_epoch(self.epoch)
        if hasattr(dataloader, "state_dict"):
            self._data_seed = int(dataloader.state_dict()["seed"])

    # ------------------------------------------------------------ public API
    def train_epoch(self, dataloader, accumulation_steps: int = 1) -> float:
        if not _positive_int(accumulation_steps):
            raise ValueError(f"accumulation_steps must be a positive int: {accumulation_steps!r}")
        set_training(self.model, True)
        self.training_mode = True
        if self.scheduler is not None:
            self.optimizer.lr = self.scheduler.get_lr(self.epoch)
        lr = float(self.optimizer.lr)
        self._prepare_data(dataloader)
        self._zero_grad()
        self._emit("on_epoch_begin", epoch=self.epoch, lr=lr)
        n_batches = len(dataloader)
        loss_sum, sample_sum, window_samples = 0.0, 0, 0
        for i, (x, y) in enumerate(dataloader):
            loss, value, n = self._forward(x, y)
            if not math.isfinite(value):
                self._zero_grad()
                raise FloatingPointError(f"loss is {value} at epoch {self.epoch}, batch {i}")
            (loss * n).backward()
            loss_sum += value * n
            sample_sum += n
            window_samples += n
            self._emit("on_batch_end", batch=i, loss=value, samples=n)
            if (i + 1) % accumulation_steps == 0 or i + 1 == n_batches:
                self._optimizer_step(window_samples)
                window_samples = 0
        mean = loss_sum / sample_sum
        self.history["train_loss"].append(mean)
        self.history["learning_rates"].append(lr)
        self.epoch += 1
        self._emit("on_epoch_end", loss=mean)
        return mean

    def evaluate(self, dataloader) -> tuple[float, float | None]:
        """(mean loss, accuracy or None for regression)."""
        set_training(self.model, False)
        self.training_mode = False
        loss_sum, sample_sum, hits, judged = 0.0, 0, 0, 0
        with no_grad():
            for x, y in dataloader:
                x = x if isinstance(x, Tensor) else Tensor(x)
                y = y if isinstance(y, Tensor) else Tensor(y)
                out = self.model.forward(x)
                loss_sum += float(self.loss_fn(out, y).data) * len(y)
                sample_sum += len(y)
                if isinstance(self.loss_fn, CrossEntropyLoss):
                    hits += int(np.sum(out.data.argmax(axis=1) == y.data))
                    judged += len(y)
                elif isinstance(self.loss_fn, BinaryCrossEntropyLoss):
                    hits += int(np.sum((out.data >= 0.5) == (y.data >= 0.5)))
                    judged += y.data.size
        loss = loss_sum / sample_sum
        accuracy = hits / judged if judged else None
        self.history["eval_loss"].append(loss)
        self.history["eval_accuracy"].append(accuracy)
        self._emit("on_evaluate_end", loss=loss, accuracy=accuracy)
        return loss, accuracy

    # ------------------------------------------------------------ checkpoints
    def _arrays_and_meta(self) -> tuple[dict, dict]:
        sd = self.optimizer.state_dict()
        arrays = {f"param_{i}": p.data for i, p in enumerate(self.model.parameters())}
        for i, st in enumerate(sd["state"]):
            for k, v in st.items():
                if isinstance(v, np.ndarray):
                    arrays[f"opt_{i}_{k}"] = v
        s = self.scheduler
        meta = {"kind": sd["kind"], "hyperparameters": sd["hyperparameters"],
                "step_count": sd["step_count"], "steps": [st.get("step") for st in sd["state"]],
                "scheduler": None if s is None else [s.max_lr, s.min_lr, s.total_epochs],
                "grad_clip_norm": self.grad_clip_norm, "epoch": self.epoch, "step": self.step,
                "training_mode": self.training_mode, "history": self.history,
                "data_seed": self._data_seed,
                "rng": [m.rng.bit_generator.state for m in rng_owners(self.model)]}
        return arrays, meta

    @staticmethod
    def _hash(arrays: dict, meta_text: str) -> str:
        h = hashlib.sha256(meta_text.encode())
        for k in sorted(arrays):
            h.update(k.encode())
            h.update(np.ascontiguousarray(arrays[k]).tobytes())
        return h.hexdigest()

    def save_checkpoint(self, path) -> None:
        path = Path(path)
        arrays, meta = self._arrays_and_meta()
        text = json.dumps(meta)
        out = dict(arrays, meta=np.array(text), sha256=np.array(self._hash(arrays, text)))
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "wb") as f:
            np.savez(f, **out)
        os.replace(tmp, path)

    def load_checkpoint(self, path) -> None:
        try:
            with open(path, "rb") as f, np.load(f, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
            text, digest = str(arrays.pop("meta")), str(arrays.pop("sha256"))
            if self._hash(arrays, text) != digest:
                raise ValueError("sha256 mismatch")
            meta = json.loads(text)
            params = list(self.model.parameters())
            if sum(k.startswith("param_") for k in arrays) != len(params) or any(
                    arrays[f"param_{i}"].shape != p.data.shape for i, p in enumerate(params)):
                raise ValueError("the parameters do not fit this model")
            slots = [{} if s is None else {"step": s} for s in meta["steps"]]
            for k, v in arrays.items():
                if k.startswith("opt_"):
                    _, i, name = k.split("_", 2)
                    slots[int(i)][name] = v
            opt_sd = {"kind": meta["kind"], "hyperparameters": meta["hyperparameters"],
                      "step_count": meta["step_count"], "state": slots}
            self.optimizer.check_state_dict(opt_sd)
            sched = None if meta["scheduler"] is None else CosineSchedule(*meta["scheduler"])
            owners = rng_owners(self.model)
            if len(owners) != len(meta["rng"]):
                raise ValueError("the model has other Dropout layers")
            for m, st in zip(owners, meta["rng"]):
                type(m.rng.bit_generator)().state = st
        except Exception as e:
            raise ValueError(f"cannot load checkpoint {path}: {e}") from e
        for i, p in enumerate(params):
            p.data[...] = arrays[f"param_{i}"]
        self.optimizer.load_state_dict(opt_sd)
        for m, st in zip(owners, meta["rng"]):
            m.rng.bit_generator.state = st
        self.scheduler, self.grad_clip_norm = sched, meta["grad_clip_norm"]
        self.epoch, self.step = meta["epoch"], meta["step"]
        self.history = {k: list(v) for k, v in meta["history"].items()}
        self._data_seed = self._data_seed_to_apply = meta["data_seed"]
        set_training(self.model, meta["training_mode"])
        self.training_mode = meta["training_mode"]
        self._zero_grad()
