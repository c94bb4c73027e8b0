"""Module 07: Training.

Checkpoint format (my own): an .npz with the model weights under "weights/<i>" and one JSON
string "trainer" (epoch, step, history, schedule, clip, data seed), plus a sha1 over both.
"""
import hashlib
import json
import math
import os
from pathlib import Path

import numpy as np

from tinytorch.core.autograd import no_grad
from tinytorch.core.layers import set_training
from tinytorch.core.losses import BinaryCrossEntropyLoss, CrossEntropyLoss
from tinytorch.core.tensor import Tensor


def _check_number(name, value, positive=False):
    ok = (not isinstance(value, bool) and isinstance(value, (int, float, np.integer, np.floating))
          and math.isfinite(value) and (value > 0 if positive else value >= 0))
    if not ok:
        raise ValueError(f"invalid {name}: {value!r}")
    return float(value)


class CosineSchedule:
    def __init__(self, max_lr=0.1, min_lr=0.01, total_epochs=100):
        self.max_lr = _check_number("max_lr", max_lr)
        self.min_lr = _check_number("min_lr", min_lr)
        if self.min_lr > self.max_lr:
            raise ValueError(f"invalid min_lr: {min_lr!r} > max_lr {max_lr!r}")
        if isinstance(total_epochs, bool) or not isinstance(total_epochs, int) or total_epochs < 1:
            raise ValueError(f"invalid total_epochs: {total_epochs!r}")
        self.total_epochs = total_epochs

    def get_lr(self, epoch):
        _check_number("epoch", epoch)
        if epoch >= self.total_epochs:
            return self.min_lr
        half_cos = 0.5 * (1.0 + math.cos(math.pi * epoch / self.total_epochs))
        return self.min_lr + (self.max_lr - self.min_lr) * half_cos


def clip_grad_norm(parameters, max_norm=1.0):
    max_norm = _check_number("max_norm", max_norm)
    with_grad = [p for p in parameters if p.grad is not None]
    views = [p.grad.data if isinstance(p.grad, Tensor) else p.grad for p in with_grad]
    norm_sq = 0.0
    for v in views:
        flat = v.reshape(-1).astype(np.float64)
        norm_sq += float(flat @ flat)
    norm = math.sqrt(norm_sq)
    if norm > max_norm and math.isfinite(norm):
        factor = max_norm / (norm + 1e-6)
        for v in views:
            v *= factor
    return norm


