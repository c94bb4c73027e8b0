"""Module 07: Training -- CosineSchedule, clip_grad_norm, Trainer
(clipping right after backward like in the lecture slides, so no gradient ever gets huge)
"""
import hashlib
import json
import math
import os
import tempfile
from collections import defaultdict
from pathlib import Path

import numpy as np

from tinytorch.core.layers import rng_owners, set_training
from tinytorch.core.losses import BinaryCrossEntropyLoss, CrossEntropyLoss
from tinytorch.core.tensor import Tensor


def _validate_rate(name, x):
    if isinstance(x, bool) or not isinstance(x, (int, float, np.integer, np.floating)) \
            or not math.isfinite(x) or x < 0:
        raise ValueError(f"{name}={x!r} must be a finite number >= 0")


class CosineSchedule:
    def __init__(self, max_lr=0.1, min_lr=0.01, total_epochs=100):
        _validate_rate("max_lr", max_lr)
        _validate_rate("min_lr", min_lr)
        if min_lr > max_lr:
            raise ValueError(f"min_lr={min_lr} must be <= max_lr={max_lr}")
        if isinstance(total_epochs, bool) or not isinstance(total_epochs, int) or total_epochs < 1:
            raise ValueError(f"total_epochs={total_epochs!r} must be a positive integer")
        self.max_lr, self.min_lr, self.total_epochs = float(max_lr), float(min_lr), total_epochs

    def get_lr(self, epoch):
        _validate_rate("epoch", epoch)
        progress = min(1.0, epoch / self.total_epochs)
        return self.min_lr + 0.5 * (self.max_lr - self.min_lr) * (1.0 + math.cos(math.pi * progress))


def clip_grad_norm(parameters, max_norm=1.0):
    _validate_rate("max_norm", max_norm)
    grads = []
    for p in parameters:
        g = p.grad
        if g is None:
            continue
        grads.append(g.data if isinstance(g, Tensor) else g)
    total_sq = 0.0
    for g in grads:
        total_sq += float(np.square(g, dtype=np.float64).sum())
    total_norm = total_sq ** 0.5
    if total_norm > max_norm and math.isfinite(total_norm):
        clip_coef = max_norm / (total_norm + 1e-6)
        for g in grads:
            g *= clip_coef
    return total_norm


