"""Module 07 training -- my implementation.

Checkpoint: I flatten the whole trainer state into {"a.b.0.c": value}. ndarrays go in the npz as
they are, everything else into a JSON record (bytes). A crc32 of the lot catches damaged files.
"""
import json
import math
import os
import tempfile
import zlib
from pathlib import Path

import numpy as np

from tinytorch.core.autograd import no_grad
from tinytorch.core.layers import rng_owners, set_training
from tinytorch.core.losses import BinaryCrossEntropyLoss, CrossEntropyLoss
from tinytorch.core.tensor import Tensor


def _valid_rate(x):
    return not isinstance(x, bool) and isinstance(x, (int, float, np.number)) and math.isfinite(x) \
        and x >= 0


class CosineSchedule:
    def __init__(self, max_lr=0.1, min_lr=0.01, total_epochs=100):
        if not _valid_rate(max_lr):
            raise ValueError(f"max_lr: expected a finite rate >= 0, got {max_lr}")
        if not _valid_rate(min_lr):
            raise ValueError(f"min_lr: expected a finite rate >= 0, got {min_lr}")
        if min_lr > max_lr:
            raise ValueError(f"min_lr {min_lr} > max_lr {max_lr}")
        if isinstance(total_epochs, bool) or not isinstance(total_epochs, int) or total_epochs < 1:
            raise ValueError(f"total_epochs: expected a positive int, got {total_epochs}")
        self.max_lr, self.min_lr, self.total_epochs = float(max_lr), float(min_lr), total_epochs

    def get_lr(self, epoch):
        if not _valid_rate(epoch):
            raise ValueError(f"epoch: expected a number >= 0, got {epoch}")
        e = min(epoch, self.total_epochs)
        return self.min_lr + (self.max_lr - self.min_lr) * (1 + math.cos(math.pi * e / self.total_epochs)) / 2


def clip_grad_norm(parameters, max_norm=1.0):
    if not _valid_rate(max_norm):
        raise ValueError(f"max_norm: expected a finite number >= 0, got {max_norm}")
    params = [p for p in parameters if p.grad is not None]
    total = math.sqrt(sum(float(np.sum(p.grad.data.astype(np.float64) ** 2)) for p in params))
    if total > max_norm and math.isfinite(total):
        for p in params:
            p.grad.data *= max_norm / (total + 1e-6)
    return total


def _flatten(obj, prefix, arrays, plain):
    if isinstance(obj, dict):
        for k, v in obj.items():
            _flatten(v, f"{prefix}{k}.", arrays, plain)
    elif isinstance(obj, np.ndarray):
        arrays[prefix[:-1]] = obj
    else:
        plain[prefix[:-1]] = obj


def _unflatten(flat):
    root = {}
    for key, value in flat.items():
        node = root
        *parents, last = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    return root


def _crc(arrays, text):
    c = zlib.crc32(text.encode())
    for k in sorted(arrays):
        c = zlib.crc32(k.encode() + np.ascontiguousarray(arrays[k]).tobytes(), c)
    return c


