"""Audit 6.1 and 6.2: checkpoints save everything a resume needs, and resume is exact.

The spec's checkpoint section, point by point:

* resume is bit for bit: train N epochs, save, load into FRESH objects (other initial weights,
  other dropout and data seeds, other hyper-parameters), train M more == N+M without stopping,
  for SGD with momentum, Adam and AdamW, with a shuffling DataLoader, a CosineSchedule, gradient
  clipping, gradient accumulation and Dropout all active at once;
* the file holds parameters, optimizer kind, hyper-parameters and state (momentum buffers, Adam
  moments, step counts), scheduler settings, grad_clip_norm, epoch, step, history, training mode
  and the data order's seed; saved settings win over the constructor's;
* exactly the given path (any suffix), parent folders created, no pickle, written atomically;
* load validates the whole file first: a missing, truncated, corrupted, tampered or mismatched
  file raises CheckpointError (a ValueError naming the file) and changes nothing.

Expected values come from the uninterrupted run, from the constants below, or from the file's
bytes, never from the checkpoint code itself.
"""

from __future__ import annotations

import builtins
import copy
import io
import json
import math
import os
import pathlib
import pickle
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest
from support import loader

from tinytorch.core.activations import ReLU
from tinytorch.core.checkpoint import CheckpointError, read_checkpoint
from tinytorch.core.layers import Dropout, Linear, Sequential
from tinytorch.core.losses import MSELoss
from tinytorch.core.optimizers import SGD, Adam, AdamW
from tinytorch.core.tensor import Tensor
from tinytorch.core.training import CosineSchedule, Trainer

# ------------------------------------------------------------------ the scenario
N_SAMPLES, BATCH, ACCUMULATION = 23, 4, 2  # 6 batches (the last holds 3), 3 steps an epoch
STEPS_PER_EPOCH = 3
CLIP = 2.0  # some steps of the scenario have a larger norm (clipped), some a smaller one


def _data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    x = rng.normal(size=(N_SAMPLES, 3)).astype(np.float32)
    y = (x @ np.array([[1.5], [-2.0], [0.5]]) + 0.3).astype(np.float32)
    return x, y


X, Y = _data()

# Hyper-parameters of the run that is saved ("A") and of the fresh trainer it is loaded into
# ("B"): every value differs, so a setting that is not restored changes the next update.
SETTINGS = {
    "sgd_momentum": (
        SGD,
        {"lr": 0.05, "momentum": 0.9, "weight_decay": 1e-3},
        {"lr": 0.5, "momentum": 0.3, "weight_decay": 0.1},
    ),
    "adam": (
        Adam,
        {"lr": 0.01, "betas": (0.85, 0.995), "eps": 1e-7, "weight_decay": 1e-3},
        {"lr": 0.2, "betas": (0.5, 0.9), "eps": 1e-3, "weight_decay": 0.2},
    ),
    "adamw": (
        AdamW,
        {"lr": 0.01, "betas": (0.85, 0.995), "eps": 1e-7, "weight_decay": 0.05},
        {"lr": 0.2, "betas": (0.5, 0.9), "eps": 1e-3, "weight_decay": 0.5},
    ),
}
KINDS = list(SETTINGS)


def _schedule_a() -> CosineSchedule:
    return CosineSchedule(max_lr=0.05, min_lr=0.005, total_epochs=8, warmup_epochs=1)


def _schedule_b() -> CosineSchedule:
    return CosineSchedule(max_lr=0.9, min_lr=0.1, total_epochs=30)


def _model(seed: int) -> Sequential:
    return Sequential(
        Linear(3, 8, seed=seed),
        ReLU(),
        Dropout(0.25, seed=seed + 1),
        Linear(8, 1, seed=seed + 2),
    )


def _build(
    kind: str,
    *,
    seed: int = 0,
    data_seed: int | None = 11,
    variant: str = "a",
    scheduler: Any = "default",
    clip: Any = "default",
    model: Any = None,
) -> tuple[Trainer, Any]:
    """A trainer and its shuffling loader. Variant "a" is the saved run's configuration, "b" a
    different one for the trainer a checkpoint is loaded into."""
    cls, settings_a, settings_b = SETTINGS[kind]
    model = _model(seed) if model is None else model
    optimizer = cls(model.parameters(), **(settings_a if variant == "a" else settings_b))
    if scheduler == "default":
        scheduler = _schedule_a() if variant == "a" else _schedule_b()
    if clip == "default":
        clip = CLIP if variant == "a" else 0.01
    trainer = Trainer(model, optimizer, MSELoss(), scheduler=scheduler, grad_clip_norm=clip)
    return trainer, loader(X, Y, BATCH, shuffle=True, seed=data_seed)


def _eval_loader():
    return loader(X, Y, 8)


def _train(trainer: Trainer, data: Any, epochs: int, *, evaluate: bool = True) -> list[float]:
    losses = []
    for _ in range(epochs):
        losses.append(trainer.train_epoch(data, accumulation_steps=ACCUMULATION))
        if evaluate:
            trainer.evaluate(_eval_loader())
    return losses


def _dropouts(trainer: Trainer) -> list[Dropout]:
    return [layer for layer in trainer.model.layers if isinstance(layer, Dropout)]


