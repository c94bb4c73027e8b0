"""Module 07 · Training

My checkpoint is a small zip archive with two members:
    meta.json     -- counters, history, settings, RNG states, and a sha256 of tensors.npz
    tensors.npz   -- weights and optimizer buffers (read back with allow_pickle=False)
zip already has a CRC per member, and the sha256 catches deliberate edits.
"""
import hashlib
import io
import json
import math
import os
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tinytorch.core.autograd import no_grad
from tinytorch.core.layers import modules
from tinytorch.core.losses import BinaryCrossEntropyLoss, CrossEntropyLoss
from tinytorch.core.tensor import Tensor


def _finite(x, lowest=0.0, strict=False):
    if isinstance(x, bool) or not isinstance(x, (int, float, np.integer, np.floating)):
        return False
    return math.isfinite(x) and (x > lowest if strict else x >= lowest)


def _whole(x, lowest):
    return isinstance(x, (int, np.integer)) and not isinstance(x, bool) and x >= lowest


class CosineSchedule:
    def __init__(self, max_lr=0.1, min_lr=0.01, total_epochs=100):
        if not _finite(max_lr):
            raise ValueError(f"max_lr={max_lr!r}: must be finite and >= 0")
        if not _finite(min_lr) or min_lr > max_lr:
            raise ValueError(f"min_lr={min_lr!r}: must be finite, >= 0 and <= max_lr")
        if not _whole(total_epochs, 1):
            raise ValueError(f"total_epochs={total_epochs!r}: must be a positive integer")
        self.max_lr, self.min_lr, self.total_epochs = float(max_lr), float(min_lr), int(total_epochs)

    def get_lr(self, epoch):
        if not _finite(epoch):
            raise ValueError(f"epoch={epoch!r}: must be a number >= 0")
        if epoch >= self.total_epochs:
            return self.min_lr
        return self.min_lr + (self.max_lr - self.min_lr) * (math.cos(math.pi * epoch / self.total_epochs) + 1) / 2


def clip_grad_norm(parameters, max_norm=1.0):
    if not _finite(max_norm):
        raise ValueError(f"max_norm={max_norm!r}: must be finite and >= 0")
    bufs = []
    for p in parameters:
        if p.grad is not None:
            bufs.append(p.grad.data if isinstance(p.grad, Tensor) else p.grad)
    norm = math.hypot(*(math.sqrt(float(np.sum(np.square(b, dtype=np.float64)))) for b in bufs)) \
        if bufs else 0.0
    if norm > max_norm and not math.isinf(norm):  # NaN > x is False, so NaN is left alone too
        for b in bufs:
            b *= max_norm / (norm + 1e-6)
    return norm


@dataclass
class _Plan:
    values: list
    opt_state: dict
    scheduler: object
    clip: object
    meta: dict
    owners: list


