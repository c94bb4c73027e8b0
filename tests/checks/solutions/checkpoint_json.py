"""Alternative solution with a conventional loop and its own checkpoint format.

Checkpoint: one ``np.savez_compressed`` file (loaded with ``allow_pickle=False``) holding
``weights_<i>``, optimizer buffers ``opt_<buffer>_<i>``, the metadata as a one-element JSON
string array ``metadata_json`` and a BLAKE2b fingerprint of all of it in ``fingerprint``. It is
written to a temporary file in the target folder and moved over the target with os.replace.
"""

from __future__ import annotations

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

BUFFER_KEYS = {"momentum_buffer": "momentum", "exp_avg": "m", "exp_avg_sq": "v"}
FORMAT = "checkpoint_json/1"


class TrainingDivergedError(FloatingPointError):
    """Raised when a loss or the gradient norm is NaN or infinite."""


class CheckpointError(ValueError):
    """Raised when a checkpoint cannot be loaded; the trainer is left unchanged."""


def _is_num(x):
    return isinstance(x, int | float | np.number) and not isinstance(x, bool)


def _is_int(x, at_least=0):
    return isinstance(x, int | np.integer) and not isinstance(x, bool) and x >= at_least


class CosineSchedule:
    """Cosine annealing from max_lr to min_lr over total_epochs, then min_lr for good.
    Optional linear warmup over the first ``warmup_epochs`` (max_lr * (e + 1) / (w + 1))."""

    def __init__(self, max_lr=0.1, min_lr=0.01, total_epochs=100, warmup_epochs=0):
        for name, v in {"max_lr": max_lr, "min_lr": min_lr}.items():
            if not (_is_num(v) and math.isfinite(v) and v >= 0):
                raise ValueError(f"{name}={v!r}: expected a finite rate >= 0")
        if min_lr > max_lr:
            raise ValueError(f"min_lr={min_lr!r} > max_lr={max_lr!r}")
        if not _is_int(total_epochs, 1):
            raise ValueError(f"total_epochs={total_epochs!r}: expected a positive integer")
        if not _is_int(warmup_epochs, 0) or warmup_epochs >= total_epochs:
            raise ValueError(f"warmup_epochs={warmup_epochs!r}: expected 0 <= w < total_epochs")
        self.max_lr, self.min_lr = float(max_lr), float(min_lr)
        self.total_epochs, self.warmup_epochs = int(total_epochs), int(warmup_epochs)

    def get_lr(self, epoch):
        if not (_is_num(epoch) and math.isfinite(epoch) and epoch >= 0):
            raise ValueError(f"epoch={epoch!r}: expected a finite number >= 0")
        w, total = self.warmup_epochs, self.total_epochs
        if epoch >= total:
            return self.min_lr
        if epoch < w:
            return self.max_lr * (epoch + 1) / (w + 1)
        drop = (self.max_lr - self.min_lr) * (1 - math.cos(math.pi * (epoch - w) / (total - w)))
        return max(self.min_lr, self.max_lr - drop / 2)


def clip_grad_norm(parameters, max_norm=1.0):
    """Clip the global gradient norm to ``max_norm``; return the norm before clipping.

    NaN/inf norm: returned as is, gradients untouched (the Trainer then raises)."""
    if not (_is_num(max_norm) and math.isfinite(max_norm) and max_norm >= 0):
        raise ValueError(f"max_norm={max_norm!r}: expected a finite number >= 0")
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    grads = []
    for p in parameters:
        if p.grad is not None:
            grads.append(p.grad.data if isinstance(p.grad, Tensor) else p.grad)
    total = math.sqrt(math.fsum(float(np.vdot(g64, g64)) for g64 in
                                (np.asarray(g, dtype=np.float64).ravel() for g in grads)))
    if total > max_norm and total != math.inf:
        coef = max_norm / (total + 1e-6)
        for g in grads:
            g[...] = g * coef
    return total


