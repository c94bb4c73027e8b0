"""Module 07 - Training: schedule, clipping, Trainer.

My notes:
    * evaluate() switches the model to eval mode for its forward passes (Dropout off) and puts
      it back into training mode when it is done, so the next train_epoch starts as it should.
    * Accumulation: backward of loss * batch_size, then divide by the window's sample count.
    * Checkpoint: ONE json file. Arrays are stored as {"dtype", "shape", "hex"} (hex of the raw
      bytes, exact), and the document carries a sha256 of its own body. Written to a temp file
      next to the target and renamed.
"""
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

FORMAT = "s22-checkpoint/1"


def _finite(x):
    return (isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, bool)
            and math.isfinite(x))


def _count(x, low):
    return isinstance(x, (int, np.integer)) and not isinstance(x, bool) and x >= low


def _to_json_array(a):
    a = np.ascontiguousarray(a)
    return {"dtype": a.dtype.str, "shape": list(a.shape), "hex": a.tobytes().hex()}


def _from_json_array(d):
    if d["dtype"] not in ("<f4", "<f8"):
        raise ValueError(f"unexpected dtype {d['dtype']}")
    return np.frombuffer(bytes.fromhex(d["hex"]), dtype=d["dtype"]).reshape(d["shape"]).copy()


class CosineSchedule:
    """Cosine annealing max_lr -> min_lr over total_epochs, then min_lr forever."""

    def __init__(self, max_lr=0.1, min_lr=0.01, total_epochs=100):
        if not (_finite(max_lr) and max_lr >= 0 and _finite(min_lr) and min_lr >= 0):
            raise ValueError("max_lr and min_lr must be finite numbers >= 0")
        if min_lr > max_lr:
            raise ValueError("min_lr must be <= max_lr")
        if not _count(total_epochs, 1):
            raise ValueError("total_epochs must be a positive integer")
        self.max_lr = float(max_lr)
        self.min_lr = float(min_lr)
        self.total_epochs = int(total_epochs)

    def get_lr(self, epoch):
        """The learning rate of `epoch` (0-based)."""
        if not (_finite(epoch) and epoch >= 0):
            raise ValueError(f"epoch must be a finite number >= 0, not {epoch!r}")
        if epoch >= self.total_epochs:
            return self.min_lr
        return self.min_lr + (self.max_lr - self.min_lr) * (
            1 + math.cos(math.pi * epoch / self.total_epochs)) / 2


def clip_grad_norm(parameters, max_norm=1.0):
    """Scale all gradients by one factor so their global norm is <= max_norm.
    Returns the norm from before the scaling."""
    if not (_finite(max_norm) and max_norm >= 0):
        raise ValueError(f"max_norm must be a finite number >= 0, not {max_norm!r}")
    grads = []
    for p in parameters:
        if p.grad is not None:
            grads.append(p.grad.data if isinstance(p.grad, Tensor) else p.grad)
    norm = math.sqrt(sum(float(np.sum(np.square(g.astype(np.float64)))) for g in grads))
    if math.isfinite(norm) and norm > max_norm:
        coef = max_norm / (norm + 1e-6)
        for g in grads:
            g *= coef
    return norm


