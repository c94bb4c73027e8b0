"""Module 07 -- Training (my cells)

notes:
  - accumulation: every batch does loss.backward() (mean over the batch), the grads add up in
    .grad, and at the step I divide by accumulation_steps -> the average of the k batch grads
  - self.step counts the windows in train_epoch; the left-over batches at the end of an epoch
    still get their update (`_update` after the loop)
  - checkpoints with tinytorch's write_checkpoint / read_checkpoint (npz + JSON, sha256, atomic)
"""
import math

import numpy as np

from tinytorch.core.autograd import no_grad
from tinytorch.core.checkpoint import read_checkpoint, write_checkpoint
from tinytorch.core.layers import rng_owners, set_training
from tinytorch.core.losses import BinaryCrossEntropyLoss, CrossEntropyLoss
from tinytorch.core.tensor import Tensor


def real_number(v):
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)


def whole_number(v):
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def as_tensor(v):
    return v if isinstance(v, Tensor) else Tensor(v)


def grad_of(p):
    """the ndarray inside p.grad (Tensor or ndarray), or None"""
    if p.grad is None:
        return None
    return p.grad.data if isinstance(p.grad, Tensor) else p.grad


class CosineSchedule:
    def __init__(self, max_lr=0.1, min_lr=0.01, total_epochs=100):
        if not real_number(max_lr) or not math.isfinite(max_lr) or max_lr < 0:
            raise ValueError(f"bad max_lr: {max_lr!r}")
        if not real_number(min_lr) or not math.isfinite(min_lr) or min_lr < 0:
            raise ValueError(f"bad min_lr: {min_lr!r}")
        if min_lr > max_lr:
            raise ValueError(f"min_lr {min_lr} > max_lr {max_lr}")
        if not whole_number(total_epochs) or total_epochs < 1:
            raise ValueError(f"bad total_epochs: {total_epochs!r}")
        self.max_lr = float(max_lr)
        self.min_lr = float(min_lr)
        self.total_epochs = int(total_epochs)

    def get_lr(self, epoch):
        if not real_number(epoch) or not math.isfinite(epoch) or epoch < 0:
            raise ValueError(f"bad epoch: {epoch!r}")
        if epoch >= self.total_epochs:
            return self.min_lr
        half_cos = (1 + math.cos(math.pi * epoch / self.total_epochs)) / 2
        return self.min_lr + (self.max_lr - self.min_lr) * half_cos


def clip_grad_norm(parameters, max_norm=1.0):
    if not real_number(max_norm) or not math.isfinite(max_norm) or max_norm < 0:
        raise ValueError(f"bad max_norm: {max_norm!r}")
    gs = [g for g in (grad_of(p) for p in parameters) if g is not None]
    sq = 0.0
    for g in gs:
        sq += float(np.sum(np.square(g, dtype=np.float64)))
    norm = math.sqrt(sq)
    if math.isfinite(norm) and norm > max_norm:
        factor = max_norm / (norm + 1e-6)
        for g in gs:
            g *= factor
    return norm


