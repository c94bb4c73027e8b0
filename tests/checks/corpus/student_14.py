"""Module 07 — Training (CosineSchedule, clip_grad_norm, Trainer)

Design notes
------------
* _batches() wraps whatever the user gives me and always yields (index, x, y, n) with Tensors.
* history is a dict of lists; train_loss / learning_rates per epoch, eval_* per evaluate().
* checkpoint: npz (arrays) + JSON (bytes), md5 of both, atomic rename.
"""
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

HISTORY_KEYS = ("train_loss", "learning_rates", "eval_loss", "eval_accuracy", "grad_norm")


def _assert_rate(name, v):
    if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
        raise ValueError(f"{name} must be a number")
    if not math.isfinite(v) or v < 0:
        raise ValueError(f"{name} must be finite and >= 0 (got {v})")


def _batches(loader):
    for index, (x, y) in enumerate(loader):
        x = x if isinstance(x, Tensor) else Tensor(x)
        y = y if isinstance(y, Tensor) else Tensor(y)
        yield index, x, y, (y.shape[0] if y.ndim else 1)


class CosineSchedule:
    def __init__(self, max_lr=0.1, min_lr=0.01, total_epochs=100):
        _assert_rate("max_lr", max_lr)
        _assert_rate("min_lr", min_lr)
        if min_lr > max_lr:
            raise ValueError(f"min_lr ({min_lr}) > max_lr ({max_lr})")
        if isinstance(total_epochs, bool) or not isinstance(total_epochs, int) or total_epochs < 1:
            raise ValueError(f"total_epochs must be a positive int (got {total_epochs!r})")
        self.max_lr, self.min_lr, self.total_epochs = float(max_lr), float(min_lr), total_epochs

    def get_lr(self, epoch):
        _assert_rate("epoch", epoch)
        if epoch >= self.total_epochs:
            return self.min_lr
        return self.min_lr + (self.max_lr - self.min_lr) * (1 + math.cos(math.pi * epoch / self.total_epochs)) / 2


def clip_grad_norm(parameters, max_norm=1.0):
    _assert_rate("max_norm", max_norm)
    gradients = []
    for p in parameters:
        if p.grad is not None:
            gradients.append(p.grad.data if isinstance(p.grad, Tensor) else p.grad)
    norm = math.sqrt(sum(float((g.astype(np.float64) ** 2).sum()) for g in gradients))
    if math.isfinite(norm) and norm > max_norm:
        for g in gradients:
            g *= max_norm / (norm + 1e-6)
    return norm


