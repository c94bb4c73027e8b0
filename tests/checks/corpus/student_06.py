# ===== Module 07: Training =====
# CosineSchedule, clip_grad_norm and the Trainer class.
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


def is_num(v):
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)


def is_int(v):
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


class CosineSchedule:
    """Cosine annealing. lr(e) = min + (max - min) * (1 + cos(pi * e / T)) / 2, min after T."""

    def __init__(self, max_lr=0.1, min_lr=0.01, total_epoch=100):
        if not is_num(max_lr) or not math.isfinite(max_lr) or max_lr < 0:
            raise ValueError("max_lr must be a finite, non-negative number")
        if not is_num(min_lr) or not math.isfinite(min_lr) or min_lr < 0:
            raise ValueError("min_lr must be a finite, non-negative number")
        if min_lr > max_lr:
            raise ValueError("min_lr must be <= max_lr")
        if not is_int(total_epoch) or total_epoch < 1:
            raise ValueError("total_epoch must be a positive integer")
        self.max_lr = float(max_lr)
        self.min_lr = float(min_lr)
        self.total_epoch = int(total_epoch)

    def get_lr(self, epoch):
        if not is_num(epoch) or not math.isfinite(epoch) or epoch < 0:
            raise ValueError("epoch must be a number >= 0")
        if epoch >= self.total_epoch:
            return self.min_lr
        cos_part = 1 + math.cos(math.pi * epoch / self.total_epoch)
        return self.min_lr + (self.max_lr - self.min_lr) * cos_part / 2


def clip_grad_norm(parameters, max_norm=1.0):
    if not is_num(max_norm) or not math.isfinite(max_norm) or max_norm < 0:
        raise ValueError("max_norm must be a finite number >= 0")
    gs = []
    for p in parameters:
        if p.grad is None:
            continue
        gs.append(p.grad.data if isinstance(p.grad, Tensor) else p.grad)
    total = 0.0
    for g in gs:
        total += float((g.astype(np.float64) ** 2).sum())
    total = math.sqrt(total)
    if math.isfinite(total) and total > max_norm:
        for g in gs:
            g *= max_norm / (total + 1e-6)
    return total