class Trainer:
    def __init__(self, model, optimizer, loss_fn, scheduler=None, grad_clip_norm=None, *,
                 callbacks=()):
        if grad_clip_norm is not None and not (real_number(grad_clip_norm)
                                               and math.isfinite(grad_clip_norm)
                                               and grad_clip_norm > 0):
            raise ValueError(f"bad grad_clip_norm: {grad_clip_norm!r}")
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
        self.loader_seed = None
        self.seed_from_file = None

    # given
    def _emit(self, event, **info):
        for callback in self.callbacks:
            handler = getattr(callback, event, None)
            if handler is not None:
                handler(self, **info)

    def _mode(self, training):
        set_training(self.model, training)
        self.training_mode = training

    def _no_grads(self, params):
        self.optimizer.zero_grad()
        for p in params:
            p.grad = None

    def _loader_order(self, loader):
        if self.seed_from_file is not None and hasattr(loader, "load_state_dict"):
            loader.load_state_dict({"seed": self.seed_from_file, "epoch": self.epoch})
            self.seed_from_file = None
        elif hasattr(loader, "set_epoch"):
            loader.set_epoch(self.epoch)
        if hasattr(loader, "state_dict"):
            self.loader_seed = int(loader.state_dict()["seed"])

    def train_epoch(self, dataloader, accumulation_steps=1):
        if not whole_number(accumulation_steps) or accumulation_steps < 1:
            raise ValueError(f"accumulation_steps must be an int >= 1, got {accumulation_steps!r}")
        self._mode(True)
        if self.scheduler is not None:
            self.optimizer.lr = self.scheduler.get_lr(self.epoch)
        lr = float(self.optimizer.lr)
        self._loader_order(dataloader)
        params = list(self.model.parameters())
        self._no_grads(params)
        self._emit("on_epoch_begin", epoch=self.epoch, lr=lr)

        loss_sum, n_sum, in_window = 0.0, 0, 0
        for b, (x, y) in enumerate(dataloader):
            x, y = as_tensor(x), as_tensor(y)
            loss = self.loss_fn(self.model.forward(x), y)
            value = float(np.asarray(loss.data).reshape(-1)[0])
            if not math.isfinite(value):
                self._no_grads(params)
                raise FloatingPointError(f"loss is {value} at epoch {self.epoch}, batch {b}")
            n = y.shape[0] if y.ndim else 1
            loss.backward()
            loss_sum += value * n
            n_sum += n
            in_window += 1
            self._emit("on_batch_end", batch=b, loss=value, samples=n)
            if in_window == accumulation_steps:
                self._update(params, accumulation_steps)
                self.step += 1
                in_window = 0
        if in_window:  # left-over batches
            self._update(params, accumulation_steps)
        if n_sum == 0:
            raise ValueError("the dataloader gave no batches")

        epoch_loss = loss_sum / n_sum
        self.history["train_loss"].append(epoch_loss)
        self.history["learning_rates"].append(lr)
        self.epoch += 1
        self._emit("on_epoch_end", loss=epoch_loss)
        return epoch_loss

    def _update(self, params, k):
        for p in params:
            g = grad_of(p)
            if g is not None:
                g /= k  # mean of the k batch gradients
        norm = None
        if self.grad_clip_norm is not None:
            norm = clip_grad_norm(params, self.grad_clip_norm)
            if not math.isfinite(norm):
                self._no_grads(params)
                raise FloatingPointError(f"gradient norm is {norm} at epoch {self.epoch}")
            self.history["grad_norm"].append(norm)
        self.optimizer.step()
        self._no_grads(params)
        self._emit("on_step", grad_norm=norm)

    def evaluate(self, dataloader):
        self._mode(False)
        loss_sum, n_sum, right, judged = 0.0, 0, 0, 0
        with no_grad():
            for x, y in dataloader:
                x, y = as_tensor(x), as_tensor(y)
                out = self.model.forward(x)
                n = y.shape[0] if y.ndim else 1
                loss_sum += float(np.asarray(self.loss_fn(out, y).data).reshape(-1)[0]) * n
                n_sum += n
                if isinstance(self.loss_fn, CrossEntropyLoss):
                    labels = y.data.reshape(-1)
                    right += int(np.sum(out.data.argmax(axis=1) == labels))
                    judged += labels.size
                elif isinstance(self.loss_fn, BinaryCrossEntropyLoss):
                    right += int(np.sum((out.data >= 0.5) == (y.data >= 0.5)))
                    judged += y.data.size
        if n_sum == 0:
            raise ValueError("the dataloader gave no batches")
        loss = loss_sum / n_sum
        accuracy = right / judged if judged else None
        self.history["eval_loss"].append(loss)
        self.history["eval_accuracy"].append(accuracy)
        self._emit("on_evaluate_end", loss=loss, accuracy=accuracy)
        return loss, accuracy

    # ---------------------------------------------------------------- checkpoints
    def save_checkpoint(self, path):
        params = list(self.model.parameters())
        sd = self.optimizer.state_dict()
        arrays = {f"weight.{i}": p.data for i, p in enumerate(params)}
        for i, st in enumerate(sd["state"]):
            for name, value in st.items():
                if isinstance(value, np.ndarray):
                    arrays[f"optim.{i}.{name}"] = value
        s = self.scheduler
        meta = {
            "shapes": [list(p.data.shape) for p in params],
            "optim": {"kind": sd["kind"], "hyperparameters": sd["hyperparameters"],
                      "step_count": sd["step_count"],
                      "steps": [st.get("step") for st in sd["state"]]},
            "schedule": None if s is None else [s.max_lr, s.min_lr, s.total_epochs],
            "clip": self.grad_clip_norm,
            "epoch": self.epoch,
            "step": self.step,
            "training_mode": self.training_mode,
            "history": self.history,
            "loader_seed": self.loader_seed,
            "dropout": [m.rng.bit_generator.state for m in rng_owners(self.model)],
        }
        return write_checkpoint(path, arrays, meta)

    def load_checkpoint(self, path):
        arrays, meta = read_checkpoint(path)
        try:
            todo = self._check_file(arrays, meta)
        except (KeyError, TypeError, ValueError, IndexError) as err:
            raise ValueError(f"checkpoint {path} does not fit: {err}") from err
        todo()

    def _check_file(self, arrays, meta):
        params = list(self.model.parameters())
        if len(meta["shapes"]) != len(params):
            raise ValueError("different number of parameters")
        weights = []
        for i, p in enumerate(params):
            w = arrays[f"weight.{i}"]
            if w.shape != p.data.shape:
                raise ValueError(f"weight {i}: {w.shape} in the file, {p.data.shape} here")
            weights.append(w)
        o = meta["optim"]
        slots = [{} if st is None else {"step": st} for st in o["steps"]]
        for key, value in arrays.items():
            if key.startswith("optim."):
                _, i, name = key.split(".", 2)
                slots[int(i)][name] = value
        opt_state = {"kind": o["kind"], "hyperparameters": o["hyperparameters"],
                     "step_count": o["step_count"], "state": slots}
        self.optimizer.check_state_dict(opt_state)
        schedule = None if meta["schedule"] is None else CosineSchedule(*meta["schedule"])
        clip = meta["clip"]
        if clip is not None and not (real_number(clip) and math.isfinite(clip) and clip > 0):
            raise ValueError(f"bad clip {clip!r}")
        for key in ("epoch", "step"):
            if not whole_number(meta[key]) or meta[key] < 0:
                raise ValueError(f"bad {key} {meta[key]!r}")
        if not isinstance(meta["training_mode"], bool):
            raise ValueError("bad training_mode")
        seed = meta["loader_seed"]
        if seed is not None and (not whole_number(seed) or seed < 0):
            raise ValueError("bad loader seed")
        history = {k: list(v) for k, v in meta["history"].items()}
        owners = rng_owners(self.model)
        if len(owners) != len(meta["dropout"]):
            raise ValueError("different number of Dropout layers")
        for m, st in zip(owners, meta["dropout"]):
            type(m.rng.bit_generator)().state = st

        def put_back():
            for p, w in zip(params, weights):
                p.data[...] = w
            self.optimizer.load_state_dict(opt_state)
            for m, st in zip(owners, meta["dropout"]):
                m.rng.bit_generator.state = st
            self.scheduler, self.grad_clip_norm = schedule, clip
            self.epoch, self.step, self.history = meta["epoch"], meta["step"], history
            self.loader_seed = self.seed_from_file = seed
            self._mode(meta["training_mode"])
            self._no_grads(params)

        return put_back
