# TinyTorch Module 07 -- training
# checkpoint file = first line: sha256 of the rest, then one JSON object (arrays as nested lists)
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


def _num(x):
    return not isinstance(x, bool) and isinstance(x, (int, float, np.integer, np.floating))


class CosineSchedule:
    def __init__(self, max_lr=0.1, min_lr=0.01, total_epochs=100):
        if not (_num(max_lr) and math.isfinite(max_lr) and max_lr >= 0):
            raise ValueError("max_lr: need a finite value >= 0")
        if not (_num(min_lr) and math.isfinite(min_lr) and min_lr >= 0):
            raise ValueError("min_lr: need a finite value >= 0")
        if min_lr > max_lr:
            raise ValueError("min_lr: must be <= max_lr")
        if not isinstance(total_epochs, int) or isinstance(total_epochs, bool) or total_epochs < 1:
            raise ValueError("total_epochs: need a positive integer")
        self.max_lr, self.min_lr, self.total_epochs = float(max_lr), float(min_lr), total_epochs

    def get_lr(self, epoch):
        if not (_num(epoch) and math.isfinite(epoch) and epoch >= 0):
            raise ValueError("epoch: need a number >= 0")
        if epoch >= self.total_epochs:
            return self.min_lr
        w = 0.5 * (1 + math.cos(math.pi * epoch / self.total_epochs))
        return self.min_lr + w * (self.max_lr - self.min_lr)


def clip_grad_norm(parameters, max_norm=1.0):
    if not (_num(max_norm) and math.isfinite(max_norm) and max_norm >= 0):
        raise ValueError("max_norm: need a finite value >= 0")
    gl = [p.grad.data if isinstance(p.grad, Tensor) else p.grad
          for p in parameters if p.grad is not None]
    total = float(np.sqrt(sum(np.sum(g * g) for g in gl)))
    if total > max_norm and math.isfinite(total):
        for g in gl:
            g *= max_norm / (total + 1e-6)
    return total


