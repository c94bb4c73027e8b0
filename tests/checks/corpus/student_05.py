"""Module 07 (training) -- submission.

I used the checkpoint helpers from tinytorch.core.checkpoint (write_checkpoint/read_checkpoint):
they already do the npz + JSON + sha256 + atomic rename part, so my code only has to decide WHAT
goes in and check it all before restoring anything.
"""
import math

import numpy as np

from tinytorch.core.autograd import no_grad
from tinytorch.core.checkpoint import read_checkpoint, write_checkpoint
from tinytorch.core.layers import rng_owners, set_training
from tinytorch.core.losses import BinaryCrossEntropyLoss, CrossEntropyLoss
from tinytorch.core.tensor import Tensor


def _number(x):
    return not isinstance(x, bool) and isinstance(x, (int, float, np.integer, np.floating))


def _require(ok, message):
    if not ok:
        raise ValueError(message)


def _tensor(x):
    return x if isinstance(x, Tensor) else Tensor(x)


def _grad_of(p):
    if p.grad is None:
        return None
    return p.grad.data if isinstance(p.grad, Tensor) else p.grad


class CosineSchedule:
    def __init__(self, max_lr=0.1, min_lr=0.01, total_epochs=100):
        _require(_number(max_lr) and math.isfinite(max_lr) and max_lr >= 0,
                 f"max_lr must be a finite number >= 0 (got {max_lr!r})")
        _require(_number(min_lr) and math.isfinite(min_lr) and min_lr >= 0,
                 f"min_lr must be a finite number >= 0 (got {min_lr!r})")
        _require(min_lr <= max_lr, f"min_lr ({min_lr}) must be <= max_lr ({max_lr})")
        _require(isinstance(total_epochs, (int, np.integer)) and not isinstance(total_epochs, bool)
                 and total_epochs > 0, f"total_epochs must be a positive int (got {total_epochs!r})")
        self.max_lr, self.min_lr = float(max_lr), float(min_lr)
        self.total_epochs = int(total_epochs)

    def get_lr(self, epoch):
        _require(_number(epoch) and math.isfinite(epoch) and epoch >= 0,
                 f"epoch must be >= 0 (got {epoch!r})")
        if epoch >= self.total_epochs:
            return self.min_lr
        progress = epoch / self.total_epochs
        return float(self.min_lr + (self.max_lr - self.min_lr) * 0.5 * (1 + math.cos(math.pi * progress)))


def clip_grad_norm(parameters, max_norm=1.0):
    _require(_number(max_norm) and math.isfinite(max_norm) and max_norm >= 0,
             f"max_norm must be a finite number >= 0 (got {max_norm!r})")
    grads = [g for g in map(_grad_of, parameters) if g is not None]
    if not grads:
        return 0.0
    norm = np.linalg.norm(np.concatenate([np.ravel(g).astype(np.float64) for g in grads]))
    if np.isfinite(norm) and norm > max_norm:
        for g in grads:
            np.multiply(g, max_norm / (norm + 1e-6), out=g, casting="same_kind")
    return norm


def _correct_counts(loss_fn, output, target):
    """(right, judged) for this batch; (0, 0) when accuracy makes no sense (MSE...)."""
    if isinstance(loss_fn, CrossEntropyLoss):
        labels = target.reshape(-1)
        return int(np.sum(output.argmax(axis=1) == labels)), labels.size
    if isinstance(loss_fn, BinaryCrossEntropyLoss):
        return int(np.sum((output >= 0.5) == (target >= 0.5))), target.size
    return 0, 0