# ------------------------------------------------------------------ comparing whole states
def assert_same(a: Any, b: Any, where: str = "state") -> None:
    """Exact structural equality: arrays by dtype, shape and every bit; floats exactly."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        assert isinstance(a, np.ndarray) and isinstance(b, np.ndarray), f"{where}: type differs"
        assert a.dtype == b.dtype, f"{where}: dtype {a.dtype} != {b.dtype}"
        assert np.array_equal(a, b), f"{where}: arrays differ:\n{a}\n{b}"
    elif isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), f"{where}: keys differ"
        for key in a:
            assert_same(a[key], b[key], f"{where}[{key!r}]")
    elif isinstance(a, list | tuple):
        assert isinstance(b, list | tuple) and len(a) == len(b), f"{where}: lengths differ"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same(x, y, f"{where}[{i}]")
    elif isinstance(a, float) and math.isnan(a):
        assert isinstance(b, float) and math.isnan(b), f"{where}: {a!r} != {b!r}"
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def _comparable(state: dict[str, Any]) -> dict[str, Any]:
    """A snapshot without the scheduler's identity (two trainers never share one object)."""
    return {k: v for k, v in state.items() if k != "scheduler_identity"}


def snapshot(trainer: Trainer) -> dict[str, Any]:
    """Everything the brief lists as "must be left as it was" (copies, not references)."""
    scheduler = trainer.scheduler
    return {
        "params": [p.data.copy() for p in trainer.model.parameters()],
        "param_dtypes": [p.data.dtype for p in trainer.model.parameters()],
        "optimizer": copy.deepcopy(trainer.optimizer.state_dict()),
        "optimizer_lr": trainer.optimizer.lr,
        "epoch": trainer.epoch,
        "step": trainer.step,
        "history": copy.deepcopy(trainer.history),
        "scheduler_identity": id(scheduler),
        "scheduler": copy.deepcopy(vars(scheduler)) if scheduler is not None else None,
        "grad_clip_norm": trainer.grad_clip_norm,
        "training_mode": trainer.training_mode,
        "model_training": [trainer.model.training]
        + [getattr(layer, "training", None) for layer in trainer.model.layers],
        "dropout_rng": [copy.deepcopy(d.rng.bit_generator.state) for d in _dropouts(trainer)],
        "grads_cleared": [p.grad is None for p in trainer.model.parameters()],
    }


def _meta_leaves(node: Any, path: tuple = ()) -> Iterator[tuple[tuple, Any]]:
    """(key path, value) for every leaf of a JSON-like structure."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _meta_leaves(value, (*path, str(key)))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _meta_leaves(value, (*path, i))
    else:
        yield path, node


def _meta_nodes(node: Any) -> Iterator[Any]:
    """Every dict and list in a JSON-like structure, the root included."""
    yield node
    children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
    for child in children:
        if isinstance(child, dict | list):
            yield from _meta_nodes(child)


def _has_leaf(meta: Any, value: Any, key_hint: str | None = None, under: str | None = None):
    """True if some leaf equals ``value`` (same type family), optionally with a key containing
    ``key_hint`` and below a top-level key containing ``under``."""
    for path, leaf in _meta_leaves(meta):
        if isinstance(value, bool) != isinstance(leaf, bool) or leaf != value:
            continue
        keys = [k.lower() for k in path if isinstance(k, str)]
        if key_hint is not None and not any(key_hint in k for k in keys[-2:]):
            continue
        if under is not None and not (keys and under in keys[0]):
            continue
        return True
    return False


# ------------------------------------------------------------------ 6.1: exact resume
@pytest.mark.audit("6.1")
@pytest.mark.parametrize("kind", KINDS)
def test_resume_is_bit_exact_with_everything_on(kind, tmp_path):
    """Audit 6.1: train 3 epochs, save, train 3 more == load into fresh objects, train 3.

    Fresh objects: other initial weights, another dropout seed, a loader with another shuffle
    seed, other hyper-parameters, schedule and clip norm. The checkpoint must carry all of it,
    plus the optimizer's buffers and step counts, the dropout RNG, the data order, epoch, step
    and history. Compared bit for bit (np.array_equal), with evaluation between epochs.
    """
    path = tmp_path / "run.ckpt"
    reference, data = _build(kind)
    _train(reference, data, 3)
    reference.save_checkpoint(path)
    reference_losses = _train(reference, data, 3)

    resumed, fresh_data = _build(kind, seed=100, data_seed=999, variant="b")
    assert not np.array_equal(
        resumed.model.layers[0].weight.data, reference.model.layers[0].weight.data
    )
    resumed.load_checkpoint(path)
    resumed_losses = _train(resumed, fresh_data, 3)

    assert resumed_losses == reference_losses
    assert_same(_comparable(snapshot(resumed)), _comparable(snapshot(reference)))
    # The scenario really exercises what it claims to.
    assert reference.step == 6 * STEPS_PER_EPOCH
    norms = reference.history["grad_norm"]
    assert max(norms) > CLIP > min(norms), "clipping should be active on some steps only"
    assert len(set(reference.history["learning_rates"])) == 6, "the schedule should change lr"


@pytest.mark.audit("6.1")
def test_resume_replays_the_order_of_an_unseeded_shuffling_loader(tmp_path):
    """Audit 6.1: a loader built with seed=None draws its seed from the OS; the checkpoint
    carries it, so a fresh unseeded loader (another OS seed) replays the saved run's order."""
    path = tmp_path / "ckpt"
    reference, data = _build("adam", data_seed=None)
    _train(reference, data, 2, evaluate=False)
    reference.save_checkpoint(path)
    reference_losses = _train(reference, data, 2, evaluate=False)

    resumed, fresh_data = _build("adam", seed=50, data_seed=None, variant="b")
    assert fresh_data.seed != data.seed
    resumed.load_checkpoint(path)
    assert _train(resumed, fresh_data, 2, evaluate=False) == reference_losses
    assert_same(_comparable(snapshot(resumed)), _comparable(snapshot(reference)))


