"""Module 07 - Training

Checkpoint layout (one .npz, no pickle):
    "w:<i>"            parameter i
    "opt:<i>:<name>"   optimizer buffer of parameter i
    "meta"             JSON (utf-8 bytes): counters, settings, history, random states
    "check"            sha256 over everything above
The Dropout layers' random generators go into meta["dropout"], one entry per layer (I read
them with getattr so a layer without a generator doesn't crash the save).
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


def _real(v):
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)


def _nonneg(v):
    return _real(v) and math.isfinite(v) and v >= 0


def _count(v, low):
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= low


class CosineSchedule:
    def __init__(self, max_lr=0.1, min_lr=0.01, total_epochs=100):
        if not (_nonneg(max_lr) and _nonneg(min_lr)):
            raise ValueError(f"rates must be finite and >= 0 (max_lr={max_lr!r}, min_lr={min_lr!r})")
        if min_lr > max_lr:
            raise ValueError("min_lr > max_lr")
        if not _count(total_epochs, 1):
            raise ValueError(f"total_epochs={total_epochs!r}")
        self.max_lr, self.min_lr, self.total_epochs = float(max_lr), float(min_lr), int(total_epochs)

    def get_lr(self, epoch):
        if not _nonneg(epoch):
            raise ValueError(f"epoch={epoch!r}")
        if epoch >= self.total_epochs:
            return self.min_lr
        c = math.cos(math.pi * epoch / self.total_epochs)
        return self.min_lr + (self.max_lr - self.min_lr) * (1.0 + c) / 2.0


def clip_grad_norm(parameters, max_norm=1.0):
    if not _nonneg(max_norm):
        raise ValueError(f"max_norm={max_norm!r}")
    grads = [p.grad.data if isinstance(p.grad, Tensor) else p.grad
             for p in list(parameters) if p.grad is not None]
    norm = math.sqrt(sum(float(np.sum(np.square(g, dtype=np.float64))) for g in grads))
    if norm > max_norm and math.isfinite(norm):
        ratio = max_norm / (norm + 1e-6)
        for g in grads:
            g *= ratio
    return norm


class Trainer:
    def __init__(self, model, optimizer, loss_fn, scheduler=None, grad_clip_norm=None, *,
                 callbacks=()):
        if grad_clip_norm is not None and not (_nonneg(grad_clip_norm) and grad_clip_norm > 0):
            raise ValueError(f"grad_clip_norm={grad_clip_norm!r}")
        self.model, self.optimizer, self.loss_fn = model, optimizer, loss_fn
        self.scheduler, self.grad_clip_norm = scheduler, grad_clip_norm
        self.callbacks = list(callbacks)
        self.epoch = 0
        self.step = 0
        self.training_mode = True
        self.history = {"train_loss": [], "eval_loss": [], "eval_accuracy": [],
                        "learning_rates": [], "grad_norm": []}
        self.data_seed = None
        self._load_seed = None

    def _emit(self, event, **info):
        for callback in self.callbacks:
            handler = getattr(callback, event, None)
            if handler is not None:
                handler(self, **info)

    def _set_mode(self, training):
        set_training(self.model, training)
        self.training_mode = training

    def _clear(self, params):
        self.optimizer.zero_grad()
        for p in params:
            p.grad = None

    def train_epoch(self, dataloader, accumulation_steps=1):
        if not _count(accumulation_steps, 1):
            raise ValueError(f"accumulation_steps={accumulation_steps!r}")
        self._set_mode(True)
        if self.scheduler is not None:
            self.optimizer.lr = self.scheduler.get_lr(self.epoch)
        lr = float(self.optimizer.lr)
        if self._load_seed is not None and hasattr(dataloader, "load_state_dict"):
            dataloader.load_state_dict({"seed": self._load_seed, "epoch": self.epoch})
            self._load_seed = None
        elif hasattr(dataloader, "set_epoch"):
            dataloader.set_epoch(self.epoch)
        if hasattr(dataloader, "state_dict"):
            self.data_seed = int(dataloader.state_dict()["seed"])
        params = list(self.model.parameters())
        self._clear(params)
        self._emit("on_epoch_begin", epoch=self.epoch, lr=lr)
        loss_sum, n_sum = 0.0, 0
        batches, samples = 0, 0
        for index, (x, y) in enumerate(dataloader):
            x = x if isinstance(x, Tensor) else Tensor(x)
            y = y if isinstance(y, Tensor) else Tensor(y)
            loss = self.loss_fn(self.model.forward(x), y)
            value = float(np.asarray(loss.data).reshape(-1)[0])
            if not math.isfinite(value):
                self._clear(params)
                raise FloatingPointError(f"epoch {self.epoch}, batch {index}: loss {value}")
            n = y.shape[0] if y.ndim else 1
            loss.backward(float(n))
            loss_sum += value * n
            n_sum += n
            batches += 1
            samples += n
            self._emit("on_batch_end", batch=index, loss=value, samples=n)
            if batches == accumulation_steps:
                self._take_step(params, samples)
                batches, samples = 0, 0
        if batches:
            self._take_step(params, samples)
        if n_sum == 0:
            raise ValueError("dataloader is empty")
        mean = loss_sum / n_sum
        self.history["train_loss"].append(mean)
        self.history["learning_rates"].append(lr)
        self.epoch += 1
        self._emit("on_epoch_end", loss=mean)
        return mean

    def _take_step(self, params, samples):
        for p in params:
            if p.grad is not None:
                g = p.grad.data if isinstance(p.grad, Tensor) else p.grad
                g /= samples
        norm = None
        if self.grad_clip_norm is not None:
            norm = clip_grad_norm(params, self.grad_clip_norm)
            if not math.isfinite(norm):
                self._clear(params)
                raise FloatingPointError(f"epoch {self.epoch}: gradient norm {norm}")
            self.history["grad_norm"].append(norm)
        self.optimizer.step()
        self._clear(params)
        self.step += 1
        self._emit("on_step", grad_norm=norm)

    def evaluate(self, dataloader):
        self._set_mode(False)
        loss_sum, n_sum, hits, judged = 0.0, 0, 0, 0
        with no_grad():
            for x, y in dataloader:
                x = x if isinstance(x, Tensor) else Tensor(x)
                y = y if isinstance(y, Tensor) else Tensor(y)
                out = self.model.forward(x)
                n = y.shape[0] if y.ndim else 1
                loss_sum += float(np.asarray(self.loss_fn(out, y).data).reshape(-1)[0]) * n
                n_sum += n
                if isinstance(self.loss_fn, CrossEntropyLoss):
                    labels = y.data.reshape(-1)
                    hits += int(np.count_nonzero(out.data.argmax(axis=1) == labels))
                    judged += labels.size
                elif isinstance(self.loss_fn, BinaryCrossEntropyLoss):
                    hits += int(np.count_nonzero((out.data >= 0.5) == (y.data >= 0.5)))
                    judged += y.data.size
        if n_sum == 0:
            raise ValueError("dataloader is empty")
        loss = loss_sum / n_sum
        acc = hits / judged if judged else None
        self.history["eval_loss"].append(loss)
        self.history["eval_accuracy"].append(acc)
        self._emit("on_evaluate_end", loss=loss, accuracy=acc)
        return loss, acc

    # ------------------------------------------------------------ checkpoint
    @staticmethod
    def _sha(arrays):
        h = hashlib.sha256()
        for key in sorted(arrays):
            a = np.ascontiguousarray(arrays[key])
            h.update(key.encode() + b"|" + a.dtype.str.encode() + b"|" + str(a.shape).encode())
            h.update(a.tobytes())
        return h.hexdigest()

    def save_checkpoint(self, path):
        path = Path(path)
        params = list(self.model.parameters())
        sd = self.optimizer.state_dict()
        arrays = {f"w:{i}": p.data for i, p in enumerate(params)}
        for i, st in enumerate(sd["state"]):
            for name, value in st.items():
                if isinstance(value, np.ndarray):
                    arrays[f"opt:{i}:{name}"] = value
        s = self.scheduler
        meta = {
            "shapes": [list(p.data.shape) for p in params],
            "optimizer": {"kind": sd["kind"], "hyperparameters": sd["hyperparameters"],
                          "step_count": sd["step_count"],
                          "param_steps": [st.get("step") for st in sd["state"]]},
            "scheduler": None if s is None else {"max_lr": s.max_lr, "min_lr": s.min_lr,
                                                 "total_epochs": s.total_epochs},
            "grad_clip_norm": self.grad_clip_norm,
            "epoch": self.epoch, "step": self.step, "training_mode": self.training_mode,
            "history": self.history, "data_seed": self.data_seed,
            "dropout": [dict(getattr(m.rng, "state", {})) for m in rng_owners(self.model)],
        }
        arrays["meta"] = np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8)
        arrays["check"] = np.array(self._sha(arrays))
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".ckpt-", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez(f, **arrays)
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

    def load_checkpoint(self, path):
        try:
            with open(path, "rb") as f, np.load(f, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
            check = str(arrays.pop("check"))
            if check != self._sha(arrays):
                raise ValueError("sha256 does not match (damaged or edited file)")
            meta = json.loads(arrays.pop("meta").tobytes().decode("utf-8"))
            apply = self._plan(arrays, meta)
        except Exception as err:
            raise ValueError(f"cannot load checkpoint {path}: {err}") from err
        apply()

    def _plan(self, arrays, meta):
        params = list(self.model.parameters())
        if len(meta["shapes"]) != len(params):
            raise ValueError("number of parameters differs")
        values = []
        for i, p in enumerate(params):
            v = arrays[f"w:{i}"]
            if v.shape != p.data.shape:
                raise ValueError(f"parameter {i}: {v.shape} in the file, {p.data.shape} here")
            values.append(v)
        o = meta["optimizer"]
        state = [{} if s is None else {"step": s} for s in o["param_steps"]]
        for key, v in arrays.items():
            if key.startswith("opt:"):
                _, i, name = key.split(":", 2)
                state[int(i)][name] = v
        opt_sd = {"kind": o["kind"], "hyperparameters": o["hyperparameters"],
                  "step_count": o["step_count"], "state": state}
        self.optimizer.check_state_dict(opt_sd)
        sched = None if meta["scheduler"] is None else CosineSchedule(**meta["scheduler"])
        clip = meta["grad_clip_norm"]
        if clip is not None and not (_nonneg(clip) and clip > 0):
            raise ValueError("bad grad_clip_norm")
        if not (_count(meta["epoch"], 0) and _count(meta["step"], 0)):
            raise ValueError("bad epoch/step")
        if not isinstance(meta["training_mode"], bool):
            raise ValueError("bad training_mode")
        if meta["data_seed"] is not None and not _count(meta["data_seed"], 0):
            raise ValueError("bad data seed")
        owners = rng_owners(self.model)
        if len(owners) != len(meta["dropout"]):
            raise ValueError("number of Dropout layers differs")
        for m, st in zip(owners, meta["dropout"]):
            type(m.rng.bit_generator)().state = st  # raises if it isn't a valid state
        history = {k: list(v) for k, v in meta["history"].items()}

        def apply():
            for p, v in zip(params, values):
                p.data[...] = v
            self.optimizer.load_state_dict(opt_sd)
            for m, st in zip(owners, meta["dropout"]):
                m.rng.bit_generator.state = st
            self.scheduler, self.grad_clip_norm = sched, clip
            self.epoch, self.step, self.history = meta["epoch"], meta["step"], history
            self.data_seed = self._load_seed = meta["data_seed"]
            self._set_mode(meta["training_mode"])
            self._clear(params)

        return apply
