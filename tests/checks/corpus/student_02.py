# Module 07: training loop
# I went for a plain-JSON checkpoint (numbers as lists, a sha1 over the body) because I can open
# it in an editor and see what's in it. float32 -> python float -> json -> float32 is exact.
import hashlib
import itertools
import json
import math
import os
from pathlib import Path

import numpy as np

from tinytorch.core.autograd import no_grad
from tinytorch.core.losses import BinaryCrossEntropyLoss, CrossEntropyLoss
from tinytorch.core.tensor import Tensor

CKPT_TAG = "m07-json-v1"


def check_rate(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
        raise ValueError(f"{name} should be a number, not {value!r}")
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} should be finite and non-negative, not {value!r}")
    return float(value)


def check_count(name, value, smallest):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < smallest:
        raise ValueError(f"{name} should be an integer >= {smallest}, not {value!r}")
    return int(value)


class CosineSchedule:
    """lr goes max_lr -> min_lr along half a cosine, then stays at min_lr.
    Optional warmup: the first warmup_epochs ramp up linearly, max_lr * (e+1)/(warmup+1)."""

    def __init__(self, max_lr=0.1, min_lr=0.01, total_epochs=100, warmup_epochs=0):
        self.max_lr = check_rate("max_lr", max_lr)
        self.min_lr = check_rate("min_lr", min_lr)
        if self.min_lr > self.max_lr:
            raise ValueError("min_lr should not be larger than max_lr")
        self.total_epochs = check_count("total_epochs", total_epochs, 1)
        self.warmup_epochs = check_count("warmup_epochs", warmup_epochs, 0)
        if self.warmup_epochs >= self.total_epochs:
            raise ValueError("warmup_epochs should be smaller than total_epochs")

    def get_lr(self, epoch):
        epoch = check_rate("epoch", epoch)
        if epoch >= self.total_epochs:
            return self.min_lr
        if epoch < self.warmup_epochs:
            return self.max_lr * (epoch + 1) / (self.warmup_epochs + 1)
        frac = (epoch - self.warmup_epochs) / (self.total_epochs - self.warmup_epochs)
        return self.min_lr + 0.5 * (self.max_lr - self.min_lr) * (1.0 + math.cos(math.pi * frac))


def clip_grad_norm(parameters, max_norm=1.0):
    max_norm = check_rate("max_norm", max_norm)
    arrays = []
    for param in list(parameters):
        g = param.grad
        if g is not None:
            arrays.append(g.data if isinstance(g, Tensor) else g)
    sq = 0.0
    for a in arrays:
        a64 = np.asarray(a, dtype=np.float64)
        sq += float(np.dot(a64.ravel(), a64.ravel()))
    norm = math.sqrt(sq)
    if norm > max_norm and math.isfinite(norm):
        ratio = max_norm / (norm + 1e-6)
        for a in arrays:
            np.multiply(a, ratio, out=a, casting="unsafe")
    return norm  # the norm BEFORE clipping; inf/nan: nothing touched


def every_layer(root):
    """root and every object with a forward() reachable from it (attributes, lists, dicts)."""
    found, todo, seen = [], [root], set()
    while todo:
        obj = todo.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        found.append(obj)
        for value in getattr(obj, "__dict__", {}).values():
            items = value.values() if isinstance(value, dict) else (
                value if isinstance(value, (list, tuple)) else [value])
            for item in items:
                if hasattr(item, "forward") and not isinstance(item, (type, Tensor)):
                    todo.append(item)
    return found


def pack(a):
    a = np.asarray(a)
    return {"dtype": str(a.dtype), "shape": list(a.shape), "values": a.ravel().tolist()}


def unpack(d):
    if d["dtype"] not in ("float32", "float64"):
        raise ValueError(f"unexpected dtype {d['dtype']!r}")
    return np.array(d["values"], dtype=d["dtype"]).reshape(d["shape"])


