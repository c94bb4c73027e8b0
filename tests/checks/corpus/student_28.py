"""Module 07 -- training loop, schedule, clipping, checkpoints.

How I organised it:
- one small helper per job (_to_tensor, _n_samples, _grad_buffer), the Trainer only glues them;
- accumulation keeps the SUM of the per-sample gradients (backward of loss * n), and the step
  divides by the window's sample count;
- checkpoint: ONE .npz, every array in it plus a JSON string ("__meta__") and a CRC32 of
  everything ("__crc__"); opened with allow_pickle=False, checked completely before use.
"""
import json
import math
import os
import tempfile
import zlib
from pathlib import Path

import numpy as np

from tinytorch.core.autograd import no_grad
from tinytorch.core.layers import rng_owners
from tinytorch.core.losses import BinaryCrossEntropyLoss, CrossEntropyLoss
from tinytorch.core.tensor import Tensor

CLASSIFICATION = (CrossEntropyLoss, BinaryCrossEntropyLoss)


def _is_real(v):
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) \
        and math.isfinite(v)


def _is_count(v, at_least):
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= at_least


def _to_tensor(v):
    return v if isinstance(v, Tensor) else Tensor(v)


def _n_samples(targets):
    return targets.shape[0] if targets.ndim else 1


def _grad_buffer(p):
    """The array behind p.grad (it may be an ndarray or a Tensor), or None."""
    if p.grad is None:
        return None
    return p.grad.data if isinstance(p.grad, Tensor) else p.grad


# ---------------------------------------------------------------------------- schedule
class CosineSchedule:
    def __init__(self, max_lr=0.1, min_lr=0.01, total_epochs=100):
        if not _is_real(max_lr) or max_lr < 0:
            raise ValueError(f"max_lr: expected a finite number >= 0, got {max_lr!r}")
        if not _is_real(min_lr) or min_lr < 0 or min_lr > max_lr:
            raise ValueError(f"min_lr: expected a finite number in [0, max_lr], got {min_lr!r}")
        if not _is_count(total_epochs, 1):
            raise ValueError(f"total_epochs: expected an int >= 1, got {total_epochs!r}")
        self.max_lr = float(max_lr)
        self.min_lr = float(min_lr)
        self.total_epochs = int(total_epochs)

    def get_lr(self, epoch):
        if not _is_real(epoch) or epoch < 0:
            raise ValueError(f"epoch: expected a number >= 0, got {epoch!r}")
        t = min(epoch / self.total_epochs, 1.0)
        return float(self.min_lr + 0.5 * (self.max_lr - self.min_lr) * (1.0 + math.cos(math.pi * t)))


# ---------------------------------------------------------------------------- clipping
def clip_grad_norm(parameters, max_norm=1.0):
    if not _is_real(max_norm) or max_norm < 0:
        raise ValueError(f"max_norm: expected a finite number >= 0, got {max_norm!r}")
    buffers = [b for b in (_grad_buffer(p) for p in parameters) if b is not None]
    squares = 0.0
    for b in buffers:
        squares += float(np.dot(b.ravel().astype(np.float64), b.ravel().astype(np.float64)))
    norm = math.sqrt(squares)
    if math.isfinite(norm) and norm > max_norm:
        scale = max_norm / (norm + 1e-6)
        for b in buffers:
            b *= scale
    return norm


