"""Module 07 -- CosineSchedule, clip_grad_norm, Trainer.

Checkpoint idea: every float array (weights, momentum, Adam m and v) goes into ONE flat float32
vector; a JSON "layout" says where each piece starts and what shape it has. The npz holds just
`flat` and `meta` (JSON as bytes, with an md5 of everything), no pickles anywhere.
"""
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


class TrainingDiverged(Exception):
    pass


def _is_real(x):
    return isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, bool)


def _is_count(x, minimum):
    return isinstance(x, (int, np.integer)) and not isinstance(x, bool) and x >= minimum


class CosineSchedule:
    def __init__(self, max_lr=0.1, min_lr=0.01, total_epochs=100):
        for label, rate in (("max_lr", max_lr), ("min_lr", min_lr)):
            if not _is_real(rate) or not math.isfinite(rate) or rate < 0:
                raise ValueError(f"{label} = {rate!r} is not a valid learning rate")
        if min_lr > max_lr:
            raise ValueError(f"min_lr = {min_lr} is larger than max_lr = {max_lr}")
        if not _is_count(total_epochs, 1):
            raise ValueError(f"total_epochs = {total_epochs!r}, need a positive integer")
        self.max_lr = float(max_lr)
        self.min_lr = float(min_lr)
        self.total_epochs = int(total_epochs)

    def get_lr(self, epoch):
        if not _is_real(epoch) or not math.isfinite(epoch) or epoch < 0:
            raise ValueError(f"epoch = {epoch!r}, need a number >= 0")
        if epoch >= self.total_epochs:
            return self.min_lr
        # same formula, written as "start at max and subtract the decay" so epoch 0 is exact
        decay = (self.max_lr - self.min_lr) * (1 - math.cos(math.pi * epoch / self.total_epochs))
        return self.max_lr - decay / 2


def clip_grad_norm(parameters, max_norm=1.0):
    if not _is_real(max_norm) or not math.isfinite(max_norm) or max_norm < 0:
        raise ValueError(f"max_norm = {max_norm!r}, need a finite number >= 0")
    grads = []
    for p in parameters:
        if p.grad is not None:
            grads.append(p.grad.data if isinstance(p.grad, Tensor) else p.grad)
    squares = [float(np.sum(g.astype(np.float64) ** 2)) for g in grads]
    norm = math.sqrt(math.fsum(squares))
    if math.isfinite(norm) and norm > max_norm:
        coef = max_norm / (norm + 1e-6)
        for g in grads:
            g[...] = g * coef
    return norm


