"""Module 07 Training - student solution.
(everything in tinytorch is float32 so I keep the learning rate float32 too)
"""
import hashlib
import json
import math
import os
from pathlib import Path

import numpy as np

from tinytorch.core.autograd import no_grad
from tinytorch.core.layers import rng_owners, set_training
from tinytorch.core.losses import BinaryCrossEntropyLoss, CrossEntropyLoss
from tinytorch.core.tensor import Tensor


def _real(v):
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)


class CosineSchedule:
    def __init__(self, max_lr=0.1, min_lr=0.01, total_epochs=100):
        if not (_real(max_lr) and math.isfinite(max_lr) and max_lr >= 0):
            raise ValueError(f"max_lr should be a finite non-negative number, got {max_lr}")
        if not (_real(min_lr) and math.isfinite(min_lr) and 0 <= min_lr <= max_lr):
            raise ValueError(f"min_lr should be finite, >= 0 and <= max_lr, got {min_lr}")
        if isinstance(total_epochs, bool) or not isinstance(total_epochs, int) or total_epochs < 1:
            raise ValueError(f"total_epochs should be a positive integer, got {total_epochs}")
        self.max_lr = max_lr
        self.min_lr = min_lr
        self.total_epochs = total_epochs

    def get_lr(self, epoch):
        if not (_real(epoch) and math.isfinite(epoch) and epoch >= 0):
            raise ValueError(f"epoch should be >= 0, got {epoch}")
        if epoch >= self.total_epochs:
            return np.float32(self.min_lr)
        cos_term = math.cos(math.pi * epoch / self.total_epochs)
        return np.float32(self.min_lr + (self.max_lr - self.min_lr) * (1 + cos_term) / 2)


def clip_grad_norm(parameters, max_norm=1.0):
    if not (_real(max_norm) and math.isfinite(max_norm) and max_norm >= 0):
        raise ValueError(f"max_norm should be finite and >= 0, got {max_norm}")
    gs = [(p.grad.data if isinstance(p.grad, Tensor) else p.grad) for p in parameters
          if p.grad is not None]
    norm = math.sqrt(sum(float(np.sum(g.astype(np.float64) ** 2)) for g in gs))
    if math.isfinite(norm) and norm > max_norm:
        for g in gs:
            g *= max_norm / (norm + 1e-6)
    return norm