class Trainer:
    def __init__(self, model, optimizer, loss_fn, scheduler=None, grad_clip_norm=None,
                 callbacks=()):
        if grad_clip_norm is not None:
            grad_clip_norm = _check_number("grad_clip_norm", grad_clip_norm, positive=True)
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
        self.data_seed = None
        self._use_saved_seed = False
        self.callbacks = list(callbacks)

    def _emit(self, event, **info):
        for callback in self.callbacks:
            handler = getattr(callback, event, None)
            if handler is not None:
                handler(self, **info)

    def _zero(self):
        self.optimizer.zero_grad()
        for p in self.model.parameters():
            p.grad = None

    def train_epoch(self, dataloader, accumulation_steps=1):
        if isinstance(accumulation_steps, bool) or not isinstance(accumulation_steps, int) \
                or accumulation_steps < 1:
            raise ValueError(f"invalid accumulation_steps: {accumulation_steps!r}")
        set_training(self.model, True)
        self.training_mode = True
        if self.scheduler is not None:
            self.optimizer.lr = self.scheduler.get_lr(self.epoch)
        lr_used = float(self.optimizer.lr)
        if hasattr(dataloader, "set_epoch"):
            if self._use_saved_seed:
                dataloader.load_state_dict({"seed": self.data_seed, "epoch": self.epoch})
                self._use_saved_seed = False
            else:
                dataloader.set_epoch(self.epoch)
            self.data_seed = dataloader.state_dict()["seed"]
        self._zero()
        self._emit("on_epoch_begin", epoch=self.epoch, lr=lr_used)

        i = 0
        batches_waiting = 0
        samples_waiting = 0
        sum_loss, n_seen = 0.0, 0
        for batch in dataloader:
            x, y = batch
            if not isinstance(x, Tensor):
                x = Tensor(x)
            if not isinstance(y, Tensor):
                y = Tensor(y)
            loss = self.loss_fn(self.model.forward(x), y)
            loss_value = float(loss.data)
            if math.isnan(loss_value) or math.isinf(loss_value):
                self._zero()
                raise ValueError(f"got loss {loss_value} in epoch {self.epoch}, batch {i}")
            batch_size = len(y)
            (loss * batch_size).backward()
            sum_loss += loss_value * batch_size
            n_seen += batch_size
            batches_waiting += 1
            samples_waiting += batch_size
            self._emit("on_batch_end", batch=i, loss=loss_value, samples=batch_size)
            i += 1
            if batches_waiting == accumulation_steps:
                self._optimizer_step(samples_waiting)
                batches_waiting = samples_waiting = 0
        if batches_waiting:
            self._optimizer_step(samples_waiting)

        mean_loss = sum_loss / n_seen
        self.history["train_loss"].append(mean_loss)
        self.history["learning_rates"].append(lr_used)
        self.epoch += 1
        self._emit("on_epoch_end", loss=mean_loss)
        return mean_loss

    def _optimizer_step(self, samples):
        params = list(self.model.parameters())
        for p in params:
            if p.grad is not None:
                p.grad = p.grad / samples
        norm = None
        if self.grad_clip_norm is not None:
            norm = clip_grad_norm(params, self.grad_clip_norm)
            if not math.isfinite(norm):
                self._zero()
                raise ValueError(f"gradient norm {norm} in epoch {self.epoch}")
            self.history["grad_norm"].append(norm)
        self.optimizer.step()
        self._zero()
        self.step += 1
        self._emit("on_step", grad_norm=norm)

    def evaluate(self, dataloader):
        set_training(self.model, False)
        self.training_mode = False
        sum_loss, n_seen, n_correct, n_judged = 0.0, 0, 0, 0
        with no_grad():
            for batch in dataloader:
                x, y = batch
                x = x if isinstance(x, Tensor) else Tensor(x)
                y = y if isinstance(y, Tensor) else Tensor(y)
                out = self.model.forward(x)
                sum_loss += float(self.loss_fn(out, y).data) * len(y)
                n_seen += len(y)
                if isinstance(self.loss_fn, CrossEntropyLoss):
                    n_correct += int(np.sum(out.data.argmax(axis=1) == y.data))
                    n_judged += len(y)
                elif isinstance(self.loss_fn, BinaryCrossEntropyLoss):
                    n_correct += int(np.sum((out.data >= 0.5) == (y.data == 1)))
                    n_judged += y.data.size
        loss = sum_loss / n_seen
        accuracy = n_correct / n_judged if n_judged else None
        self.history["eval_loss"].append(loss)
        self.history["eval_accuracy"].append(accuracy)
        self._emit("on_evaluate_end", loss=loss, accuracy=accuracy)
        return loss, accuracy

    def _trainer_json(self):
        s = self.scheduler
        return json.dumps({
            "epoch": self.epoch, "step": self.step, "history": self.history,
            "schedule": None if s is None else [s.max_lr, s.min_lr, s.total_epochs],
            "grad_clip_norm": self.grad_clip_norm, "data_seed": self.data_seed,
            "lr": float(self.optimizer.lr),
        })

    @staticmethod
    def _sha1(weights, text):
        h = hashlib.sha1(text.encode())
        for w in weights:
            h.update(str(w.shape).encode() + np.ascontiguousarray(w).tobytes())
        return h.hexdigest()

    def save_checkpoint(self, path):
        path = Path(path)
        weights = [p.data for p in self.model.parameters()]
        text = self._trainer_json()
        contents = {f"weights/{i}": w for i, w in enumerate(weights)}
        contents["trainer"] = np.array(text)
        contents["sha1"] = np.array(self._sha1(weights, text))
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.parent / ("~" + path.name)
        with open(tmp, "wb") as fh:
            np.savez(fh, **contents)
        os.replace(tmp, path)

    def load_checkpoint(self, path):
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"checkpoint {path} not found")
        try:
            with open(path, "rb") as fh, np.load(fh, allow_pickle=False) as z:
                contents = {k: z[k] for k in z.files}
            params = list(self.model.parameters())
            weights = [contents[f"weights/{i}"] for i in range(len(params))]
            text = str(contents["trainer"])
            if self._sha1(weights, text) != str(contents["sha1"]):
                raise ValueError("sha1 mismatch")
            if f"weights/{len(params)}" in contents:
                raise ValueError("checkpoint has more parameters than the model")
            for w, p in zip(weights, params):
                if w.shape != p.data.shape:
                    raise ValueError(f"weight shape {w.shape} does not fit {p.data.shape}")
            state = json.loads(text)
            schedule = None if state["schedule"] is None else CosineSchedule(*state["schedule"])
        except (OSError, KeyError, ValueError) as e:
            raise ValueError(f"can't load checkpoint {path}: {e}") from e
        for w, p in zip(weights, params):
            p.data[...] = w
        self.epoch, self.step = state["epoch"], state["step"]
        self.history = {k: list(v) for k, v in state["history"].items()}
        self.scheduler = schedule
        self.grad_clip_norm = state["grad_clip_norm"]
        self.optimizer.lr = state["lr"]
        self.data_seed = state["data_seed"]
        self._use_saved_seed = self.data_seed is not None
        self._zero()