@pytest.mark.audit("6.1")
def test_resume_from_a_resumed_run_is_still_exact(tmp_path):
    """Audit 6.1: 2 epochs, save, resume, 2 epochs, save, resume again, 2 epochs == 6 epochs
    in one go (what is restored is saved again: data seed, RNG states, history)."""
    reference, data = _build("adamw")
    _train(reference, data, 6)

    first, first_data = _build("adamw")
    _train(first, first_data, 2)
    first.save_checkpoint(tmp_path / "e2")
    second, second_data = _build("adamw", seed=30, data_seed=31, variant="b")
    second.load_checkpoint(tmp_path / "e2")
    _train(second, second_data, 2)
    second.save_checkpoint(tmp_path / "e4")
    third, third_data = _build("adamw", seed=60, data_seed=61, variant="b")
    third.load_checkpoint(tmp_path / "e4")
    _train(third, third_data, 2)

    assert_same(_comparable(snapshot(third)), _comparable(snapshot(reference)))


@pytest.mark.audit("6.2")
@pytest.mark.parametrize("kind", KINDS)
def test_a_loaded_trainer_saves_the_same_checkpoint(kind, tmp_path):
    """Audit 6.2: load a checkpoint and save at once: the new file holds the same arrays and the
    same metadata (nothing restored is lost, e.g. the data seed before the next epoch)."""
    trainer, data = _build(kind)
    _train(trainer, data, 2)
    trainer.save_checkpoint(tmp_path / "first")
    fresh, _ = _build(kind, seed=40, data_seed=41, variant="b")
    fresh.load_checkpoint(tmp_path / "first")
    fresh.save_checkpoint(tmp_path / "second")

    arrays_1, meta_1 = read_checkpoint(tmp_path / "first")
    arrays_2, meta_2 = read_checkpoint(tmp_path / "second")
    assert_same(arrays_2, arrays_1, "arrays")
    assert_same(meta_2, meta_1, "meta")


# ------------------------------------------------------------------ saved settings win
@pytest.mark.audit("6.1")
@pytest.mark.parametrize("kind", KINDS)
def test_saved_settings_win_over_the_constructors(kind, tmp_path):
    """Audit 6.1: a trainer built with other lr, momentum/betas, eps, weight decay, clip norm and
    schedule takes the saved ones on load, and its next epoch equals the uninterrupted run's."""
    cls, settings_a, _ = SETTINGS[kind]
    reference, data = _build(kind)
    _train(reference, data, 2)
    reference.save_checkpoint(tmp_path / "ckpt")
    _train(reference, data, 1)

    resumed, fresh_data = _build(kind, seed=7, data_seed=8, variant="b")
    resumed.load_checkpoint(tmp_path / "ckpt")
    optimizer = resumed.optimizer
    assert type(optimizer) is cls
    for name, value in settings_a.items():
        if name != "lr":  # the schedule sets lr each epoch; checked below
            assert tuple(np.atleast_1d(getattr(optimizer, name))) == tuple(np.atleast_1d(value))
    # Schedule A by hand: epoch 0 warms up to max_lr / 2, then a cosine over epochs 1..8.
    expected_lr = 0.005 + (0.05 - 0.005) * (1 + math.cos(math.pi * (2 - 1) / 7)) / 2
    assert resumed.optimizer.lr == 0.05  # the rate epoch 1 trained with (schedule B: 0.9)
    assert resumed.grad_clip_norm == CLIP
    assert resumed.scheduler.get_lr(2) == pytest.approx(expected_lr, rel=1e-12)
    assert resumed.scheduler.get_lr(0) == pytest.approx(0.025, rel=1e-12)  # warmup restored

    _train(resumed, fresh_data, 1)
    assert_same(_comparable(snapshot(resumed)), _comparable(snapshot(reference)))


@pytest.mark.audit("6.1")
@pytest.mark.parametrize("kind", KINDS)
def test_saved_lr_wins_when_there_is_no_schedule(kind, tmp_path):
    """Audit 6.1: without a schedule the saved lr is the one that trains on after a resume."""
    cls, settings_a, _ = SETTINGS[kind]
    reference, data = _build(kind, scheduler=None)
    _train(reference, data, 2)
    reference.save_checkpoint(tmp_path / "ckpt")
    _train(reference, data, 1)

    resumed, fresh_data = _build(kind, seed=3, data_seed=4, variant="b", scheduler=None)
    resumed.load_checkpoint(tmp_path / "ckpt")
    assert resumed.optimizer.lr == settings_a["lr"]
    _train(resumed, fresh_data, 1)
    assert resumed.history["learning_rates"] == [settings_a["lr"]] * 3
    assert_same(_comparable(snapshot(resumed)), _comparable(snapshot(reference)))


