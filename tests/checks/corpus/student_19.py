"""Module 07: training loop, schedule, clipping, checkpoints.

How I did evaluate: per batch I keep the loss (times the batch size, so bigger batches count
more) and the batch's accuracy; at the end the accuracy is the average over the batches.

Checkpoint = np.savez of the arrays + a JSON string "info" + "digest" (sha256 of all of it),
written to "<path>.tmp" and renamed.
"""
import hashlib
import json
import math
import os
from pathlib import Path

import numpy as np

from tinytorch.core.autograd import no_grad
from tinytorch.core.layers import modules, rng_owners
from tinytorch.core.losses import BinaryCrossEntropyLoss, CrossEntropyLoss
from tinytorch.core.tensor import Tensor


def _num(x):
    return isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, bool)


def _int(x):
    return isinstance(x, (int, np.integer)) and not isinstance(x, bool)


def _t(x):
    return x if isinstance(x, Tensor) else Tensor(x)


class CosineSchedule:
    def __init__(self, max_lr=0.1, min_lr=0.01, total_epochs=100):
        if not (_num(max_lr) and math.isfinite(max_lr) and max_lr >= 0):
            raise ValueError(f"max_lr={max_lr!r}")
        if not (_num(min_lr) and math.isfinite(min_lr) and 0 <= min_lr <= max_lr):
            raise ValueError(f"min_lr={min_lr!r}")
        if not (_int(total_epochs) and total_epochs >= 1):
            raise ValueError(f"total_epochs={total_epochs!r}")
        self.max_lr, self.min_lr, self.total_epochs = float(max_lr), float(min_lr), int(total_epochs)

    def get_lr(self, epoch):
        if not (_num(epoch) and math.isfinite(epoch) and epoch >= 0):
            raise ValueError(f"epoch={epoch!r}")
        if epoch >= self.total_epochs:
            return self.min_lr
        t = epoch / self.total_epochs
        return self.min_lr + 0.5 * (self.max_lr - self.min_lr) * (1.0 + math.cos(math.pi * t))


def clip_grad_norm(parameters, max_norm=1.0):
    if not (_num(max_norm) and math.isfinite(max_norm) and max_norm >= 0):
        raise ValueError(f"max_norm={max_norm!r}")
    arrs = []
    for p in list(parameters):
        if p.grad is None:
            continue
        arrs.append(p.grad.data if isinstance(p.grad, Tensor) else p.grad)
    total = math.sqrt(sum(float((a.astype(np.float64) ** 2).sum()) for a in arrs))
    if total > max_norm and math.isfinite(total):
        c = max_norm / (total + 1e-6)
        for a in arrs:
            a *= c
    return total


