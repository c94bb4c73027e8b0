"""Module 07 -- Training.

Notes:
  * CrossEntropy accuracy: argmax over the classes == label.
  * BCE accuracy: the model gives one probability column, the targets are a column of 0/1, so I
    compare argmax of the outputs with argmax of the targets, same as the one-hot case.
  * checkpoint: write_checkpoint / read_checkpoint from tinytorch.core.checkpoint.
"""
import math

import numpy as np

from tinytorch.core.autograd import no_grad
from tinytorch.core.checkpoint import read_checkpoint, write_checkpoint
from tinytorch.core.layers import rng_owners, set_training
from tinytorch.core.losses import BinaryCrossEntropyLoss, CrossEntropyLoss
from tinytorch.core.tensor import Tensor


def _is_number(x):
    return not isinstance(x, bool) and isinstance(x, (int, float, np.integer, np.floating))


def _check_rate(name, x):
    if not _is_number(x) or not math.isfinite(x) or x < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {x!r}")
    return float(x)


def _check_int(name, x, low):
    if isinstance(x, bool) or not isinstance(x, (int, np.integer)) or x < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {x!r}")
    return int(x)


class CosineSchedule:
    def __init__(self, max_lr=0.1, min_lr=0.01, total_epochs=100):
        self.max_lr = _check_rate("max_lr", max_lr)
        self.min_lr = _check_rate("min_lr", min_lr)
        if self.min_lr > self.max_lr:
            raise ValueError("min_lr must not exceed max_lr")
        self.total_epochs = _check_int("total_epochs", total_epochs, 1)

    def get_lr(self, epoch):
        epoch = _check_rate("epoch", epoch)
        if epoch >= self.total_epochs:
            return self.min_lr
        cos_term = math.cos(math.pi * epoch / self.total_epochs)
        return self.min_lr + (self.max_lr - self.min_lr) * (1.0 + cos_term) / 2.0


def clip_grad_norm(parameters, max_norm=1.0):
    max_norm = _check_rate("max_norm", max_norm)
    # read the generator once
    grads = []
    for p in parameters:
        if p.grad is not None:
            grads.append(p.grad.data if isinstance(p.grad, Tensor) else p.grad)
    # the squares in float64 (huge gradients would overflow float32)
    total = 0.0
    for g in grads:
        g64 = g.astype(np.float64).ravel()
        total += float(g64 @ g64)
    norm = math.sqrt(total)
    # NaN / inf: can't scale that, give it back to the caller
    if math.isfinite(norm) and norm > max_norm:
        scale = max_norm / (norm + 1e-6)
        for g in grads:
            g *= scale
    return norm