@pytest.mark.audit("6.1")
def test_saved_absence_of_schedule_and_clipping_wins(tmp_path):
    """Audit 6.1: saved without a schedule and without clipping, loaded into a trainer built
    with both: the trainer ends up with neither, and trains on exactly like the saved run."""
    reference, data = _build("sgd_momentum", scheduler=None, clip=None)
    _train(reference, data, 2)
    reference.save_checkpoint(tmp_path / "ckpt")
    _train(reference, data, 1)

    resumed, fresh_data = _build("sgd_momentum", seed=9, data_seed=10, variant="b")
    assert resumed.scheduler is not None and resumed.grad_clip_norm is not None
    resumed.load_checkpoint(tmp_path / "ckpt")
    assert resumed.scheduler is None
    assert resumed.grad_clip_norm is None
    _train(resumed, fresh_data, 1)
    assert_same(_comparable(snapshot(resumed)), _comparable(snapshot(reference)))


@pytest.mark.audit("6.1")
@pytest.mark.parametrize("saved_mode", [False, True])
def test_training_mode_is_restored(saved_mode, tmp_path):
    """Audit 6.1: a checkpoint saved in evaluate mode restores evaluate mode (trainer, model and
    its Dropout), and one saved in training mode restores training mode."""
    trainer, data = _build("adam")
    _train(trainer, data, 1, evaluate=not saved_mode)
    assert trainer.training_mode is saved_mode
    trainer.save_checkpoint(tmp_path / "ckpt")

    fresh, _ = _build("adam", seed=5, variant="b")
    if saved_mode:  # start from the opposite mode
        fresh.evaluate(_eval_loader())
    assert fresh.training_mode is not saved_mode
    fresh.load_checkpoint(tmp_path / "ckpt")
    assert fresh.training_mode is saved_mode
    assert fresh.model.training is saved_mode
    assert all(layer.training is saved_mode for layer in fresh.model.layers)
    # Dropout acts accordingly: identity in eval mode, random masks in training mode.
    x = np.ones((4, 3), dtype=np.float32)
    hidden = np.maximum(x @ fresh.model.layers[0].weight.data + fresh.model.layers[0].bias.data, 0)
    layers = fresh.model.layers
    dropped = layers[2](layers[1](layers[0](Tensor(x)))).data
    assert np.array_equal(dropped, hidden) == (not saved_mode)


# ------------------------------------------------------------------ 6.2: what the file holds
@pytest.mark.audit("6.2")
@pytest.mark.parametrize("kind", KINDS)
def test_checkpoint_file_holds_the_complete_state(kind, tmp_path):
    """Audit 6.2: read back with read_checkpoint, the file holds every parameter (weights and
    biases, float32), the optimizer's kind, hyper-parameters, buffers (momentum or both Adam
    moments, per parameter) and step count, the schedule's settings, the clip norm, epoch, step,
    history, the training mode and the data order's seed. Values are looked up by value, so the
    test does not depend on the names the file gives them."""
    schedule = CosineSchedule(max_lr=0.0537, min_lr=0.00123, total_epochs=17, warmup_epochs=2)
    trainer, data = _build(kind, data_seed=987654321, scheduler=schedule, clip=0.7311)
    _train(trainer, data, 3)  # ends with evaluate(): training mode False
    path = tmp_path / "ckpt"
    trainer.save_checkpoint(path)
    arrays, meta = read_checkpoint(path)

    # Parameters: each one stored, exactly, as float32, under its own name.
    params = list(trainer.model.parameters())
    assert {p.data.ndim for p in params} == {1, 2}, "weights (2-D) and biases (1-D)"
    used: set[str] = set()
    for i, p in enumerate(params):
        names = [k for k, a in arrays.items() if a.dtype == p.data.dtype == np.float32
                 and np.array_equal(a, p.data)]
        assert names, f"parameter {i} (shape {p.data.shape}) is not in the file"
        used.add(names[0])
    assert len(used) == len(params)

    # Optimizer buffers: momentum, or Adam's first and second moments, for every parameter.
    buffer_names = ("momentum_buffer",) if kind == "sgd_momentum" else ("exp_avg", "exp_avg_sq")
    for i, state in enumerate(trainer.optimizer.state):
        for name in buffer_names:
            buffer = state[name]
            assert np.any(buffer != 0)
            names = [k for k, a in arrays.items() if k not in used and np.array_equal(a, buffer)]
            assert names, f"optimizer buffer {name} of parameter {i} is not in the file"
    assert len(arrays) >= len(params) * (1 + len(buffer_names))

    # Metadata.
    cls, settings_a, _ = SETTINGS[kind]
    assert _has_leaf(meta, cls.__name__, under="optim")
    assert _has_leaf(meta, 3 * STEPS_PER_EPOCH, "step", under="optim"), "optimizer step count"
    for name, value in settings_a.items():
        if name == "lr":
            continue
        if isinstance(value, tuple):
            assert any(node == list(value) for node in _meta_nodes(meta)), name
        else:
            assert _has_leaf(meta, value, name.split("_")[0], under="optim"), name
    assert _has_leaf(meta, trainer.optimizer.lr, "lr", under="optim")
    assert any(
        isinstance(node, dict) and {0.0537, 0.00123, 17, 2} <= set(_leaf_values(node))
        for node in _meta_nodes(meta)
    ), "the schedule's settings (max_lr, min_lr, total_epochs, warmup_epochs)"
    assert _has_leaf(meta, 0.7311), "grad_clip_norm"
    assert _has_leaf(meta, 3, "epoch")
    assert _has_leaf(meta, 3 * STEPS_PER_EPOCH, "step")
    assert _has_leaf(meta, False, "train"), "training mode (saved after evaluate: False)"
    assert any(node == trainer.history for node in _meta_nodes(meta)), "history"
    assert len(trainer.history["train_loss"]) == 3 and len(trainer.history["eval_loss"]) == 3
    assert _has_leaf(meta, 987654321), "the data order's seed"


