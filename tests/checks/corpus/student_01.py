"""Module 07 - Training (my notebook cells, copied out so the autograder can import them).

Notes to self while writing this:
  * gradients ADD up in .grad, so clear them after every optimizer step
  * accumulation: backward the SUM of per-sample losses, divide by the window's samples at the step
  * checkpoint = one npz (arrays) + the JSON metadata stored as bytes inside it, plus a sha256
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


def _ok_number(x):
    """True for a finite real number (bools don't count)."""
    return not isinstance(x, bool) and isinstance(x, (int, float, np.number)) and math.isfinite(x)


def _as_tensor(x):
    return x if isinstance(x, Tensor) else Tensor(x)


class CosineSchedule:
    def __init__(self, max_lr=0.1, min_lr=0.01, total_epochs=100):
        if not _ok_number(max_lr) or max_lr < 0:
            raise ValueError(f"max_lr has to be a finite number >= 0, got {max_lr!r}")
        if not _ok_number(min_lr) or min_lr < 0:
            raise ValueError(f"min_lr has to be a finite number >= 0, got {min_lr!r}")
        if min_lr > max_lr:
            raise ValueError(f"min_lr ({min_lr}) can't be bigger than max_lr ({max_lr})")
        if (isinstance(total_epochs, bool) or not isinstance(total_epochs, (int, np.integer))
                or total_epochs <= 0):
            raise ValueError(f"total_epochs must be a positive integer, got {total_epochs!r}")
        self.max_lr = float(max_lr)
        self.min_lr = float(min_lr)
        self.total_epochs = int(total_epochs)

    def get_lr(self, epoch):
        if not _ok_number(epoch) or epoch < 0:
            raise ValueError(f"epoch must be >= 0, got {epoch!r}")
        if epoch >= self.total_epochs:
            return self.min_lr  # stays at the floor, no restart
        cosine = np.cos(np.pi * epoch / self.total_epochs)
        return self.min_lr + (self.max_lr - self.min_lr) * (1 + cosine) / 2


def clip_grad_norm(parameters, max_norm=1.0):
    if not _ok_number(max_norm) or max_norm < 0:
        raise ValueError(f"max_norm must be a finite number >= 0, got {max_norm!r}")
    grads = []
    for p in parameters:  # only one pass, so generators are fine
        if p.grad is not None:
            grads.append(p.grad.data if isinstance(p.grad, Tensor) else p.grad)
    # float64 so that 3e20 ** 2 doesn't overflow
    total = np.sqrt(sum(np.sum(np.square(g.astype(np.float64))) for g in grads))
    if np.isfinite(total) and total > max_norm:
        factor = max_norm / (total + 1e-6)
        for g in grads:
            g *= factor  # in place: keeps dtype and the Tensor/ndarray wrapper
    # NaN/inf norm: returned as is, nothing scaled (the Trainer raises)
    return total


class Trainer:
    def __init__(self, model, optimizer, loss_fn, scheduler=None, grad_clip_norm=None, *,
                 callbacks=()):
        if grad_clip_norm is not None and (not _ok_number(grad_clip_norm) or grad_clip_norm <= 0):
            raise ValueError(f"grad_clip_norm must be None or > 0, got {grad_clip_norm!r}")
        self.model, self.optimizer, self.loss_fn = model, optimizer, loss_fn
        self.scheduler, self.grad_clip_norm = scheduler, grad_clip_norm
        self.callbacks = list(callbacks)
        self.epoch, self.step, self.training_mode = 0, 0, True
        self.history = {"train_loss": [], "eval_loss": [], "eval_accuracy": [],
                        "learning_rates": [], "grad_norm": []}
        self._loader_seed = None  # seed of the shuffling DataLoader (goes in the checkpoint)
        self._resume_seed = None  # set by load_checkpoint, used by the next epoch

    def _emit(self, event, **info):  # given in the notebook
        for callback in self.callbacks:
            handler = getattr(callback, event, None)
            if handler is not None:
                handler(self, **info)

    def _mode(self, training):
        set_training(self.model, training)
        self.training_mode = training

    def _zero(self):
        self.optimizer.zero_grad()
        for p in self.model.parameters():
            p.grad = None

    def _sync_loader(self, loader):
        # DataLoader order depends only on (seed, epoch): tell it which epoch this is
        if not hasattr(loader, "set_epoch"):
            return  # a list or a generator
        if self._resume_seed is not None and hasattr(loader, "load_state_dict"):
            loader.load_state_dict({"seed": self._resume_seed, "epoch": self.epoch})
            self._resume_seed = None
        else:
            loader.set_epoch(self.epoch)
        if hasattr(loader, "state_dict"):
            self._loader_seed = int(loader.state_dict()["seed"])

    def train_epoch(self, dataloader, accumulation_steps=1):
        k = accumulation_steps
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"accumulation_steps must be a positive integer, got {k!r}")
        self._mode(True)
        if self.scheduler is not None:
            self.optimizer.lr = self.scheduler.get_lr(self.epoch)
        lr_now = float(self.optimizer.lr)
        self._sync_loader(dataloader)
        self._zero()
        self._emit("on_epoch_begin", epoch=self.epoch, lr=lr_now)

        running, seen = 0.0, 0
        in_window, window_samples = 0, 0
        for batch_idx, (xb, yb) in enumerate(dataloader):
            xb, yb = _as_tensor(xb), _as_tensor(yb)
            loss = self.loss_fn(self.model.forward(xb), yb)
            value = float(loss.data)
            if not math.isfinite(value):
                self._zero()
                raise FloatingPointError(
                    f"loss became {value} at epoch {self.epoch}, batch {batch_idx}; "
                    "that window was not applied")
            n = yb.shape[0] if yb.ndim else 1
            (loss * n).backward()  # sum of the per-sample losses
            running += value * n
            seen += n
            in_window += 1
            window_samples += n
            self._emit("on_batch_end", batch=batch_idx, loss=value, samples=n)
            if in_window == k:
                self._apply(window_samples)
                in_window, window_samples = 0, 0
        if in_window:  # leftover batches at the end still make a step
            self._apply(window_samples)
        if seen == 0:
            raise ValueError("the dataloader gave no batches")

        epoch_loss = running / seen
        self.history["train_loss"].append(epoch_loss)
        self.history["learning_rates"].append(lr_now)
        self.epoch += 1
        self._emit("on_epoch_end", loss=epoch_loss)
        return epoch_loss

    def _apply(self, n_samples):
        params = list(self.model.parameters())
        for p in params:
            if p.grad is not None:
                g = p.grad.data if isinstance(p.grad, Tensor) else p.grad
                g /= n_samples  # sum -> mean over the window
        norm = None  # stays None without clipping
        if self.grad_clip_norm is not None:
            norm = clip_grad_norm(params, self.grad_clip_norm)
            if not math.isfinite(norm):
                self._zero()
                raise FloatingPointError(f"gradient norm is {norm} at epoch {self.epoch}")
            self.history["grad_norm"].append(norm)
        self.optimizer.step()
        self._zero()
        self.step += 1
        self._emit("on_step", grad_norm=norm)

    def evaluate(self, dataloader):
        self._mode(False)
        total, count, correct, judged = 0.0, 0, 0, 0
        with no_grad():
            for xb, yb in dataloader:
                xb, yb = _as_tensor(xb), _as_tensor(yb)
                out = self.model.forward(xb)
                n = yb.shape[0] if yb.ndim else 1
                total += float(self.loss_fn(out, yb).data) * n
                count += n
                if isinstance(self.loss_fn, CrossEntropyLoss):
                    pred = np.argmax(out.data, axis=1)
                    correct += int((pred == yb.data.reshape(-1)).sum())
                    judged += pred.shape[0]
                elif isinstance(self.loss_fn, BinaryCrossEntropyLoss):
                    pred = out.data > 0.5
                    correct += int((pred == (yb.data > 0.5)).sum())
                    judged += pred.size
        if count == 0:
            raise ValueError("the dataloader gave no batches")
        loss = total / count
        accuracy = correct / judged if judged else None  # regression: no accuracy
        self.history["eval_loss"].append(loss)
        self.history["eval_accuracy"].append(accuracy)
        self._emit("on_evaluate_end", loss=loss, accuracy=accuracy)
        return loss, accuracy

    # ---------------- checkpoints ----------------
    @staticmethod
    def _digest(meta_bytes, arrays):
        h = hashlib.sha256(meta_bytes)
        for key in sorted(arrays):
            a = np.ascontiguousarray(arrays[key])
            h.update(f"{key}:{a.dtype.str}:{a.shape}".encode())
            h.update(a.tobytes())
        return h.hexdigest()

    def save_checkpoint(self, path):
        path = Path(path)
        params = list(self.model.parameters())
        opt = self.optimizer.state_dict()
        arrays = {f"param_{i}": p.data for i, p in enumerate(params)}
        for i, slot in enumerate(opt["state"]):
            for name, val in slot.items():
                if name != "step":
                    arrays[f"opt_{i}_{name}"] = val
        s = self.scheduler
        meta = {
            "shapes": [list(p.data.shape) for p in params],
            "optimizer": {"kind": opt["kind"], "hyperparameters": opt["hyperparameters"],
                          "step_count": opt["step_count"],
                          "steps": [slot.get("step") for slot in opt["state"]]},
            "scheduler": None if s is None else {"max_lr": s.max_lr, "min_lr": s.min_lr,
                                                 "total_epochs": s.total_epochs},
            "grad_clip_norm": self.grad_clip_norm,
            "epoch": self.epoch, "step": self.step, "training_mode": self.training_mode,
            "history": self.history,
            "dropout_rngs": [m.rng.bit_generator.state for m in rng_owners(self.model)],
            "loader_seed": self._loader_seed,
        }
        meta_bytes = json.dumps(meta).encode("utf-8")
        arrays["sha256"] = np.array(self._digest(meta_bytes, arrays))
        arrays["meta"] = np.frombuffer(meta_bytes, dtype=np.uint8)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".ckpt-")
        try:
            with os.fdopen(fd, "wb") as fh:
                np.savez(fh, **arrays)
            os.replace(tmp, path)  # atomic
        except BaseException:
            if os.path.exists(tmp):
                os.remove(tmp)
            raise

    def load_checkpoint(self, path):
        try:
            with open(path, "rb") as fh, np.load(fh, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
            meta_bytes = arrays.pop("meta").tobytes()
            stored = str(arrays.pop("sha256"))
            if stored != self._digest(meta_bytes, arrays):
                raise ValueError("checksum mismatch (file damaged or edited)")
            plan = self._validate(json.loads(meta_bytes.decode("utf-8")), arrays)
        except Exception as err:
            raise ValueError(f"can't load checkpoint {path}: {err}") from err
        self._restore(*plan)

    def _validate(self, meta, arrays):
        """Check everything in the file against this trainer. Changes nothing."""
        params = list(self.model.parameters())
        if len(meta["shapes"]) != len(params):
            raise ValueError(f"{len(meta['shapes'])} parameters saved, model has {len(params)}")
        values = []
        for i, p in enumerate(params):
            arr = arrays[f"param_{i}"]
            if arr.shape != p.data.shape:
                raise ValueError(f"param {i}: file has {arr.shape}, model has {p.data.shape}")
            values.append(arr)
        o = meta["optimizer"]
        slots = [{} if st is None else {"step": st} for st in o["steps"]]
        for key, val in arrays.items():
            if key.startswith("opt_"):
                _, idx, name = key.split("_", 2)
                slots[int(idx)][name] = val
        opt_state = {"kind": o["kind"], "hyperparameters": o["hyperparameters"],
                     "step_count": o["step_count"], "state": slots}
        self.optimizer.check_state_dict(opt_state)
        sched = None if meta["scheduler"] is None else CosineSchedule(**meta["scheduler"])
        clip = meta["grad_clip_norm"]
        if clip is not None and (not _ok_number(clip) or clip <= 0):
            raise ValueError(f"bad grad_clip_norm {clip!r}")
        counters = [meta["epoch"], meta["step"]] + [meta["loader_seed"] or 0]
        if any(isinstance(c, bool) or not isinstance(c, int) or c < 0 for c in counters):
            raise ValueError(f"bad epoch/step/loader seed {counters!r}")
        if not isinstance(meta["training_mode"], bool) or not all(
                isinstance(v, list) for v in meta["history"].values()):
            raise ValueError("bad training_mode or history")
        owners = rng_owners(self.model)
        if len(owners) != len(meta["dropout_rngs"]):
            raise ValueError("the model has a different number of Dropout layers")
        for owner, st in zip(owners, meta["dropout_rngs"]):
            type(owner.rng.bit_generator)().state = st  # raises if it doesn't fit
        return params, values, opt_state, sched, clip, owners, meta

    def _restore(self, params, values, opt_state, sched, clip, owners, meta):
        for p, v in zip(params, values):
            p.data[...] = v  # in place, the optimizer holds the same arrays
        self.optimizer.load_state_dict(opt_state)
        for owner, st in zip(owners, meta["dropout_rngs"]):
            owner.rng.bit_generator.state = st
        self.scheduler = sched
        self.grad_clip_norm = clip
        self.epoch, self.step = meta["epoch"], meta["step"]
        self.history = {k: list(v) for k, v in meta["history"].items()}
        self._loader_seed = self._resume_seed = meta["loader_seed"]
        self._mode(meta["training_mode"])
        self._zero()
