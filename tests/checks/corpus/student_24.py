"""Module 07 (Training).

The constructor and _emit are the notebook's given code; I only wrote the bodies.
I emit the epoch events and the step event (that's what the live plot draws: the loss per
epoch), the per-batch one I left out because the plot doesn't need it.

Checkpoint: a zip file with `state.json` and `arrays.npz` (np.load with allow_pickle=False),
plus the sha256 of arrays.npz inside state.json. Written to a temp file, then os.replace.
"""
import hashlib
import io
import json
import math
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from tinytorch.core.autograd import no_grad
from tinytorch.core.layers import rng_owners, set_training
from tinytorch.core.losses import BinaryCrossEntropyLoss, CrossEntropyLoss
from tinytorch.core.tensor import Tensor


def _is_num(x):
    return isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, bool)


def _is_int(x, low):
    return isinstance(x, (int, np.integer)) and not isinstance(x, bool) and x >= low


class CosineSchedule:
    def __init__(self, max_lr=0.1, min_lr=0.01, total_epochs=100):
        if not (_is_num(max_lr) and math.isfinite(max_lr) and max_lr >= 0):
            raise ValueError(f"max_lr must be finite and >= 0, got {max_lr!r}")
        if not (_is_num(min_lr) and math.isfinite(min_lr) and 0 <= min_lr <= max_lr):
            raise ValueError(f"min_lr must be finite, >= 0 and <= max_lr, got {min_lr!r}")
        if not _is_int(total_epochs, 1):
            raise ValueError(f"total_epochs must be a positive int, got {total_epochs!r}")
        self.max_lr, self.min_lr, self.total_epochs = float(max_lr), float(min_lr), int(total_epochs)

    def get_lr(self, epoch):
        if not (_is_num(epoch) and math.isfinite(epoch) and epoch >= 0):
            raise ValueError(f"epoch must be >= 0, got {epoch!r}")
        if epoch >= self.total_epochs:
            return self.min_lr
        amplitude = self.max_lr - self.min_lr
        return self.max_lr - amplitude * (1.0 - math.cos(math.pi * epoch / self.total_epochs)) / 2.0


def clip_grad_norm(parameters, max_norm=1.0):
    if not (_is_num(max_norm) and math.isfinite(max_norm) and max_norm >= 0):
        raise ValueError(f"max_norm must be finite and >= 0, got {max_norm!r}")
    grads = []
    for p in parameters:
        if p.grad is not None:
            grads.append(p.grad.data if isinstance(p.grad, Tensor) else p.grad)
    norm = float(np.sqrt(sum(float(np.sum(g.astype(np.float64) ** 2)) for g in grads)))
    if math.isfinite(norm) and norm > max_norm:
        k = max_norm / (norm + 1e-6)
        for g in grads:
            g *= k
    return norm