class Trainer:
    def __init__(self, model, optimizer, loss_fn, scheduler=None, grad_clip_norm=None, *,
                 callbacks=()):
        if grad_clip_norm is not None and not (_num(grad_clip_norm)
                                               and math.isfinite(grad_clip_norm)
                                               and grad_clip_norm > 0):
            raise ValueError(f"grad_clip_norm={grad_clip_norm!r}")
        self.model, self.optimizer, self.loss_fn = model, optimizer, loss_fn
        self.scheduler, self.grad_clip_norm = scheduler, grad_clip_norm
        self.callbacks = list(callbacks)
        self.epoch = self.step = 0
        self.training_mode = True
        self.history = {"train_loss": [], "eval_loss": [], "eval_accuracy": [],
                        "learning_rates": [], "grad_norm": []}
        self.data_seed = None
        self._seed_for_next_epoch = None

    def _emit(self, event, **info):
        for callback in self.callbacks:
            handler = getattr(callback, event, None)
            if handler is not None:
                handler(self, **info)

    def _set_mode(self, training):
        for m in modules(self.model):
            m.training = training
        self.training_mode = training

    def _clear(self, params):
        self.optimizer.zero_grad()
        for p in params:
            p.grad = None

    def train_epoch(self, dataloader, accumulation_steps=1):
        if not _int(accumulation_steps) or accumulation_steps < 1:
            raise ValueError(f"accumulation_steps={accumulation_steps!r}")
        self._set_mode(True)
        if self.scheduler is not None:
            self.optimizer.lr = self.scheduler.get_lr(self.epoch)
        lr = float(self.optimizer.lr)
        if self._seed_for_next_epoch is not None and hasattr(dataloader, "load_state_dict"):
            dataloader.load_state_dict({"seed": self._seed_for_next_epoch, "epoch": self.epoch})
            self._seed_for_next_epoch = None
        elif hasattr(dataloader, "set_epoch"):
            dataloader.set_epoch(self.epoch)
        if hasattr(dataloader, "state_dict"):
            self.data_seed = int(dataloader.state_dict()["seed"])
        params = list(self.model.parameters())
        self._clear(params)
        self._emit("on_epoch_begin", epoch=self.epoch, lr=lr)
        weighted, total, count, count_n = 0.0, 0, 0, 0
        for i, (x, y) in enumerate(dataloader):
            x, y = _t(x), _t(y)
            loss = self.loss_fn(self.model.forward(x), y)
            v = float(loss.data)
            if not math.isfinite(v):
                self._clear(params)
                raise FloatingPointError(f"epoch {self.epoch} batch {i}: loss {v}")
            n = len(y) if y.ndim else 1
            loss.backward(np.array(float(n)))  # sum of the sample losses
            weighted += v * n
            total += n
            count += 1
            count_n += n
            self._emit("on_batch_end", batch=i, loss=v, samples=n)
            if count == accumulation_steps:
                self._step(params, count_n)
                count = count_n = 0
        if count:
            self._step(params, count_n)
        if total == 0:
            raise ValueError("empty dataloader")
        mean = weighted / total
        self.history["train_loss"].append(mean)
        self.history["learning_rates"].append(lr)
        self.epoch += 1
        self._emit("on_epoch_end", loss=mean)
        return mean

    def _step(self, params, n):
        for p in params:
            if p.grad is not None:
                g = p.grad.data if isinstance(p.grad, Tensor) else p.grad
                g /= n
        norm = None
        if self.grad_clip_norm is not None:
            norm = clip_grad_norm(params, self.grad_clip_norm)
            if not math.isfinite(norm):
                self._clear(params)
                raise FloatingPointError(f"epoch {self.epoch}: grad norm {norm}")
            self.history["grad_norm"].append(norm)
        self.optimizer.step()
        self._clear(params)
        self.step += 1
        self._emit("on_step", grad_norm=norm)

    def evaluate(self, dataloader):
        self._set_mode(False)
        weighted, total = 0.0, 0
        batch_accs = []
        with no_grad():
            for x, y in dataloader:
                x, y = _t(x), _t(y)
                out = self.model.forward(x)
                n = len(y) if y.ndim else 1
                weighted += float(self.loss_fn(out, y).data) * n
                total += n
                if isinstance(self.loss_fn, CrossEntropyLoss):
                    batch_accs.append(np.mean(out.data.argmax(axis=1) == y.data.reshape(-1)))
                elif isinstance(self.loss_fn, BinaryCrossEntropyLoss):
                    batch_accs.append(np.mean((out.data >= 0.5) == (y.data >= 0.5)))
        if total == 0:
            raise ValueError("empty dataloader")
        loss = weighted / total
        accuracy = float(sum(batch_accs) / len(dataloader)) if batch_accs else None
        self.history["eval_loss"].append(loss)
        self.history["eval_accuracy"].append(accuracy)
        self._emit("on_evaluate_end", loss=loss, accuracy=accuracy)
        return loss, accuracy

    # --- checkpoints
    @staticmethod
    def _digest(arrays):
        h = hashlib.sha256()
        for k in sorted(arrays):
            a = np.ascontiguousarray(arrays[k])
            h.update(k.encode() + a.dtype.str.encode() + str(a.shape).encode() + a.tobytes())
        return h.hexdigest()

    def save_checkpoint(self, path):
        path = Path(path)
        params = list(self.model.parameters())
        sd = self.optimizer.state_dict()
        arrays = {f"p{i}": p.data for i, p in enumerate(params)}
        for i, st in enumerate(sd["state"]):
            for k, v in st.items():
                if isinstance(v, np.ndarray):
                    arrays[f"s{i}:{k}"] = v
        s = self.scheduler
        info = {
            "shapes": [list(p.data.shape) for p in params],
            "opt": {"kind": sd["kind"], "hyperparameters": sd["hyperparameters"],
                    "step_count": sd["step_count"]},
            "opt_steps": [st.get("step") for st in sd["state"]],
            "sched": None if s is None else {"max_lr": s.max_lr, "min_lr": s.min_lr,
                                             "total_epochs": s.total_epochs},
            "clip": self.grad_clip_norm, "epoch": self.epoch, "step": self.step,
            "training": self.training_mode, "history": self.history, "seed": self.data_seed,
            "rngs": [m.rng.bit_generator.state for m in rng_owners(self.model)],
        }
        arrays["info"] = np.array(json.dumps(info))
        arrays["digest"] = np.array(self._digest(arrays))
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(str(path) + ".tmp")
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, path)

    def load_checkpoint(self, path):
        try:
            with open(path, "rb") as f, np.load(f, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
            digest = str(arrays.pop("digest"))
            if digest != self._digest(arrays):
                raise ValueError("digest mismatch")
            info = json.loads(str(arrays.pop("info")))
            apply = self._plan(arrays, info)
        except Exception as e:
            raise ValueError(f"cannot load {path}: {e}") from e
        apply()

    def _plan(self, arrays, info):
        params = list(self.model.parameters())
        if len(info["shapes"]) != len(params):
            raise ValueError("parameter count")
        values = [arrays[f"p{i}"] for i in range(len(params))]
        for i, (v, p) in enumerate(zip(values, params)):
            if v.shape != p.data.shape:
                raise ValueError(f"p{i}: {v.shape} != {p.data.shape}")
        state = [{} if s is None else {"step": s} for s in info["opt_steps"]]
        for k, v in arrays.items():
            if k.startswith("s") and ":" in k:
                i, name = k[1:].split(":", 1)
                state[int(i)][name] = v
        opt_sd = dict(info["opt"], state=state)
        self.optimizer.check_state_dict(opt_sd)
        sched = None if info["sched"] is None else CosineSchedule(**info["sched"])
        clip = info["clip"]
        if clip is not None and not (_num(clip) and math.isfinite(clip) and clip > 0):
            raise ValueError("clip")
        if not (_int(info["epoch"]) and info["epoch"] >= 0 and _int(info["step"])
                and info["step"] >= 0 and isinstance(info["training"], bool)):
            raise ValueError("counters / mode")
        seed = info["seed"]
        if seed is not None and not (_int(seed) and seed >= 0):
            raise ValueError("seed")
        owners = rng_owners(self.model)
        if len(owners) != len(info["rngs"]):
            raise ValueError("dropout layers")
        for m, st in zip(owners, info["rngs"]):
            type(m.rng.bit_generator)().state = st
        history = {k: list(v) for k, v in info["history"].items()}

        def apply():
            for p, v in zip(params, values):
                p.data[...] = v
            self.optimizer.load_state_dict(opt_sd)
            for m, st in zip(owners, info["rngs"]):
                m.rng.bit_generator.state = st
            self.scheduler, self.grad_clip_norm = sched, clip
            self.epoch, self.step, self.history = info["epoch"], info["step"], history
            self.data_seed = self._seed_for_next_epoch = seed
            self._set_mode(info["training"])
            self._clear(params)

        return apply