class Trainer:
    def __init__(self, model, optimizer, loss_fn, scheduler=None, grad_clip_norm=None, *,
                 callbacks=()):
        if grad_clip_norm is not None and not _finite(grad_clip_norm, strict=True):
            raise ValueError(f"grad_clip_norm={grad_clip_norm!r}: must be None or > 0")
        self.model, self.optimizer, self.loss_fn = model, optimizer, loss_fn
        self.scheduler, self.grad_clip_norm = scheduler, grad_clip_norm
        self.epoch, self.step, self.training_mode = 0, 0, True
        self.history = {"train_loss": [], "learning_rates": [], "eval_loss": [], "eval_accuracy": [],
                        "grad_norm": []}
        self.data_seed, self._replay = None, False
        self.callbacks = list(callbacks)

    def _emit(self, event, **info):
        for cb in self.callbacks:
            fn = getattr(cb, event, None)
            if callable(fn):
                fn(self, **info)

    def _mode(self, flag):
        for m in modules(self.model):
            m.training = flag
        self.training_mode = flag

    def _rng_layers(self):
        return [m for m in modules(self.model) if isinstance(getattr(m, "rng", None), np.random.Generator)]

    def _zero(self, params):
        self.optimizer.zero_grad()
        for p in params:
            p.grad = None

    def train_epoch(self, dataloader, accumulation_steps=1):
        if not _whole(accumulation_steps, 1):
            raise ValueError(f"accumulation_steps={accumulation_steps!r}: must be an int >= 1")
        self._mode(True)
        if self.scheduler is not None:
            self.optimizer.lr = self.scheduler.get_lr(self.epoch)
        lr = float(self.optimizer.lr)
        if self._replay and hasattr(dataloader, "load_state_dict"):
            dataloader.load_state_dict({"seed": self.data_seed, "epoch": self.epoch})
            self._replay = False
        elif hasattr(dataloader, "set_epoch"):
            dataloader.set_epoch(self.epoch)
        if hasattr(dataloader, "state_dict"):
            self.data_seed = int(dataloader.state_dict()["seed"])
        params = list(self.model.parameters())
        self._zero(params)
        self._emit("on_epoch_begin", epoch=self.epoch, lr=lr)
        seen, loss_sum, in_window, window_n = 0, 0.0, 0, 0
        for i, (x, y) in enumerate(dataloader):
            x = x if isinstance(x, Tensor) else Tensor(x)
            y = y if isinstance(y, Tensor) else Tensor(y)
            loss = self.loss_fn(self.model.forward(x), y)
            val = float(loss.data)
            if not math.isfinite(val):
                self._zero(params)
                raise FloatingPointError(f"epoch {self.epoch}, batch {i}: the loss is {val}")
            n = y.shape[0] if y.ndim else 1
            # keep p.grad = mean gradient of the window so far (running average)
            share = n / (window_n + n)
            for p in params:
                if p.grad is not None:
                    g = p.grad.data if isinstance(p.grad, Tensor) else p.grad
                    g *= 1.0 - share
            (loss * share).backward()
            window_n += n
            in_window += 1
            loss_sum += val * n
            seen += n
            self._emit("on_batch_end", batch=i, loss=val, samples=n)
            if in_window == accumulation_steps:
                self._step(params)
                in_window, window_n = 0, 0
        if in_window:
            self._step(params)
        if seen == 0:
            raise ValueError("the dataloader yielded nothing")
        self.history["train_loss"].append(loss_sum / seen)
        self.history["learning_rates"].append(lr)
        self.epoch += 1
        self._emit("on_epoch_end", loss=loss_sum / seen)
        return loss_sum / seen

    def _step(self, params):
        norm = None
        if self.grad_clip_norm is not None:
            norm = clip_grad_norm(params, self.grad_clip_norm)
            if not math.isfinite(norm):
                self._zero(params)
                raise FloatingPointError(f"epoch {self.epoch}: gradient norm is {norm}")
            self.history["grad_norm"].append(norm)
        self.optimizer.step()
        self._zero(params)
        self.step += 1
        self._emit("on_step", grad_norm=norm)

    def evaluate(self, dataloader):
        """Returns (loss, accuracy); accuracy is None for regression losses."""
        self._mode(False)
        seen, loss_sum, right, judged = 0, 0.0, 0, 0
        with no_grad():
            for x, y in dataloader:
                x = x if isinstance(x, Tensor) else Tensor(x)
                y = y if isinstance(y, Tensor) else Tensor(y)
                out = self.model.forward(x)
                n = y.shape[0] if y.ndim else 1
                loss_sum += float(self.loss_fn(out, y).data) * n
                seen += n
                if isinstance(self.loss_fn, CrossEntropyLoss):
                    right += int(np.sum(out.data.argmax(axis=1) == y.data.reshape(-1)))
                    judged += n
                elif isinstance(self.loss_fn, BinaryCrossEntropyLoss):
                    right += int(np.sum((out.data >= 0.5) == (y.data >= 0.5)))
                    judged += y.data.size
        if seen == 0:
            raise ValueError("the dataloader yielded nothing")
        result = (loss_sum / seen, right / judged if judged else None)
        self.history["eval_loss"].append(result[0])
        self.history["eval_accuracy"].append(result[1])
        self._emit("on_evaluate_end", loss=result[0], accuracy=result[1])
        return result

    def save_checkpoint(self, path):
        path = Path(path)
        sd = self.optimizer.state_dict()
        tensors = {f"param.{i}": p.data for i, p in enumerate(self.model.parameters())}
        for i, st in enumerate(sd["state"]):
            tensors.update({f"optim.{i}.{k}": v for k, v in st.items() if isinstance(v, np.ndarray)})
        buf = io.BytesIO()
        np.savez(buf, **tensors)
        blob = buf.getvalue()
        s = self.scheduler
        meta = {"n_params": sum(1 for k in tensors if k.startswith("param.")),
                "optimizer": {k: sd[k] for k in ("kind", "hyperparameters", "step_count")},
                "optimizer_steps": [st.get("step") for st in sd["state"]],
                "scheduler": None if s is None else {"max_lr": s.max_lr, "min_lr": s.min_lr,
                                                     "total_epochs": s.total_epochs},
                "grad_clip_norm": self.grad_clip_norm, "epoch": self.epoch, "step": self.step,
                "training_mode": self.training_mode, "history": self.history,
                "data_seed": self.data_seed,
                "rng": [m.rng.bit_generator.state for m in self._rng_layers()],
                "tensors_sha256": hashlib.sha256(blob).hexdigest()}
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".zip.tmp")
        try:
            with os.fdopen(fd, "wb") as raw, zipfile.ZipFile(raw, "w") as zf:
                zf.writestr("meta.json", json.dumps(meta))
                zf.writestr("tensors.npz", blob)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def load_checkpoint(self, path):
        try:
            with zipfile.ZipFile(path) as zf:
                meta = json.loads(zf.read("meta.json").decode("utf-8"))
                blob = zf.read("tensors.npz")
            if hashlib.sha256(blob).hexdigest() != meta["tensors_sha256"]:
                raise ValueError("tensors.npz does not match its sha256")
            with np.load(io.BytesIO(blob), allow_pickle=False) as z:
                tensors = {k: z[k] for k in z.files}
            plan = self._plan(meta, tensors)
        except Exception as e:
            raise ValueError(f"checkpoint {path} rejected: {e}") from e
        self._apply(plan)

    def _plan(self, meta, tensors):
        params = list(self.model.parameters())
        if meta["n_params"] != len(params):
            raise ValueError("number of parameters differs")
        values = [tensors[f"param.{i}"] for i in range(len(params))]
        for i, (v, p) in enumerate(zip(values, params)):
            if v.shape != p.data.shape:
                raise ValueError(f"param.{i} is {v.shape}, the model's is {p.data.shape}")
        slots = [{} if s is None else {"step": s} for s in meta["optimizer_steps"]]
        for k, v in tensors.items():
            if k.startswith("optim."):
                _, i, name = k.split(".")
                slots[int(i)][name] = v
        opt_state = dict(meta["optimizer"], state=slots)
        self.optimizer.check_state_dict(opt_state)
        sched = None if meta["scheduler"] is None else CosineSchedule(**meta["scheduler"])
        clip = meta["grad_clip_norm"]
        if clip is not None and not _finite(clip, strict=True):
            raise ValueError("grad_clip_norm in the file is invalid")
        if not (_whole(meta["epoch"], 0) and _whole(meta["step"], 0)):
            raise ValueError("epoch/step in the file are invalid")
        if not isinstance(meta["training_mode"], bool):
            raise ValueError("training_mode in the file is invalid")
        if meta["data_seed"] is not None and not _whole(meta["data_seed"], 0):
            raise ValueError("data_seed in the file is invalid")
        owners = self._rng_layers()
        if len(owners) != len(meta["rng"]):
            raise ValueError("number of Dropout layers differs")
        for m, st in zip(owners, meta["rng"]):
            type(m.rng.bit_generator)().state = st
        return _Plan(values, opt_state, sched, clip, meta, owners)

    def _apply(self, plan):
        params = list(self.model.parameters())
        for p, v in zip(params, plan.values):
            p.data[...] = v
        self.optimizer.load_state_dict(plan.opt_state)
        for m, st in zip(plan.owners, plan.meta["rng"]):
            m.rng.bit_generator.state = st
        self.scheduler, self.grad_clip_norm = plan.scheduler, plan.clip
        self.epoch, self.step = plan.meta["epoch"], plan.meta["step"]
        self.history = {k: list(v) for k, v in plan.meta["history"].items()}
        self.data_seed, self._replay = plan.meta["data_seed"], plan.meta["data_seed"] is not None
        self._mode(plan.meta["training_mode"])
        self._zero(params)