class Trainer:
    def __init__(self, model, optimizer, loss_fn, scheduler=None, grad_clip_norm=None,
                 callbacks=()):
        if grad_clip_norm is not None and not (_num(grad_clip_norm) and math.isfinite(grad_clip_norm)
                                               and grad_clip_norm > 0):
            raise ValueError("grad_clip_norm: need None or a finite value > 0")
        self.model, self.optimizer, self.loss_fn = model, optimizer, loss_fn
        self.scheduler, self.grad_clip_norm = scheduler, grad_clip_norm
        self.epoch, self.step, self.training_mode = 0, 0, True
        self.history = {"train_loss": [], "eval_loss": [], "eval_accuracy": [], "learning_rates": [],
                        "grad_norm": []}
        self.loader_seed, self._pending_seed = None, None
        self.callbacks = list(callbacks)

    def _emit(self, event, **info):
        for cb in self.callbacks:
            fn = getattr(cb, event, None)
            if fn is not None:
                fn(self, **info)

    def _zero(self):
        self.optimizer.zero_grad()
        for p in self.model.parameters():
            p.grad = None

    def _order(self, dl):
        if self._pending_seed is not None and hasattr(dl, "load_state_dict"):
            dl.load_state_dict({"seed": self._pending_seed, "epoch": self.epoch})
            self._pending_seed = None
        elif hasattr(dl, "set_epoch"):
            dl.set_epoch(self.epoch)
        if hasattr(dl, "state_dict"):
            self.loader_seed = dl.state_dict()["seed"]

    def train_epoch(self, dataloader, accumulation_steps=1):
        if not isinstance(accumulation_steps, int) or isinstance(accumulation_steps, bool) \
                or accumulation_steps < 1:
            raise ValueError("accumulation_steps: need a positive integer")
        set_training(self.model, True)
        self.training_mode = True
        if self.scheduler is not None:
            self.optimizer.lr = self.scheduler.get_lr(self.epoch)
        lr = float(self.optimizer.lr)
        self._order(dataloader)
        self._zero()
        self._emit("on_epoch_begin", epoch=self.epoch, lr=lr)
        tot, cnt, acc = 0.0, 0, 0
        for bi, (x, y) in enumerate(dataloader):
            x = x if isinstance(x, Tensor) else Tensor(x)
            y = y if isinstance(y, Tensor) else Tensor(y)
            loss = self.loss_fn(self.model.forward(x), y)
            lv = float(loss.data)
            if not math.isfinite(lv):
                self._zero()
                raise FloatingPointError(f"loss {lv} at epoch {self.epoch}, batch {bi}")
            loss.backward()          # grads add up over the window
            tot += lv * len(y)
            cnt += len(y)
            self._emit("on_batch_end", batch=bi, loss=lv, samples=len(y))
            acc += 1
            if acc == accumulation_steps:
                self._apply()
                acc = 0
        if acc:
            self._apply()
        self.history["train_loss"].append(tot / cnt)
        self.history["learning_rates"].append(lr)
        self.epoch += 1
        self._emit("on_epoch_end", loss=tot / cnt)
        return tot / cnt

    def _apply(self):
        ps = list(self.model.parameters())
        n = None
        if self.grad_clip_norm is not None:
            n = clip_grad_norm(ps, self.grad_clip_norm)
            if not math.isfinite(n):
                self._zero()
                raise FloatingPointError(f"grad norm {n} at epoch {self.epoch}")
            self.history["grad_norm"].append(n)
        self.optimizer.step()
        self._zero()
        self.step += 1
        self._emit("on_step", grad_norm=n)

    def evaluate(self, dataloader):
        set_training(self.model, False)
        self.training_mode = False
        tot, cnt, ok, judged = 0.0, 0, 0, 0
        with no_grad():
            for x, y in dataloader:
                x = x if isinstance(x, Tensor) else Tensor(x)
                y = y if isinstance(y, Tensor) else Tensor(y)
                out = self.model.forward(x)
                tot += float(self.loss_fn(out, y).data) * len(y)
                cnt += len(y)
                if isinstance(self.loss_fn, CrossEntropyLoss):
                    ok += int((out.data.argmax(-1) == y.data).sum())
                    judged += len(y)
                elif isinstance(self.loss_fn, BinaryCrossEntropyLoss):
                    ok += int(((out.data >= 0.5) == (y.data >= 0.5)).sum())
                    judged += y.data.size
        r = (tot / cnt, ok / judged if judged else None)
        self.history["eval_loss"].append(r[0])
        self.history["eval_accuracy"].append(r[1])
        self._emit("on_evaluate_end", loss=r[0], accuracy=r[1])
        return r

    def save_checkpoint(self, path):
        path = Path(path)
        sd = self.optimizer.state_dict()
        s = self.scheduler
        doc = {
            "params": [p.data.tolist() for p in self.model.parameters()],
            "optimizer": {"kind": sd["kind"], "hyperparameters": sd["hyperparameters"],
                          "step_count": sd["step_count"],
                          "state": [{k: v.tolist() if isinstance(v, np.ndarray) else v
                                     for k, v in st.items()} for st in sd["state"]]},
            "scheduler": None if s is None else [s.max_lr, s.min_lr, s.total_epochs],
            "clip": self.grad_clip_norm, "epoch": self.epoch, "step": self.step,
            "training_mode": self.training_mode, "history": self.history,
            "loader_seed": self.loader_seed,
            "rngs": [m.rng.bit_generator.state for m in rng_owners(self.model)],
        }
        body = json.dumps(doc)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.parent / f".{path.name}.new"
        with open(tmp, "w") as f:
            f.write(hashlib.sha256(body.encode()).hexdigest() + "\n" + body)
        os.replace(tmp, path)

    def load_checkpoint(self, path):
        try:
            with open(path, "r", encoding="utf-8") as f:
                digest, body = f.read().split("\n", 1)
            if hashlib.sha256(body.encode()).hexdigest() != digest:
                raise ValueError("checksum mismatch")
            doc = json.loads(body)
            params = list(self.model.parameters())
            new = [np.asarray(v, dtype=np.float32) for v in doc["params"]]
            if len(new) != len(params) or any(a.shape != p.data.shape for a, p in zip(new, params)):
                raise ValueError("the parameters do not fit this model")
            o = doc["optimizer"]
            names = set(getattr(self.optimizer, "buffer_names", ()))
            opt_sd = dict(o, state=[{k: np.asarray(v, dtype=np.float32) if k in names else v
                                     for k, v in st.items()} for st in o["state"]])
            self.optimizer.check_state_dict(opt_sd)
            sched = None if doc["scheduler"] is None else CosineSchedule(*doc["scheduler"])
            owners = rng_owners(self.model)
            if len(owners) != len(doc["rngs"]):
                raise ValueError("the model has other Dropout layers")
            for m, st in zip(owners, doc["rngs"]):
                type(m.rng.bit_generator)().state = st
        except Exception as e:
            raise ValueError(f"{path}: bad checkpoint ({e})") from e
        for a, p in zip(new, params):
            p.data[...] = a
        self.optimizer.load_state_dict(opt_sd)
        for m, st in zip(owners, doc["rngs"]):
            m.rng.bit_generator.state = st
        self.scheduler, self.grad_clip_norm = sched, doc["clip"]
        self.epoch, self.step = doc["epoch"], doc["step"]
        self.history = {k: list(v) for k, v in doc["history"].items()}
        self.loader_seed = self._pending_seed = doc["loader_seed"]
        set_training(self.model, doc["training_mode"])
        self.training_mode = doc["training_mode"]
        self._zero()