def _leaf_values(node: Any) -> list[Any]:
    return [v for _, v in _meta_leaves(node) if isinstance(v, int | float | str)]


@pytest.mark.audit("6.2")
def test_checkpoint_is_not_a_pickle(tmp_path):
    """Audit 6.2: numpy reads every array of the file with allow_pickle=False, and none of them
    is an object array (nothing in the file can run code when it is loaded)."""
    trainer, data = _build("adam")
    _train(trainer, data, 1)
    path = tmp_path / "ckpt.pt"
    trainer.save_checkpoint(path)
    with np.load(path, allow_pickle=False) as npz:
        arrays = {name: npz[name] for name in npz.files}
    assert arrays
    assert all(a.dtype != object for a in arrays.values())
    assert not path.read_bytes().startswith(b"\x80"), "a pickle stream starts with PROTO 0x80"


@pytest.mark.audit("6.2")
@pytest.mark.parametrize("as_path", [False, True], ids=["str", "Path"])
@pytest.mark.parametrize(
    "name", ["checkpoint", "model.pt", "run.ckpt", "weights.npz", "epoch.3.v2", "deep/er/run.pt"]
)
def test_save_writes_exactly_the_given_path(name, as_path, tmp_path):
    """Audit 6.2: the file is written at exactly the path given, str or Path, whatever its suffix
    (none, ".pt", ".npz", several dots: no ".npz" appended), creating missing parent folders; no
    other file is left anywhere; and it loads back from that same path."""
    path = tmp_path / "out" / name
    trainer, data = _build("sgd_momentum")
    _train(trainer, data, 1)
    saved = snapshot(trainer)
    trainer.save_checkpoint(str(path) if as_path is False else path)

    files = sorted(p for p in tmp_path.rglob("*") if p.is_file())
    assert files == [path]
    fresh, _ = _build("sgd_momentum", seed=1, variant="b")
    fresh.load_checkpoint(str(path) if as_path is False else path)
    assert_same(_comparable(snapshot(fresh)), _comparable(saved))


@pytest.mark.audit("6.2")
def test_saving_again_replaces_the_file_and_leaves_nothing_else(tmp_path):
    """Audit 6.2: a second save to the same path replaces the first (the newer state loads) and
    leaves no temporary file behind."""
    path = tmp_path / "ckpt"
    trainer, data = _build("adam")
    _train(trainer, data, 1)
    trainer.save_checkpoint(path)
    _train(trainer, data, 1)
    trainer.save_checkpoint(path)
    assert os.listdir(tmp_path) == ["ckpt"]
    fresh, _ = _build("adam", seed=1, variant="b")
    fresh.load_checkpoint(path)
    assert fresh.epoch == 2
    assert_same(_comparable(snapshot(fresh)), _comparable(snapshot(trainer)))


