"""Module 07 - Training.

Gradient accumulation the way the PyTorch tutorials do it: divide each loss by
accumulation_steps and step every accumulation_steps batches.

Checkpoint: a JSON document; arrays are stored as base64 of their raw bytes + dtype + shape.
"""
import base64
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

ALLOWED_DTYPES = {"<f4", "<f8"}


def _finite_nonneg(value):
    return (not isinstance(value, bool) and isinstance(value, (int, float, np.floating, np.integer))
            and math.isfinite(value) and value >= 0)


def _pos_int(value):
    return not isinstance(value, bool) and isinstance(value, (int, np.integer)) and value > 0


def encode(arr):
    arr = np.ascontiguousarray(arr)
    return {"b64": base64.b64encode(arr.tobytes()).decode("ascii"), "dtype": arr.dtype.str,
            "shape": list(arr.shape)}


def decode(blob):
    if blob["dtype"] not in ALLOWED_DTYPES:
        raise ValueError(f"dtype {blob['dtype']} not allowed")
    raw = base64.b64decode(blob["b64"], validate=True)
    return np.frombuffer(raw, dtype=blob["dtype"]).reshape(blob["shape"]).copy()


class CosineSchedule:
    def __init__(self, max_lr=0.1, min_lr=0.01, total_epochs=100):
        if not _finite_nonneg(max_lr):
            raise ValueError("max_lr must be finite and >= 0")
        if not _finite_nonneg(min_lr):
            raise ValueError("min_lr must be finite and >= 0")
        if min_lr > max_lr:
            raise ValueError("min_lr must not exceed max_lr")
        if not _pos_int(total_epochs):
            raise ValueError("total_epochs must be a positive integer")
        self.max_lr, self.min_lr, self.total_epochs = float(max_lr), float(min_lr), int(total_epochs)

    def get_lr(self, epoch):
        if not _finite_nonneg(epoch):
            raise ValueError("epoch must be a number >= 0")
        if epoch >= self.total_epochs:
            return self.min_lr
        return self.min_lr + (self.max_lr - self.min_lr) * (1 + math.cos(math.pi * epoch / self.total_epochs)) / 2


def clip_grad_norm(parameters, max_norm=1.0):
    if not _finite_nonneg(max_norm):
        raise ValueError("max_norm must be finite and >= 0")
    grads = [p.grad if isinstance(p.grad, np.ndarray) else p.grad.data
             for p in parameters if p.grad is not None]
    norm = float(np.sqrt(sum(np.sum(g.astype(np.float64) ** 2) for g in grads)))
    if norm > max_norm and not math.isinf(norm):
        for g in grads:
            g *= max_norm / (norm + 1e-6)
    return norm


