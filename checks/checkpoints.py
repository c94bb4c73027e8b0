"""Audit 6.1 and 6.2, and the safety of checkpoint files.

* 6.1: train N epochs, save, load into FRESH objects (other initial weights, another data seed),
  train M more: the same as N+M epochs without stopping, bit for bit, with SGD momentum and Adam,
  a shuffling DataLoader, a CosineSchedule and gradient clipping.
* 6.2: the checkpoint is complete: the file holds the VALUES a resume needs (parameters, Adam's
  moments, momentum buffers), whatever names the student gave them, and the saved settings
  (optimizer hyper-parameters, schedule, clip norm) win over the new trainer's.
* checkpoint-safety: exactly the path given, parents created, no pickle (a file that unpickles
  can run code), written atomically, and a damaged or mismatched file raises and changes nothing.

Only the spec's public API is used: ``save_checkpoint``, ``load_checkpoint``, ``train_epoch``,
``evaluate``, ``epoch``, ``step``, ``history`` (train_loss, eval_loss, learning_rates), and the
given optimizers' ``state_dict()``.

A hidden run (``seed > 0``) shifts every model, data and shuffling seed and draws another number
of samples, batch size and hidden width.
"""

from __future__ import annotations

import copy
import json
import math
import os
import pickle
import re
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from checks.diagnose import (
    NOT_GRADED,
    Deviations,
    attempt,
    fail,
    finding,
    hint,
    listed,
    located,
    require,
    student_frames,
    unwritten,
)
from checks.replay import TRACKED_GLOBALS, graded, settled_after, ungraded
from checks.seeds import shifted, variation
from tinytorch.core.activations import ReLU
from tinytorch.core.layers import Dropout, Linear
from tinytorch.core.losses import MSELoss
from tinytorch.core.optimizers import SGD, Adam
from tinytorch.core.tensor import Tensor
from tinytorch.data import DataLoader, TensorDataset

N_EPOCHS, M_EPOCHS = 2, 2
HISTORY_KEYS = ("train_loss", "eval_loss", "learning_rates")


# ------------------------------------------------------------------ the scenario
def _shape(run: int) -> tuple[int, int, int]:
    """(samples, batch size, hidden width) of run ``run`` (0: the visible run)."""
    if run == 0:
        return 23, 4, 6
    vary = variation(run, 61)
    return int(vary.integers(17, 30)), int(vary.integers(4, 7)), int(vary.integers(4, 9))