class Trainer:
    def __init__(self, model, optimizer, loss_fn, scheduler=None, grad_clip_norm=None, *,
                 callbacks=()):
        if grad_clip_norm is not None:
            grad_clip_norm = _check_rate("grad_clip_norm", grad_clip_norm)
            if grad_clip_norm == 0:
                raise ValueError("grad_clip_norm must be > 0")
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
        self._restored_seed = None

    def _emit(self, event, **info):
        for callback in self.callbacks:
            handler = getattr(callback, event, None)
            if handler is not None:
                handler(self, **info)

    def _set_mode(self, training):
        set_training(self.model, training)
        self.training_mode = training

    def _clear_grads(self, params):
        self.optimizer.zero_grad()
        for p in params:
            p.grad = None

    def _start_data_order(self, dataloader):
        if self._restored_seed is not None and hasattr(dataloader, "load_state_dict"):
            dataloader.load_state_dict({"seed": self._restored_seed, "epoch": self.epoch})
            self._restored_seed = None
        elif hasattr(dataloader, "set_epoch"):
            dataloader.set_epoch(self.epoch)
        if hasattr(dataloader, "state_dict"):
            self._data_seed = int(dataloader.state_dict()["seed"])

    def train_epoch(self, dataloader, accumulation_steps=1):
        steps = _check_int("accumulation_steps", accumulation_steps, 1)
        self._set_mode(True)
        if self.scheduler is not None:
            self.optimizer.lr = self.scheduler.get_lr(self.epoch)
        lr = float(self.optimizer.lr)
        self._start_data_order(dataloader)
        params = list(self.model.parameters())
        self._clear_grads(params)
        self._emit("on_epoch_begin", epoch=self.epoch, lr=lr)

        loss_sum = 0.0
        samples = 0
        window_batches = 0
        window_samples = 0
        for batch, (inputs, targets) in enumerate(dataloader):
            inputs = inputs if isinstance(inputs, Tensor) else Tensor(inputs)
            targets = targets if isinstance(targets, Tensor) else Tensor(targets)
            loss = self.loss_fn(self.model.forward(inputs), targets)
            value = float(np.asarray(loss.data).reshape(-1)[0])
            if not math.isfinite(value):
                self._clear_grads(params)
                raise FloatingPointError(
                    f"loss is {value} at epoch {self.epoch}, batch {batch}: window not applied")
            n = len(targets) if targets.ndim else 1
            loss.backward(float(n))  # gradient of the SUM of the batch's sample losses
            loss_sum += value * n
            samples += n
            window_batches += 1
            window_samples += n
            self._emit("on_batch_end", batch=batch, loss=value, samples=n)
            if window_batches == steps:
                self._optimizer_step(params, window_samples)
                window_batches = 0
                window_samples = 0
        if window_batches:
            self._optimizer_step(params, window_samples)
        if samples == 0:
            raise ValueError("dataloader yielded no batches")

        mean_loss = loss_sum / samples
        self.history["train_loss"].append(mean_loss)
        self.history["learning_rates"].append(lr)
        self.epoch += 1
        self._emit("on_epoch_end", loss=mean_loss)
        return mean_loss

    def _optimizer_step(self, params, window_samples):
        for p in params:
            if p.grad is not None:
                g = p.grad.data if isinstance(p.grad, Tensor) else p.grad
                g *= 1.0 / window_samples
        norm = None
        if self.grad_clip_norm is not None:
            norm = clip_grad_norm(params, self.grad_clip_norm)
            if not math.isfinite(norm):
                self._clear_grads(params)
                raise FloatingPointError(f"gradient norm is {norm} at epoch {self.epoch}")
            self.history["grad_norm"].append(norm)
        self.optimizer.step()
        self._clear_grads(params)
        self.step += 1
        self._emit("on_step", grad_norm=norm)

    def evaluate(self, dataloader):
        self._set_mode(False)
        loss_sum, samples, correct, judged = 0.0, 0, 0, 0
        with no_grad():
            for inputs, targets in dataloader:
                inputs = inputs if isinstance(inputs, Tensor) else Tensor(inputs)
                targets = targets if isinstance(targets, Tensor) else Tensor(targets)
                outputs = self.model.forward(inputs)
                n = len(targets) if targets.ndim else 1
                loss_sum += float(np.asarray(self.loss_fn(outputs, targets).data).reshape(-1)[0]) * n
                samples += n
                if isinstance(self.loss_fn, CrossEntropyLoss):
                    labels = targets.data.reshape(-1)
                    correct += int(np.sum(outputs.data.argmax(axis=1) == labels))
                    judged += len(labels)
                elif isinstance(self.loss_fn, BinaryCrossEntropyLoss):
                    predicted = outputs.data.argmax(axis=1)
                    actual = targets.data.argmax(axis=1)
                    correct += int(np.sum(predicted == actual))
                    judged += len(actual)
        if samples == 0:
            raise ValueError("dataloader yielded no batches")
        loss = loss_sum / samples
        accuracy = correct / judged if judged else None
        self.history["eval_loss"].append(loss)
        self.history["eval_accuracy"].append(accuracy)
        self._emit("on_evaluate_end", loss=loss, accuracy=accuracy)
        return loss, accuracy

    # ------------------------------------------------------------------ checkpoints
    def save_checkpoint(self, path):
        params = list(self.model.parameters())
        state = self.optimizer.state_dict()
        arrays = {}
        for i, p in enumerate(params):
            arrays[f"model/{i}"] = p.data
        for i, per_param in enumerate(state["state"]):
            for name, value in per_param.items():
                if isinstance(value, np.ndarray):
                    arrays[f"optimizer/{i}/{name}"] = value
        s = self.scheduler
        meta = {
            "model": {"shapes": [list(p.data.shape) for p in params],
                      "rng_state": [m.rng.bit_generator.state for m in rng_owners(self.model)]},
            "optimizer": {"kind": state["kind"], "hyperparameters": state["hyperparameters"],
                          "step_count": state["step_count"],
                          "param_steps": [st.get("step") for st in state["state"]]},
            "scheduler": None if s is None else {"max_lr": s.max_lr, "min_lr": s.min_lr,
                                                 "total_epochs": s.total_epochs},
            "grad_clip_norm": self.grad_clip_norm,
            "epoch": self.epoch,
            "step": self.step,
            "training_mode": self.training_mode,
            "history": self.history,
            "data_order": {"seed": self._data_seed},
        }
        return write_checkpoint(path, arrays, meta)

    def load_checkpoint(self, path):
        arrays, meta = read_checkpoint(path)
        try:
            restore = self._prepare_restore(arrays, meta)
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise ValueError(f"checkpoint {path!s} does not fit this trainer: {error}") from error
        restore()

    def _prepare_restore(self, arrays, meta):
        params = list(self.model.parameters())
        shapes = [tuple(s) for s in meta["model"]["shapes"]]
        if len(shapes) != len(params):
            raise ValueError(f"{len(shapes)} parameters in the file, {len(params)} in the model")
        values = []
        for i, p in enumerate(params):
            value = arrays[f"model/{i}"]
            if value.shape != p.data.shape:
                raise ValueError(f"parameter {i}: {value.shape} in the file, {p.data.shape} here")
            values.append(value)
        saved = meta["optimizer"]
        buffers = [{} if st is None else {"step": st} for st in saved["param_steps"]]
        for name, value in arrays.items():
            if name.startswith("optimizer/"):
                _, i, key = name.split("/")
                buffers[int(i)][key] = value
        opt_state = {"kind": saved["kind"], "hyperparameters": saved["hyperparameters"],
                     "step_count": saved["step_count"], "state": buffers}
        self.optimizer.check_state_dict(opt_state)
        sched = None if meta["scheduler"] is None else CosineSchedule(**meta["scheduler"])
        clip = meta["grad_clip_norm"]
        if clip is not None and (_check_rate("grad_clip_norm", clip) == 0):
            raise ValueError("grad_clip_norm is 0")
        epoch = _check_int("epoch", meta["epoch"], 0)
        step = _check_int("step", meta["step"], 0)
        mode = meta["training_mode"]
        if not isinstance(mode, bool):
            raise ValueError("training_mode must be true or false")
        seed = meta["data_order"]["seed"]
        if seed is not None:
            seed = _check_int("data seed", seed, 0)
        history = {k: list(v) for k, v in meta["history"].items()}
        owners = rng_owners(self.model)
        rngs = meta["model"]["rng_state"]
        if len(rngs) != len(owners):
            raise ValueError("different number of Dropout layers")
        for owner, st in zip(owners, rngs):
            type(owner.rng.bit_generator)().state = st

        def restore():
            for p, value in zip(params, values):
                p.data[...] = value
            self.optimizer.load_state_dict(opt_state)
            for owner, st in zip(owners, rngs):
                owner.rng.bit_generator.state = st
            self.scheduler = sched
            self.grad_clip_norm = clip
            self.epoch, self.step = epoch, step
            self.history = history
            self._data_seed = self._restored_seed = seed
            self._set_mode(mode)
            self._clear_grads(params)

        return restore