class Trainer:
    def __init__(self, model, optimizer, loss_fn, scheduler=None, grad_clip_norm=None,
                 callbacks=()):
        if grad_clip_norm is not None and (not _finite_nonneg(grad_clip_norm) or grad_clip_norm == 0):
            raise ValueError("grad_clip_norm must be > 0 or None")
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
        self.data_state = None      # {"seed": ...} of the last shuffling loader
        self._load_data_state = False
        self.callbacks = list(callbacks)

    def _emit(self, event, **info):
        for callback in self.callbacks:
            handler = getattr(callback, event, None)
            if handler is not None:
                handler(self, **info)

    def zero_all(self):
        self.optimizer.zero_grad()
        for p in self.model.parameters():
            p.grad = None

    def train_epoch(self, dataloader, accumulation_steps=1):
        if not _pos_int(accumulation_steps):
            raise ValueError("accumulation_steps must be a positive integer")
        set_training(self.model, True)
        self.training_mode = True
        if self.scheduler is not None:
            self.optimizer.lr = self.scheduler.get_lr(self.epoch)
        lr = float(self.optimizer.lr)
        if hasattr(dataloader, "load_state_dict"):
            if self._load_data_state:
                dataloader.load_state_dict({"seed": self.data_state["seed"], "epoch": self.epoch})
                self._load_data_state = False
            else:
                dataloader.set_epoch(self.epoch)
            self.data_state = {"seed": dataloader.state_dict()["seed"]}
        self.zero_all()
        self._emit("on_epoch_begin", epoch=self.epoch, lr=lr)

        total_loss, total_samples = 0.0, 0
        for i, (inputs, targets) in enumerate(dataloader):
            inputs = inputs if isinstance(inputs, Tensor) else Tensor(inputs)
            targets = targets if isinstance(targets, Tensor) else Tensor(targets)
            loss = self.loss_fn(self.model.forward(inputs), targets)
            if not math.isfinite(float(loss.data)):
                self.zero_all()
                raise FloatingPointError(
                    f"Loss is {float(loss.data)} at epoch {self.epoch}, batch {i}. Try a smaller lr.")
            total_loss += float(loss.data) * len(targets)
            total_samples += len(targets)
            (loss / accumulation_steps).backward()
            self._emit("on_batch_end", batch=i, loss=float(loss.data), samples=len(targets))
            if (i + 1) % accumulation_steps == 0:
                norm = None
                if self.grad_clip_norm is not None:
                    norm = clip_grad_norm(self.model.parameters(), self.grad_clip_norm)
                    if not math.isfinite(norm):
                        self.zero_all()
                        raise FloatingPointError(f"grad norm {norm} at epoch {self.epoch}, batch {i}")
                    self.history["grad_norm"].append(norm)
                self.optimizer.step()
                self.zero_all()
                self.step += 1
                self._emit("on_step", grad_norm=norm)

        avg = total_loss / total_samples
        self.history["train_loss"].append(avg)
        self.history["learning_rates"].append(lr)
        self.epoch += 1
        self._emit("on_epoch_end", loss=avg)
        return avg

    def evaluate(self, dataloader):
        set_training(self.model, False)
        self.training_mode = False
        total_loss, total_samples, correct, judged = 0.0, 0, 0, 0
        with no_grad():
            for inputs, targets in dataloader:
                inputs = inputs if isinstance(inputs, Tensor) else Tensor(inputs)
                targets = targets if isinstance(targets, Tensor) else Tensor(targets)
                outputs = self.model.forward(inputs)
                total_loss += float(self.loss_fn(outputs, targets).data) * len(targets)
                total_samples += len(targets)
                if isinstance(self.loss_fn, CrossEntropyLoss):
                    correct += int(np.sum(np.argmax(outputs.data, axis=1) == targets.data))
                    judged += len(targets)
                elif isinstance(self.loss_fn, BinaryCrossEntropyLoss):
                    correct += int(np.sum((outputs.data > 0.5) == (targets.data > 0.5)))
                    judged += targets.data.size
        avg = total_loss / total_samples
        acc = correct / judged if judged else None
        self.history["eval_loss"].append(avg)
        self.history["eval_accuracy"].append(acc)
        self._emit("on_evaluate_end", loss=avg, accuracy=acc)
        return avg, acc

    def save_checkpoint(self, path):
        path = Path(path)
        sd = self.optimizer.state_dict()
        s = self.scheduler
        doc = {
            "params": [encode(p.data) for p in self.model.parameters()],
            "optimizer": {"kind": sd["kind"], "hyperparameters": sd["hyperparameters"],
                          "step_count": sd["step_count"],
                          "state": [{k: encode(v) if isinstance(v, np.ndarray) else v
                                     for k, v in st.items()} for st in sd["state"]]},
            "scheduler": None if s is None else [s.max_lr, s.min_lr, s.total_epochs],
            "clip": self.grad_clip_norm, "epoch": self.epoch, "step": self.step,
            "training_mode": self.training_mode, "history": self.history,
            "data_state": self.data_state,
            "rng": [m.rng.bit_generator.state for m in rng_owners(self.model)],
        }
        body = json.dumps(doc, sort_keys=True)
        text = json.dumps({"sha256": hashlib.sha256(body.encode()).hexdigest(), "doc": doc})
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.parent / f"{path.name}.partial"
        tmp.write_text(text)
        os.replace(tmp, path)

    def load_checkpoint(self, path):
        try:
            outer = json.loads(Path(path).read_bytes().decode("utf-8"))
            doc = outer["doc"]
            if hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest() != outer["sha256"]:
                raise ValueError("sha256 mismatch")
            params = list(self.model.parameters())
            new_params = [decode(b) for b in doc["params"]]
            if len(new_params) != len(params) or any(
                    a.shape != p.data.shape for a, p in zip(new_params, params)):
                raise ValueError("shapes do not match the model")
            o = doc["optimizer"]
            opt_sd = {"kind": o["kind"], "hyperparameters": o["hyperparameters"],
                      "step_count": o["step_count"],
                      "state": [{k: decode(v) if isinstance(v, dict) else v for k, v in st.items()}
                                for st in o["state"]]}
            self.optimizer.check_state_dict(opt_sd)
            sched = None if doc["scheduler"] is None else CosineSchedule(*doc["scheduler"])
            if not isinstance(doc["training_mode"], bool):
                raise ValueError("training_mode must be a bool")
            owners = rng_owners(self.model)
            if len(owners) != len(doc["rng"]):
                raise ValueError("different number of Dropout layers")
            for m, st in zip(owners, doc["rng"]):
                type(m.rng.bit_generator)().state = st
        except Exception as err:
            raise ValueError(f"bad checkpoint {path}: {err}") from err
        for a, p in zip(new_params, params):
            p.data[...] = a
        self.optimizer.load_state_dict(opt_sd)
        for m, st in zip(owners, doc["rng"]):
            m.rng.bit_generator.state = st
        self.scheduler = sched
        self.grad_clip_norm = doc["clip"]
        self.epoch, self.step = doc["epoch"], doc["step"]
        self.history = {k: list(v) for k, v in doc["history"].items()}
        self.data_state = doc["data_state"]
        self._load_data_state = self.data_state is not None
        set_training(self.model, doc["training_mode"])
        self.training_mode = doc["training_mode"]
        self.zero_all()