# ------------------------------------------------------------------ atomic writes
def _crashing_savez(real: Callable, error: BaseException) -> Callable:
    """A np.savez that writes half of the file it was asked for, then crashes."""

    def savez(file, *args, **kwargs):
        buffer = io.BytesIO()
        real(buffer, *args, **kwargs)
        half = buffer.getvalue()[: len(buffer.getvalue()) // 2]
        if hasattr(file, "write"):
            file.write(half)
        else:
            with open(file, "wb") as f:
                f.write(half)
        raise error

    return savez


def _crashing_rename(error: BaseException) -> Callable:
    def rename(*args, **kwargs):
        raise error

    return rename


CRASHES = ["savez", "rename"]
ERRORS = [OSError("disk full"), KeyboardInterrupt()]


def _install_crash(monkeypatch, where: str, error: BaseException) -> None:
    if where == "savez":
        monkeypatch.setattr(np, "savez", _crashing_savez(np.savez, error))
        monkeypatch.setattr(np, "savez_compressed", _crashing_savez(np.savez_compressed, error))
    else:
        for owner, name in ((os, "replace"), (os, "rename"), (pathlib.Path, "replace"),
                            (pathlib.Path, "rename")):
            monkeypatch.setattr(owner, name, _crashing_rename(error))


@pytest.mark.audit("6.2")
@pytest.mark.parametrize("error", ERRORS, ids=["OSError", "KeyboardInterrupt"])
@pytest.mark.parametrize("where", CRASHES)
def test_a_crash_mid_save_leaves_the_previous_checkpoint_intact(where, error, tmp_path,
                                                               monkeypatch):
    """Audit 6.2: a save that crashes half-way through writing (np.savez raises after writing
    half a file) or at the final rename leaves the previous checkpoint at that path byte for byte
    as it was and loadable, and leaves no temporary file behind; the crash propagates."""
    path = tmp_path / "ckpt"
    trainer, data = _build("adam")
    _train(trainer, data, 1)
    trainer.save_checkpoint(path)
    old_bytes, old_state = path.read_bytes(), snapshot(trainer)
    _train(trainer, data, 1)

    with monkeypatch.context() as patch:
        _install_crash(patch, where, error)
        with pytest.raises(type(error)):
            trainer.save_checkpoint(path)

    assert os.listdir(tmp_path) == ["ckpt"], "no temporary file may be left behind"
    assert path.read_bytes() == old_bytes
    fresh, _ = _build("adam", seed=1, variant="b")
    fresh.load_checkpoint(path)
    assert_same(_comparable(snapshot(fresh)), _comparable(old_state))


@pytest.mark.audit("6.2")
@pytest.mark.parametrize("where", CRASHES)
def test_a_crashed_first_save_leaves_no_file(where, tmp_path, monkeypatch):
    """Audit 6.2: with no previous checkpoint, a crashed save leaves no file at all (neither a
    partial checkpoint at the path nor a temporary file)."""
    trainer, data = _build("sgd_momentum")
    _train(trainer, data, 1)
    with monkeypatch.context() as patch:
        _install_crash(patch, where, OSError("disk full"))
        with pytest.raises(OSError, match="disk full"):
            trainer.save_checkpoint(tmp_path / "sub" / "ckpt")
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


# ------------------------------------------------------------------ load validates first
class _Exploit:
    """Unpickling this runs code: it creates ``marker``. A safe loader never unpickles it."""

    def __init__(self, marker: pathlib.Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return exec, (f"open({str(self.marker)!r}, 'w').close()",)


def _rewrite(path: pathlib.Path, change: Callable[[dict[str, np.ndarray]], None]) -> None:
    """Re-save a checkpoint's arrays (its metadata record included) after ``change``."""
    with np.load(path, allow_pickle=False) as npz:
        arrays = {name: npz[name] for name in npz.files}
    change(arrays)
    with open(path, "wb") as f:
        np.savez(f, **arrays)


def _meta_key(arrays: dict[str, np.ndarray]) -> str:
    """The name of the metadata record: the only uint8 array (parameters are float32)."""
    (name,) = [k for k, a in arrays.items() if a.dtype == np.uint8]
    return name


def _tamper_array(arrays):
    name = sorted(k for k in arrays if k != _meta_key(arrays))[0]
    arrays[name] = arrays[name] + np.float32(0.5)


def _tamper_meta(arrays):
    key = _meta_key(arrays)
    meta = json.loads(arrays[key].tobytes())
    train_loss = next(n for n in _meta_nodes(meta) if isinstance(n, dict) and "train_loss" in n)
    train_loss["train_loss"][0] += 1.0  # the digest, if any, is left as it was
    arrays[key] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)


def _drop_array(arrays):
    del arrays[sorted(k for k in arrays if k != _meta_key(arrays))[-1]]


def _add_object_array(marker):
    def change(arrays):
        arrays["extra"] = np.array([_Exploit(marker), 1], dtype=object)

    return change


def _damage(kind: str, path: pathlib.Path, marker: pathlib.Path) -> pathlib.Path:
    """Turn the valid checkpoint at ``path`` into a broken one; return the path to load."""
    data = path.read_bytes()
    if kind == "missing":
        return path.parent / "no" / "such.ckpt"
    if kind == "directory":
        target = path.parent / "a_folder.ckpt"
        target.mkdir()
        return target
    if kind.startswith("truncated"):
        keep = {"truncated_empty": 0, "truncated_100": 100, "truncated_half": len(data) // 2,
                "truncated_last_byte": len(data) - 1}[kind]
        path.write_bytes(data[:keep])
    elif kind.startswith("flipped"):
        if kind == "flipped_zip_directory":  # the compression method of the first member, as
            position = data.index(b"PK\x01\x02") + 10  # the zip's central directory records it
        else:
            position = int(len(data) * {"flipped_middle": 1 / 2, "flipped_third": 1 / 3}[kind])
        path.write_bytes(_flipped(data, position))
    elif kind == "tampered_array":
        _rewrite(path, _tamper_array)
    elif kind == "tampered_meta":
        _rewrite(path, _tamper_meta)
    elif kind == "dropped_array":
        _rewrite(path, _drop_array)
    elif kind == "object_array":
        _rewrite(path, _add_object_array(marker))
    elif kind == "pickle":
        path.write_bytes(pickle.dumps({"model": _Exploit(marker), "epoch": 9}))
    elif kind == "plain_npz":
        with open(path, "wb") as f:
            np.savez(f, w=np.zeros((3, 8), dtype=np.float32))
    elif kind == "text":
        path.write_text("not a checkpoint\n")
    else:
        raise AssertionError(kind)
    return path


DAMAGE = [
    "missing", "directory",
    "truncated_empty", "truncated_100", "truncated_half", "truncated_last_byte",
    "flipped_middle", "flipped_third", "flipped_zip_directory",
    "tampered_array", "tampered_meta", "dropped_array",
    "object_array", "pickle", "plain_npz", "text",
]


def _flipped(data: bytes, position: int) -> bytes:
    return data[:position] + bytes([data[position] ^ 0xFF]) + data[position + 1 :]


def _twins(kind: str = "adam") -> tuple[Trainer, Trainer, Any, Any]:
    """Two identical trainers with identical histories, for "left as it was" comparisons."""
    first, first_data = _build(kind)
    second, second_data = _build(kind)
    _train(first, first_data, 2)
    _train(second, second_data, 2)
    return first, second, first_data, second_data


def _assert_untouched_by_failed_load(trainer, twin, trainer_data, twin_data, path, error):
    """A failed load raised a clear error and changed nothing, now or for the next epoch."""
    assert isinstance(error, CheckpointError) and isinstance(error, ValueError)
    assert str(path) in str(error), f"the message should name the file: {error}"
    assert_same(_comparable(snapshot(trainer)), _comparable(snapshot(twin)))
    _train(trainer, trainer_data, 1)
    _train(twin, twin_data, 1)
    assert_same(_comparable(snapshot(trainer)), _comparable(snapshot(twin)))


@pytest.mark.audit("6.2")
@pytest.mark.parametrize("damage", DAMAGE)
def test_a_damaged_checkpoint_is_rejected_and_changes_nothing(damage, tmp_path):
    """Audit 6.2: a missing, truncated, corrupted (a byte flipped), tampered (an array or the
    metadata rewritten with the old digest), incomplete, pickled or foreign file raises
    CheckpointError naming the file; the trainer (parameters, optimizer state, lr, epoch, step,
    history, schedule, clip norm, mode, dropout RNG) is exactly as before and trains on exactly
    like its twin that never tried; and no pickled code ran."""
    source, _ = _build("adam", seed=21, data_seed=22)
    _train(source, loader(X, Y, BATCH, shuffle=True, seed=22), 3)
    path = tmp_path / "ckpt"
    source.save_checkpoint(path)
    marker = tmp_path / "code_ran"
    target = _damage(damage, path, marker)

    trainer, twin, trainer_data, twin_data = _twins()
    with pytest.raises(CheckpointError) as caught:
        trainer.load_checkpoint(target)
    assert not marker.exists(), "loading must never unpickle (the file's code ran)"
    _assert_untouched_by_failed_load(trainer, twin, trainer_data, twin_data, target, caught.value)


def _small_checkpoint(path: pathlib.Path) -> bytes:
    """A small valid checkpoint (one Linear layer, SGD with momentum, one epoch); its bytes."""
    model = Linear(1, 2, seed=0)
    trainer = Trainer(model, SGD(model.parameters(), lr=0.1, momentum=0.9), MSELoss())
    trainer.train_epoch(loader(X[:4, :1], Y[:4].repeat(2, axis=1), 2))
    trainer.save_checkpoint(path)
    return path.read_bytes()


@pytest.mark.audit("6.2")
def test_every_single_byte_corruption_is_rejected_or_harmless(tmp_path):
    """Audit 6.2: flip each byte of a checkpoint in turn (every position): the load either raises
    CheckpointError naming the file, or (for the few bytes no reader looks at, such as the zip's
    timestamps) returns exactly the original arrays and metadata. Anything else (another
    exception, or changed content loaded silently) fails, listing the offending offsets."""
    original = tmp_path / "original"
    data = _small_checkpoint(original)
    expected = read_checkpoint(original)
    damaged = tmp_path / "damaged"
    wrong: dict[str, list[int]] = {}
    for position in range(len(data)):
        damaged.write_bytes(_flipped(data, position))
        try:
            loaded = read_checkpoint(damaged)
        except CheckpointError as error:
            if str(damaged) not in str(error):
                wrong.setdefault("message does not name the file", []).append(position)
            continue
        except Exception as error:  # recorded, and fails the test below
            wrong.setdefault(f"{type(error).__name__}: {error}", []).append(position)
            continue
        try:
            assert_same(loaded, expected)
        except AssertionError:
            wrong.setdefault("loaded silently with other content", []).append(position)
    assert not wrong, f"{len(data)}-byte file; outcomes by flipped offset: {wrong}"


@pytest.mark.audit("6.2")
def test_every_truncation_is_rejected(tmp_path):
    """Audit 6.2: cut the file at every length from 0 to one byte short: each raises
    CheckpointError naming the file."""
    data = _small_checkpoint(tmp_path / "original")
    damaged = tmp_path / "damaged"
    wrong = {}
    for length in range(len(data)):
        damaged.write_bytes(data[:length])
        try:
            read_checkpoint(damaged)
            wrong[length] = "loaded"
        except CheckpointError as error:
            if str(damaged) not in str(error):
                wrong[length] = f"message does not name the file: {error}"
        except Exception as error:  # recorded, and fails the test below
            wrong[length] = f"{type(error).__name__}: {error}"
    assert not wrong, f"{len(data)}-byte file; outcomes by length: {wrong}"


FILE_DAMAGE = [kind for kind in DAMAGE if kind not in ("missing", "directory")]


@pytest.mark.audit("6.2")
@pytest.mark.parametrize("damage", FILE_DAMAGE)
def test_a_rejected_checkpoint_leaves_no_file_open(damage, tmp_path, monkeypatch):
    """Audit 6.2: every file the load opened is closed by the time its CheckpointError arrives.
    (np.load leaves its own handle open when a damaged zip fails to parse; under this project's
    "warnings are errors" the ResourceWarning of that handle would fail whichever later test the
    garbage collector happens to run in.) Checked deterministically: each file object opened
    during the load is kept, and must be closed when the error is raised."""
    source, data = _build("sgd_momentum")
    _train(source, data, 1, evaluate=False)
    path = tmp_path / "ckpt"
    source.save_checkpoint(path)
    target = _damage(damage, path, tmp_path / "marker")

    real_open = builtins.open
    opened = []

    def tracking_open(*args, **kwargs):
        f = real_open(*args, **kwargs)
        opened.append(f)
        return f

    trainer, _ = _build("sgd_momentum")
    with monkeypatch.context() as patch:
        patch.setattr(builtins, "open", tracking_open)
        patch.setattr(io, "open", tracking_open)
        with pytest.raises(CheckpointError):
            trainer.load_checkpoint(target)
    try:
        assert opened, "the load should have opened the file"
        assert [f for f in opened if not f.closed] == []
    finally:
        for f in opened:
            f.close()


def _wider_output():
    return Sequential(Linear(3, 8, seed=0), ReLU(), Dropout(0.25, seed=1), Linear(8, 2, seed=2))


def _narrower_hidden():
    return Sequential(Linear(3, 6, seed=0), ReLU(), Dropout(0.25, seed=1), Linear(6, 1, seed=2))


def _no_last_bias():
    return Sequential(Linear(3, 8, seed=0), ReLU(), Dropout(0.25, seed=1),
                      Linear(8, 1, bias=False, seed=2))


def _extra_layer():
    return Sequential(Linear(3, 8, seed=0), ReLU(), Dropout(0.25, seed=1), Linear(8, 1, seed=2),
                      Linear(1, 1, seed=3))


MISMATCHES = {
    # The first parameters fit; only a later one does not (a loader that copies as it checks
    # has already overwritten the first layer when it finds out).
    "last_layer_shape": ("adam", _wider_output),
    "hidden_width": ("adam", _narrower_hidden),
    "fewer_parameters": ("adam", _no_last_bias),
    "more_parameters": ("adam", _extra_layer),
    # Same model, another optimizer (AdamW has exactly Adam's buffers: only the kind differs).
    "sgd_into_adam": ("sgd_momentum", None),
    "adamw_into_adam": ("adamw", None),
}


@pytest.mark.audit("6.2")
@pytest.mark.parametrize("case", list(MISMATCHES))
def test_a_checkpoint_of_another_model_or_optimizer_is_rejected_and_changes_nothing(
    case, tmp_path
):
    """Audit 6.2: a valid checkpoint of a model with other shapes or another number of
    parameters, or of another optimizer kind, raises CheckpointError naming the file before
    anything is copied: the Adam trainer it was loaded into is exactly as before, and trains on
    exactly like its twin."""
    kind, make_model = MISMATCHES[case]
    model = make_model() if make_model is not None else None
    source, _ = _build(kind, seed=21, model=model)
    outputs = source.model.forward(Tensor(X)).shape[1]
    data = loader(X, np.repeat(Y, outputs, axis=1), BATCH, shuffle=True)
    _train(source, data, 2, evaluate=False)
    path = tmp_path / "other.ckpt"
    source.save_checkpoint(path)

    trainer, twin, trainer_data, twin_data = _twins("adam")
    with pytest.raises(CheckpointError) as caught:
        trainer.load_checkpoint(path)
    _assert_untouched_by_failed_load(trainer, twin, trainer_data, twin_data, path, caught.value)


def test_saves_killed_mid_write_leave_no_temporary_file_after_the_next_save(tmp_path):
    """A save killed mid-write cannot clean up its temporary file; the next save to the same
    path removes every such leftover (and keeps the temporary file of a save still running)."""
    import signal
    import subprocess
    import sys
    import time

    path = tmp_path / "big.ckpt"
    writer = (
        "import numpy as np, sys\n"
        "from tinytorch.core.checkpoint import write_checkpoint\n"
        "big = {'w': np.ones(8_000_000, np.float32)}\n"
        "while True: write_checkpoint(sys.argv[1], big, {})\n"
    )
    kills = 0
    for attempt in range(40):
        child = subprocess.Popen([sys.executable, "-c", writer, str(path)])
        time.sleep(0.6 + 0.05 * (attempt % 5))
        child.send_signal(signal.SIGKILL)
        child.wait()
        kills += 1
        if list(tmp_path.glob(".big.ckpt.*.tmp")):
            break
    assert list(tmp_path.glob(".big.ckpt.*.tmp")), f"no kill landed mid-write in {kills}"
    running = tmp_path / f".big.ckpt.{os.getpid()}.inprogress.tmp"  # a live save's file
    running.write_bytes(b"partial")
    from tinytorch.core.checkpoint import write_checkpoint

    write_checkpoint(path, {"w": np.zeros(3, np.float32)}, {})
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["big.ckpt", running.name])
