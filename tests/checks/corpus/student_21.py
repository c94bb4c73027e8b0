"""TinyTorch Module 07 (Training) -- my answers

- Schedule: cosine from max_lr to min_lr, flat at min_lr afterwards.
- clip_grad_norm: global L2 norm in float64, one factor for all grads.
- Trainer: accumulation = backward(loss * n) per batch, divide by the window's samples at the
  step. _counts() gives (right, judged) of a batch for the accuracy.
- Checkpoint: npz written through a temp file; a JSON "manifest" inside, with a sha256 of the
  arrays so a damaged file is refused.
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


def finite_at_least(x, low):
    ok = isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, bool)
    return ok and math.isfinite(x) and x >= low


def int_at_least(x, low):
    return isinstance(x, (int, np.integer)) and not isinstance(x, bool) and x >= low


class CosineSchedule:
    def __init__(self, max_lr=0.1, min_lr=0.01, total_epochs=100):
        if not finite_at_least(max_lr, 0) or not finite_at_least(min_lr, 0):
            raise ValueError(f"learning rates must be finite and >= 0: {max_lr!r}, {min_lr!r}")
        if min_lr > max_lr:
            raise ValueError(f"min_lr {min_lr} is above max_lr {max_lr}")
        if not int_at_least(total_epochs, 1):
            raise ValueError(f"total_epochs must be an int >= 1: {total_epochs!r}")
        self.max_lr, self.min_lr = float(max_lr), float(min_lr)
        self.total_epochs = int(total_epochs)

    def get_lr(self, epoch):
        if not finite_at_least(epoch, 0):
            raise ValueError(f"epoch must be >= 0: {epoch!r}")
        e = min(epoch, self.total_epochs)
        return self.min_lr + (self.max_lr - self.min_lr) * 0.5 * (
            1.0 + math.cos(math.pi * e / self.total_epochs))


def clip_grad_norm(parameters, max_norm=1.0):
    if not finite_at_least(max_norm, 0):
        raise ValueError(f"max_norm must be finite and >= 0: {max_norm!r}")
    grads = [p.grad.data if isinstance(p.grad, Tensor) else p.grad
             for p in list(parameters) if p.grad is not None]
    norm = math.sqrt(math.fsum(float(np.vdot(g.astype(np.float64), g.astype(np.float64)))
                               for g in grads))
    if norm > max_norm and math.isfinite(norm):
        s = max_norm / (norm + 1e-6)
        for g in grads:
            g *= s
    return norm


class Trainer:
    def __init__(self, model, optimizer, loss_fn, scheduler=None, grad_clip_norm=None, *,
                 callbacks=()):
        if grad_clip_norm is not None and not (finite_at_least(grad_clip_norm, 0)
                                               and grad_clip_norm > 0):
            raise ValueError(f"grad_clip_norm must be > 0 or None: {grad_clip_norm!r}")
        self.model, self.optimizer, self.loss_fn = model, optimizer, loss_fn
        self.scheduler, self.grad_clip_norm = scheduler, grad_clip_norm
        self.callbacks = list(callbacks)
        self.epoch, self.step, self.training_mode = 0, 0, True
        self.history = {"train_loss": [], "eval_loss": [], "eval_accuracy": [],
                        "learning_rates": [], "grad_norm": []}
        self.seed, self.seed_to_replay = None, None

    def _emit(self, event, **info):
        for cb in self.callbacks:
            handler = getattr(cb, event, None)
            if handler is not None:
                handler(self, **info)

    def _mode(self, on):
        set_training(self.model, on)
        self.training_mode = on

    def _wipe(self, params):
        self.optimizer.zero_grad()
        for p in params:
            p.grad = None

    def _counts(self, out, y):
        """(right, judged) for one batch; (0, 0) if accuracy means nothing (regression)."""
        if isinstance(self.loss_fn, CrossEntropyLoss):
            guess = np.argmax(out, axis=0)
            return int((guess == y.reshape(-1)).sum()), y.size
        if isinstance(self.loss_fn, BinaryCrossEntropyLoss):
            return int(((out >= 0.5) == (y >= 0.5)).sum()), y.size
        return 0, 0

    def train_epoch(self, dataloader, accumulation_steps=1):
        if not int_at_least(accumulation_steps, 1):
            raise ValueError(f"accumulation_steps must be an int >= 1: {accumulation_steps!r}")
        self._mode(True)
        if self.scheduler is not None:
            self.optimizer.lr = self.scheduler.get_lr(self.epoch)
        lr = float(self.optimizer.lr)
        if self.seed_to_replay is not None and hasattr(dataloader, "load_state_dict"):
            dataloader.load_state_dict({"seed": self.seed_to_replay, "epoch": self.epoch})
            self.seed_to_replay = None
        elif hasattr(dataloader, "set_epoch"):
            dataloader.set_epoch(self.epoch)
        if hasattr(dataloader, "state_dict"):
            self.seed = int(dataloader.state_dict()["seed"])
        params = list(self.model.parameters())
        self._wipe(params)
        self._emit("on_epoch_begin", epoch=self.epoch, lr=lr)
        s_loss, s_n, w_batches, w_n = 0.0, 0, 0, 0
        for i, (x, y) in enumerate(dataloader):
            x = x if isinstance(x, Tensor) else Tensor(x)
            y = y if isinstance(y, Tensor) else Tensor(y)
            loss = self.loss_fn(self.model.forward(x), y)
            val = float(np.asarray(loss.data).reshape(-1)[0])
            if not math.isfinite(val):
                self._wipe(params)
                raise FloatingPointError(f"loss = {val} at epoch {self.epoch}, batch {i}")
            n = y.shape[0] if y.ndim else 1
            (loss * n).backward()
            s_loss, s_n = s_loss + val * n, s_n + n
            w_batches, w_n = w_batches + 1, w_n + n
            self._emit("on_batch_end", batch=i, loss=val, samples=n)
            if w_batches == accumulation_steps:
                self._window_step(params, w_n)
                w_batches, w_n = 0, 0
        if w_batches:
            self._window_step(params, w_n)
        if s_n == 0:
            raise ValueError("no batches")
        mean = s_loss / s_n
        self.history["train_loss"].append(mean)
        self.history["learning_rates"].append(lr)
        self.epoch += 1
        self._emit("on_epoch_end", loss=mean)
        return mean

    def _window_step(self, params, n):
        for p in params:
            if p.grad is not None:
                g = p.grad.data if isinstance(p.grad, Tensor) else p.grad
                g /= n
        norm = None
        if self.grad_clip_norm is not None:
            norm = clip_grad_norm(params, self.grad_clip_norm)
            if not math.isfinite(norm):
                self._wipe(params)
                raise FloatingPointError(f"gradient norm = {norm} at epoch {self.epoch}")
            self.history["grad_norm"].append(norm)
        self.optimizer.step()
        self._wipe(params)
        self.step += 1
        self._emit("on_step", grad_norm=norm)

    def evaluate(self, dataloader):
        self._mode(False)
        s_loss, s_n, right, judged = 0.0, 0, 0, 0
        with no_grad():
            for x, y in dataloader:
                x = x if isinstance(x, Tensor) else Tensor(x)
                y = y if isinstance(y, Tensor) else Tensor(y)
                out = self.model.forward(x)
                n = y.shape[0] if y.ndim else 1
                s_loss += float(np.asarray(self.loss_fn(out, y).data).reshape(-1)[0]) * n
                s_n += n
                r, j = self._counts(out.data, y.data)
                right, judged = right + r, judged + j
        if s_n == 0:
            raise ValueError("no batches")
        loss, acc = s_loss / s_n, (right / judged if judged else None)
        self.history["eval_loss"].append(loss)
        self.history["eval_accuracy"].append(acc)
        self._emit("on_evaluate_end", loss=loss, accuracy=acc)
        return loss, acc

    # ---------------------------------------------------------------- checkpoint
    @staticmethod
    def _sha(arrays):
        h = hashlib.sha256()
        for k in sorted(arrays):
            a = np.ascontiguousarray(arrays[k])
            h.update(f"{k}|{a.dtype.str}|{a.shape}|".encode())
            h.update(a.tobytes())
        return h.hexdigest()

    def save_checkpoint(self, path):
        path = Path(path)
        params = list(self.model.parameters())
        sd = self.optimizer.state_dict()
        arrays = {f"param{i}": p.data for i, p in enumerate(params)}
        for i, st in enumerate(sd["state"]):
            for k, v in st.items():
                if k != "step":
                    arrays[f"opt{i}.{k}"] = v
        s = self.scheduler
        manifest = {
            "n_params": len(params),
            "optimizer": {"kind": sd["kind"], "hyperparameters": sd["hyperparameters"],
                          "step_count": sd["step_count"],
                          "param_steps": [st.get("step") for st in sd["state"]]},
            "scheduler": None if s is None else {"max_lr": s.max_lr, "min_lr": s.min_lr,
                                                 "total_epochs": s.total_epochs},
            "grad_clip_norm": self.grad_clip_norm, "epoch": self.epoch, "step": self.step,
            "training_mode": self.training_mode, "history": self.history, "seed": self.seed,
            "rng": [m.rng.bit_generator.state for m in rng_owners(self.model)],
            "sha256": self._sha(arrays),
        }
        arrays["manifest"] = np.frombuffer(json.dumps(manifest).encode(), dtype=np.uint8)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".part-")
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, path)

    def load_checkpoint(self, path):
        try:
            with open(path, "rb") as f, np.load(f, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
            manifest = json.loads(arrays.pop("manifest").tobytes().decode())
            if manifest["sha256"] != self._sha(arrays):
                raise ValueError("sha256 does not match")
            params = list(self.model.parameters())
            if manifest["n_params"] != len(params):
                raise ValueError("different number of parameters")
            values = [arrays[f"param{i}"] for i in range(len(params))]
            for i, (v, p) in enumerate(zip(values, params)):
                if v.shape != p.data.shape:
                    raise ValueError(f"param{i} has shape {v.shape}, the model {p.data.shape}")
            o = manifest["optimizer"]
            slots = [{} if st is None else {"step": st} for st in o["param_steps"]]
            for k, v in arrays.items():
                if k.startswith("opt"):
                    i, name = k[3:].split(".", 1)
                    slots[int(i)][name] = v
            opt_state = {"kind": o["kind"], "hyperparameters": o["hyperparameters"],
                         "step_count": o["step_count"], "state": slots}
            self.optimizer.check_state_dict(opt_state)
            sched = (None if manifest["scheduler"] is None
                     else CosineSchedule(**manifest["scheduler"]))
            clip = manifest["grad_clip_norm"]
            if clip is not None and not (finite_at_least(clip, 0) and clip > 0):
                raise ValueError("bad grad_clip_norm")
            if not (int_at_least(manifest["epoch"], 0) and int_at_least(manifest["step"], 0)):
                raise ValueError("bad epoch or step")
            if not isinstance(manifest["training_mode"], bool):
                raise ValueError("bad training_mode")
            if manifest["seed"] is not None and not int_at_least(manifest["seed"], 0):
                raise ValueError("bad seed")
            owners = rng_owners(self.model)
            if len(owners) != len(manifest["rng"]):
                raise ValueError("different number of Dropout layers")
            for m, st in zip(owners, manifest["rng"]):
                type(m.rng.bit_generator)().state = st
            history = {k: list(v) for k, v in manifest["history"].items()}
        except Exception as err:
            raise ValueError(f"checkpoint {path} refused: {err}") from err
        # nothing changed so far; now apply everything
        for p, v in zip(params, values):
            p.data[...] = v
        self.optimizer.load_state_dict(opt_state)
        for m, st in zip(owners, manifest["rng"]):
            m.rng.bit_generator.state = st
        self.scheduler, self.grad_clip_norm = sched, clip
        self.epoch, self.step, self.history = manifest["epoch"], manifest["step"], history
        self.seed = self.seed_to_replay = manifest["seed"]
        self._mode(manifest["training_mode"])
        self._wipe(params)