class Trainer:
    def __init__(self, model, optimizer, loss_fn, scheduler=None, grad_clip_norm=None,
                 callbacks=None):
        if grad_clip_norm is not None:
            if not _is_real(grad_clip_norm) or not math.isfinite(grad_clip_norm) \
                    or grad_clip_norm <= 0:
                raise ValueError(f"grad_clip_norm = {grad_clip_norm!r}")
            grad_clip_norm = float(grad_clip_norm)
        self.model = model
        self.optimizer = optimizer
        self.loss_fn = loss_fn
        self.scheduler = scheduler
        self.grad_clip_norm = grad_clip_norm
        self.epoch = 0
        self.step = 0
        self.training_mode = True
        self.history = {"train_loss": [], "eval_loss": [], "learning_rates": [], "grad_norm": []}
        self.loader_seed = None
        self.loader_seed_from_file = None
        self.callbacks = [] if callbacks is None else list(callbacks)

    def _emit(self, event, **info):
        # (given) callbacks may implement any subset of the events
        for cb in self.callbacks:
            method = getattr(cb, event, None)
            if method is not None:
                method(self, **info)

    def _wipe_grads(self, params):
        self.optimizer.zero_grad()
        for p in params:
            p.grad = None

    def train_epoch(self, dataloader, accumulation_steps=1):
        if not _is_count(accumulation_steps, 1):
            raise ValueError(f"accumulation_steps = {accumulation_steps!r}, need an int >= 1")
        set_training(self.model, True)
        self.training_mode = True
        if self.scheduler is not None:
            self.optimizer.lr = self.scheduler.get_lr(self.epoch)
        used_lr = float(self.optimizer.lr)

        if self.loader_seed_from_file is not None and hasattr(dataloader, "load_state_dict"):
            dataloader.load_state_dict({"seed": self.loader_seed_from_file, "epoch": self.epoch})
            self.loader_seed_from_file = None
        elif hasattr(dataloader, "set_epoch"):
            dataloader.set_epoch(self.epoch)
        if hasattr(dataloader, "state_dict"):
            self.loader_seed = dataloader.state_dict()["seed"]

        params = list(self.model.parameters())
        self._wipe_grads(params)
        self._emit("on_epoch_begin", epoch=self.epoch, lr=used_lr)
        stream = iter(dataloader)
        b = 0                    # batch index in this epoch
        pending = 0              # batches since the last step
        pending_samples = 0
        weighted_sum, samples = 0.0, 0
        while True:
            try:
                x, y = next(stream)
            except StopIteration:
                break
            if not isinstance(x, Tensor):
                x = Tensor(x)
            if not isinstance(y, Tensor):
                y = Tensor(y)
            loss = self.loss_fn(self.model.forward(x), y)
            lv = float(loss.data)
            if not math.isfinite(lv):
                self._wipe_grads(params)
                raise TrainingDiverged(f"epoch {self.epoch} batch {b}: loss is {lv}")
            bs = len(y) if y.ndim else 1
            loss.backward(np.array(float(bs)))  # d(sum of sample losses)
            weighted_sum += lv * bs
            samples += bs
            pending += 1
            pending_samples += bs
            self._emit("on_batch_end", batch=b, loss=lv, samples=bs)
            b += 1
            if pending == accumulation_steps:
                self._update(params, pending_samples)
                pending = pending_samples = 0
        if pending:
            self._update(params, pending_samples)
        if samples == 0:
            raise ValueError("no data")
        avg = weighted_sum / samples
        self.history["train_loss"].append(avg)
        self.history["learning_rates"].append(used_lr)
        self.epoch += 1
        self._emit("on_epoch_end", loss=avg)
        return avg

    def _update(self, params, n):
        with no_grad():
            for p in params:
                if p.grad is not None:
                    p.grad = p.grad * (1.0 / n) if isinstance(p.grad, Tensor) else p.grad / n
        norm = None
        if self.grad_clip_norm is not None:
            norm = clip_grad_norm(params, self.grad_clip_norm)
            if not math.isfinite(norm):
                self._wipe_grads(params)
                raise TrainingDiverged(f"epoch {self.epoch}: gradient norm {norm}")
            self.history["grad_norm"].append(norm)
        self.optimizer.step()
        self._wipe_grads(params)
        self.step += 1
        self._emit("on_step", grad_norm=norm)

    def evaluate(self, dataloader):
        """Mean loss over all samples, and accuracy (argmax for CrossEntropyLoss, 0.5 cut for
        BinaryCrossEntropyLoss; None otherwise). The model is left in eval mode."""
        set_training(self.model, False)
        self.training_mode = False
        lsum, cnt, good, total = 0.0, 0, 0, 0
        with no_grad():
            for x, y in dataloader:
                x = x if isinstance(x, Tensor) else Tensor(x)
                y = y if isinstance(y, Tensor) else Tensor(y)
                out = self.model.forward(x)
                bs = len(y) if y.ndim else 1
                lsum += float(self.loss_fn(out, y).data) * bs
                cnt += bs
                if isinstance(self.loss_fn, CrossEntropyLoss):
                    good += int((out.data.argmax(axis=1) == y.data.reshape(-1)).sum())
                    total += bs
                elif isinstance(self.loss_fn, BinaryCrossEntropyLoss):
                    good += int(((out.data >= 0.5) == (y.data >= 0.5)).sum())
                    total += y.data.size
        if cnt == 0:
            raise ValueError("no data")
        result = (lsum / cnt, good / total if total else None)
        self.history["eval_loss"].append(result[0])
        self._emit("on_evaluate_end", loss=result[0], accuracy=result[1])
        return result

    # ---------------------------------------------------------------- checkpoint
    def _pieces(self):
        """(name, array) of every float array a resume needs, in a fixed order."""
        out = [(f"param{i}", p.data) for i, p in enumerate(self.model.parameters())]
        for i, slot in enumerate(self.optimizer.state_dict()["state"]):
            out += [(f"opt{i}.{k}", v) for k, v in sorted(slot.items()) if k != "step"]
        return out

    def save_checkpoint(self, path):
        target = Path(path)
        pieces = self._pieces()
        layout, offset = [], 0
        for name, arr in pieces:
            layout.append([name, offset, list(arr.shape)])
            offset += arr.size
        flat = np.concatenate([a.astype(np.float32).ravel() for _, a in pieces]) if pieces \
            else np.zeros(0, np.float32)
        sd = self.optimizer.state_dict()
        s = self.scheduler
        meta = {"layout": layout, "optimizer": {"kind": sd["kind"],
                "hyper": sd["hyperparameters"], "step_count": sd["step_count"],
                "steps": [slot.get("step") for slot in sd["state"]]},
                "schedule": None if s is None else {"max_lr": s.max_lr, "min_lr": s.min_lr,
                                                    "total_epochs": s.total_epochs},
                "clip": self.grad_clip_norm, "epoch": self.epoch, "step": self.step,
                "mode": self.training_mode, "history": self.history,
                "loader_seed": self.loader_seed,
                "rng": [m.rng.bit_generator.state for m in rng_owners(self.model)]}
        text = json.dumps(meta, sort_keys=True)
        meta_bytes = json.dumps({"md5": hashlib.md5(flat.tobytes() + text.encode()).hexdigest(),
                                 "meta": text}).encode()
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=target.parent, delete=False) as tmp:
            np.savez(tmp, flat=flat, meta=np.frombuffer(meta_bytes, np.uint8))
        os.replace(tmp.name, target)

    def load_checkpoint(self, path):
        if not os.path.exists(path):
            raise FileNotFoundError(path)
        try:
            with open(path, "rb") as fh, np.load(fh, allow_pickle=False) as z:
                flat, raw = z["flat"], z["meta"].tobytes()
            outer = json.loads(raw.decode())
            if hashlib.md5(flat.tobytes() + outer["meta"].encode()).hexdigest() != outer["md5"]:
                raise ValueError("md5 does not match")
            meta = json.loads(outer["meta"])
            pieces = {n: flat[o:o + int(np.prod(sh))].reshape(sh) for n, o, sh in meta["layout"]}
            params = list(self.model.parameters())
            if sum(1 for n in pieces if n.startswith("param")) != len(params):
                raise ValueError("the model has a different number of parameters")
            for i, p in enumerate(params):
                if pieces[f"param{i}"].shape != p.data.shape:
                    raise ValueError(f"param{i}: {pieces[f'param{i}'].shape} vs {p.data.shape}")
            slots = [{} if st is None else {"step": st} for st in meta["optimizer"]["steps"]]
            for n, arr in pieces.items():
                if n.startswith("opt"):
                    i, key = n[3:].split(".", 1)
                    slots[int(i)][key] = arr
            opt_state = {"kind": meta["optimizer"]["kind"],
                         "hyperparameters": meta["optimizer"]["hyper"],
                         "step_count": meta["optimizer"]["step_count"], "state": slots}
            self.optimizer.check_state_dict(opt_state)
            sched = None if meta["schedule"] is None else CosineSchedule(**meta["schedule"])
            clip = meta["clip"]
            if clip is not None and not (_is_real(clip) and math.isfinite(clip) and clip > 0):
                raise ValueError("bad clip")
            if not (_is_count(meta["epoch"], 0) and _is_count(meta["step"], 0)
                    and isinstance(meta["mode"], bool)):
                raise ValueError("bad epoch/step/mode")
            if meta["loader_seed"] is not None and not _is_count(meta["loader_seed"], 0):
                raise ValueError("bad loader seed")
            owners = rng_owners(self.model)
            if len(owners) != len(meta["rng"]):
                raise ValueError("number of Dropout layers differs")
            for m, st in zip(owners, meta["rng"]):
                type(m.rng.bit_generator)().state = st
            history = {k: list(v) for k, v in meta["history"].items()}
        except Exception as err:
            raise ValueError(f"bad checkpoint {path}: {err}") from err
        # --- everything checked, now change things
        for i, p in enumerate(params):
            p.data[...] = pieces[f"param{i}"]
        self.optimizer.load_state_dict(opt_state)
        for m, st in zip(owners, meta["rng"]):
            m.rng.bit_generator.state = st
        self.scheduler, self.grad_clip_norm = sched, clip
        self.epoch, self.step, self.history = meta["epoch"], meta["step"], history
        self.loader_seed = self.loader_seed_from_file = meta["loader_seed"]
        set_training(self.model, meta["mode"])
        self.training_mode = meta["mode"]
        self._wipe_grads(params)