class Trainer:
    def __init__(self, model, optimizer, loss_fn, scheduler=None, grad_clip_norm=None, *,
                 callbacks=()):
        if grad_clip_norm is not None:
            _validate_rate("grad_clip_norm", grad_clip_norm)
            if grad_clip_norm == 0:
                raise ValueError("grad_clip_norm=0 would zero every gradient")
        self.model = model
        self.optimizer = optimizer
        self.loss_fn = loss_fn
        self.scheduler = scheduler
        self.grad_clip_norm = grad_clip_norm
        self.epoch = 0
        self.step = 0
        self.training_mode = True
        self.history = defaultdict(list)
        self.history["train_loss"], self.history["eval_loss"] = [], []
        self.history["learning_rates"] = []
        self.history["grad_norm"] = []
        self._shuffle_seed = None
        self._shuffle_seed_restored = None
        self.callbacks = list(callbacks)

    def _emit(self, event, **info):
        for callback in self.callbacks:
            handler = getattr(callback, event, None)
            if handler is not None:
                handler(self, **info)

    def _clear_grads(self):
        self.optimizer.zero_grad()
        for p in self.model.parameters():
            p.grad = None

    def _prepare_loader(self, loader):
        if self._shuffle_seed_restored is not None and hasattr(loader, "load_state_dict"):
            loader.load_state_dict({"seed": self._shuffle_seed_restored, "epoch": self.epoch})
            self._shuffle_seed_restored = None
        elif hasattr(loader, "set_epoch"):
            loader.set_epoch(self.epoch)
        if hasattr(loader, "state_dict"):
            self._shuffle_seed = loader.state_dict()["seed"]

    def _batch_forward_backward(self, x, y, batch_index):
        x = x if isinstance(x, Tensor) else Tensor(x)
        y = y if isinstance(y, Tensor) else Tensor(y)
        loss = self.loss_fn(self.model.forward(x), y)
        value = float(loss.data)
        if not math.isfinite(value):
            self._clear_grads()
            raise FloatingPointError(f"epoch {self.epoch}, batch {batch_index}: loss is {value}")
        n = len(y)
        (loss * n).backward()
        if self.grad_clip_norm is not None:
            norm = clip_grad_norm(self.model.parameters(), self.grad_clip_norm)
            if not math.isfinite(norm):
                self._clear_grads()
                raise FloatingPointError(f"epoch {self.epoch}, batch {batch_index}: grad norm {norm}")
        self._emit("on_batch_end", batch=batch_index, loss=value, samples=n)
        return value, n

    def _optimizer_step(self, samples):
        grads = []
        for p in self.model.parameters():
            if p.grad is not None:
                g = p.grad.data if isinstance(p.grad, Tensor) else p.grad
                g /= samples
                grads.append(g)
        norm = None
        if self.grad_clip_norm is not None:
            # log the size of the gradient the optimizer really gets (clipped after backward)
            norm = math.sqrt(sum(float(np.square(g, dtype=np.float64).sum()) for g in grads))
            self.history["grad_norm"].append(norm)
        self.optimizer.step()
        self._clear_grads()
        self.step += 1
        self._emit("on_step", grad_norm=norm)

    def train_epoch(self, dataloader, accumulation_steps=1):
        if isinstance(accumulation_steps, bool) or not isinstance(accumulation_steps, int) \
                or accumulation_steps < 1:
            raise ValueError(f"accumulation_steps={accumulation_steps!r} must be an int >= 1")
        set_training(self.model, True)
        self.training_mode = True
        if self.scheduler is not None:
            self.optimizer.lr = self.scheduler.get_lr(self.epoch)
        lr = float(self.optimizer.lr)
        self._prepare_loader(dataloader)
        self._clear_grads()
        self._emit("on_epoch_begin", epoch=self.epoch, lr=lr)
        loss_sum = 0.0
        sample_count = 0
        window = []
        for batch_index, (x, y) in enumerate(dataloader):
            value, n = self._batch_forward_backward(x, y, batch_index)
            loss_sum += value * n
            sample_count += n
            window.append(n)
            if len(window) == accumulation_steps:
                self._optimizer_step(sum(window))
                window = []
        if window:
            self._optimizer_step(sum(window))
        epoch_loss = loss_sum / sample_count
        self.history["train_loss"].append(epoch_loss)
        self.history["learning_rates"].append(lr)
        self.epoch += 1
        self._emit("on_epoch_end", loss=epoch_loss)
        return epoch_loss

    def evaluate(self, dataloader):
        self.training_mode = False
        loss_sum, sample_count, correct, total = 0.0, 0, 0, 0
        for x, y in dataloader:
            x = x if isinstance(x, Tensor) else Tensor(x)
            y = y if isinstance(y, Tensor) else Tensor(y)
            predictions = self.model.forward(x)
            loss_sum += float(self.loss_fn(predictions, y).data) * len(y)
            sample_count += len(y)
            if isinstance(self.loss_fn, CrossEntropyLoss):
                correct += int((predictions.data.argmax(axis=1) == y.data).sum())
                total += len(y)
            elif isinstance(self.loss_fn, BinaryCrossEntropyLoss):
                correct += int(((predictions.data > 0.5) == (y.data > 0.5)).sum())
                total += y.data.size
        eval_loss = loss_sum / sample_count
        accuracy = correct / total if total else None
        self.history["eval_loss"].append(eval_loss)
        self.history["eval_accuracy"].append(accuracy)
        self._emit("on_evaluate_end", loss=eval_loss, accuracy=accuracy)
        return eval_loss, accuracy

    # ---------------- checkpointing ----------------
    def save_checkpoint(self, path):
        path = Path(path)
        opt = self.optimizer.state_dict()
        npz = {f"param_{i}": p.data for i, p in enumerate(self.model.parameters())}
        for i, slot in enumerate(opt["state"]):
            npz.update({f"state_{i}_{k}": v for k, v in slot.items() if k != "step"})
        sch = self.scheduler
        info = {"optimizer": {k: opt[k] for k in ("kind", "hyperparameters", "step_count")},
                "param_steps": [slot.get("step") for slot in opt["state"]],
                "scheduler": None if sch is None else {"max_lr": sch.max_lr, "min_lr": sch.min_lr,
                                                       "total_epochs": sch.total_epochs},
                "grad_clip_norm": self.grad_clip_norm, "epoch": self.epoch, "step": self.step,
                "training_mode": self.training_mode, "history": dict(self.history),
                "shuffle_seed": self._shuffle_seed,
                "rng_states": [m.rng.bit_generator.state for m in rng_owners(self.model)]}
        npz["info"] = np.array(json.dumps(info))
        digest = hashlib.sha512()
        for k in sorted(npz):
            digest.update(k.encode())
            digest.update(np.ascontiguousarray(npz[k]).tobytes())
        npz["digest"] = np.array(digest.hexdigest())
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        with os.fdopen(handle, "wb") as out:
            np.savez(out, **npz)
        os.replace(tmp, path)

    def load_checkpoint(self, path):
        try:
            with open(path, "rb") as fh, np.load(fh, allow_pickle=False) as z:
                npz = {k: z[k] for k in z.files}
            digest_saved = str(npz.pop("digest"))
            digest = hashlib.sha512()
            for k in sorted(npz):
                digest.update(k.encode())
                digest.update(np.ascontiguousarray(npz[k]).tobytes())
            if digest.hexdigest() != digest_saved:
                raise ValueError("digest mismatch")
            info = json.loads(str(npz["info"]))
            params = list(self.model.parameters())
            if sum(k.startswith("param_") for k in npz) != len(params):
                raise ValueError("parameter count mismatch")
            for i, p in enumerate(params):
                if npz[f"param_{i}"].shape != p.data.shape:
                    raise ValueError(f"param_{i} shape mismatch")
            slots = [{} if s is None else {"step": s} for s in info["param_steps"]]
            for k, v in npz.items():
                if k.startswith("state_"):
                    _, i, name = k.split("_", 2)
                    slots[int(i)][name] = v
            opt_sd = dict(info["optimizer"], state=slots)
            self.optimizer.check_state_dict(opt_sd)
            sched = None if info["scheduler"] is None else CosineSchedule(**info["scheduler"])
            owners = rng_owners(self.model)
            if len(owners) != len(info["rng_states"]):
                raise ValueError("Dropout layer count mismatch")
            for m, st in zip(owners, info["rng_states"]):
                type(m.rng.bit_generator)().state = st
        except Exception as exc:
            raise ValueError(f"cannot load {path}: {exc}") from exc
        for i, p in enumerate(params):
            p.data[...] = npz[f"param_{i}"]
        self.optimizer.load_state_dict(opt_sd)
        for m, st in zip(owners, info["rng_states"]):
            m.rng.bit_generator.state = st
        self.scheduler, self.grad_clip_norm = sched, info["grad_clip_norm"]
        self.epoch, self.step = info["epoch"], info["step"]
        self.history = defaultdict(list, {k: list(v) for k, v in info["history"].items()})
        self._shuffle_seed = self._shuffle_seed_restored = info["shuffle_seed"]
        set_training(self.model, info["training_mode"])
        self.training_mode = info["training_mode"]
        self._clear_grads()