class Trainer:
    def __init__(self, model, optimizer, loss_fn, scheduler=None, grad_clip_norm=None, *,
                 callbacks=()):
        if grad_clip_norm is not None and (not _valid_rate(grad_clip_norm) or grad_clip_norm == 0):
            raise ValueError(f"grad_clip_norm must be > 0 or None, got {grad_clip_norm}")
        self.model, self.optimizer, self.loss_fn = model, optimizer, loss_fn
        self.scheduler, self.grad_clip_norm = scheduler, grad_clip_norm
        self.epoch, self.step, self.training_mode = 0, 0, True
        self.history = {name: [] for name in ("train_loss", "eval_loss", "eval_accuracy",
                                              "learning_rates", "grad_norm")}
        self.seed_of_data, self.replay_seed = None, None
        self.callbacks = list(callbacks)

    def _emit(self, event, **info):
        for callback in self.callbacks:
            handler = getattr(callback, event, None)
            if handler is not None:
                handler(self, **info)

    def _all_grads_off(self):
        self.optimizer.zero_grad()
        for p in self.model.parameters():
            p.grad = None

    def train_epoch(self, dataloader, accumulation_steps=1):
        if isinstance(accumulation_steps, bool) or not isinstance(accumulation_steps, int) \
                or accumulation_steps <= 0:
            raise ValueError(f"accumulation_steps must be an int >= 1, got {accumulation_steps}")
        set_training(self.model, True)
        self.training_mode = True
        if self.scheduler is not None:
            self.optimizer.lr = self.scheduler.get_lr(self.epoch)
        self.history["learning_rates"].append(float(self.optimizer.lr))
        if hasattr(dataloader, "set_epoch"):
            if self.replay_seed is not None:
                dataloader.load_state_dict({"seed": self.replay_seed, "epoch": self.epoch})
                self.replay_seed = None
            else:
                dataloader.set_epoch(self.epoch)
            self.seed_of_data = dataloader.state_dict()["seed"]
        self._all_grads_off()
        self._emit("on_epoch_begin", epoch=self.epoch, lr=self.history["learning_rates"][-1])
        total, count, waiting, waiting_n = 0.0, 0, 0, 0
        try:
            for idx, (x, y) in enumerate(dataloader):
                x, y = (v if isinstance(v, Tensor) else Tensor(v) for v in (x, y))
                loss = self.loss_fn(self.model.forward(x), y)
                if not np.isfinite(loss.data):
                    self._all_grads_off()
                    raise FloatingPointError(f"loss {float(loss.data)} in epoch {self.epoch}, "
                                             f"batch {idx}")
                n = len(y)
                (loss * float(n)).backward()
                total, count = total + float(loss.data) * n, count + n
                self._emit("on_batch_end", batch=idx, loss=float(loss.data), samples=n)
                waiting, waiting_n = waiting + 1, waiting_n + n
                if waiting == accumulation_steps:
                    self._step_now(waiting_n)
                    waiting, waiting_n = 0, 0
            if waiting:
                self._step_now(waiting_n)
        except BaseException:
            self.history["learning_rates"].pop()  # unfinished epoch: not recorded
            raise
        self.history["train_loss"].append(total / count)
        self.epoch += 1
        self._emit("on_epoch_end", loss=total / count)
        return total / count

    def _step_now(self, n_samples):
        params = list(self.model.parameters())
        for p in params:
            if p.grad is not None:
                p.grad = Tensor(p.grad.data / n_samples)
        norm = None
        if self.grad_clip_norm is not None:
            norm = clip_grad_norm(params, self.grad_clip_norm)
            if not math.isfinite(norm):
                self._all_grads_off()
                raise FloatingPointError(f"grad norm {norm} in epoch {self.epoch}")
            self.history["grad_norm"].append(norm)
        self.optimizer.step()
        self._all_grads_off()
        self.step += 1
        self._emit("on_step", grad_norm=norm)

    def evaluate(self, dataloader):
        set_training(self.model, False)
        self.training_mode = False
        losses, hits, seen = [], 0, 0
        with no_grad():
            for x, y in dataloader:
                x, y = (v if isinstance(v, Tensor) else Tensor(v) for v in (x, y))
                out = self.model.forward(x)
                losses.append(float(self.loss_fn(out, y).data))
                if isinstance(self.loss_fn, CrossEntropyLoss):
                    hits += int((out.data.argmax(axis=1) == y.data).sum())
                    seen += len(y)
                elif isinstance(self.loss_fn, BinaryCrossEntropyLoss):
                    hits += int(((out.data > 0.5) == (y.data > 0.5)).sum())
                    seen += y.data.size
        avg_loss = sum(losses) / len(dataloader)
        accuracy = hits / seen if seen else None
        self.history["eval_loss"].append(avg_loss)
        self.history["eval_accuracy"].append(accuracy)
        self._emit("on_evaluate_end", loss=avg_loss, accuracy=accuracy)
        return avg_loss, accuracy

    def _everything(self):
        s = self.scheduler
        sd = self.optimizer.state_dict()
        return {
            "params": {str(i): p.data for i, p in enumerate(self.model.parameters())},
            "optim": {"kind": sd["kind"], "hyperparameters": sd["hyperparameters"],
                      "step_count": sd["step_count"],
                      "state": {str(i): st for i, st in enumerate(sd["state"])}},
            "sched": None if s is None else {"max_lr": s.max_lr, "min_lr": s.min_lr,
                                             "total_epochs": s.total_epochs},
            "trainer": {"clip": self.grad_clip_norm, "epoch": self.epoch, "step": self.step,
                        "training_mode": self.training_mode, "history": self.history,
                        "data_seed": self.seed_of_data,
                        "rngs": [m.rng.bit_generator.state for m in rng_owners(self.model)]},
        }

    def save_checkpoint(self, path):
        path = Path(path)
        arrays, plain = {}, {}
        _flatten(self._everything(), "", arrays, plain)
        text = json.dumps(plain)
        arrays["__plain__"] = np.frombuffer(text.encode(), np.uint8)
        arrays["__crc__"] = np.array([_crc({k: v for k, v in arrays.items()
                                            if k != "__plain__"}, text)], np.int64)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent)
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, path)

    def load_checkpoint(self, path):
        try:
            with open(path, "rb") as f, np.load(f, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
            text = arrays.pop("__plain__").tobytes().decode()
            crc = int(arrays.pop("__crc__")[0])
            if crc != _crc(arrays, text):
                raise ValueError("crc mismatch")
            st = _unflatten({**json.loads(text), **arrays})
            params = list(self.model.parameters())
            saved = st["params"]
            if len(saved) != len(params) or any(saved[str(i)].shape != p.data.shape
                                                 for i, p in enumerate(params)):
                raise ValueError("the model's parameters have other shapes")
            o = st["optim"]
            opt_sd = {"kind": o["kind"], "hyperparameters": o["hyperparameters"],
                      "step_count": o["step_count"],
                      "state": [o.get("state", {}).get(str(i), {}) for i in range(len(params))]}
            self.optimizer.check_state_dict(opt_sd)
            sched = None if st["sched"] is None else CosineSchedule(**st["sched"])
            t = st["trainer"]
            owners = rng_owners(self.model)
            if len(owners) != len(t["rngs"]):
                raise ValueError("other Dropout layers")
            for m, rs in zip(owners, t["rngs"]):
                type(m.rng.bit_generator)().state = rs
            if not isinstance(t["training_mode"], bool):
                raise ValueError("training_mode")
        except Exception as e:
            raise ValueError(f"{path}: not a usable checkpoint ({e})") from e
        for i, p in enumerate(params):
            p.data[...] = saved[str(i)]
        self.optimizer.load_state_dict(opt_sd)
        for m, rs in zip(owners, t["rngs"]):
            m.rng.bit_generator.state = rs
        self.scheduler, self.grad_clip_norm = sched, t["clip"]
        self.epoch, self.step = t["epoch"], t["step"]
        self.history = {k: list(v) for k, v in t["history"].items()}
        self.seed_of_data = self.replay_seed = t["data_seed"]
        set_training(self.model, t["training_mode"])
        self.training_mode = t["training_mode"]
        self._all_grads_off()