class Trainer:
    def __init__(self, model, optimizer, loss_fn, scheduler=None, grad_clip_norm=None, *,
                 callbacks=()):
        if grad_clip_norm is not None and not (_is_num(grad_clip_norm)
                                               and math.isfinite(grad_clip_norm)
                                               and grad_clip_norm > 0):
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
        self._seed = None
        self._seed_from_file = None

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

    def train_epoch(self, dataloader, accumulation_steps=1):
        if not _is_int(accumulation_steps, 1):
            raise ValueError(f"accumulation_steps must be a positive int, got {accumulation_steps!r}")
        self._set_mode(True)
        if self.scheduler is not None:
            self.optimizer.lr = self.scheduler.get_lr(self.epoch)
        lr = float(self.optimizer.lr)
        if self._seed_from_file is not None and hasattr(dataloader, "load_state_dict"):
            dataloader.load_state_dict({"seed": self._seed_from_file, "epoch": self.epoch})
            self._seed_from_file = None
        elif hasattr(dataloader, "set_epoch"):
            dataloader.set_epoch(self.epoch)
        if hasattr(dataloader, "state_dict"):
            self._seed = int(dataloader.state_dict()["seed"])
        params = list(self.model.parameters())
        self._clear_grads(params)
        self._emit("on_epoch_begin", epoch=self.epoch, lr=lr)

        sum_loss, sum_n = 0.0, 0
        pending, pending_n = 0, 0
        for batch, (inputs, targets) in enumerate(dataloader):
            inputs = inputs if isinstance(inputs, Tensor) else Tensor(inputs)
            targets = targets if isinstance(targets, Tensor) else Tensor(targets)
            loss = self.loss_fn(self.model.forward(inputs), targets)
            value = float(np.asarray(loss.data).reshape(-1)[0])
            if not math.isfinite(value):
                self._clear_grads(params)
                raise FloatingPointError(f"loss {value} at epoch {self.epoch}, batch {batch}")
            n = targets.shape[0] if targets.ndim else 1
            loss.backward(np.asarray(float(n)))
            sum_loss += value * n
            sum_n += n
            pending += 1
            pending_n += n
            if pending == accumulation_steps:
                self._optimizer_step(params, pending_n)
                pending, pending_n = 0, 0
        if pending:
            self._optimizer_step(params, pending_n)
        if sum_n == 0:
            raise ValueError("the dataloader gave no batches")
        mean_loss = sum_loss / sum_n
        self.history["train_loss"].append(mean_loss)
        self.history["learning_rates"].append(lr)
        self.epoch += 1
        self._emit("on_epoch_end", loss=mean_loss)
        return mean_loss

    def _optimizer_step(self, params, window_samples):
        for p in params:
            if p.grad is not None:
                g = p.grad.data if isinstance(p.grad, Tensor) else p.grad
                g /= window_samples
        norm = None
        if self.grad_clip_norm is not None:
            norm = clip_grad_norm(params, self.grad_clip_norm)
            if not math.isfinite(norm):
                self._clear_grads(params)
                raise FloatingPointError(f"gradient norm {norm} at epoch {self.epoch}")
        self.optimizer.step()
        self._clear_grads(params)
        self.step += 1
        self._emit("on_step", grad_norm=norm)

    def evaluate(self, dataloader):
        self._set_mode(False)
        sum_loss, sum_n, right, judged = 0.0, 0, 0, 0
        with no_grad():
            for inputs, targets in dataloader:
                inputs = inputs if isinstance(inputs, Tensor) else Tensor(inputs)
                targets = targets if isinstance(targets, Tensor) else Tensor(targets)
                outputs = self.model.forward(inputs)
                n = targets.shape[0] if targets.ndim else 1
                sum_loss += float(np.asarray(self.loss_fn(outputs, targets).data).reshape(-1)[0]) * n
                sum_n += n
                if isinstance(self.loss_fn, CrossEntropyLoss):
                    labels = targets.data.reshape(-1)
                    right += int((outputs.data.argmax(axis=1) == labels).sum())
                    judged += labels.size
                elif isinstance(self.loss_fn, BinaryCrossEntropyLoss):
                    right += int(((outputs.data >= 0.5) == (targets.data >= 0.5)).sum())
                    judged += targets.data.size
        if sum_n == 0:
            raise ValueError("the dataloader gave no batches")
        loss = sum_loss / sum_n
        accuracy = right / judged if judged else None
        self.history["eval_loss"].append(loss)
        self.history["eval_accuracy"].append(accuracy)
        self._emit("on_evaluate_end", loss=loss, accuracy=accuracy)
        return loss, accuracy

    # ------------------------------------------------------------- checkpoints
    def save_checkpoint(self, path):
        path = Path(path)
        params = list(self.model.parameters())
        sd = self.optimizer.state_dict()
        arrays = {f"param_{i}": p.data for i, p in enumerate(params)}
        for i, st in enumerate(sd["state"]):
            for name, value in st.items():
                if isinstance(value, np.ndarray):
                    arrays[f"optim_{i}_{name}"] = value
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        blob = buf.getvalue()
        s = self.scheduler
        state = {
            "arrays_sha256": hashlib.sha256(blob).hexdigest(),
            "n_params": len(params),
            "optimizer": {"kind": sd["kind"], "hyperparameters": sd["hyperparameters"],
                          "step_count": sd["step_count"],
                          "steps": [st.get("step") for st in sd["state"]]},
            "scheduler": None if s is None else {"max_lr": s.max_lr, "min_lr": s.min_lr,
                                                 "total_epochs": s.total_epochs},
            "grad_clip_norm": self.grad_clip_norm, "epoch": self.epoch, "step": self.step,
            "training_mode": self.training_mode, "history": self.history,
            "seed": self._seed,
            "rng": [m.rng.bit_generator.state for m in rng_owners(self.model)],
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".ckpt-")
        os.close(fd)
        try:
            with zipfile.ZipFile(tmp, "w") as z:
                z.writestr("state.json", json.dumps(state))
                z.writestr("arrays.npz", blob)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)

    def load_checkpoint(self, path):
        try:
            with zipfile.ZipFile(path) as z:
                state = json.loads(z.read("state.json"))
                blob = z.read("arrays.npz")
            if hashlib.sha256(blob).hexdigest() != state["arrays_sha256"]:
                raise ValueError("arrays.npz does not match its sha256")
            with np.load(io.BytesIO(blob), allow_pickle=False) as npz:
                arrays = {k: npz[k] for k in npz.files}
            restore = self._check(state, arrays)
        except Exception as err:
            raise ValueError(f"bad checkpoint {path}: {err}") from err
        restore()

    def _check(self, state, arrays):
        params = list(self.model.parameters())
        if state["n_params"] != len(params):
            raise ValueError("the model has a different number of parameters")
        values = [arrays[f"param_{i}"] for i in range(len(params))]
        for i, (v, p) in enumerate(zip(values, params)):
            if v.shape != p.data.shape:
                raise ValueError(f"param_{i}: {v.shape} in the file, {p.data.shape} here")
        o = state["optimizer"]
        slots = [{} if st is None else {"step": st} for st in o["steps"]]
        for key, value in arrays.items():
            if key.startswith("optim_"):
                _, i, name = key.split("_", 2)
                slots[int(i)][name] = value
        opt_sd = {"kind": o["kind"], "hyperparameters": o["hyperparameters"],
                  "step_count": o["step_count"], "state": slots}
        self.optimizer.check_state_dict(opt_sd)
        sched = None if state["scheduler"] is None else CosineSchedule(**state["scheduler"])
        clip = state["grad_clip_norm"]
        if clip is not None and not (_is_num(clip) and math.isfinite(clip) and clip > 0):
            raise ValueError("bad grad_clip_norm")
        if not (_is_int(state["epoch"], 0) and _is_int(state["step"], 0)):
            raise ValueError("bad epoch / step")
        if not isinstance(state["training_mode"], bool):
            raise ValueError("bad training_mode")
        if state["seed"] is not None and not _is_int(state["seed"], 0):
            raise ValueError("bad seed")
        history = {k: list(v) for k, v in state["history"].items()}
        owners = rng_owners(self.model)
        if len(owners) != len(state["rng"]):
            raise ValueError("different number of Dropout layers")
        for m, st in zip(owners, state["rng"]):
            type(m.rng.bit_generator)().state = st

        def restore():
            for p, v in zip(params, values):
                p.data[...] = v
            self.optimizer.load_state_dict(opt_sd)
            for m, st in zip(owners, state["rng"]):
                m.rng.bit_generator.state = st
            self.scheduler, self.grad_clip_norm = sched, clip
            self.epoch, self.step, self.history = state["epoch"], state["step"], history
            self._seed = self._seed_from_file = state["seed"]
            self._set_mode(state["training_mode"])
            self._clear_grads(params)

        return restore
