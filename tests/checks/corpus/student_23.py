# Module 07 -- Training
# (submitted from my notebook; the evaluate() loop does the classification bookkeeping in one
#  place: loss, hits and counts together)
#
# checkpoint: tinytorch.core.checkpoint.write_checkpoint / read_checkpoint (npz + json, atomic,
# sha256), everything checked before anything is restored
import math

import numpy as np

from tinytorch.core.autograd import no_grad
from tinytorch.core.checkpoint import read_checkpoint, write_checkpoint
from tinytorch.core.layers import modules, rng_owners
from tinytorch.core.losses import BinaryCrossEntropyLoss, CrossEntropyLoss
from tinytorch.core.tensor import Tensor


def ok_rate(v):
    return (not isinstance(v, bool) and isinstance(v, (int, float, np.integer, np.floating))
            and math.isfinite(v) and v >= 0)


def ok_int(v, low):
    return not isinstance(v, bool) and isinstance(v, (int, np.integer)) and v >= low


def need(cond, msg):
    if not cond:
        raise ValueError(msg)


def tensor(v):
    return v if isinstance(v, Tensor) else Tensor(v)


def grad_data(p):
    return p.grad.data if isinstance(p.grad, Tensor) else p.grad


class CosineSchedule:
    def __init__(self, max_lr=0.1, min_lr=0.01, total_epochs=100):
        need(ok_rate(max_lr), f"max_lr: {max_lr!r}")
        need(ok_rate(min_lr), f"min_lr: {min_lr!r}")
        need(min_lr <= max_lr, f"min_lr {min_lr} > max_lr {max_lr}")
        need(ok_int(total_epochs, 1), f"total_epochs: {total_epochs!r}")
        self.max_lr, self.min_lr, self.total_epochs = float(max_lr), float(min_lr), int(total_epochs)

    def get_lr(self, epoch):
        need(ok_rate(epoch), f"epoch: {epoch!r}")
        if epoch >= self.total_epochs:
            return self.min_lr
        w = 0.5 * (1.0 + math.cos(math.pi * epoch / self.total_epochs))
        return self.min_lr + w * (self.max_lr - self.min_lr)


def clip_grad_norm(parameters, max_norm=1.0):
    need(ok_rate(max_norm), f"max_norm: {max_norm!r}")
    grads = [grad_data(p) for p in parameters if p.grad is not None]
    total = math.sqrt(sum(float(np.einsum("i,i->", g.ravel().astype(np.float64),
                                          g.ravel().astype(np.float64))) for g in grads))
    if math.isfinite(total) and total > max_norm:
        f = max_norm / (total + 1e-6)
        for g in grads:
            g *= f
    return total