class Trainer:
    """Training loop with accumulation, clipping, evaluation and checkpoints."""

    def __init__(self, model, optimizer, loss_fn, scheduler=None, grad_clip_norm=None, *,
                 callbacks=()):
        if grad_clip_norm is not None and not (_finite(grad_clip_norm) and grad_clip_norm > 0):
            raise ValueError(f"grad_clip_norm must be None or > 0, not {grad_clip_norm!r}")
        self.model = model
        self.optimizer = optimizer
        self.loss_fn = loss_fn
        self.scheduler = scheduler
        self.grad_clip_norm = grad_clip_norm
        self.callbacks = list(callbacks)
        self.epoch = 0
        self.step = 0
        self.training_mode = True
        self.history = {"train_loss": [], "eval_loss": [], "eval_accuracy": [],
                        "learning_rates": [], "grad_norm": []}
        self._data_seed = None
        self._replay_seed = None

    def _emit(self, event, **info):
        """Tell every callback that has a method called `event`."""
        for callback in self.callbacks:
            handler = getattr(callback, event, None)
            if handler is not None:
                handler(self, **info)

    def _set_mode(self, training):
        """Training flag for the model and every layer inside it."""
        set_training(self.model, training)
        self.training_mode = training

    def _clear_grads(self, params):
        self.optimizer.zero_grad()
        for p in params:
            p.grad = None

    def _order(self, dataloader):
        """Make a shuffling loader use the order of this epoch (or the checkpoint's seed)."""
        if self._replay_seed is not None and hasattr(dataloader, "load_state_dict"):
            dataloader.load_state_dict({"seed": self._replay_seed, "epoch": self.epoch})
            self._replay_seed = None
        elif hasattr(dataloader, "set_epoch"):
            dataloader.set_epoch(self.epoch)
        if hasattr(dataloader, "state_dict"):
            self._data_seed = int(dataloader.state_dict()["seed"])

    def train_epoch(self, dataloader, accumulation_steps=1):
        """One epoch; returns the sample-weighted mean loss."""
        if not _count(accumulation_steps, 1):
            raise ValueError(f"accumulation_steps must be an int >= 1, not {accumulation_steps!r}")
        self._set_mode(True)
        if self.scheduler is not None:
            self.optimizer.lr = self.scheduler.get_lr(self.epoch)
        lr = float(self.optimizer.lr)
        self._order(dataloader)
        params = list(self.model.parameters())
        self._clear_grads(params)
        self._emit("on_epoch_begin", epoch=self.epoch, lr=lr)

        total, samples = 0.0, 0
        batches_in_window, samples_in_window = 0, 0
        for index, (inputs, targets) in enumerate(dataloader):
            inputs = inputs if isinstance(inputs, Tensor) else Tensor(inputs)
            targets = targets if isinstance(targets, Tensor) else Tensor(targets)
            loss = self.loss_fn(self.model.forward(inputs), targets)
            value = float(np.asarray(loss.data).reshape(-1)[0])
            if not math.isfinite(value):
                self._clear_grads(params)
                raise FloatingPointError(f"loss is {value} in epoch {self.epoch}, batch {index}")
            n = targets.shape[0] if targets.ndim else 1
            (loss * float(n)).backward()
            total += value * n
            samples += n
            batches_in_window += 1
            samples_in_window += n
            self._emit("on_batch_end", batch=index, loss=value, samples=n)
            if batches_in_window == accumulation_steps:
                self._optimizer_step(params, samples_in_window)
                batches_in_window, samples_in_window = 0, 0
        if batches_in_window:
            self._optimizer_step(params, samples_in_window)
        if samples == 0:
            raise ValueError("the dataloader gave no batches")
        mean = total / samples
        self.history["train_loss"].append(mean)
        self.history["learning_rates"].append(lr)
        self.epoch += 1
        self._emit("on_epoch_end", loss=mean)
        return mean

    def _optimizer_step(self, params, window_samples):
        """Average, clip once, step, clear, count."""
        for p in params:
            if p.grad is not None:
                g = p.grad.data if isinstance(p.grad, Tensor) else p.grad
                g /= window_samples
        norm = None
        if self.grad_clip_norm is not None:
            norm = clip_grad_norm(params, self.grad_clip_norm)
            if not math.isfinite(norm):
                self._clear_grads(params)
                raise FloatingPointError(f"gradient norm is {norm} in epoch {self.epoch}")
            self.history["grad_norm"].append(norm)
        self.optimizer.step()
        self._clear_grads(params)
        self.step += 1
        self._emit("on_step", grad_norm=norm)

    def evaluate(self, dataloader):
        """(mean loss, accuracy); accuracy is None for losses other than CE and BCE."""
        self._set_mode(False)
        total, samples, correct, judged = 0.0, 0, 0, 0
        with no_grad():
            for inputs, targets in dataloader:
                inputs = inputs if isinstance(inputs, Tensor) else Tensor(inputs)
                targets = targets if isinstance(targets, Tensor) else Tensor(targets)
                outputs = self.model.forward(inputs)
                n = targets.shape[0] if targets.ndim else 1
                total += float(np.asarray(self.loss_fn(outputs, targets).data).reshape(-1)[0]) * n
                samples += n
                if isinstance(self.loss_fn, CrossEntropyLoss):
                    labels = targets.data.reshape(-1)
                    correct += int(np.sum(outputs.data.argmax(axis=1) == labels))
                    judged += labels.size
                elif isinstance(self.loss_fn, BinaryCrossEntropyLoss):
                    correct += int(np.sum((outputs.data >= 0.5) == (targets.data >= 0.5)))
                    judged += targets.data.size
        if samples == 0:
            raise ValueError("the dataloader gave no batches")
        loss = total / samples
        accuracy = correct / judged if judged else None
        self.history["eval_loss"].append(loss)
        self.history["eval_accuracy"].append(accuracy)
        self._emit("on_evaluate_end", loss=loss, accuracy=accuracy)
        self._set_mode(True)  # back to training mode for whatever comes next
        return loss, accuracy

    # ------------------------------------------------------------------ checkpoints
    def save_checkpoint(self, path):
        """Everything a resume needs, as one JSON document (written atomically)."""
        path = Path(path)
        sd = self.optimizer.state_dict()
        s = self.scheduler
        body = {
            "params": [_to_json_array(p.data) for p in self.model.parameters()],
            "optimizer": {
                "kind": sd["kind"], "hyperparameters": sd["hyperparameters"],
                "step_count": sd["step_count"],
                "state": [{k: (_to_json_array(v) if isinstance(v, np.ndarray) else v)
                           for k, v in st.items()} for st in sd["state"]],
            },
            "scheduler": None if s is None else {"max_lr": s.max_lr, "min_lr": s.min_lr,
                                                 "total_epochs": s.total_epochs},
            "grad_clip_norm": self.grad_clip_norm,
            "epoch": self.epoch,
            "step": self.step,
            "training_mode": self.training_mode,
            "history": self.history,
            "data_seed": self._data_seed,
            "dropout_rngs": [m.rng.bit_generator.state for m in rng_owners(self.model)],
        }
        text = json.dumps(body, sort_keys=True)
        doc = {"format": FORMAT, "sha256": hashlib.sha256(text.encode()).hexdigest(),
               "body": body}
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".incomplete")
        try:
            tmp.write_text(json.dumps(doc), encoding="utf-8")
            os.replace(tmp, path)
        finally:
            if tmp.exists():
                tmp.unlink()

    def load_checkpoint(self, path):
        """Validate the whole file first; change nothing if anything is wrong."""
        try:
            doc = json.loads(Path(path).read_text(encoding="utf-8"))
            if doc.get("format") != FORMAT:
                raise ValueError("not a checkpoint of this trainer")
            body = doc["body"]
            text = json.dumps(body, sort_keys=True)
            if hashlib.sha256(text.encode()).hexdigest() != doc["sha256"]:
                raise ValueError("sha256 mismatch: the file was changed or is damaged")
            commit = self._validate(body)
        except Exception as error:
            raise ValueError(f"cannot load checkpoint {path}: {error}") from error
        commit()

    def _validate(self, body):
        params = list(self.model.parameters())
        if len(body["params"]) != len(params):
            raise ValueError("a different number of parameters")
        values = [_from_json_array(d) for d in body["params"]]
        for i, (v, p) in enumerate(zip(values, params)):
            if v.shape != p.data.shape:
                raise ValueError(f"parameter {i}: {v.shape} in the file, {p.data.shape} here")
        o = dict(body["optimizer"])
        o["state"] = [{k: (_from_json_array(v) if isinstance(v, dict) else v)
                       for k, v in st.items()} for st in o["state"]]
        self.optimizer.check_state_dict(o)
        sched = None if body["scheduler"] is None else CosineSchedule(**body["scheduler"])
        clip = body["grad_clip_norm"]
        if clip is not None and not (_finite(clip) and clip > 0):
            raise ValueError("bad grad_clip_norm")
        if not (_count(body["epoch"], 0) and _count(body["step"], 0)):
            raise ValueError("bad epoch or step")
        if not isinstance(body["training_mode"], bool):
            raise ValueError("bad training_mode")
        seed = body["data_seed"]
        if seed is not None and not _count(seed, 0):
            raise ValueError("bad data seed")
        history = {k: list(v) for k, v in body["history"].items()}
        owners = rng_owners(self.model)
        if len(owners) != len(body["dropout_rngs"]):
            raise ValueError("a different number of Dropout layers")
        for m, st in zip(owners, body["dropout_rngs"]):
            type(m.rng.bit_generator)().state = st

        def commit():
            for p, v in zip(params, values):
                p.data[...] = v
            self.optimizer.load_state_dict(o)
            for m, st in zip(owners, body["dropout_rngs"]):
                m.rng.bit_generator.state = st
            self.scheduler, self.grad_clip_norm = sched, clip
            self.epoch, self.step, self.history = body["epoch"], body["step"], history
            self._data_seed = self._replay_seed = seed
            self._set_mode(body["training_mode"])
            self._clear_grads(params)

        return commit