class Trainer:
    def __init__(self, model, optimizer, loss_fn, scheduler=None, grad_clip_norm=None,
                 callbacks=()):
        if grad_clip_norm is not None and not (is_num(grad_clip_norm)
                                               and math.isfinite(grad_clip_norm)
                                               and grad_clip_norm > 0):
            raise ValueError("grad_clip_norm must be > 0 or None")
        self.model = model
        self.optimizer = optimizer
        self.loss_fn = loss_fn
        self.scheduler = scheduler
        self.grad_clip_norm = grad_clip_norm
        self.epoch = 0
        self.step = 0
        self.training_mode = True
        self.history = {"train_losses": [], "eval_loss": [], "eval_accuracy": [],
                        "learning_rates": [], "grad_norm": []}
        self.data_seed = None
        self.restore_seed = None
        self.callbacks = list(callbacks)

    def _emit(self, event, **info):
        # given: tell every callback that has a method for this event
        for callback in self.callbacks:
            handler = getattr(callback, event, None)
            if handler is not None:
                handler(self, **info)

    def train_epoch(self, dataloader, accumulation_steps=1):
        # step 0: check the argument before touching anything
        if not is_int(accumulation_steps) or accumulation_steps < 1:
            raise ValueError("accumulation_steps must be a positive integer")
        # step 1: training mode + learning rate for this epoch
        set_training(self.model, True)
        self.training_mode = True
        if self.scheduler is not None:
            self.optimizer.lr = self.scheduler.get_lr(self.epoch)
        lr = float(self.optimizer.lr)
        # step 2: data order (so a resumed run sees the same shuffles)
        if self.restore_seed is not None and hasattr(dataloader, "load_state_dict"):
            dataloader.load_state_dict({"seed": self.restore_seed, "epoch": self.epoch})
            self.restore_seed = None
        elif hasattr(dataloader, "set_epoch"):
            dataloader.set_epoch(self.epoch)
        if hasattr(dataloader, "state_dict"):
            self.data_seed = dataloader.state_dict()["seed"]
        # step 3: the loop
        params = list(self.model.parameters())
        self.optimizer.zero_grad()
        for p in params:
            p.grad = None
        self._emit("on_epoch_begin", epoch=self.epoch, lr=lr)
        sum_loss = 0.0
        sum_n = 0
        acc_batches = 0
        acc_n = 0
        for i, (x, y) in enumerate(dataloader):
            x = x if isinstance(x, Tensor) else Tensor(x)
            y = y if isinstance(y, Tensor) else Tensor(y)
            loss = self.loss_fn(self.model.forward(x), y)
            val = float(loss.data)
            if not math.isfinite(val):
                self.optimizer.zero_grad()
                for p in params:
                    p.grad = None
                raise ValueError(f"NaN/inf loss ({val}) at epoch {self.epoch}, batch {i}")
            n = len(y)
            (loss * n).backward()
            sum_loss += val * n
            sum_n += n
            self._emit("on_batch_end", batch=i, loss=val, samples=n)
            acc_batches += 1
            acc_n += n
            if acc_batches == accumulation_steps:
                self._do_step(params, acc_n)
                acc_batches = 0
                acc_n = 0
        if acc_batches > 0:
            self._do_step(params, acc_n)
        # step 4: bookkeeping
        epoch_loss = sum_loss / sum_n
        self.history["train_losses"].append(epoch_loss)
        self.history["learning_rates"].append(lr)
        self.epoch += 1
        self._emit("on_epoch_end", loss=epoch_loss)
        return epoch_loss

    def _do_step(self, params, n):
        for p in params:
            if p.grad is not None:
                p.grad.data[...] = p.grad.data / n
        norm = None
        if self.grad_clip_norm is not None:
            norm = clip_grad_norm(params, self.grad_clip_norm)
            if not math.isfinite(norm):
                self.optimizer.zero_grad()
                raise ValueError(f"gradient norm {norm} at epoch {self.epoch}")
            self.history["grad_norm"].append(norm)
        self.optimizer.step()
        self.optimizer.zero_grad()
        for p in params:
            p.grad = None
        self.step += 1
        self._emit("on_step", grad_norm=norm)

    def evaluate(self, dataloader):
        set_training(self.model, False)
        self.training_mode = False
        sum_loss, sum_n, correct, counted = 0.0, 0, 0, 0
        with no_grad():
            for x, y in dataloader:
                x = x if isinstance(x, Tensor) else Tensor(x)
                y = y if isinstance(y, Tensor) else Tensor(y)
                out = self.model.forward(x)
                sum_loss += float(self.loss_fn(out, y).data) * len(y)
                sum_n += len(y)
                if isinstance(self.loss_fn, CrossEntropyLoss):
                    correct += int(np.sum(np.argmax(out.data, axis=1) == y.data))
                    counted += len(y)
                elif isinstance(self.loss_fn, BinaryCrossEntropyLoss):
                    correct += int(np.sum((out.data >= 0.5) == (y.data >= 0.5)))
                    counted += y.data.size
        loss = sum_loss / sum_n
        accuracy = correct / counted if counted else None  # None for regression
        self.history["eval_loss"].append(loss)
        self.history["eval_accuracy"].append(accuracy)
        self._emit("on_evaluate_end", loss=loss, accuracy=accuracy)
        return loss, accuracy

    def save_checkpoint(self, path):
        path = Path(path)
        state = self.optimizer.state_dict()
        arrays = {}
        for i, p in enumerate(self.model.parameters()):
            arrays[f"param{i}"] = p.data
        for i, s in enumerate(state["state"]):
            for key, val in s.items():
                if key != "step":
                    arrays[f"opt{i}-{key}"] = val
        info = {
            "optimizer": {"kind": state["kind"], "hyperparameters": state["hyperparameters"],
                          "step_count": state["step_count"],
                          "steps": [s.get("step") for s in state["state"]]},
            "scheduler": None if self.scheduler is None else vars(self.scheduler),
            "grad_clip_norm": self.grad_clip_norm, "epoch": self.epoch, "step": self.step,
            "training_mode": self.training_mode, "history": self.history,
            "data_seed": self.data_seed,
            "rngs": [m.rng.bit_generator.state for m in rng_owners(self.model)],
        }
        arrays["info"] = np.array(json.dumps(info))
        h = hashlib.sha256()
        for key in sorted(arrays):
            h.update(key.encode() + np.ascontiguousarray(arrays[key]).tobytes())
        arrays["sha"] = np.array(h.hexdigest())
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = str(path) + ".tmp"
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, path)

    def load_checkpoint(self, path):
        try:
            with open(path, "rb") as f, np.load(f, allow_pickle=False) as data:
                arrays = {k: data[k] for k in data.files}
            sha = str(arrays.pop("sha"))
            h = hashlib.sha256()
            for key in sorted(arrays):
                h.update(key.encode() + np.ascontiguousarray(arrays[key]).tobytes())
            if h.hexdigest() != sha:
                raise ValueError("checksum does not match")
            info = json.loads(str(arrays["info"]))
            params = list(self.model.parameters())
            n_saved = len([k for k in arrays if k.startswith("param")])
            if n_saved != len(params):
                raise ValueError("wrong number of parameters")
            for i, p in enumerate(params):
                if arrays[f"param{i}"].shape != p.data.shape:
                    raise ValueError(f"param{i} has the wrong shape")
            o = info["optimizer"]
            slots = [{} if s is None else {"step": s} for s in o["steps"]]
            for key, val in arrays.items():
                if key.startswith("opt"):
                    idx, name = key[3:].split("-", 1)
                    slots[int(idx)][name] = val
            opt_state = {"kind": o["kind"], "hyperparameters": o["hyperparameters"],
                         "step_count": o["step_count"], "state": slots}
            self.optimizer.check_state_dict(opt_state)
            sched = None if info["scheduler"] is None else CosineSchedule(**info["scheduler"])
            owners = rng_owners(self.model)
            if len(owners) != len(info["rngs"]):
                raise ValueError("different Dropout layers")
            for m, st in zip(owners, info["rngs"]):
                type(m.rng.bit_generator)().state = st
            if not isinstance(info["training_mode"], bool):
                raise ValueError("training_mode is not a bool")
        except Exception as e:
            raise ValueError(f"cannot load checkpoint {path}: {e}") from e
        for i, p in enumerate(params):
            p.data[...] = arrays[f"param{i}"]
        self.optimizer.load_state_dict(opt_state)
        for m, st in zip(owners, info["rngs"]):
            m.rng.bit_generator.state = st
        self.scheduler = sched
        self.grad_clip_norm = info["grad_clip_norm"]
        self.epoch, self.step = info["epoch"], info["step"]
        self.history = info["history"]
        self.data_seed = self.restore_seed = info["data_seed"]
        set_training(self.model, info["training_mode"])
        self.training_mode = info["training_mode"]
        self.optimizer.zero_grad()