class Trainer:
    def __init__(self, model, optimizer, loss_fn, scheduler=None, grad_clip_norm=None, *,
                 callbacks=()):
        need(grad_clip_norm is None or (ok_rate(grad_clip_norm) and grad_clip_norm > 0),
             f"grad_clip_norm: {grad_clip_norm!r}")
        self.model, self.optimizer, self.loss_fn = model, optimizer, loss_fn
        self.scheduler, self.grad_clip_norm = scheduler, grad_clip_norm
        self.callbacks = list(callbacks)
        self.epoch = self.step = 0
        self.training_mode = True
        self.history = {"train_loss": [], "eval_loss": [], "eval_accuracy": [],
                        "learning_rates": [], "grad_norm": []}
        self.data_seed = None
        self.replay = False

    def _emit(self, event, **info):
        for callback in self.callbacks:
            handler = getattr(callback, event, None)
            if handler is not None:
                handler(self, **info)

    def _train_flag(self, on):
        for m in modules(self.model):
            m.training = on
        self.training_mode = on

    def _drop_grads(self, params):
        self.optimizer.zero_grad()
        for p in params:
            p.grad = None

    def train_epoch(self, dataloader, accumulation_steps=1):
        need(ok_int(accumulation_steps, 1), f"accumulation_steps: {accumulation_steps!r}")
        self._train_flag(True)
        if self.scheduler is not None:
            self.optimizer.lr = self.scheduler.get_lr(self.epoch)
        lr = float(self.optimizer.lr)
        if self.replay and hasattr(dataloader, "load_state_dict"):
            dataloader.load_state_dict({"seed": self.data_seed, "epoch": self.epoch})
            self.replay = False
        elif hasattr(dataloader, "set_epoch"):
            dataloader.set_epoch(self.epoch)
        if hasattr(dataloader, "state_dict"):
            self.data_seed = int(dataloader.state_dict()["seed"])
        params = list(self.model.parameters())
        self._drop_grads(params)
        self._emit("on_epoch_begin", epoch=self.epoch, lr=lr)

        loss_total, n_total = 0.0, 0
        k_now, n_now = 0, 0
        for b, (x, y) in enumerate(dataloader):
            x, y = tensor(x), tensor(y)
            loss = self.loss_fn(self.model.forward(x), y)
            v = float(np.asarray(loss.data).reshape(-1)[0])
            if not math.isfinite(v):
                self._drop_grads(params)
                raise FloatingPointError(f"epoch {self.epoch}, batch {b}: loss {v}")
            n = y.shape[0] if y.ndim else 1
            loss.backward(np.float32(n))
            loss_total += v * n
            n_total += n
            k_now += 1
            n_now += n
            self._emit("on_batch_end", batch=b, loss=v, samples=n)
            if k_now == accumulation_steps:
                self._step(params, n_now)
                k_now = n_now = 0
        if k_now:
            self._step(params, n_now)
        need(n_total > 0, "no batches")
        mean = loss_total / n_total
        self.history["train_loss"].append(mean)
        self.history["learning_rates"].append(lr)
        self.epoch += 1
        self._emit("on_epoch_end", loss=mean)
        return mean

    def _step(self, params, n):
        for p in params:
            if p.grad is not None:
                g = grad_data(p)
                g /= n
        norm = None
        if self.grad_clip_norm is not None:
            norm = clip_grad_norm(params, self.grad_clip_norm)
            if not math.isfinite(norm):
                self._drop_grads(params)
                raise FloatingPointError(f"epoch {self.epoch}: gradient norm {norm}")
            self.history["grad_norm"].append(norm)
        self.optimizer.step()
        self._drop_grads(params)
        self.step += 1
        self._emit("on_step", grad_norm=norm)

    def evaluate(self, dataloader):
        self._train_flag(False)
        loss_total, n_total, hits, judged = 0.0, 0, 0, 0
        with no_grad():
            for x, y in dataloader:
                x, y = tensor(x), tensor(y)
                out = self.model.forward(x)
                n = y.shape[0] if y.ndim else 1
                n_total += n
                if isinstance(self.loss_fn, CrossEntropyLoss):
                    loss_total += float(self.loss_fn(out, y).data) * n
                    hits += int(np.sum(out.data.argmax(axis=1) == y.data.reshape(-1)))
                    judged += n
                elif isinstance(self.loss_fn, BinaryCrossEntropyLoss):
                    loss_total += float(self.loss_fn(out, y).data) * n
                    hits += int(np.sum((out.data >= 0.5) == (y.data >= 0.5)))
                    judged += y.data.size
        need(n_total > 0, "no batches")
        loss = loss_total / n_total
        acc = hits / judged if judged else None
        self.history["eval_loss"].append(loss)
        self.history["eval_accuracy"].append(acc)
        self._emit("on_evaluate_end", loss=loss, accuracy=acc)
        return loss, acc

    # -- checkpoints
    def save_checkpoint(self, path):
        params = list(self.model.parameters())
        opt = self.optimizer.state_dict()
        arrays = {f"w/{i}": p.data for i, p in enumerate(params)}
        for i, st in enumerate(opt["state"]):
            arrays.update({f"o/{i}/{k}": v for k, v in st.items() if isinstance(v, np.ndarray)})
        s = self.scheduler
        meta = {"shapes": [list(p.data.shape) for p in params],
                "opt": {"kind": opt["kind"], "hyperparameters": opt["hyperparameters"],
                        "step_count": opt["step_count"]},
                "opt_steps": [st.get("step") for st in opt["state"]],
                "sched": None if s is None else [s.max_lr, s.min_lr, s.total_epochs],
                "clip": self.grad_clip_norm, "epoch": self.epoch, "step": self.step,
                "training": self.training_mode, "history": self.history,
                "data_seed": self.data_seed,
                "rngs": [m.rng.bit_generator.state for m in rng_owners(self.model)]}
        write_checkpoint(path, arrays, meta)

    def load_checkpoint(self, path):
        arrays, meta = read_checkpoint(path)
        try:
            go = self._plan(arrays, meta)
        except (KeyError, TypeError, ValueError, IndexError) as e:
            raise ValueError(f"{path}: checkpoint does not fit ({e})") from e
        go()

    def _plan(self, arrays, meta):
        params = list(self.model.parameters())
        need(len(meta["shapes"]) == len(params), "parameter count differs")
        ws = [arrays[f"w/{i}"] for i in range(len(params))]
        for i, (w, p) in enumerate(zip(ws, params)):
            need(w.shape == p.data.shape, f"w/{i}: {w.shape} vs {p.data.shape}")
        state = [{} if s is None else {"step": s} for s in meta["opt_steps"]]
        for k, v in arrays.items():
            if k.startswith("o/"):
                _, i, name = k.split("/")
                state[int(i)][name] = v
        opt_sd = dict(meta["opt"], state=state)
        self.optimizer.check_state_dict(opt_sd)
        sched = None if meta["sched"] is None else CosineSchedule(*meta["sched"])
        clip = meta["clip"]
        need(clip is None or (ok_rate(clip) and clip > 0), "clip")
        need(ok_int(meta["epoch"], 0) and ok_int(meta["step"], 0), "epoch/step")
        need(isinstance(meta["training"], bool), "training flag")
        seed = meta["data_seed"]
        need(seed is None or ok_int(seed, 0), "data seed")
        owners = rng_owners(self.model)
        need(len(owners) == len(meta["rngs"]), "Dropout layers differ")
        for m, st in zip(owners, meta["rngs"]):
            type(m.rng.bit_generator)().state = st
        history = {k: list(v) for k, v in meta["history"].items()}

        def go():
            for p, w in zip(params, ws):
                p.data[...] = w
            self.optimizer.load_state_dict(opt_sd)
            for m, st in zip(owners, meta["rngs"]):
                m.rng.bit_generator.state = st
            self.scheduler, self.grad_clip_norm = sched, clip
            self.epoch, self.step, self.history = meta["epoch"], meta["step"], history
            self.data_seed, self.replay = seed, seed is not None
            self._train_flag(meta["training"])
            self._drop_grads(params)

        return go
