"""TinyTorch Module 07 - Training.

My approach to accumulation: I keep my own "bank" of gradients. After each batch's backward I add
grad * batch_size into the bank (float64) and clear p.grad; at the step I put bank / samples back
into p.grad. That way p.grad only ever holds exactly what the optimizer should see.
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


def _bad_rate(v):
    return (isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating))
            or not math.isfinite(v) or v < 0)


def _bad_int(v, low):
    return isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < low


class CosineSchedule:
    def __init__(self, max_lr=0.1, min_lr=0.01, total_epochs=100):
        if _bad_rate(max_lr):
            raise ValueError(f"invalid max_lr: {max_lr!r}")
        if _bad_rate(min_lr):
            raise ValueError(f"invalid min_lr: {min_lr!r}")
        if min_lr > max_lr:
            raise ValueError(f"invalid min_lr: {min_lr!r} is above max_lr {max_lr!r}")
        if _bad_int(total_epochs, 1):
            raise ValueError(f"invalid total_epochs: {total_epochs!r}")
        self.max_lr, self.min_lr, self.total_epochs = float(max_lr), float(min_lr), int(total_epochs)

    def get_lr(self, epoch):
        if _bad_rate(epoch):
            raise ValueError(f"invalid epoch: {epoch!r}")
        t = min(epoch, self.total_epochs) / self.total_epochs  # clamp -> min_lr after the end
        lr = self.min_lr + (self.max_lr - self.min_lr) * (1 + math.cos(math.pi * t)) / 2
        return max(lr, self.min_lr)


def clip_grad_norm(parameters, max_norm=1.0):
    if _bad_rate(max_norm):
        raise ValueError(f"invalid max_norm: {max_norm!r}")
    holders = [p for p in parameters if p.grad is not None]
    arrays = [p.grad.data if isinstance(p.grad, Tensor) else p.grad for p in holders]
    total = math.sqrt(sum(float(np.sum(np.square(a, dtype=np.float64))) for a in arrays))
    if not math.isfinite(total):
        return total  # can't fix NaN/inf by scaling, leave them for the caller
    if total > max_norm:
        scale = max_norm / (total + 1e-6)
        for a in arrays:
            a *= scale
    return total


class _GradBank:
    """Sum of grad * batch_size over the batches of one accumulation window."""

    def __init__(self, params):
        self.params = params
        self.sums = [None] * len(params)
        self.samples = 0

    def add(self, n):
        for i, p in enumerate(self.params):
            if p.grad is None:
                continue
            g = np.asarray(p.grad.data if isinstance(p.grad, Tensor) else p.grad, np.float64)
            self.sums[i] = g * n if self.sums[i] is None else self.sums[i] + g * n
            p.grad = None
        self.samples += n

    def hand_over(self):
        for p, s in zip(self.params, self.sums):
            p.grad = None if s is None else Tensor((s / self.samples).astype(p.data.dtype))
        self.sums = [None] * len(self.params)
        self.samples = 0


class Trainer:
    def __init__(self, model, optimizer, loss_fn, scheduler=None, grad_clip_norm=None, *,
                 callbacks=()):
        if grad_clip_norm is not None and (_bad_rate(grad_clip_norm) or grad_clip_norm == 0):
            raise ValueError(f"invalid grad_clip_norm: {grad_clip_norm!r}")
        self.model = model
        self.optimizer = optimizer
        self.loss_fn = loss_fn
        self.scheduler = scheduler
        self.grad_clip_norm = grad_clip_norm
        self.callbacks = list(callbacks)
        self.epoch = self.step = 0
        self.training_mode = True
        self.history = {}
        for key in ("train_loss", "eval_loss", "eval_accuracy", "learning_rates", "grad_norm"):
            self.history[key] = []
        self._data_seed = None
        self._seed_to_restore = None

    def _emit(self, event, **info):
        # given code from the notebook: every callback that has a method called `event`
        for callback in self.callbacks:
            handler = getattr(callback, event, None)
            if handler is not None:
                handler(self, **info)

    def _switch(self, training):
        if hasattr(self.model, "train") and hasattr(self.model, "eval"):
            self.model.train() if training else self.model.eval()
        else:
            set_training(self.model, training)  # duck-typed model: walk it myself
        self.training_mode = training

    def _forget_grads(self):
        self.optimizer.zero_grad()
        for p in self.model.parameters():
            p.grad = None

    def train_epoch(self, dataloader, accumulation_steps=1):
        if _bad_int(accumulation_steps, 1):
            raise ValueError(f"invalid accumulation_steps: {accumulation_steps!r}")
        self._switch(True)
        if self.scheduler:
            self.optimizer.lr = self.scheduler.get_lr(self.epoch)
        lr = float(self.optimizer.lr)
        if hasattr(dataloader, "set_epoch"):
            if self._seed_to_restore is not None:
                dataloader.seed = self._seed_to_restore  # the checkpoint's shuffle seed
                self._seed_to_restore = None
            dataloader.set_epoch(self.epoch)
            self._data_seed = int(dataloader.seed)
        params = list(self.model.parameters())
        self._forget_grads()
        self._emit("on_epoch_begin", epoch=self.epoch, lr=lr)
        bank = _GradBank(params)
        total_loss, total_n, batches_in_bank = 0.0, 0, 0
        for index, (inputs, targets) in enumerate(dataloader):
            inputs = inputs if isinstance(inputs, Tensor) else Tensor(inputs)
            targets = targets if isinstance(targets, Tensor) else Tensor(targets)
            loss = self.loss_fn(self.model.forward(inputs), targets)
            loss_val = loss.data.item()
            if math.isnan(loss_val) or math.isinf(loss_val):
                self._forget_grads()  # the bank of this window is simply dropped
                raise ArithmeticError(f"epoch {self.epoch}, batch {index}: loss = {loss_val}")
            loss.backward()
            n = targets.shape[0] if targets.ndim else 1
            bank.add(n)
            total_loss += loss_val * n
            total_n += n
            self._emit("on_batch_end", batch=index, loss=loss_val, samples=n)
            batches_in_bank += 1
            if batches_in_bank == accumulation_steps:
                self._step(bank)
                batches_in_bank = 0
        if batches_in_bank > 0:
            self._step(bank)
        if total_n == 0:
            raise ValueError("dataloader was empty")
        self.history["train_loss"].append(total_loss / total_n)
        self.history["learning_rates"].append(lr)
        self.epoch += 1
        self._emit("on_epoch_end", loss=total_loss / total_n)
        return total_loss / total_n

    def _step(self, bank):
        bank.hand_over()
        norm = None
        if self.grad_clip_norm is not None:
            norm = clip_grad_norm(bank.params, self.grad_clip_norm)
            if not math.isfinite(norm):
                self._forget_grads()
                raise ArithmeticError(f"epoch {self.epoch}: gradient norm {norm}, step skipped")
            self.history["grad_norm"].append(norm)
        self.optimizer.step()
        self._forget_grads()
        self.step += 1
        self._emit("on_step", grad_norm=norm)

    def evaluate(self, dataloader):
        """Returns (loss, accuracy); accuracy is None unless the loss is CE or BCE."""
        self._switch(False)
        loss_total, n_total, right, asked = 0.0, 0, 0, 0
        with no_grad():
            for inputs, targets in dataloader:
                inputs = inputs if isinstance(inputs, Tensor) else Tensor(inputs)
                targets = targets if isinstance(targets, Tensor) else Tensor(targets)
                preds = self.model.forward(inputs)
                n = targets.shape[0] if targets.ndim else 1
                loss_total += self.loss_fn(preds, targets).data.item() * n
                n_total += n
                if isinstance(self.loss_fn, CrossEntropyLoss):
                    right += int(np.sum(np.argmax(preds.data, axis=-1) == targets.data.ravel()))
                    asked += n
                elif isinstance(self.loss_fn, BinaryCrossEntropyLoss):
                    guess = np.where(preds.data >= 0.5, 1.0, 0.0)
                    right += int(np.sum(guess == np.round(targets.data)))
                    asked += targets.data.size
        if n_total == 0:
            raise ValueError("dataloader was empty")
        loss = loss_total / n_total
        acc = right / asked if asked else None
        self.history["eval_loss"].append(loss)
        self.history["eval_accuracy"].append(acc)
        self._emit("on_evaluate_end", loss=loss, accuracy=acc)
        return loss, acc

    # -------- checkpointing: npz (compressed), config JSON as a string array, blake2b check
    @staticmethod
    def _fingerprint(arrays):
        h = hashlib.blake2b()
        for name in sorted(arrays):
            a = np.ascontiguousarray(arrays[name])
            h.update(repr((name, a.dtype.str, a.shape)).encode() + a.tobytes())
        return h.hexdigest()

    def save_checkpoint(self, path):
        path = Path(path)
        params = list(self.model.parameters())
        osd = self.optimizer.state_dict()
        arrays = {f"w{i}": p.data for i, p in enumerate(params)}
        for i, per_param in enumerate(osd["state"]):
            for name, buf in per_param.items():
                if isinstance(buf, np.ndarray):
                    arrays[f"buf:{name}:{i}"] = buf
        sch = self.scheduler
        config = {
            "n_params": len(params),
            "opt": {key: osd[key] for key in ("kind", "hyperparameters", "step_count")},
            "opt_steps": [per_param.get("step") for per_param in osd["state"]],
            "sched": None if sch is None else [sch.max_lr, sch.min_lr, sch.total_epochs],
            "clip": self.grad_clip_norm, "epoch": self.epoch, "step": self.step,
            "training_mode": self.training_mode, "history": self.history,
            "data_seed": self._data_seed,
            "rng": [o.rng.bit_generator.state for o in rng_owners(self.model)],
        }
        arrays["config"] = np.array(json.dumps(config))
        arrays["check"] = np.array(self._fingerprint(arrays))
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.parent / (path.name + ".saving")
        with open(tmp, "wb") as f:
            np.savez_compressed(f, **arrays)
        os.replace(tmp, path)

    def load_checkpoint(self, path):
        try:
            with open(path, "rb") as f, np.load(f, allow_pickle=False) as npz:
                arrays = {name: npz[name] for name in npz.files}
            check = str(arrays.pop("check"))
            if check != self._fingerprint(arrays):
                raise ValueError("fingerprint mismatch")
            config = json.loads(str(arrays.pop("config")))
            todo = self._plan(config, arrays)
        except Exception as e:
            raise RuntimeError(f"checkpoint {path} rejected: {e!r}") from e
        for action in todo:  # nothing above changed the trainer
            action()

    def _plan(self, config, arrays):
        params = list(self.model.parameters())
        if config["n_params"] != len(params):
            raise ValueError("parameter count differs")
        weights = [arrays[f"w{i}"] for i in range(len(params))]
        if any(w.shape != p.data.shape for w, p in zip(weights, params)):
            raise ValueError("parameter shapes differ")
        per_param = [{} if s is None else {"step": s} for s in config["opt_steps"]]
        for name, buf in arrays.items():
            if name.startswith("buf:"):
                _, buf_name, i = name.split(":")
                per_param[int(i)][buf_name] = buf
        opt_sd = dict(config["opt"], state=per_param)
        self.optimizer.check_state_dict(opt_sd)
        sched = None if config["sched"] is None else CosineSchedule(*config["sched"])
        clip = config["clip"]
        if clip is not None and (_bad_rate(clip) or clip == 0):
            raise ValueError("bad clip")
        if _bad_int(config["epoch"], 0) or _bad_int(config["step"], 0):
            raise ValueError("bad counters")
        if not isinstance(config["training_mode"], bool):
            raise ValueError("bad training_mode")
        history = {k: list(v) for k, v in config["history"].items()}
        seed = config["data_seed"]
        if seed is not None and _bad_int(seed, 0):
            raise ValueError("bad data seed")
        owners = rng_owners(self.model)
        if len(owners) != len(config["rng"]):
            raise ValueError("Dropout layers differ")
        for o, st in zip(owners, config["rng"]):
            np.random.PCG64().state = st if st.get("bit_generator") == "PCG64" else None

        def put_weights():
            for p, w in zip(params, weights):
                p.data[...] = w

        def put_rngs():
            for o, st in zip(owners, config["rng"]):
                o.rng.bit_generator.state = st

        def put_rest():
            self.scheduler, self.grad_clip_norm = sched, clip
            self.epoch, self.step = config["epoch"], config["step"]
            self.history = history
            self._data_seed = self._seed_to_restore = seed
            self._switch(config["training_mode"])
            self._forget_grads()

        return [put_weights, lambda: self.optimizer.load_state_dict(opt_sd), put_rngs, put_rest]