class Trainer:
    """Accuracy from evaluate(): argmax for CrossEntropyLoss, threshold 0.5 for
    BinaryCrossEntropyLoss, None for other losses."""

    def __init__(self, model, optimizer, loss_fn, scheduler=None, grad_clip_norm=None, *,
                 callbacks=()):
        if grad_clip_norm is not None:
            if not (_is_num(grad_clip_norm) and math.isfinite(grad_clip_norm)
                    and grad_clip_norm > 0):
                raise ValueError(f"grad_clip_norm={grad_clip_norm!r}: expected None or > 0")
            grad_clip_norm = float(grad_clip_norm)
        self.model, self.optimizer, self.loss_fn = model, optimizer, loss_fn
        self.scheduler, self.grad_clip_norm = scheduler, grad_clip_norm
        self.epoch = 0
        self.step = 0
        self.training_mode = True
        self.history = {"train_loss": [], "eval_loss": [], "eval_accuracy": [],
                        "learning_rates": [], "grad_norm": []}
        self.data_seed = None
        self._resume_seed = None
        self.callbacks = list(callbacks)

    def _emit(self, event, **info):
        """Call ``event`` on every callback that defines it (the trainer first)."""
        for callback in self.callbacks:
            handler = getattr(callback, event, None)
            if handler is not None:
                handler(self, **info)

    def _train_mode(self, on):
        set_training(self.model, on)
        self.training_mode = on

    def _no_grads(self):
        self.optimizer.zero_grad()
        for p in self.model.parameters():
            p.grad = None

    def train_epoch(self, dataloader, accumulation_steps=1):
        if not _is_int(accumulation_steps, 1):
            raise ValueError(f"accumulation_steps={accumulation_steps!r}: expected an int >= 1")
        self._train_mode(True)
        if self.scheduler is not None:
            self.optimizer.lr = self.scheduler.get_lr(self.epoch)
        self.history["learning_rates"].append(float(self.optimizer.lr))
        try:
            return self._run_epoch(dataloader, accumulation_steps)
        except BaseException:
            self.history["learning_rates"].pop()  # an epoch that did not finish is not recorded
            raise

    def _run_epoch(self, dataloader, accumulation_steps):
        if self._resume_seed is not None and hasattr(dataloader, "load_state_dict"):
            dataloader.load_state_dict({"seed": self._resume_seed, "epoch": self.epoch})
            self._resume_seed = None
        elif hasattr(dataloader, "set_epoch"):
            dataloader.set_epoch(self.epoch)
        if hasattr(dataloader, "state_dict"):
            self.data_seed = int(dataloader.state_dict()["seed"])
        self._no_grads()
        self._emit("on_epoch_begin", epoch=self.epoch, lr=self.history["learning_rates"][-1])
        total_loss, total_n, pending, pending_n = 0.0, 0, 0, 0
        for i, (x, y) in enumerate(dataloader):
            x = x if isinstance(x, Tensor) else Tensor(x)
            y = y if isinstance(y, Tensor) else Tensor(y)
            loss = self.loss_fn(self.model.forward(x), y)
            value = float(loss.data)
            if math.isnan(value) or math.isinf(value):
                self._no_grads()
                raise TrainingDivergedError(f"epoch {self.epoch}, batch {i}: loss is {value}; "
                                            "the window was dropped and gradients cleared")
            n = len(y.data) if y.data.ndim else 1
            (loss * float(n)).backward()  # the sum of per-sample losses; divided at the step
            total_loss += value * n
            total_n += n
            self._emit("on_batch_end", batch=i, loss=value, samples=n)
            pending += 1
            pending_n += n
            if pending == accumulation_steps:
                self._update(pending_n)
                pending = pending_n = 0
        if pending:
            self._update(pending_n)
        if total_n == 0:
            raise ValueError("no batches in dataloader")
        self.history["train_loss"].append(total_loss / total_n)
        self.epoch += 1
        self._emit("on_epoch_end", loss=total_loss / total_n)
        return total_loss / total_n

    def _update(self, n):
        params = list(self.model.parameters())
        for p in params:
            if p.grad is not None:
                g = p.grad.data if isinstance(p.grad, Tensor) else p.grad
                p.grad = Tensor(g / n)
        norm = None
        if self.grad_clip_norm is not None:
            norm = clip_grad_norm(params, self.grad_clip_norm)
            if not math.isfinite(norm):
                self._no_grads()
                raise TrainingDivergedError(f"epoch {self.epoch}: gradient norm is {norm}")
            self.history["grad_norm"].append(norm)
        self.optimizer.step()
        self._no_grads()
        self.step += 1
        self._emit("on_step", grad_norm=norm)

    def evaluate(self, dataloader):
        self._train_mode(False)
        loss_total = n_total = hits = judged = 0
        with no_grad():
            for x, y in dataloader:
                x = x if isinstance(x, Tensor) else Tensor(x)
                y = y if isinstance(y, Tensor) else Tensor(y)
                pred = self.model.forward(x)
                n = len(y.data) if y.data.ndim else 1
                loss_total += float(self.loss_fn(pred, y).data) * n
                n_total += n
                if isinstance(self.loss_fn, CrossEntropyLoss):
                    truth = y.data.reshape(-1)
                    hits += int(np.sum(pred.data.argmax(axis=-1) == truth))
                    judged += truth.size
                elif isinstance(self.loss_fn, BinaryCrossEntropyLoss):
                    hits += int(np.sum(np.where(pred.data >= 0.5, 1, 0) == np.round(y.data)))
                    judged += y.data.size
        if n_total == 0:
            raise ValueError("no batches in dataloader")
        result = (loss_total / n_total, hits / judged if judged else None)
        self.history["eval_loss"].append(result[0])
        self.history["eval_accuracy"].append(result[1])
        self._emit("on_evaluate_end", loss=result[0], accuracy=result[1])
        return result

    # ------------------------------------------------------------------ checkpoints
    def save_checkpoint(self, path):
        path = Path(path)
        params = list(self.model.parameters())
        opt = self.optimizer.state_dict()
        arrays = {f"weights_{i}": p.data for i, p in enumerate(params)}
        for i, st in enumerate(opt["state"]):
            for name, value in st.items():
                if name != "step":
                    arrays[f"opt_{BUFFER_KEYS.get(name, name)}_{i}"] = value
        s = self.scheduler
        meta = {
            "format": FORMAT,
            "buffer_keys": BUFFER_KEYS,
            "optimizer": {"kind": opt["kind"], "hyperparameters": opt["hyperparameters"],
                          "step_count": opt["step_count"],
                          "param_steps": [st.get("step") for st in opt["state"]]},
            "scheduler": None if s is None else {
                "class": type(s).__name__,
                "settings": {k: getattr(s, k) for k in
                             ("max_lr", "min_lr", "total_epochs", "warmup_epochs")
                             if hasattr(s, k)}},
            "grad_clip_norm": self.grad_clip_norm, "epoch": self.epoch, "step": self.step,
            "training_mode": self.training_mode, "history": self.history,
            "data_seed": self.data_seed,
            "dropout_rng": [o.rng.bit_generator.state for o in rng_owners(self.model)],
        }
        arrays["metadata_json"] = np.array([json.dumps(meta)])
        arrays["fingerprint"] = np.array([_fingerprint(arrays)])
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(suffix=".npz", prefix=".saving-", dir=path.parent)
        os.close(fd)
        try:
            np.savez_compressed(tmp, **arrays)
            os.replace(tmp, path)
        except BaseException:
            if os.path.lexists(tmp):
                os.unlink(tmp)
            raise
        return path

    def load_checkpoint(self, path):
        try:
            if not os.path.isfile(path):
                raise FileNotFoundError("no such file")
            with open(path, "rb") as f, np.load(f, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
            stored = str(arrays.pop("fingerprint")[0])
            if stored != _fingerprint(arrays):
                raise ValueError("fingerprint mismatch: the file was altered or damaged")
            meta = json.loads(str(arrays.pop("metadata_json")[0]))
            if meta.get("format") != FORMAT:
                raise ValueError("not a checkpoint_json file")
            staged = self._stage(arrays, meta)
        except Exception as e:
            raise CheckpointError(f"could not load checkpoint {str(path)!r}: {e}") from e
        self._commit(*staged)

    def _stage(self, arrays, meta):
        """All checks; returns what _commit needs. Changes nothing."""
        params = list(self.model.parameters())
        n_weights = len([k for k in arrays if k.startswith("weights_")])
        if n_weights != len(params):
            raise ValueError(f"{n_weights} weights stored, the model has {len(params)}")
        weights = []
        for i, p in enumerate(params):
            w = arrays[f"weights_{i}"]
            if w.shape != p.data.shape:
                raise ValueError(f"weights_{i}: shape {w.shape}, model wants {p.data.shape}")
            weights.append(w)
        o = meta["optimizer"]
        if len(o["param_steps"]) != len(params):
            raise ValueError("optimizer state is for a different number of parameters")
        per_param = [{} if s is None else {"step": s} for s in o["param_steps"]]
        names = {short: long for long, short in meta["buffer_keys"].items()}
        for key, value in arrays.items():
            if key.startswith("opt_"):
                short, index = key[4:].rsplit("_", 1)
                per_param[int(index)][names.get(short, short)] = value
        opt_state = {"kind": o["kind"], "hyperparameters": o["hyperparameters"],
                     "step_count": o["step_count"], "state": per_param}
        self.optimizer.check_state_dict(opt_state)
        sch = meta["scheduler"]
        if sch is None:
            scheduler = None
        elif sch["class"] == "CosineSchedule":
            scheduler = CosineSchedule(**sch["settings"])
        elif sch["class"] == type(self.scheduler).__name__:
            scheduler = self.scheduler
        else:
            raise ValueError(f"saved with a {sch['class']} scheduler")
        clip = meta["grad_clip_norm"]
        if clip is not None and not (_is_num(clip) and math.isfinite(clip) and clip > 0):
            raise ValueError(f"grad_clip_norm={clip!r}")
        if not (_is_int(meta["epoch"]) and _is_int(meta["step"])):
            raise ValueError("epoch/step must be integers >= 0")
        if not isinstance(meta["training_mode"], bool):
            raise ValueError("training_mode must be a bool")
        if not all(isinstance(v, list) for v in dict(meta["history"]).values()):
            raise ValueError("history must hold lists")
        if meta["data_seed"] is not None and not _is_int(meta["data_seed"]):
            raise ValueError("data_seed must be an integer >= 0")
        owners = rng_owners(self.model)
        if len(owners) != len(meta["dropout_rng"]):
            raise ValueError("different number of Dropout layers")
        for owner, state in zip(owners, meta["dropout_rng"], strict=True):
            type(owner.rng.bit_generator)().state = state
        return params, weights, opt_state, scheduler, clip, owners, meta

    def _commit(self, params, weights, opt_state, scheduler, clip, owners, meta):
        for p, w in zip(params, weights, strict=True):
            p.data[...] = w
        self.optimizer.load_state_dict(opt_state)
        for owner, state in zip(owners, meta["dropout_rng"], strict=True):
            owner.rng.bit_generator.state = state
        self.scheduler = scheduler
        self.grad_clip_norm = None if clip is None else float(clip)
        self.epoch, self.step = int(meta["epoch"]), int(meta["step"])
        self.history = {k: list(v) for k, v in meta["history"].items()}
        self.data_seed = self._resume_seed = meta["data_seed"]
        self._train_mode(meta["training_mode"])
        self._no_grads()


def _fingerprint(arrays):
    h = hashlib.blake2b(digest_size=32)
    for key in sorted(k for k in arrays if k != "fingerprint"):
        a = np.ascontiguousarray(arrays[key])
        h.update(repr((key, a.dtype.str, a.shape)).encode())
        h.update(a.tobytes())
    return h.hexdigest()


def training_memory(model, optimizer, batch_size):
    """Counts from each layer's own numbers; the optimizer's buffers by its buffer names."""
    from tinytorch.core.layers import modules

    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size <= 0:
        raise ValueError("batch_size must be a positive integer")
    parameters = 0
    for p in model.parameters():
        parameters += 4 * int(np.prod(p.shape))
    names = type(optimizer).__name__
    if names in ("Adam", "AdamW"):
        state = 2 * parameters
    elif getattr(optimizer, "momentum", 0):
        state = parameters
    else:
        state = 0
    activations = 0
    width = 0
    for layer in modules(model):
        name = type(layer).__name__
        if name == "Linear":
            width = layer.out_features
            activations += batch_size * width * 4
        elif name == "ReLU":
            activations += batch_size * width * (4 + 1)
        elif name in ("Sigmoid", "Tanh", "Softmax"):
            activations += batch_size * width * 4
        elif name == "Dropout" and layer.p > 0:
            activations += batch_size * width * (4 + 4)
    total = parameters + parameters + state + activations
    return {"parameters": parameters, "gradients": parameters, "optimizer_state": state,
            "activations": activations, "total": total}