class Trainer:
    def __init__(self, model, optimizer, loss_fn, scheduler=None, grad_clip_norm=None, *,
                 callbacks=()):
        if grad_clip_norm is not None:
            _assert_rate("grad_clip_norm", grad_clip_norm)
            if grad_clip_norm == 0:
                raise ValueError("grad_clip_norm must be > 0")
        self.model = model
        self.optimizer = optimizer
        self.loss_fn = loss_fn
        self.scheduler = scheduler
        self.grad_clip_norm = grad_clip_norm
        self.epoch = 0
        self.step = 0
        self.training_mode = True
        self.history = {key: [] for key in HISTORY_KEYS}
        self.callbacks = list(callbacks)

    def _emit(self, event, **info):
        for callback in self.callbacks:
            handler = getattr(callback, event, None)
            if handler is not None:
                handler(self, **info)

    def _set_mode(self, training):
        set_training(self.model, training)
        self.training_mode = training

    def _drop_grads(self):
        self.optimizer.zero_grad()
        for p in self.model.parameters():
            p.grad = None

    def train_epoch(self, dataloader, accumulation_steps=1):
        if isinstance(accumulation_steps, bool) or not isinstance(accumulation_steps, int) \
                or accumulation_steps < 1:
            raise ValueError(f"accumulation_steps must be a positive int (got {accumulation_steps!r})")
        self._set_mode(True)
        if self.scheduler is not None:
            self.optimizer.lr = self.scheduler.get_lr(self.epoch)
        lr = float(self.optimizer.lr)
        self._drop_grads()
        self._emit("on_epoch_begin", epoch=self.epoch, lr=lr)
        epoch_total, epoch_samples = 0.0, 0
        window_batches, window_samples = 0, 0
        for index, x, y, n in _batches(dataloader):
            loss = self.loss_fn(self.model.forward(x), y)
            value = float(loss.data)
            if not math.isfinite(value):
                self._drop_grads()
                raise FloatingPointError(f"loss is {value} at epoch {self.epoch}, batch {index}")
            loss.backward(np.asarray(float(n)))
            epoch_total += value * n
            epoch_samples += n
            self._emit("on_batch_end", batch=index, loss=value, samples=n)
            window_batches += 1
            window_samples += n
            if window_batches == accumulation_steps:
                self._optimizer_step(window_samples)
                window_batches = window_samples = 0
        if window_batches:
            self._optimizer_step(window_samples)
        if not epoch_samples:
            raise ValueError("empty dataloader")
        mean = epoch_total / epoch_samples
        self.history["train_loss"].append(mean)
        self.history["learning_rates"].append(lr)
        self.epoch += 1
        self._emit("on_epoch_end", loss=mean)
        return mean

    def _optimizer_step(self, samples):
        params = list(self.model.parameters())
        for p in params:
            if p.grad is not None:
                (p.grad.data if isinstance(p.grad, Tensor) else p.grad)[...] *= 1.0 / samples
        norm = None
        if self.grad_clip_norm is not None:
            norm = clip_grad_norm(params, self.grad_clip_norm)
            if not math.isfinite(norm):
                self._drop_grads()
                raise FloatingPointError(f"gradient norm {norm} at epoch {self.epoch}")
            self.history["grad_norm"].append(norm)
        self.optimizer.step()
        self._drop_grads()
        self.step += 1
        self._emit("on_step", grad_norm=norm)

    def evaluate(self, dataloader):
        self._set_mode(False)
        total, samples, correct, judged = 0.0, 0, 0, 0
        with no_grad():
            for _, x, y, n in _batches(dataloader):
                out = self.model.forward(x)
                total += float(self.loss_fn(out, y).data) * n
                samples += n
                if isinstance(self.loss_fn, CrossEntropyLoss):
                    correct += int(np.sum(np.argmax(out.data, axis=0) == y.data))
                    judged += n
                elif isinstance(self.loss_fn, BinaryCrossEntropyLoss):
                    correct += int(np.sum((out.data >= 0.5) == (y.data >= 0.5)))
                    judged += y.data.size
        if not samples:
            raise ValueError("empty dataloader")
        loss, accuracy = total / samples, (correct / judged if judged else None)
        self.history["eval_loss"].append(loss)
        self.history["eval_accuracy"].append(accuracy)
        self._emit("on_evaluate_end", loss=loss, accuracy=accuracy)
        return loss, accuracy

    # ----------------------------------------------------------------- checkpoints
    def save_checkpoint(self, path):
        path = Path(path)
        params = list(self.model.parameters())
        opt = self.optimizer.state_dict()
        arrays = {f"p{i}": p.data for i, p in enumerate(params)}
        for i, st in enumerate(opt["state"]):
            arrays.update({f"s{i}/{k}": v for k, v in st.items() if isinstance(v, np.ndarray)})
        sch = self.scheduler
        meta = {"n_params": len(params),
                "optimizer": {"kind": opt["kind"], "hyperparameters": opt["hyperparameters"],
                              "step_count": opt["step_count"],
                              "steps": [st.get("step") for st in opt["state"]]},
                "scheduler": None if sch is None else {"max_lr": sch.max_lr, "min_lr": sch.min_lr,
                                                       "total_epochs": sch.total_epochs},
                "grad_clip_norm": self.grad_clip_norm, "epoch": self.epoch, "step": self.step,
                "training_mode": self.training_mode, "history": self.history,
                "dropout": [m.rng.bit_generator.state for m in rng_owners(self.model)]}
        meta_bytes = json.dumps(meta).encode()
        md5 = hashlib.md5(meta_bytes)
        for k in sorted(arrays):
            md5.update(k.encode() + np.ascontiguousarray(arrays[k]).tobytes())
        arrays["meta"] = np.frombuffer(meta_bytes, np.uint8)
        arrays["md5"] = np.frombuffer(md5.digest(), np.uint8)
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("wb", dir=path.parent, delete=False) as tmp:
            np.savez(tmp, **arrays)
        os.replace(tmp.name, path)

    def load_checkpoint(self, path):
        try:
            with open(path, "rb") as fh, np.load(fh, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
            meta_bytes, digest = arrays.pop("meta").tobytes(), arrays.pop("md5").tobytes()
            md5 = hashlib.md5(meta_bytes)
            for k in sorted(arrays):
                md5.update(k.encode() + np.ascontiguousarray(arrays[k]).tobytes())
            if md5.digest() != digest:
                raise ValueError("md5 mismatch")
            meta = json.loads(meta_bytes)
            params = list(self.model.parameters())
            if meta["n_params"] != len(params):
                raise ValueError("different number of parameters")
            for i, p in enumerate(params):
                if arrays[f"p{i}"].shape != p.data.shape:
                    raise ValueError(f"p{i}: {arrays[f'p{i}'].shape} != {p.data.shape}")
            slots = [{} if s is None else {"step": s} for s in meta["optimizer"]["steps"]]
            for k, v in arrays.items():
                if k.startswith("s"):
                    i, name = k[1:].split("/")
                    slots[int(i)][name] = v
            opt_sd = dict(meta["optimizer"], state=slots)
            del opt_sd["steps"]
            self.optimizer.check_state_dict(opt_sd)
            sched = None if meta["scheduler"] is None else CosineSchedule(**meta["scheduler"])
            owners = rng_owners(self.model)
            if len(owners) != len(meta["dropout"]):
                raise ValueError("Dropout layers differ")
            for m, st in zip(owners, meta["dropout"]):
                type(m.rng.bit_generator)().state = st
        except Exception as e:
            raise ValueError(f"checkpoint {path} could not be loaded: {e}") from e
        for i, p in enumerate(params):
            p.data[...] = arrays[f"p{i}"]
        self.optimizer.load_state_dict(opt_sd)
        for m, st in zip(owners, meta["dropout"]):
            m.rng.bit_generator.state = st
        self.scheduler, self.grad_clip_norm = sched, meta["grad_clip_norm"]
        self.epoch, self.step = meta["epoch"], meta["step"]
        self.history = {k: list(v) for k, v in meta["history"].items()}
        self._set_mode(meta["training_mode"])
        self._drop_grads()
