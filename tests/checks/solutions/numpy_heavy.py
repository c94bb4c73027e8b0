"""Alternative solution leaning on numpy: each batch is back-propagated on its own and its
gradient, times its sample count, is summed into a float64 buffer; at the end of a window the
buffers divided by the window's sample count are written back to ``.grad`` and the optimizer
steps on them.

Checkpoint: ``np.savez`` (read back with ``allow_pickle=False``) with a JSON header stored as
uint8 bytes under ``header``; the header carries a SHA-256 checksum of every array and of itself.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

import numpy as np

from tinytorch.core.autograd import no_grad
from tinytorch.core.layers import rng_owners, set_training
from tinytorch.core.losses import BinaryCrossEntropyLoss, CrossEntropyLoss
from tinytorch.core.tensor import Tensor

NUMBER = (int, float, np.integer, np.floating)


class TrainingDivergedError(FloatingPointError):
    """NaN or inf loss or gradient norm; the window it belongs to was not applied."""


class CheckpointError(ValueError):
    """The checkpoint cannot be used; nothing was changed."""


def _finite_number(x) -> bool:
    return isinstance(x, NUMBER) and not isinstance(x, bool) and bool(np.isfinite(x))


def _count(x, lowest) -> bool:
    return isinstance(x, int | np.integer) and not isinstance(x, bool) and x >= lowest


class CosineSchedule:
    """Cosine annealing, min_lr + 0.5 * (max_lr - min_lr) * (1 + cos(pi * e / total_epochs)),
    clamped to min_lr from total_epochs on. Optional linear warmup of ``warmup_epochs`` epochs
    (max_lr * (e + 1) / (warmup + 1)), after which the cosine spans the remaining epochs."""

    def __init__(self, max_lr=0.1, min_lr=0.01, total_epochs=100, warmup_epochs=0):
        if not _finite_number(max_lr) or max_lr < 0:
            raise ValueError(f"max_lr must be finite and >= 0, got {max_lr!r}")
        if not _finite_number(min_lr) or min_lr < 0:
            raise ValueError(f"min_lr must be finite and >= 0, got {min_lr!r}")
        if min_lr > max_lr:
            raise ValueError(f"min_lr {min_lr!r} exceeds max_lr {max_lr!r}")
        if not _count(total_epochs, 1):
            raise ValueError(f"total_epochs must be a positive integer, got {total_epochs!r}")
        if not _count(warmup_epochs, 0) or warmup_epochs >= total_epochs:
            raise ValueError(f"warmup_epochs must be in [0, total_epochs), got {warmup_epochs!r}")
        self.max_lr, self.min_lr = float(max_lr), float(min_lr)
        self.total_epochs, self.warmup_epochs = int(total_epochs), int(warmup_epochs)

    def get_lr(self, epoch) -> float:
        if not _finite_number(epoch) or epoch < 0:
            raise ValueError(f"epoch must be a finite number >= 0, got {epoch!r}")
        if epoch >= self.total_epochs:
            return self.min_lr
        if epoch < self.warmup_epochs:
            return float(self.max_lr * (epoch + 1) / (self.warmup_epochs + 1))
        span = self.total_epochs - self.warmup_epochs
        half_cos = 0.5 * (1.0 + np.cos(np.pi * (epoch - self.warmup_epochs) / span))
        # written as max_lr minus the decay so that the first cosine epoch is max_lr exactly
        lr = self.max_lr - (self.max_lr - self.min_lr) * (1.0 - half_cos)
        return float(np.clip(lr, self.min_lr, self.max_lr))


def clip_grad_norm(parameters, max_norm=1.0) -> float:
    """Global-norm clipping (torch.nn.utils.clip_grad_norm_ with eps 1e-6). Returns the norm
    before clipping. Squares are summed in float64, so huge finite gradients do not overflow.
    If the norm is NaN or inf it is returned and the gradients are left as they are."""
    if not _finite_number(max_norm) or max_norm < 0:
        raise ValueError(f"max_norm must be a finite number >= 0, got {max_norm!r}")
    if isinstance(parameters, Tensor):
        parameters = (parameters,)
    grads = [_grad_array(p.grad) for p in parameters if p.grad is not None]
    total = float(np.sqrt(np.sum([np.sum(np.square(g, dtype=np.float64)) for g in grads])))
    if total > max_norm and np.isfinite(total):
        factor = max_norm / (total + 1e-6)
        for g in grads:
            np.multiply(g, factor, out=g, casting="unsafe")
    return total


def _grad_array(grad):
    """A .grad may hold a Tensor or a plain ndarray (ndarray has a .data too: a memoryview)."""
    return grad.data if isinstance(grad, Tensor) else grad


def _as_tensor(x):
    return x if isinstance(x, Tensor) else Tensor(x)


def _batch_size(targets) -> int:
    return int(np.shape(targets.data)[0]) if targets.data.ndim else 1


class Trainer:
    """Trains ``model`` with ``optimizer`` on ``loss_fn``; see the module docstring.

    evaluate() accuracy: argmax for CrossEntropyLoss, 0.5 threshold for BinaryCrossEntropyLoss,
    None for other losses."""

    def __init__(self, model, optimizer, loss_fn, scheduler=None, grad_clip_norm=None, *,
                 callbacks=()):
        if grad_clip_norm is not None and not (_finite_number(grad_clip_norm)
                                               and grad_clip_norm > 0):
            raise ValueError(f"grad_clip_norm must be None or > 0, got {grad_clip_norm!r}")
        self.model, self.optimizer, self.loss_fn = model, optimizer, loss_fn
        self.scheduler = scheduler
        self.grad_clip_norm = None if grad_clip_norm is None else float(grad_clip_norm)
        self.epoch, self.step, self.training_mode = 0, 0, True
        self.history = {"train_loss": [], "learning_rates": [], "eval_loss": [],
                        "eval_accuracy": [], "grad_norm": []}
        self._loader_seed = None
        self._seed_to_restore = None
        self.callbacks = list(callbacks)

    def _emit(self, event, **info):
        """Call ``event`` on every callback that defines it (the trainer first)."""
        for callback in self.callbacks:
            handler = getattr(callback, event, None)
            if handler is not None:
                handler(self, **info)

    def _set_training(self, flag):
        set_training(self.model, flag)
        self.training_mode = flag

    def _zero(self, params):
        self.optimizer.zero_grad()
        for p in params:
            p.grad = None

    def train_epoch(self, dataloader, accumulation_steps=1) -> float:
        if not _count(accumulation_steps, 1):
            raise ValueError(f"accumulation_steps must be a positive int, got "
                             f"{accumulation_steps!r}")
        self._set_training(True)
        if self.scheduler is not None:
            self.optimizer.lr = self.scheduler.get_lr(self.epoch)
        epoch_lr = float(self.optimizer.lr)
        if self._seed_to_restore is not None and hasattr(dataloader, "load_state_dict"):
            dataloader.load_state_dict({"seed": self._seed_to_restore, "epoch": self.epoch})
            self._seed_to_restore = None
        elif hasattr(dataloader, "set_epoch"):
            dataloader.set_epoch(self.epoch)
        if hasattr(dataloader, "state_dict"):
            self._loader_seed = int(dataloader.state_dict()["seed"])
        params = list(self.model.parameters())
        self._zero(params)
        self._emit("on_epoch_begin", epoch=self.epoch, lr=epoch_lr)

        sums = [None] * len(params)  # float64 sum of n_b * grad_b over the window
        losses, sizes = [], []
        in_window = window_n = 0
        for b, (inputs, targets) in enumerate(dataloader):
            targets = _as_tensor(targets)
            loss = self.loss_fn(self.model.forward(_as_tensor(inputs)), targets)
            value = float(np.ravel(loss.data)[0])
            if not np.isfinite(value):
                self._zero(params)
                raise TrainingDivergedError(f"loss became {value} in epoch {self.epoch} at batch "
                                            f"{b}; the current window was discarded")
            n = _batch_size(targets)
            loss.backward()
            for i, p in enumerate(params):
                if p.grad is not None:
                    g = np.asarray(_grad_array(p.grad), dtype=np.float64) * n
                    sums[i] = g if sums[i] is None else sums[i] + g
                    p.grad = None
            losses.append(value)
            sizes.append(n)
            self._emit("on_batch_end", batch=b, loss=value, samples=n)
            in_window, window_n = in_window + 1, window_n + n
            if in_window == accumulation_steps:
                self._step(params, sums, window_n)
                sums, in_window, window_n = [None] * len(params), 0, 0
        if in_window:
            self._step(params, sums, window_n)
        if not sizes:
            raise ValueError("dataloader is empty")
        mean = float(np.dot(losses, sizes) / np.sum(sizes))
        self.history["train_loss"].append(mean)
        self.history["learning_rates"].append(epoch_lr)
        self.epoch += 1
        self._emit("on_epoch_end", loss=mean)
        return mean

    def _step(self, params, sums, window_n):
        for p, s in zip(params, sums, strict=True):
            p.grad = None if s is None else Tensor((s / window_n).astype(np.float32))
        norm = None
        if self.grad_clip_norm is not None:
            norm = clip_grad_norm(params, self.grad_clip_norm)
            if not np.isfinite(norm):
                self._zero(params)
                raise TrainingDivergedError(f"gradient norm {norm} in epoch {self.epoch} at "
                                            f"step {self.step}; update skipped")
            self.history["grad_norm"].append(norm)
        self.optimizer.step()
        self._zero(params)
        self.step += 1
        self._emit("on_step", grad_norm=norm)

    def evaluate(self, dataloader):
        self._set_training(False)
        totals = np.zeros(4)  # loss * n, n, correct, judged
        with no_grad():
            for inputs, targets in dataloader:
                targets = _as_tensor(targets)
                out = self.model.forward(_as_tensor(inputs))
                n = _batch_size(targets)
                totals[:2] += (float(np.ravel(self.loss_fn(out, targets).data)[0]) * n, n)
                if isinstance(self.loss_fn, CrossEntropyLoss):
                    labels = np.ravel(targets.data)
                    hits = np.count_nonzero(np.argmax(out.data, axis=1) == labels)
                    totals[2:] += (hits, labels.size)
                elif isinstance(self.loss_fn, BinaryCrossEntropyLoss):
                    hits = np.count_nonzero((out.data >= 0.5) == (targets.data >= 0.5))
                    totals[2:] += (hits, targets.data.size)
        if totals[1] == 0:
            raise ValueError("dataloader is empty")
        loss = float(totals[0] / totals[1])
        accuracy = float(totals[2] / totals[3]) if totals[3] else None
        self.history["eval_loss"].append(loss)
        self.history["eval_accuracy"].append(accuracy)
        self._emit("on_evaluate_end", loss=loss, accuracy=accuracy)
        return loss, accuracy

    # ------------------------------------------------------------------ checkpoints
    def save_checkpoint(self, path):
        target = Path(path)
        params = list(self.model.parameters())
        sd = self.optimizer.state_dict()
        arrays = {f"w{i}": p.data for i, p in enumerate(params)}
        for i, st in enumerate(sd["state"]):
            arrays.update({f"s{i}_{k}": v for k, v in st.items() if k != "step"})
        sch = self.scheduler
        header = {
            "optimizer": {"kind": sd["kind"], "hyperparameters": sd["hyperparameters"],
                          "step_count": sd["step_count"],
                          "steps": [st.get("step") for st in sd["state"]]},
            "scheduler": None if sch is None else {
                "kind": type(sch).__name__,
                "args": [getattr(sch, a, None) for a in
                         ("max_lr", "min_lr", "total_epochs", "warmup_epochs")]},
            "trainer": {"grad_clip_norm": self.grad_clip_norm, "epoch": self.epoch,
                        "step": self.step, "training_mode": self.training_mode,
                        "history": self.history, "loader_seed": self._loader_seed},
            "rng": [o.rng.bit_generator.state for o in rng_owners(self.model)],
            "checksums": {k: _checksum(v) for k, v in arrays.items()},
        }
        header["self_sha"] = hashlib.sha256(json.dumps(header, sort_keys=True).encode()).hexdigest()
        arrays["header"] = np.frombuffer(json.dumps(header).encode("utf-8"), dtype=np.uint8)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = tempfile.NamedTemporaryFile(dir=target.parent, prefix=".tmp-", delete=False)
        try:
            with tmp:
                np.savez(tmp, **arrays)
                tmp.flush()
                os.fsync(tmp.fileno())
            Path(tmp.name).replace(target)
        except BaseException:
            Path(tmp.name).unlink(missing_ok=True)
            raise
        return target

    def load_checkpoint(self, path):
        try:
            with open(path, "rb") as fh, np.load(fh, allow_pickle=False) as npz:
                arrays = {k: np.array(npz[k]) for k in npz.files}
            header = json.loads(arrays.pop("header").tobytes())
            claimed = header.pop("self_sha")
            if hashlib.sha256(json.dumps(header, sort_keys=True).encode()).hexdigest() != claimed:
                raise ValueError("header checksum mismatch")
            if header["checksums"] != {k: _checksum(v) for k, v in arrays.items()}:
                raise ValueError("array checksum mismatch (damaged, edited or incomplete)")
            commit = self._prepare(arrays, header)
        except Exception as exc:
            raise CheckpointError(f"checkpoint {str(path)!r} is unusable: {exc}") from exc
        commit()

    def _prepare(self, arrays, header):
        params = list(self.model.parameters())
        if sum(k.startswith("w") for k in arrays) != len(params):
            raise ValueError("number of parameters differs from the model's")
        weights = [arrays[f"w{i}"] for i in range(len(params))]
        if [w.shape for w in weights] != [p.data.shape for p in params]:
            raise ValueError("parameter shapes differ from the model's")
        opt = header["optimizer"]
        if len(opt["steps"]) != len(params):
            raise ValueError("optimizer state length differs")
        states = [{} if s is None else {"step": s} for s in opt["steps"]]
        for k, v in arrays.items():
            if k.startswith("s"):
                idx, name = k[1:].split("_", 1)
                states[int(idx)][name] = v
        sd = {"kind": opt["kind"], "hyperparameters": opt["hyperparameters"],
              "step_count": opt["step_count"], "state": states}
        self.optimizer.check_state_dict(sd)
        sch = header["scheduler"]
        if sch is None:
            scheduler = None
        elif sch["kind"] == "CosineSchedule":
            scheduler = CosineSchedule(*sch["args"])
        elif sch["kind"] == type(self.scheduler).__name__:
            scheduler = self.scheduler
        else:
            raise ValueError(f"scheduler kind {sch['kind']} does not match")
        t = header["trainer"]
        clip = t["grad_clip_norm"]
        if clip is not None and not (_finite_number(clip) and clip > 0):
            raise ValueError("invalid grad_clip_norm")
        if not (_count(t["epoch"], 0) and _count(t["step"], 0)):
            raise ValueError("invalid epoch or step")
        if not isinstance(t["training_mode"], bool):
            raise ValueError("invalid training_mode")
        hist = t["history"]
        if not isinstance(hist, dict) or any(not isinstance(v, list) for v in hist.values()):
            raise ValueError("invalid history")
        seed = t["loader_seed"]
        if seed is not None and not _count(seed, 0):
            raise ValueError("invalid loader seed")
        owners = rng_owners(self.model)
        if len(owners) != len(header["rng"]):
            raise ValueError("random layer count differs")
        for o, st in zip(owners, header["rng"], strict=True):
            type(o.rng.bit_generator)().state = st

        def commit():
            for p, w in zip(params, weights, strict=True):
                np.copyto(p.data, w)
            self.optimizer.load_state_dict(sd)
            for o, st in zip(owners, header["rng"], strict=True):
                o.rng.bit_generator.state = st
            self.scheduler, self.grad_clip_norm = scheduler, clip if clip is None else float(clip)
            self.epoch, self.step = int(t["epoch"]), int(t["step"])
            self.history = json.loads(json.dumps(hist))
            self._loader_seed = self._seed_to_restore = seed
            self._set_training(t["training_mode"])
            self._zero(params)

        return commit


def _checksum(a) -> str:
    a = np.ascontiguousarray(a)
    return hashlib.sha256(f"{a.dtype.str}{a.shape}".encode() + a.tobytes()).hexdigest()


def training_memory(model, optimizer, batch_size):
    """Bytes by component, from the dtypes' itemsizes and a table of bytes per kept number."""
    from tinytorch.core.activations import ReLU, Sigmoid, Softmax, Tanh
    from tinytorch.core.layers import Dropout, Linear, modules
    from tinytorch.core.optimizers import SGD, Adam

    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    f32, mask = np.dtype(np.float32).itemsize, np.dtype(np.bool_).itemsize
    sizes = np.array([p.data.size for p in model.parameters()], dtype=np.int64)
    params = int(sizes.sum()) * f32
    copies = {SGD: lambda o: int(o.momentum != 0), Adam: lambda o: 2}
    kind = next(k for k in copies if isinstance(optimizer, k))
    per_number = {ReLU: f32 + mask, Sigmoid: f32, Tanh: f32, Softmax: f32}
    kept, width = 0, 0
    for layer in modules(model):
        if isinstance(layer, Linear):
            width = layer.out_features
            kept += f32 * batch_size * width
        elif isinstance(layer, Dropout):
            kept += 2 * f32 * batch_size * width if layer.p else 0
        else:
            kept += next((b for k, b in per_number.items() if isinstance(layer, k)), 0) * \
                batch_size * width
    parts = {"parameters": params, "gradients": params,
             "optimizer_state": copies[kind](optimizer) * params, "activations": kept}
    return {**parts, "total": int(np.sum(list(parts.values())))}