def _data(run: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A hidden run's inputs are half as large: SGD with momentum 0.9 must not diverge there
    even without clipping, so a trainer that never clips fails the clipping checks, not these."""
    rng = np.random.default_rng(shifted(7, run))
    x = rng.normal(size=(_shape(run)[0], 3)) * (1.0 if run == 0 else 0.5)
    x = x.astype(np.float32)
    y = (x @ np.array([[1.5], [-2.0], [0.5]]) + 0.3).astype(np.float32)
    return x, y


class _Log:
    """Where a model writes the inputs it saw (not a layer: it has no ``forward``)."""

    def __init__(self) -> None:
        self.inputs: list[np.ndarray] = []


class _Net:
    """Linear(3, h) -> ReLU -> Dropout(0.2) -> Linear(h, out), duck-typed, logging every input
    it is given. The Dropout's random generator is state a resume must restore."""

    def __init__(self, seed: int, out: int = 1, hidden: int = 6) -> None:
        self.layer1 = Linear(3, hidden, seed=seed)
        self.relu = ReLU()
        self.dropout = Dropout(0.2, seed=seed + 2)
        self.layer2 = Linear(hidden, out, seed=seed + 1)
        self.training = True
        self.log = _Log()

    def forward(self, x: Tensor) -> Tensor:
        self.log.inputs.append(np.array(x.data, copy=True))
        return self.layer2(self.dropout(self.relu(self.layer1(x))))

    def parameters(self) -> list[Tensor]:
        return self.layer1.parameters() + self.layer2.parameters()


# kind -> (optimizer class, settings "a" (the saved run), settings "b" (another trainer))
OPTIMIZERS: dict[str, tuple[Any, dict[str, Any], dict[str, Any]]] = {
    "SGD with momentum": (SGD, {"lr": 0.05, "momentum": 0.9, "weight_decay": 1e-3},
                          {"lr": 0.4, "momentum": 0.3, "weight_decay": 0.1}),
    "Adam": (Adam, {"lr": 0.02, "betas": (0.85, 0.995), "eps": 1e-7},
             {"lr": 0.3, "betas": (0.5, 0.9), "eps": 1e-3}),
}


class _SpyLoader(DataLoader):
    """A shuffling DataLoader that counts how often the trainer chose its epoch's order."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.told = 0  # calls of set_epoch / load_state_dict

    def set_epoch(self, epoch: int) -> None:
        self.told += 1
        super().set_epoch(epoch)

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.told += 1
        super().load_state_dict(state)


#: A temporary folder of the check's (``tempfile.mkdtemp``'s "tmp" and 8 characters, wherever
#: the temporary root is): it differs from run to run, so a message never shows it.
_TEMPORARY = re.compile(r"(?:/[^\s/:'\"]+)*/tmp[a-z0-9_]{8}(?=/)")


class _Run:
    """A trainer with its model, optimizer and shuffling loader."""

    def __init__(self, Trainer: Any, CosineSchedule: Any, kind: str, *, seed: int,
                 data_seed: int, variant: str = "a", out: int = 1, run: int = 0) -> None:
        """``seed`` and ``data_seed`` are the visible run's; ``run`` is the check's run seed."""
        cls, settings_a, settings_b = OPTIMIZERS[kind]
        settings = settings_a if variant == "a" else settings_b
        self.kind = kind
        _, batch_size, hidden = _shape(run)
        self.model = _Net(shifted(seed, run), out=out, hidden=hidden)
        self.optimizer = cls(self.model.parameters(), **settings)
        top = settings["lr"]
        schedule = (CosineSchedule(max_lr=top, min_lr=top / 10, total_epochs=6) if variant == "a"
                    else CosineSchedule(max_lr=top, min_lr=top / 2, total_epochs=40))
        clip = 3.0 if variant == "a" else 0.01
        self.trainer = Trainer(self.model, self.optimizer, MSELoss(), scheduler=schedule,
                               grad_clip_norm=clip)
        x, y = _data(run)
        y = np.repeat(y, out, axis=1)
        self.loader = _SpyLoader(TensorDataset(x, y), batch_size=batch_size, shuffle=True,
                                 seed=shifted(data_seed, run))
        self.eval_loader = _SpyLoader(TensorDataset(x, y), batch_size=8, seed=0)

    def epoch(self, label: str) -> list[np.ndarray]:
        """Train one epoch and evaluate; return the inputs the model saw while training."""
        self.model.log.inputs.clear()
        try:
            self.trainer.train_epoch(self.loader)
            seen = list(self.model.log.inputs)
            self.trainer.evaluate(self.eval_loader)
        except Exception as error:
            unwritten(error)
            if not student_frames(error):  # the trainer lacks something the run calls
                bug = hint(error, [])
            elif "resumed" in label:
                bug = ("training crashed after load_checkpoint, though the same trainer trained "
                       "before saving: something it needs was not restored, or restored as "
                       "another type (lists for arrays, a dict for the scheduler?)")
            else:
                bug = ("the trainer crashes in this setup, before any checkpoint: a shuffling "
                       "DataLoader, a CosineSchedule, grad_clip_norm and a model with Dropout, "
                       "then evaluate")
            fail(f"{label}: training raised", "train_epoch and evaluate run",
                 f"{type(error).__name__}: {error}{located(error)}", bug)
        return seen

    def save(self, path: Path, label: str) -> None:
        attempt(f"{label}: save_checkpoint raised", "the checkpoint is written",
                "save_checkpoint crashes", self.trainer.save_checkpoint, path)

    def load(self, path: Path, label: str) -> None:
        try:
            self.trainer.load_checkpoint(path)
        except Exception as error:  # noqa: BLE001 - the student's code, reported below
            unwritten(error)
            # the check's own temporary folder differs from run to run: never in a message
            text = _TEMPORARY.sub("<the check's folder>", str(error)[:1000])
            if re.search(r"state must be|must be for a \w+ RNG|^'?(state|bit_generator)'?$",
                         text):
                bug = ("loading a random generator's state failed: the file holds no usable "
                       "random state for a Dropout (empty, {}, or not the dict "
                       "rng.bit_generator.state gave): save_checkpoint must write each "
                       "Dropout's whole bit_generator.state, and load put that same dict back")
            else:
                bug = ("save_checkpoint and load_checkpoint do not agree: either save wrote an "
                       "incomplete or changed value (look at what it writes for the value load "
                       "fails on), or load cannot read what save wrote")
            where = _TEMPORARY.sub("<the check's folder>", located(error))
            fail(f"{label}: load_checkpoint raised on the checkpoint save_checkpoint had just "
                 "written", "the checkpoint loads", f"{type(error).__name__}: {text}{where}",
                 bug)

    def state(self) -> dict[str, Any]:
        return {
            "training_mode": getattr(self.trainer, "training_mode", None),
            "flags": (bool(self.model.training), bool(self.model.dropout.training)),
            "dropout_rng": self.model.dropout.rng.bit_generator.state,
            "params": [np.array(p.data, copy=True) for p in self.model.parameters()],
            "optimizer": copy.deepcopy(self.optimizer.state_dict()),
            "epoch": self.trainer.epoch,
            "step": self.trainer.step,
            "history": {k: [float(v) for v in self.trainer.history.get(k, [])]
                        for k in HISTORY_KEYS},
        }


def _close(a: list[float], b: list[float]) -> bool:
    """History lists: same length, values equal up to float32 rounding (a file may hold them
    as float32)."""
    return len(a) == len(b) and all(
        (math.isnan(x) and math.isnan(y)) or math.isclose(x, y, rel_tol=1e-6, abs_tol=1e-12)
        for x, y in zip(a, b, strict=True))


def _same(a: Any, b: Any) -> bool:
    """Exact equality of nested arrays, lists, dicts and numbers (NaN equals NaN)."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        a, b = np.asarray(a), np.asarray(b)
        return a.shape == b.shape and bool(np.array_equal(a, b, equal_nan=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return bool(a == b)


_BUFFER_BUGS = {
    "exp_avg": "Adam's moments (exp_avg, exp_avg_sq) are not in the checkpoint (or not loaded "
               "back into the optimizer)",
    "exp_avg_sq": "Adam's moments (exp_avg, exp_avg_sq) are not in the checkpoint (or not "
                  "loaded back into the optimizer)",
    "momentum_buffer": "SGD's momentum buffers are not in the checkpoint (or not loaded back "
                       "into the optimizer)",
    "step": "each parameter's optimizer step count (state['step'], which this library's Adam "
            "reads for its bias correction) was not restored",
}


def _diagnose_after_load(label: str, saved: dict[str, Any], loaded: dict[str, Any],
                         *, complete: bool) -> None:
    """Compare the state right after loading with the state that was saved; name what is off.
    ``complete`` (6.2) also asks for what the next steps do not read: the saved
    hyper-parameters winning, and ``optimizer.step_count``."""
    found = Deviations()
    want_opt, got_opt = saved["optimizer"], loaded["optimizer"]
    with found.part():
        for i, (want, got) in enumerate(zip(saved["params"], loaded["params"], strict=True)):
            require(_same(want, got), f"{label}: parameter {i} differs right after loading",
                    "the saved values, bit for bit", "other values (the fresh model's own?)",
                    "the parameters were not restored: copy the saved values into the model's "
                    "parameter arrays (in place, the optimizer holds the same arrays)")
    with found.part():
        require(loaded["epoch"] == saved["epoch"], f"{label}: trainer.epoch after loading",
                saved["epoch"], loaded["epoch"],
                f"the scheduler/epoch was not restored: epoch after loading is {loaded['epoch']}, "
                "so the schedule restarts")
    with found.part():
        require(loaded["step"] == saved["step"], f"{label}: trainer.step after loading",
                saved["step"], loaded["step"], "trainer.step was not saved or not restored")
    with found.part():
        for key in HISTORY_KEYS:
            require(_close(saved["history"][key], loaded["history"][key]),
                    f"{label}: history[{key!r}] after loading", saved["history"][key],
                    loaded["history"][key],
                    "history was not restored: save the whole history and put it back on load")
    saved_mode_agrees = saved["flags"] == (saved["training_mode"],) * 2  # else 2.1's subject
    with found.part():
        require(not saved_mode_agrees or loaded["training_mode"] == saved["training_mode"]
                and loaded["flags"] == saved["flags"],
                f"{label}: the training mode after loading (trainer.training_mode, model.training, "
                "its Dropout's training)",
                (saved["training_mode"], *saved["flags"]),
                (loaded["training_mode"], *loaded["flags"]),
                "the training mode was not restored: save trainer.training_mode and put the model "
                "and every layer back in that mode on load")
    with found.part():
        require(loaded["dropout_rng"] == saved["dropout_rng"],
                f"{label}: the Dropout's random generator after loading", "the saved state",
                "another state (the fresh model's own)",
                "the Dropout layers' random states were not saved or not restored, so the resumed "
                "run drops other units: save each Dropout's rng.bit_generator.state")
    with found.part():
        if complete:
            want_h = {k: v for k, v in want_opt["hyperparameters"].items() if k != "lr"}
            got_h = {k: v for k, v in got_opt["hyperparameters"].items() if k != "lr"}
            require(_same(want_h, got_h), f"{label}: optimizer hyper-parameters after loading",
                    want_h, got_h,
                    "the saved optimizer hyper-parameters did not win: a loaded checkpoint must "
                    "set them on the optimizer, over the ones the new trainer was built with")
    with found.part():  # every key that is off, not only the first
        off: dict[str, list[int]] = {}
        for i, (want, got) in enumerate(zip(want_opt["state"], got_opt["state"], strict=True)):
            for name in want:
                if name == "step" and not any(isinstance(v, np.ndarray) and n.startswith("exp_")
                                              for n, v in want.items()):
                    continue  # only Adam reads the per-parameter count: SGD resumes without it
                if name not in got or not _same(np.asarray(want[name]), np.asarray(got[name])):
                    off.setdefault(name, []).append(i)
        if off:
            fail(f"{label}: the optimizer's state after loading",
                 "the saved run's buffers and step counts, for every parameter",
                 "; ".join(f"{name!r} missing or different (parameters {listed(where)})"
                           for name, where in off.items()),
                 "resume diverged at the first step after loading: " + "; ".join(
                     dict.fromkeys(_BUFFER_BUGS.get(name, name) for name in off)))
    with found.part():
        if complete:
            require(got_opt["step_count"] == want_opt["step_count"],
                    f"{label}: optimizer.step_count after loading", want_opt["step_count"],
                    got_opt["step_count"],
                    "optimizer.step_count was not restored (the updates of this library read each "
                    "parameter's state['step'], so training may still resume, but the checkpoint "
                    "must give the optimizer back its whole state_dict)")
    found.report()


def _resume(Trainer: Any, CosineSchedule: Any, kind: str, variant: str, label: str,
            run: int) -> None:
    """Train N, save, load into fresh objects (``variant`` b: other settings), train M; compare
    with the uninterrupted run at every step of the way."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "run.ckpt"
        straight = _Run(Trainer, CosineSchedule, kind, seed=0, data_seed=11, run=run)
        with settled_after(straight.trainer):  # what these epochs saw is not compared
            for _ in range(N_EPOCHS):
                straight.epoch(f"{label} (uninterrupted run)")
        saved = straight.state()
        straight.save(path, label)
        after = []
        for _ in range(M_EPOCHS):
            seen = straight.epoch(f"{label} (uninterrupted run)")
            after.append((seen, straight.state()))

        fresh = _Run(Trainer, CosineSchedule, kind, seed=100, data_seed=99, variant=variant,
                     run=run)
        fresh.load(path, label)
        _diagnose_after_load(label, saved, fresh.state(), complete=variant == "b")
        unrestored = _unrestored_setting(straight, fresh)
        for k, (want_seen, want) in enumerate(after):
            epoch = N_EPOCHS + k
            seen = fresh.epoch(f"{label} (resumed run)")
            got = fresh.state()
            same_batches = len(seen) == len(want_seen) and all(
                _same(a, b) for a, b in zip(seen, want_seen, strict=True))
            if not same_batches and (straight.eval_loader.told or fresh.eval_loader.told):
                bug = ("evaluate chose its loader's epoch (set_epoch / load_state_dict, e.g. "
                       "through self._start_data_order): only train_epoch may, or the trainer "
                       "records and saves the evaluation loader's order instead of the "
                       "training loader's")
            elif not same_batches and not fresh.loader.told:
                bug = ("train_epoch never tells the loader which epoch it trains, so a resumed "
                       "run gets the new loader's own order whatever the checkpoint holds: "
                       "before the first batch call self._start_data_order(dataloader) (the "
                       "notebook's helper), which calls the loader's set_epoch(epoch), or "
                       "load_state_dict({'seed': saved seed, 'epoch': epoch}) after a load")
            else:
                bug = ("the data order was not restored: save the shuffling DataLoader's seed "
                       "and replay epoch e's order after loading (load_state_dict/set_epoch)")
            require(same_batches, f"{label}: the batches of epoch {epoch} after resuming",
                    "the uninterrupted run's order", "another order", bug)
            want_lr, got_lr = want["history"]["learning_rates"], got["history"]["learning_rates"]
            require(_close(want_lr, got_lr), f"{label}: learning rate of epoch {epoch}",
                    want_lr, got_lr,
                    "the saved schedule was not restored (the scheduler's settings must win "
                    "over the new trainer's): the resumed epoch trained with another LR")
            for i, (a, b) in enumerate(zip(want["params"], got["params"], strict=True)):
                require(_same(a, b), f"{label}: parameter {i} after resumed epoch {epoch}",
                        "the uninterrupted run's values, bit for bit",
                        f"max difference {float(np.max(np.abs(a - b))):.3g}",
                        unrestored or "resume diverged although the loaded state matched: "
                        "something the next step depends on was not restored (grad_clip_norm, "
                        "the optimizer's lr or hyper-parameters, or the schedule)")
            same = (want["epoch"] == got["epoch"] and want["step"] == got["step"]
                    and all(_close(want["history"][k], got["history"][k]) for k in HISTORY_KEYS))
            require(same, f"{label}: trainer state after resumed epoch {epoch}",
                    {k: want[k] for k in ("epoch", "step", "history")},
                    {k: got[k] for k in ("epoch", "step", "history")},
                    "epoch, step or history drift after resuming (appended twice, or counted "
                    "from the wrong start?)")


def _unrestored_setting(straight: _Run, fresh: _Run) -> str | None:
    """The saved setting a loaded trainer still lacks (its own constructor's value won), named
    for the message, or None. Read only to explain a failure already observed."""
    want_clip = getattr(straight.trainer, "grad_clip_norm", None)
    got_clip = getattr(fresh.trainer, "grad_clip_norm", None)
    if want_clip != got_clip:
        return (f"grad_clip_norm was not restored: the resumed trainer clips at {got_clip}, the "
                f"checkpoint holds {want_clip} (saved settings must win over the new trainer's)")
    want = straight.optimizer.state_dict()["hyperparameters"]
    got = fresh.optimizer.state_dict()["hyperparameters"]
    differ = sorted(k for k in want if k != "lr" and not _same(want[k], got.get(k)))
    if differ:
        return (f"the optimizer's hyper-parameters {differ} were not restored: the resumed "
                f"optimizer has {[got.get(k) for k in differ]}, the checkpoint holds "
                f"{[want[k] for k in differ]}")
    return None


# ------------------------------------------------------------------ 6.1
def check_resume_is_exact(Trainer: Any, CosineSchedule: Any, *, seed: int = 0) -> None:
    """6.1: N epochs, save, load into fresh objects, M epochs == N+M epochs, bit for bit."""
    found = Deviations()
    for kind in OPTIMIZERS:
        with found.part():
            _resume(Trainer, CosineSchedule, kind, "a", f"resume with {kind}", seed)
    found.report()


# ------------------------------------------------------------------ 6.2
#: What a checkpoint archive may declare before anything in it is inflated (an honest one of
#: these checks' models: about 13 members and 3 KB): a file of a few KB can declare gigabytes,
#: or list one large member hundreds of times, and the checks run in the trusted grader too.
MAX_ARCHIVE_MEMBERS = 256
MAX_ARCHIVE_BYTES = 8 * 2**20
#: JSON text inside a checkpoint is searched for numbers only up to this length.
MAX_JSON_TEXT = 2**20
_CENTRAL_ENTRY = b"PK\x01\x02"  # the signature of each member in a zip's central directory
_NPY_HEADERS = {(1, 0): np.lib.format.read_array_header_1_0,
                (2, 0): np.lib.format.read_array_header_2_0}


def _archive_problem(path: Path) -> str | None:
    """Why the zip at ``path`` is too large to examine, judged from what it declares (members,
    their uncompressed sizes, each array's shape against its member's size) before anything is
    inflated; None for a file within bounds or not a zip at all."""
    try:
        data = path.read_bytes()
        if not zipfile.is_zipfile(path):
            return None
        entries = data.count(_CENTRAL_ENTRY)  # counted before zipfile builds a list of them
        if entries > MAX_ARCHIVE_MEMBERS:
            return f"the archive lists {entries} members, more than {MAX_ARCHIVE_MEMBERS}"
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
            if len(members) > MAX_ARCHIVE_MEMBERS:
                return f"the archive lists {len(members)} members, more than {MAX_ARCHIVE_MEMBERS}"
            total = sum(member.file_size for member in members)
            if total > MAX_ARCHIVE_BYTES:
                return (f"the archive's members declare {total} bytes uncompressed, more than "
                        f"{MAX_ARCHIVE_BYTES}")
            for member in members:
                problem = _member_problem(archive, member)
                if problem:
                    return problem
    except Exception as error:  # noqa: BLE001 - a hostile archive may fail in any way
        return f"the archive cannot be read ({type(error).__name__}: {str(error)[:120]})"
    return None


def _member_problem(archive: zipfile.ZipFile, member: zipfile.ZipInfo) -> str | None:
    """An .npy member whose header declares more array bytes than the member holds (numpy
    allocates the declared shape before it reads)."""
    with archive.open(member) as stream:
        if stream.read(6) != b"\x93NUMPY":
            return None
        version = tuple(stream.read(2))
        read_header = _NPY_HEADERS.get(version)  # type: ignore[call-overload]
        if read_header is None:
            return f"member {member.filename!r} is an .npy of version {version}"
        shape, _, dtype = read_header(stream)
    size = math.prod(shape) * dtype.itemsize
    if size > member.file_size:
        return (f"member {member.filename!r} declares an array of {size} bytes in "
                f"{member.file_size}")
    return None


def _haystack(path: Path) -> list[np.ndarray] | str | None:
    """Every number sequence in the file as float64 arrays (arrays, and numbers in JSON text
    kept as arrays of bytes or strings), None when np.load cannot read the file, or why the
    file is too large to examine (see ``_archive_problem``)."""
    problem = _archive_problem(path)
    if problem:
        return problem
    try:
        with open(path, "rb") as f, np.load(f, allow_pickle=False) as npz:
            arrays = [npz[name] for name in npz.files]
    except Exception:  # noqa: BLE001 - not an .npz np.load reads: judged by behaviour only
        return None
    if not all(isinstance(a, np.ndarray) for a in arrays):  # a zip of other files
        return None
    hay: list[np.ndarray] = []

    def numbers(node: Any) -> None:
        if isinstance(node, dict):
            for value in node.values():
                numbers(value)
        elif isinstance(node, list):
            try:
                hay.append(np.asarray(node, dtype=np.float64).ravel())
            except (TypeError, ValueError):
                for value in node:
                    numbers(value)

    def parsed(text: str) -> Any:
        if len(text) > MAX_JSON_TEXT:
            return None
        try:
            return json.loads(text)
        except (ValueError, RecursionError):
            return None

    for array in arrays:
        if array.dtype.kind in "fiu" and array.dtype != np.uint8:
            hay.append(array.astype(np.float64).ravel())
        elif array.dtype.kind in "fiu":
            hay.append(array.astype(np.float64).ravel())
            try:
                numbers(parsed(array.tobytes().decode()))
            except (UnicodeDecodeError, RecursionError):
                pass
        elif array.dtype.kind in "US":
            for text in array.ravel()[:MAX_ARCHIVE_MEMBERS]:
                try:
                    numbers(parsed(str(text if array.dtype.kind == "U" else text.decode())))
                except (UnicodeDecodeError, RecursionError):
                    pass
    return hay


def _contains(hay: list[np.ndarray], needle: np.ndarray) -> bool:
    """``needle``'s values, in order, as one contiguous run of some array of ``hay``."""
    values = np.asarray(needle, dtype=np.float64).ravel()
    n = values.size
    for array in hay:
        if array.size < n:
            continue
        if n == 0:
            return True
        windows = np.lib.stride_tricks.sliding_window_view(array, n)
        if bool(np.any(np.all(windows == values, axis=1))):
            return True
    return False


def _file_is_complete(Trainer: Any, CosineSchedule: Any, kind: str, seed: int) -> None:
    label = f"checkpoint file with {kind}"
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "run.ckpt"
        run = _Run(Trainer, CosineSchedule, kind, seed=0, data_seed=11, run=seed)
        found = Deviations()
        # a crash is reported, and the file saved after it still examined; what the epochs
        # saw is not compared, so their state is recorded once, after them
        with found.part(), settled_after(run.trainer):
            for _ in range(N_EPOCHS):
                run.epoch(label)
        state = run.state()
        run.save(path, label)
        hay = _haystack(path)
    if isinstance(hay, str):
        with found.part():
            fail(f"{label}: the file is too large to examine", "a checkpoint of this model "
                 f"(at most {MAX_ARCHIVE_MEMBERS} members, {MAX_ARCHIVE_BYTES // 2**20} MiB "
                 "uncompressed)", hay, "save_checkpoint writes far more than the model's "
                 "state: save each array once, compressed or not, and nothing else")
        hay = None
    if hay is None:
        found.report()
        return  # not an .npz: judged by behaviour only (checkpoint-safety judges the format)
    with found.part():
        _values_in_file(hay, state, label)
    found.report()


def _values_in_file(hay: list[np.ndarray], state: dict[str, Any], label: str) -> None:
    """Every parameter and optimizer buffer of ``state`` is somewhere in the file's numbers."""
    for i, value in enumerate(state["params"]):
        require(_contains(hay, value), f"{label}: parameter {i} is not in the file",
                "every parameter's values", "not found (read with np.load)",
                "save_checkpoint does not write the model's parameters")
    absent: dict[str, list[int]] = {}
    for i, buffers in enumerate(state["optimizer"]["state"]):
        for name, value in buffers.items():
            if isinstance(value, np.ndarray) and not _contains(hay, value):
                absent.setdefault(name, []).append(i)
    if absent:  # every missing buffer, not only the first
        fail(f"{label}: optimizer buffers not in the file: "
             + ", ".join(f"{name!r} (parameters {listed(where)})" for name, where in
                         absent.items()),
             "Adam's moments / SGD's momentum buffers, value for value",
             "not found (read with np.load)",
             "resume diverged at the first step after loading: " + "; ".join(
                 dict.fromkeys(_BUFFER_BUGS.get(name, name) for name in absent)))


def check_checkpoint_is_complete(Trainer: Any, CosineSchedule: Any, *, seed: int = 0) -> None:
    """6.2: the file holds every value a resume needs, and the saved settings win."""
    found = Deviations()
    for kind in OPTIMIZERS:
        with found.part():
            _file_is_complete(Trainer, CosineSchedule, kind, seed)
    for kind in OPTIMIZERS:
        with found.part():
            _resume(Trainer, CosineSchedule, kind, "b",
                    f"saved settings win ({kind}; the new trainer has other lr, betas/momentum, "
                    "schedule and clip)", seed)
    found.report()


# ------------------------------------------------------------------ safety
_TRIPPED: list[str] = []
TRACKED_GLOBALS["checkpoints._TRIPPED"] = _TRIPPED  # set by student code: recorded, replayed


def _tripwire(message: str) -> None:
    """Called only if someone unpickles the decoy file."""
    _TRIPPED.append(message)


class _Decoy:
    def __reduce__(self) -> tuple[Callable[[str], None], tuple[str]]:
        return _tripwire, ("unpickled",)


def _looks_pickled(path: Path) -> str | None:
    data = path.read_bytes()
    if data[:1] == b"\x80":
        return "the file is a pickle"
    if zipfile.is_zipfile(path):
        problem = _archive_problem(path)
        if problem:
            return f"the file is a zip too large to examine: {problem}"
        with zipfile.ZipFile(path) as archive:
            if any(name.endswith((".pkl", ".pickle")) for name in archive.namelist()):
                return "the file is a zip holding a pickle"
        try:
            with open(path, "rb") as f, np.load(f, allow_pickle=False) as npz:
                for name in npz.files:
                    npz[name]
        except ValueError as error:
            if "pickle" in str(error):
                return "the .npz holds object arrays, which np.load can only read by unpickling"
    return None


def _snapshot(run: _Run) -> dict[str, Any]:
    return run.state()


def _refuses(run: _Run, path: Path, what: str, bug: str) -> None:
    """Loading ``path`` must raise and leave the run exactly as it was."""
    before = _snapshot(run)
    try:
        run.trainer.load_checkpoint(path)
    except Exception as error:  # any clear error will do; what matters is that nothing changed
        unwritten(error)
        pass
    else:
        fail(f"loading {what} did not raise", "an error naming the file", "it loaded",
             "load_checkpoint must check the file (and that it fits the model) and refuse it")
    after = _snapshot(run)
    for i, (a, b) in enumerate(zip(before["params"], after["params"], strict=True)):
        require(_same(a, b), f"loading {what} raised but changed parameter {i}",
                "the trainer unchanged", "parameter changed", bug)
    for key in ("epoch", "step", "history", "optimizer"):
        require(_same(before[key], after[key]), f"loading {what} raised but changed {key}",
                before[key] if key != "optimizer" else "unchanged",
                after[key] if key != "optimizer" else "changed",
                "a failed load left the trainer half restored: validate the whole file first, "
                "then change anything")


def check_checkpoint_safety(Trainer: Any, CosineSchedule: Any, *, seed: int = 0) -> None:
    """Exact path, parents created, not a pickle, atomic, damaged/mismatched files refused.

    Each requirement is judged on its own: a trainer whose training crashes still has its
    saved file's path and format examined, and every deviation is reported."""
    found = Deviations()
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        run = _Run(Trainer, CosineSchedule, "Adam", seed=0, data_seed=11, run=seed)
        with found.part():
            run.epoch("checkpoint safety")
        # exactly the path given, parents created, as str and as Path
        for path, as_str in ((root / "deep" / "er" / "model.weird", True),
                             (root / "plain", False)):
            with found.part():
                run.save(str(path) if as_str else path, "checkpoint safety")
                names = sorted(p.name for p in path.parent.iterdir() if p.is_file())
                expected = [path.name] if path.parent != root else ["plain"]
                require(names == expected, "files written by save_checkpoint",
                        expected, names,
                        "save_checkpoint must write exactly the path given: np.savez(path) adds "
                        "'.npz' to a name without it (pass an open file instead), and a "
                        "temporary file must be renamed over the path")
            if not path.is_file():
                continue
            with found.part():
                reason = _looks_pickled(path)
                require(reason is None, "the checkpoint's format", "no pickle (e.g. .npz + JSON)",
                        reason, "the file is a pickle: loading it can run arbitrary code; use "
                        "np.savez with plain arrays and JSON for the rest")
            with found.part():
                fresh = _Run(Trainer, CosineSchedule, "Adam", seed=5, data_seed=3, run=seed)
                fresh.load(str(path) if not as_str else path, "checkpoint safety")

        # loading must not unpickle. Known only by a tripwire in this process, which the
        # student's code can reach and empty after it ran (and a load that unpickles and then
        # refuses leaves no other trace): the student's feedback in the kernel, and in a
        # trusted grade a note on the report, never a lost point (``graded``, ``ungraded``).
        # What a grade does judge is the file save wrote: a pickle there is refused above, a
        # consequence the judge reads from the file itself.
        with found.part():
            decoy = root / "decoy.ckpt"
            decoy.write_bytes(pickle.dumps(_Decoy()))
            _TRIPPED.clear()
            other = _Run(Trainer, CosineSchedule, "Adam", seed=5, data_seed=3, run=seed)
            try:
                other.trainer.load_checkpoint(decoy)
            except Exception as error:  # noqa: BLE001 - refusing is right; running it is not
                unwritten(error)
            tripped = bool(_TRIPPED)
            _TRIPPED.clear()
            said = ("loading a pickle file", "refused without running it",
                    "the pickle ran code while loading",
                    "the file is a pickle: loading it can run arbitrary code (pickle.load or "
                    "np.load(allow_pickle=True)); read with np.load(..., allow_pickle=False)")
            if not graded(Trainer):
                require(not tripped, *said)
            elif tripped:
                ungraded(Trainer, f"{NOT_GRADED}: {finding(*said)}")

        good = root / "plain"
        if not good.is_file():
            found.report()  # nothing was saved: the rest needs a checkpoint
            return
        data = good.read_bytes()

        # atomic: the old file is replaced, never rewritten in place
        with found.part():
            old = root / "old-link"
            try:
                os.link(good, old)
            except OSError:
                old = None
            run.epoch("checkpoint safety")  # new state, so a rewrite in place would show
            run.save(good, "checkpoint safety")
            if old is not None:
                require(old.read_bytes() == data, "saving over an existing checkpoint",
                        "a new file renamed over the old one",
                        "the old file was rewritten in place",
                        "the save is not atomic: a crash mid-save would leave a broken "
                        "checkpoint; write a temporary file in the same folder, then os.replace "
                        "it over the path")
                old.unlink()

        # damaged files and other shapes: refused, nothing changed
        truncated = root / "truncated.ckpt"
        truncated.write_bytes(data[: len(data) // 2])
        corrupted = root / "corrupted.ckpt"
        middle = len(data) // 2
        corrupted.write_bytes(data[:middle] + bytes(b ^ 0xFF for b in data[middle:middle + 64])
                              + data[middle + 64:])
        bug = ("a failed load changed the trainer: validate the whole file before changing "
               "anything")
        with found.part():
            other = _Run(Trainer, CosineSchedule, "Adam", seed=5, data_seed=3, run=seed)
            other.epoch("checkpoint safety")
            for damaged, what in ((root / "missing.ckpt", "a missing file"),
                                  (truncated, "a truncated file"),
                                  (corrupted, "a corrupted file")):
                _refuses(other, damaged, what, bug)
        with found.part():
            wider = _Run(Trainer, CosineSchedule, "Adam", seed=5, data_seed=3, out=2, run=seed)
            wider.epoch("checkpoint safety")
            _refuses(wider, good, "a checkpoint of a model with another last layer",
                     "loading copied the first layer before noticing the shapes differ: "
                     "validate the whole file first")
    found.report()


CHECKS: dict[str, Callable[..., None]] = {
    "6.1": check_resume_is_exact,
    "6.2": check_checkpoint_is_complete,
    "checkpoint-safety": check_checkpoint_safety,
}