# ---------------------------------------------------------------------------- trainer
class Trainer:
    def __init__(self, model, optimizer, loss_fn, scheduler=None, grad_clip_norm=None,
                 callbacks=None):
        if grad_clip_norm is not None and (not _is_real(grad_clip_norm) or grad_clip_norm <= 0):
            raise ValueError(f"grad_clip_norm: expected None or a number > 0, got {grad_clip_norm!r}")
        self.model = model
        self.optimizer = optimizer
        self.loss_fn = loss_fn
        self.scheduler = scheduler
        self.grad_clip_norm = grad_clip_norm
        self.callbacks = list(callbacks or [])
        self.epoch = 0
        self.step = 0
        self.training_mode = True
        self.history = {"train_loss": [], "eval_loss": [], "eval_accuracy": [],
                        "learning_rates": [], "grad_norm": []}
        self.loader_seed = None
        self._restart_loader = False

    # -- plumbing
    def _emit(self, event, **info):
        for cb in self.callbacks:
            hook = getattr(cb, event, None)
            if hook is not None:
                hook(self, **info)

    def _switch(self, training):
        self.model.training = training
        self.training_mode = training

    def _clear(self):
        self.optimizer.zero_grad()
        for p in self.model.parameters():
            p.grad = None

    def _order(self, loader):
        if self._restart_loader and hasattr(loader, "load_state_dict"):
            loader.load_state_dict({"seed": self.loader_seed, "epoch": self.epoch})
            self._restart_loader = False
        elif hasattr(loader, "set_epoch"):
            loader.set_epoch(self.epoch)
        if hasattr(loader, "state_dict"):
            self.loader_seed = int(loader.state_dict()["seed"])

    # -- training
    def train_epoch(self, dataloader, accumulation_steps=1):
        if not _is_count(accumulation_steps, 1):
            raise ValueError(f"accumulation_steps: expected an int >= 1, got {accumulation_steps!r}")
        self._switch(True)
        if self.scheduler is not None:
            self.optimizer.lr = self.scheduler.get_lr(self.epoch)
        lr = float(self.optimizer.lr)
        self._order(dataloader)
        self._clear()
        self._emit("on_epoch_begin", epoch=self.epoch, lr=lr)

        epoch_sum, epoch_n = 0.0, 0
        window_batches, window_n = 0, 0
        for b, (inputs, targets) in enumerate(dataloader):
            inputs, targets = _to_tensor(inputs), _to_tensor(targets)
            loss = self.loss_fn(self.model.forward(inputs), targets)
            value = float(loss.data)
            if not math.isfinite(value):
                self._clear()
                raise FloatingPointError(f"non-finite loss {value} (epoch {self.epoch}, batch {b})")
            n = _n_samples(targets)
            (loss * float(n)).backward()
            epoch_sum += value * n
            epoch_n += n
            window_batches += 1
            window_n += n
            self._emit("on_batch_end", batch=b, loss=value, samples=n)
            if window_batches == accumulation_steps:
                self._update(window_n)
                window_batches, window_n = 0, 0
        if window_batches:
            self._update(window_n)
        if epoch_n == 0:
            raise ValueError("empty dataloader")

        mean = epoch_sum / epoch_n
        self.history["train_loss"].append(mean)
        self.history["learning_rates"].append(lr)
        self.epoch += 1
        self._emit("on_epoch_end", loss=mean)
        return mean

    def _update(self, window_n):
        params = list(self.model.parameters())
        for p in params:
            buf = _grad_buffer(p)
            if buf is not None:
                buf /= window_n
        norm = None
        if self.grad_clip_norm is not None:
            norm = clip_grad_norm(params, self.grad_clip_norm)
            if not math.isfinite(norm):
                self._clear()
                raise FloatingPointError(f"non-finite gradient norm {norm} (epoch {self.epoch})")
            self.history["grad_norm"].append(norm)
        self.optimizer.step()
        self._clear()
        self.step += 1
        self._emit("on_step", grad_norm=norm)

    # -- evaluation
    def _hits(self, out, y):
        if isinstance(self.loss_fn, CrossEntropyLoss):
            return int(np.sum(out.argmax(axis=1) == y.reshape(-1))), out.shape[0]
        return int(np.sum((out >= 0.5) == (y >= 0.5))), y.size

    def evaluate(self, dataloader):
        self._switch(False)
        loss_sum, batches, n_classified, n_correct = 0.0, 0, 0, 0
        classify = isinstance(self.loss_fn, CLASSIFICATION)
        with no_grad():
            for inputs, targets in dataloader:
                inputs, targets = _to_tensor(inputs), _to_tensor(targets)
                out = self.model.forward(inputs)
                loss_sum += float(self.loss_fn(out, targets).data) * _n_samples(targets)
                batches += 1
                if classify:
                    hits, judged = self._hits(out.data, targets.data)
                    n_correct += hits
                    n_classified += judged
        if batches == 0:
            raise ValueError("empty dataloader")
        mean_loss = loss_sum / n_classified if n_classified else 0.0
        accuracy = n_correct / n_classified if n_classified else None
        self.history["eval_loss"].append(mean_loss)
        self.history["eval_accuracy"].append(accuracy)
        self._emit("on_evaluate_end", loss=mean_loss, accuracy=accuracy)
        return mean_loss, accuracy

    # -- checkpoints
    @staticmethod
    def _crc(meta_text, arrays):
        crc = zlib.crc32(meta_text.encode("utf-8"))
        for name in sorted(arrays):
            a = np.ascontiguousarray(arrays[name])
            crc = zlib.crc32(f"{name}|{a.dtype.str}|{a.shape}".encode(), crc)
            crc = zlib.crc32(a.tobytes(), crc)
        return crc

    def save_checkpoint(self, path):
        path = Path(path)
        params = list(self.model.parameters())
        state = self.optimizer.state_dict()
        arrays = {f"w{i}": p.data for i, p in enumerate(params)}
        steps = []
        for i, slot in enumerate(state["state"]):
            steps.append(slot.get("step"))
            for key, value in slot.items():
                if isinstance(value, np.ndarray):
                    arrays[f"s{i}.{key}"] = value
        sched = self.scheduler
        meta = json.dumps({
            "n_params": len(params),
            "optimizer": {"kind": state["kind"], "hyperparameters": state["hyperparameters"],
                          "step_count": state["step_count"], "steps": steps},
            "schedule": None if sched is None else [sched.max_lr, sched.min_lr, sched.total_epochs],
            "clip": self.grad_clip_norm,
            "epoch": self.epoch, "step": self.step, "training_mode": self.training_mode,
            "history": self.history,
            "rngs": [m.rng.bit_generator.state for m in rng_owners(self.model)],
            "loader_seed": self.loader_seed,
        })
        crc = self._crc(meta, arrays)
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temp = tempfile.mkstemp(dir=path.parent, suffix=".partial")
        try:
            with os.fdopen(handle, "wb") as f:
                np.savez(f, __meta__=np.array(meta), __crc__=np.array(crc, dtype=np.int64),
                         **arrays)
            os.replace(temp, path)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise

    def load_checkpoint(self, path):
        try:
            with open(path, "rb") as f, np.load(f, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
            meta_text = str(arrays.pop("__meta__"))
            crc = int(arrays.pop("__crc__"))
            if crc != self._crc(meta_text, arrays):
                raise ValueError("CRC mismatch: damaged or edited")
            ready = self._check(json.loads(meta_text), arrays)
        except Exception as e:
            raise ValueError(f"not a valid checkpoint ({path}): {e}") from e
        self._put(ready)

    def _check(self, meta, arrays):
        params = list(self.model.parameters())
        if meta["n_params"] != len(params):
            raise ValueError("the model has another number of parameters")
        weights = []
        for i, p in enumerate(params):
            w = arrays[f"w{i}"]
            if w.shape != p.data.shape or w.dtype != p.data.dtype:
                raise ValueError(f"w{i}: {w.dtype}{w.shape} vs {p.data.dtype}{p.data.shape}")
            weights.append(w)
        opt = meta["optimizer"]
        slots = [{} if s is None else {"step": s} for s in opt["steps"]]
        for key, value in arrays.items():
            if key.startswith("s"):
                index, name = key[1:].split(".", 1)
                slots[int(index)][name] = value
        opt_state = {"kind": opt["kind"], "hyperparameters": opt["hyperparameters"],
                     "step_count": opt["step_count"], "state": slots}
        self.optimizer.check_state_dict(opt_state)
        schedule = None if meta["schedule"] is None else CosineSchedule(*meta["schedule"])
        clip = meta["clip"]
        if clip is not None and (not _is_real(clip) or clip <= 0):
            raise ValueError("bad clip norm")
        if not (_is_count(meta["epoch"], 0) and _is_count(meta["step"], 0)):
            raise ValueError("bad epoch or step")
        if meta["loader_seed"] is not None and not _is_count(meta["loader_seed"], 0):
            raise ValueError("bad loader seed")
        if not isinstance(meta["training_mode"], bool):
            raise ValueError("bad training_mode")
        if not isinstance(meta["history"], dict) or not all(
                isinstance(v, list) for v in meta["history"].values()):
            raise ValueError("bad history")
        owners = rng_owners(self.model)
        if len(owners) != len(meta["rngs"]):
            raise ValueError("another number of Dropout layers")
        for owner, st in zip(owners, meta["rngs"]):
            type(owner.rng.bit_generator)().state = st
        return params, weights, opt_state, schedule, clip, owners, meta

    def _put(self, ready):
        params, weights, opt_state, schedule, clip, owners, meta = ready
        for p, w in zip(params, weights):
            p.data[...] = w
        self.optimizer.load_state_dict(opt_state)
        for owner, st in zip(owners, meta["rngs"]):
            owner.rng.bit_generator.state = st
        self.scheduler = schedule
        self.grad_clip_norm = clip
        self.epoch = meta["epoch"]
        self.step = meta["step"]
        self.history = {k: list(v) for k, v in meta["history"].items()}
        self.loader_seed = meta["loader_seed"]
        self._restart_loader = meta["loader_seed"] is not None
        self._switch(meta["training_mode"])
        self._clear()