class Trainer:
    def __init__(self, model, optimizer, loss_fn, scheduler=None, grad_clip_norm=None,
                 callbacks=()):
        if grad_clip_norm is not None:
            grad_clip_norm = check_rate("grad_clip_norm", grad_clip_norm)
            if grad_clip_norm == 0:
                raise ValueError("grad_clip_norm should be > 0 (or None for no clipping)")
        self.model, self.optimizer, self.loss_fn = model, optimizer, loss_fn
        self.scheduler, self.grad_clip_norm = scheduler, grad_clip_norm
        self.epoch, self.step, self.training_mode = 0, 0, True
        self.history = dict(train_loss=[], eval_loss=[], eval_accuracy=[], learning_rates=[],
                            grad_norm=[])
        self.shuffle_seed = self.pending_seed = None
        self.callbacks = list(callbacks)

    def emit(self, event, **info):
        """Call `event` on every callback that has it (the trainer goes first)."""
        for cb in self.callbacks:
            if hasattr(cb, event):
                getattr(cb, event)(self, **info)

    def set_mode(self, on):
        for layer in every_layer(self.model):
            layer.training = on
        self.training_mode = on

    def clear_grads(self):
        self.optimizer.zero_grad()
        for p in self.model.parameters():
            p.grad = None

    def train_epoch(self, dataloader, accumulation_steps=1):
        k = check_count("accumulation_steps", accumulation_steps, 1)
        self.set_mode(True)
        if self.scheduler is not None:
            self.optimizer.lr = self.scheduler.get_lr(self.epoch)
        epoch_lr = float(self.optimizer.lr)
        if hasattr(dataloader, "state_dict") and hasattr(dataloader, "load_state_dict"):
            order = dataloader.state_dict()
            order["epoch"] = self.epoch  # replay the order of THIS epoch
            if self.pending_seed is not None:
                order["seed"], self.pending_seed = self.pending_seed, None
            dataloader.load_state_dict(order)
            self.shuffle_seed = int(order["seed"])
        self.clear_grads()
        self.emit("on_epoch_begin", epoch=self.epoch, lr=epoch_lr)

        batches = iter(dataloader)
        loss_sum, count, batch_no = 0.0, 0, 0
        while True:
            window = [(x if isinstance(x, Tensor) else Tensor(x),
                       y if isinstance(y, Tensor) else Tensor(y))
                      for x, y in itertools.islice(batches, k)]
            if not window:
                break
            sizes = [len(y) if y.ndim else 1 for _, y in window]
            window_total = sum(sizes)
            for (x, y), n in zip(window, sizes):
                loss = self.loss_fn(self.model.forward(x), y)
                val = float(np.asarray(loss.data).reshape(-1)[0])
                if not math.isfinite(val):
                    self.clear_grads()
                    raise RuntimeError(f"loss is {val} in epoch {self.epoch}, batch {batch_no}; "
                                       "this window was skipped")
                # weight = share of the window's samples -> same gradient as one big batch
                (loss * (n / window_total)).backward()
                loss_sum += val * n
                count += n
                self.emit("on_batch_end", batch=batch_no, loss=val, samples=n)
                batch_no += 1
            self.take_step()
        if count == 0:
            raise ValueError("no batches to train on")
        mean = loss_sum / count
        self.history["train_loss"].append(mean)
        self.history["learning_rates"].append(epoch_lr)
        self.epoch += 1
        self.emit("on_epoch_end", loss=mean)
        return mean

    def take_step(self):
        params = list(self.model.parameters())
        n = None
        if self.grad_clip_norm is not None:
            n = clip_grad_norm(params, self.grad_clip_norm)
            if not math.isfinite(n):
                self.clear_grads()
                raise RuntimeError(f"gradient norm {n} in epoch {self.epoch}; step skipped")
            self.history["grad_norm"].append(n)
        self.optimizer.step()
        self.clear_grads()
        self.step += 1
        self.emit("on_step", grad_norm=n)

    def evaluate(self, dataloader):
        """(mean loss, accuracy). Accuracy: argmax for cross-entropy, > 0.5 for BCE,
        None for anything else (e.g. MSE, where it isn't defined)."""
        self.set_mode(False)
        loss_sum, count, hits, judged = 0.0, 0, 0, 0
        with no_grad():
            for x, y in dataloader:
                x = x if isinstance(x, Tensor) else Tensor(x)
                y = y if isinstance(y, Tensor) else Tensor(y)
                out = self.model.forward(x)
                n = len(y) if y.ndim else 1
                loss_sum += float(np.asarray(self.loss_fn(out, y).data).reshape(-1)[0]) * n
                count += n
                if isinstance(self.loss_fn, CrossEntropyLoss):
                    hits += int(np.count_nonzero(out.data.argmax(axis=1) == y.data.ravel()))
                    judged += n
                elif isinstance(self.loss_fn, BinaryCrossEntropyLoss):
                    hits += int(np.count_nonzero((out.data > 0.5) == (y.data > 0.5)))
                    judged += y.data.size
        if count == 0:
            raise ValueError("no batches to evaluate")
        acc = hits / judged if judged else None
        self.history["eval_loss"].append(loss_sum / count)
        self.history["eval_accuracy"].append(acc)
        self.emit("on_evaluate_end", loss=loss_sum / count, accuracy=acc)
        return loss_sum / count, acc

    def save_checkpoint(self, path):
        path = Path(path)
        sd = self.optimizer.state_dict()
        sch = self.scheduler
        body = {
            "params": [pack(p.data) for p in self.model.parameters()],
            "optimizer": {
                "kind": sd["kind"], "hyperparameters": sd["hyperparameters"],
                "step_count": sd["step_count"],
                "state": [{k: (pack(v) if isinstance(v, np.ndarray) else v) for k, v in s.items()}
                          for s in sd["state"]],
            },
            "scheduler": None if sch is None else {
                "max_lr": sch.max_lr, "min_lr": sch.min_lr, "total_epochs": sch.total_epochs,
                "warmup_epochs": getattr(sch, "warmup_epochs", 0)},
            "grad_clip_norm": self.grad_clip_norm,
            "epoch": self.epoch, "step": self.step, "training_mode": self.training_mode,
            "history": self.history, "shuffle_seed": self.shuffle_seed,
            "rngs": [layer.rng.bit_generator.state for layer in every_layer(self.model)
                     if isinstance(getattr(layer, "rng", None), np.random.Generator)],
        }
        text = json.dumps(body, sort_keys=True)
        blob = json.dumps({"tag": CKPT_TAG, "sha1": hashlib.sha1(text.encode()).hexdigest(),
                           "body": body})
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.part")
        try:
            with open(tmp, "w", encoding="utf-8") as f:
                f.write(blob)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        finally:
            if tmp.exists():
                tmp.unlink()

    def load_checkpoint(self, path):
        try:
            whole = json.loads(Path(path).read_text(encoding="utf-8"))
            body = whole["body"]
            if whole["tag"] != CKPT_TAG:
                raise ValueError("not one of my checkpoints")
            if hashlib.sha1(json.dumps(body, sort_keys=True).encode()).hexdigest() != whole["sha1"]:
                raise ValueError("sha1 doesn't match, the file was changed")
            staged = self._stage(body)
        except Exception as e:
            raise ValueError(f"could not load {path}: {type(e).__name__}: {e}") from e
        staged()

    def _stage(self, body):
        params = list(self.model.parameters())
        if len(body["params"]) != len(params):
            raise ValueError("different number of parameters")
        new = [unpack(d) for d in body["params"]]
        for i, (p, a) in enumerate(zip(params, new)):
            if a.shape != p.data.shape:
                raise ValueError(f"parameter {i} is {a.shape} in the file, {p.data.shape} here")
        o = dict(body["optimizer"])
        o["state"] = [{k: (unpack(v) if isinstance(v, dict) else v) for k, v in s.items()}
                      for s in o["state"]]
        self.optimizer.check_state_dict(o)
        sch = None if body["scheduler"] is None else CosineSchedule(**body["scheduler"])
        clip = body["grad_clip_norm"]
        if clip is not None and check_rate("grad_clip_norm", clip) == 0:
            raise ValueError("grad_clip_norm is 0")
        epoch, step = check_count("epoch", body["epoch"], 0), check_count("step", body["step"], 0)
        mode, seed = body["training_mode"], body["shuffle_seed"]
        if not isinstance(mode, bool) or (seed is not None and check_count("seed", seed, 0) < 0):
            raise ValueError("training_mode is not a bool")
        hist = {key: list(val) for key, val in body["history"].items()}
        owners = [l for l in every_layer(self.model)
                  if isinstance(getattr(l, "rng", None), np.random.Generator)]
        if len(owners) != len(body["rngs"]):
            raise ValueError("different number of random layers (Dropout)")
        for owner, st in zip(owners, body["rngs"]):
            type(owner.rng.bit_generator)().state = st

        def commit():
            for p, a in zip(params, new):
                p.data[...] = a
            self.optimizer.load_state_dict(o)
            for owner, st in zip(owners, body["rngs"]):
                owner.rng.bit_generator.state = st
            self.scheduler, self.grad_clip_norm = sch, clip
            self.epoch, self.step, self.history = epoch, step, hist
            self.shuffle_seed = self.pending_seed = seed
            self.set_mode(mode)
            self.clear_grads()
        return commit