class Trainer:
    def __init__(self, model, optimizer, loss_fn, scheduler=None, grad_clip_norm=None,
                 callbacks=()):
        if grad_clip_norm is not None and not (_real(grad_clip_norm)
                                               and math.isfinite(grad_clip_norm)
                                               and grad_clip_norm > 0):
            raise ValueError(f"grad_clip_norm should be None or > 0, got {grad_clip_norm}")
        self.model, self.optimizer, self.loss_fn = model, optimizer, loss_fn
        self.scheduler, self.grad_clip_norm = scheduler, grad_clip_norm
        self.epoch = self.step = 0
        self.training_mode = True
        self.history = {"train_loss": [], "eval_loss": [], "eval_accuracy": [],
                        "learning_rates": [], "grad_norm": []}
        self.seed = None
        self.seed_from_checkpoint = None
        self.callbacks = list(callbacks)

    def _emit(self, event, **info):
        for cb in self.callbacks:
            handler = getattr(cb, event, None)
            if handler is not None:
                handler(self, **info)

    def _no_grads(self):
        self.optimizer.zero_grad()
        for p in self.model.parameters():
            p.grad = None

    def train_epoch(self, dataloader, accumulation_steps=1):
        if isinstance(accumulation_steps, bool) or not isinstance(accumulation_steps, int) \
                or accumulation_steps < 1:
            raise ValueError(f"accumulation_steps should be a positive int, got {accumulation_steps}")
        set_training(self.model, True)
        self.training_mode = True
        if self.scheduler:
            self.optimizer.lr = self.scheduler.get_lr(self.epoch)
        if self.seed_from_checkpoint is not None and hasattr(dataloader, "load_state_dict"):
            dataloader.load_state_dict({"seed": self.seed_from_checkpoint, "epoch": self.epoch})
            self.seed_from_checkpoint = None
        elif hasattr(dataloader, "set_epoch"):
            dataloader.set_epoch(self.epoch)
        if hasattr(dataloader, "state_dict"):
            self.seed = dataloader.state_dict()["seed"]
        self._no_grads()
        self._emit("on_epoch_begin", epoch=self.epoch, lr=float(self.optimizer.lr))
        losses, sizes = [], []
        pending, pending_n = 0, 0
        for i, (x, y) in enumerate(dataloader):
            x, y = [t if isinstance(t, Tensor) else Tensor(t) for t in (x, y)]
            loss = self.loss_fn(self.model.forward(x), y)
            if not math.isfinite(loss.data):
                self._no_grads()
                raise FloatingPointError(f"loss={float(loss.data)} at epoch {self.epoch} batch {i}")
            loss.backward(np.float32(len(y)))
            losses.append(float(loss.data))
            sizes.append(len(y))
            self._emit("on_batch_end", batch=i, loss=losses[-1], samples=len(y))
            pending += 1
            pending_n += len(y)
            if pending == accumulation_steps:
                self._step(pending_n)
                pending = pending_n = 0
        if pending:
            self._step(pending_n)
        mean_loss = float(np.dot(losses, sizes) / np.sum(sizes))
        self.history["train_loss"].append(mean_loss)
        self.history["learning_rates"].append(float(self.optimizer.lr))
        self.epoch += 1
        self._emit("on_epoch_end", loss=mean_loss)
        return mean_loss

    def _step(self, n):
        ps = list(self.model.parameters())
        for p in ps:
            if p.grad is not None:
                (p.grad.data if isinstance(p.grad, Tensor) else p.grad)[...] /= n
        total = None
        if self.grad_clip_norm is not None:
            total = clip_grad_norm(ps, self.grad_clip_norm)
            if not math.isfinite(total):
                self._no_grads()
                raise FloatingPointError(f"gradient norm {total} at epoch {self.epoch}")
            self.history["grad_norm"].append(total)
        self.optimizer.step()
        self._no_grads()
        self.step += 1
        self._emit("on_step", grad_norm=total)

    def evaluate(self, dataloader):
        set_training(self.model, False)
        self.training_mode = False
        losses, sizes, hits = [], [], 0
        classify = isinstance(self.loss_fn, (CrossEntropyLoss, BinaryCrossEntropyLoss))
        with no_grad():
            for x, y in dataloader:
                x, y = [t if isinstance(t, Tensor) else Tensor(t) for t in (x, y)]
                out = self.model.forward(x)
                losses.append(float(self.loss_fn(out, y).data))
                sizes.append(len(y))
                if classify:
                    predicted = np.argmax(out.data, axis=1)
                    hits += int(np.sum(predicted == y.data.reshape(-1)))
        loss = float(np.dot(losses, sizes) / np.sum(sizes))
        accuracy = hits / sum(sizes) if classify else None
        self.history["eval_loss"].append(loss)
        self.history["eval_accuracy"].append(accuracy)
        self._emit("on_evaluate_end", loss=loss, accuracy=accuracy)
        return loss, accuracy

    def save_checkpoint(self, path):
        path = Path(path)
        opt = self.optimizer.state_dict()
        arrays = {f"model.{i}": p.data for i, p in enumerate(self.model.parameters())}
        for i, st in enumerate(opt["state"]):
            for k, v in st.items():
                if isinstance(v, np.ndarray):
                    arrays[f"optim.{i}.{k}"] = v
        s = self.scheduler
        meta = json.dumps({
            "optimizer": {"kind": opt["kind"], "hyperparameters": opt["hyperparameters"],
                          "step_count": opt["step_count"],
                          "steps": [st.get("step") for st in opt["state"]]},
            "scheduler": s and {"max_lr": s.max_lr, "min_lr": s.min_lr,
                                "total_epochs": s.total_epochs},
            "grad_clip_norm": self.grad_clip_norm, "epoch": self.epoch, "step": self.step,
            "training_mode": self.training_mode, "history": self.history, "seed": self.seed,
            "rngs": [o.rng.bit_generator.state for o in rng_owners(self.model)]})
        h = hashlib.sha256(meta.encode())
        for k in sorted(arrays):
            h.update(k.encode() + arrays[k].tobytes())
        arrays["meta"] = np.array(meta)
        arrays["hash"] = np.array(h.hexdigest())
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".writing")
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, path)

    def load_checkpoint(self, path):
        try:
            with open(path, "rb") as f, np.load(f, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
            meta_text, hash_saved = str(arrays.pop("meta")), str(arrays.pop("hash"))
            h = hashlib.sha256(meta_text.encode())
            for k in sorted(arrays):
                h.update(k.encode() + arrays[k].tobytes())
            if h.hexdigest() != hash_saved:
                raise ValueError("hash mismatch")
            meta = json.loads(meta_text)
            params = list(self.model.parameters())
            weights = [arrays.get(f"model.{i}") for i in range(len(params))]
            if any(w is None or w.shape != p.data.shape for w, p in zip(weights, params)) or \
                    f"model.{len(params)}" in arrays:
                raise ValueError("checkpoint is for a model with other parameter shapes")
            slots = [{} if s is None else {"step": s} for s in meta["optimizer"]["steps"]]
            for k, v in arrays.items():
                if k.startswith("optim."):
                    _, i, name = k.split(".")
                    slots[int(i)][name] = v
            opt_sd = {**{k: meta["optimizer"][k] for k in ("kind", "hyperparameters",
                                                            "step_count")}, "state": slots}
            self.optimizer.check_state_dict(opt_sd)
            sched = CosineSchedule(**meta["scheduler"]) if meta["scheduler"] else None
            owners = rng_owners(self.model)
            if len(owners) != len(meta["rngs"]):
                raise ValueError("Dropout layers differ")
            for o, st in zip(owners, meta["rngs"]):
                type(o.rng.bit_generator)().state = st
        except Exception as e:
            raise ValueError(f"could not load {path}: {e}") from e
        for w, p in zip(weights, params):
            p.data[...] = w
        self.optimizer.load_state_dict(opt_sd)
        for o, st in zip(owners, meta["rngs"]):
            o.rng.bit_generator.state = st
        self.scheduler, self.grad_clip_norm = sched, meta["grad_clip_norm"]
        self.epoch, self.step = meta["epoch"], meta["step"]
        self.history = {k: list(v) for k, v in meta["history"].items()}
        self.seed = self.seed_from_checkpoint = meta["seed"]
        set_training(self.model, bool(meta["training_mode"]))
        self.training_mode = bool(meta["training_mode"])
        self._no_grads()