class Trainer:
    """evaluate() returns accuracy None for losses other than CrossEntropy / BinaryCrossEntropy."""

    def __init__(self, model, optimizer, loss_fn, scheduler=None, grad_clip_norm=None, *,
                 callbacks=()):
        if grad_clip_norm is not None:
            _require(_number(grad_clip_norm) and math.isfinite(grad_clip_norm)
                     and grad_clip_norm > 0, f"grad_clip_norm must be > 0 (got {grad_clip_norm!r})")
        self.model, self.optimizer, self.loss_fn = model, optimizer, loss_fn
        self.scheduler = scheduler
        self.grad_clip_norm = None if grad_clip_norm is None else float(grad_clip_norm)
        self.epoch, self.step, self.training_mode = 0, 0, True
        self.history = {"train_loss": [], "eval_loss": [], "eval_accuracy": [],
                        "learning_rates": [], "grad_norm": []}
        self._order = {"seed": None, "replay": False}
        self.callbacks = list(callbacks)

    # --- small helpers
    def _emit(self, event, **info):
        for callback in self.callbacks:
            handler = getattr(callback, event, None)
            if handler is not None:
                handler(self, **info)

    def _set_mode(self, flag):
        set_training(self.model, flag)
        self.training_mode = flag

    def _clear(self, params):
        self.optimizer.zero_grad()
        for p in params:
            p.grad = None

    def _begin_epoch(self, loader):
        self._set_mode(True)
        if self.scheduler is not None:
            self.optimizer.lr = self.scheduler.get_lr(self.epoch)
        if hasattr(loader, "set_epoch"):
            if self._order["replay"] and hasattr(loader, "load_state_dict"):
                loader.load_state_dict({"seed": self._order["seed"], "epoch": self.epoch})
            else:
                loader.set_epoch(self.epoch)
            self._order = {"seed": int(loader.state_dict()["seed"]), "replay": False}
        return float(self.optimizer.lr)

    def _finish_window(self, params, samples):
        scale = 1.0 / samples
        for g in map(_grad_of, params):
            if g is not None:
                np.multiply(g, scale, out=g, casting="same_kind")
        norm = None
        if self.grad_clip_norm is not None:
            norm = float(clip_grad_norm(params, self.grad_clip_norm))
            if not math.isfinite(norm):
                self._clear(params)
                raise FloatingPointError(f"gradient norm is {norm} in epoch {self.epoch}")
            self.history["grad_norm"].append(norm)
        self.optimizer.step()
        self._clear(params)
        self.step += 1
        self._emit("on_step", grad_norm=norm)

    # --- the API
    def train_epoch(self, dataloader, accumulation_steps=1):
        _require(isinstance(accumulation_steps, int) and not isinstance(accumulation_steps, bool)
                 and accumulation_steps >= 1,
                 f"accumulation_steps must be a positive int (got {accumulation_steps!r})")
        lr = self._begin_epoch(dataloader)
        params = list(self.model.parameters())
        self._clear(params)
        self._emit("on_epoch_begin", epoch=self.epoch, lr=lr)
        loss_total, n_total = 0.0, 0
        window = []  # sizes of the batches waiting for a step
        for i, (x, y) in enumerate(dataloader):
            x, y = _tensor(x), _tensor(y)
            loss = self.loss_fn(self.model.forward(x), y)
            value = float(np.asarray(loss.data).item())
            if not math.isfinite(value):
                self._clear(params)
                raise FloatingPointError(
                    f"non-finite loss {value} at epoch {self.epoch}, batch {i}: update skipped")
            size = y.shape[0] if y.ndim else 1
            loss.backward(np.array(size, dtype=np.float32))  # grad of the summed loss
            loss_total += value * size
            n_total += size
            self._emit("on_batch_end", batch=i, loss=value, samples=size)
            window.append(size)
            if len(window) == accumulation_steps:
                self._finish_window(params, sum(window))
                window.clear()
        if window:
            self._finish_window(params, sum(window))
        _require(n_total > 0, "the dataloader produced no batches")
        mean = loss_total / n_total
        self.history["train_loss"].append(mean)
        self.history["learning_rates"].append(lr)
        self.epoch += 1
        self._emit("on_epoch_end", loss=mean)
        return mean

    def evaluate(self, dataloader):
        self._set_mode(False)
        loss_total, n_total, right, judged = 0.0, 0, 0, 0
        with no_grad():
            for x, y in dataloader:
                x, y = _tensor(x), _tensor(y)
                out = self.model.forward(x)
                size = y.shape[0] if y.ndim else 1
                loss_total += float(np.asarray(self.loss_fn(out, y).data).item()) * size
                n_total += size
                r, j = _correct_counts(self.loss_fn, out.data, y.data)
                right, judged = right + r, judged + j
        _require(n_total > 0, "the dataloader produced no batches")
        loss, acc = loss_total / n_total, (right / judged if judged else None)
        self.history["eval_loss"].append(loss)
        self.history["eval_accuracy"].append(acc)
        self._emit("on_evaluate_end", loss=loss, accuracy=acc)
        return loss, acc

    def save_checkpoint(self, path):
        params = list(self.model.parameters())
        sd = self.optimizer.state_dict()
        arrays = {f"p{i}": p.data for i, p in enumerate(params)}
        arrays.update({f"o{i}_{k}": v for i, st in enumerate(sd["state"])
                       for k, v in st.items() if isinstance(v, np.ndarray)})
        sch = self.scheduler
        meta = {
            "shapes": [list(p.data.shape) for p in params],
            "optimizer": {"kind": sd["kind"], "hyperparameters": sd["hyperparameters"],
                          "step_count": sd["step_count"],
                          "param_steps": [st.get("step") for st in sd["state"]]},
            "scheduler": None if sch is None else {"max_lr": sch.max_lr, "min_lr": sch.min_lr,
                                                   "total_epochs": sch.total_epochs},
            "grad_clip_norm": self.grad_clip_norm, "epoch": self.epoch, "step": self.step,
            "training_mode": self.training_mode, "history": self.history,
            "data_seed": self._order["seed"],
            "rng_states": [m.rng.bit_generator.state for m in rng_owners(self.model)],
        }
        write_checkpoint(path, arrays, meta)

    def load_checkpoint(self, path):
        arrays, meta = read_checkpoint(path)  # raises CheckpointError for a bad file
        try:
            apply = self._prepare(arrays, meta)
        except (KeyError, TypeError, ValueError, IndexError) as err:
            raise ValueError(f"checkpoint {path} does not fit this trainer: {err}") from err
        apply()

    def _prepare(self, arrays, meta):
        params = list(self.model.parameters())
        _require(len(meta["shapes"]) == len(params), "number of parameters differs")
        values = [arrays[f"p{i}"] for i in range(len(params))]
        for i, (v, p) in enumerate(zip(values, params)):
            _require(v.shape == p.data.shape, f"parameter {i}: {v.shape} vs {p.data.shape}")
        opt = meta["optimizer"]
        state = [{} if s is None else {"step": s} for s in opt["param_steps"]]
        for name, v in arrays.items():
            if name.startswith("o"):
                i, key = name[1:].split("_", 1)
                state[int(i)][key] = v
        opt_sd = {"kind": opt["kind"], "hyperparameters": opt["hyperparameters"],
                  "step_count": opt["step_count"], "state": state}
        self.optimizer.check_state_dict(opt_sd)
        sched = None if meta["scheduler"] is None else CosineSchedule(**meta["scheduler"])
        clip = meta["grad_clip_norm"]
        _require(clip is None or (_number(clip) and math.isfinite(clip) and clip > 0), "bad clip")
        for key in ("epoch", "step"):
            _require(isinstance(meta[key], int) and not isinstance(meta[key], bool)
                     and meta[key] >= 0, f"bad {key}")
        _require(isinstance(meta["training_mode"], bool), "bad training_mode")
        seed = meta["data_seed"]
        _require(seed is None or (isinstance(seed, int) and seed >= 0), "bad data seed")
        owners = rng_owners(self.model)
        _require(len(owners) == len(meta["rng_states"]), "number of Dropout layers differs")
        for m, st in zip(owners, meta["rng_states"]):
            type(m.rng.bit_generator)().state = st
        history = {k: list(v) for k, v in dict(meta["history"]).items()}

        def apply():
            for p, v in zip(params, values):
                p.data[...] = v
            self.optimizer.load_state_dict(opt_sd)
            for m, st in zip(owners, meta["rng_states"]):
                m.rng.bit_generator.state = st
            self.scheduler, self.grad_clip_norm = sched, clip
            self.epoch, self.step, self.history = meta["epoch"], meta["step"], history
            self._order = {"seed": seed, "replay": seed is not None}
            self._set_mode(meta["training_mode"])
            self._clear(params)

        return apply
